//! The git_lfs collector against real repositories made with Debian's git
//! and git-lfs: small real objects, sparse over-limit objects with
//! hand-written pointers, a missing object, a corrupt pointer, a repository
//! without LFS, missing and non-git paths, permission denied (hostmedic run
//! as `nobody`), and new objects showing up after the next background scan.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::config::{Section, TestConfig};
use common::git_lfs::{Repo, age_dirs, oid_of, tools_present};
use common::*;
use hostmedic::collectors::git_lfs::{self, GitLfsCollector};

const GIB: u64 = 1 << 30;
const LIMIT: u64 = 2_147_483_648;

/// hwmon off and `[git_lfs]` filled in by `f`.
fn git_lfs_config(f: impl FnOnce(&mut Section)) -> TestConfig {
    TestConfig::new().disable(&["hwmon"]).section("git_lfs", f)
}

/// Repo A: two small real LFS objects, a 3 GiB sparse object over the limit
/// (pointer `media/big.iso`, and a second pointer `copy.iso` to it), one at
/// limit+1 with no pointer in HEAD, one exactly at the limit, a pointer whose
/// object is missing, and a corrupt pointer committed as plain text.
struct Fixture {
    repo: Repo,
    small: [(String, u64); 2],
    big: String,
    plus_one: String,
}

fn build_fixture(dir: &Path) -> Fixture {
    let repo = Repo::init_lfs(dir, &["*.bin", "*.iso"]);
    let a = b"first small LFS object\n".repeat(40);
    let b = b"second small LFS object, a bit larger\n".repeat(100);
    repo.write("data/a.bin", &a);
    repo.write("data/b.bin", &b);
    repo.write("README", b"plain file\n");
    repo.commit(
        &[".gitattributes", "data/a.bin", "data/b.bin", "README"],
        "small objects",
    );

    let big = repo.sparse_object("big", 3 * GIB);
    repo.pointer("media/big.iso", &big, 3 * GIB);
    repo.pointer("copy.iso", &big, 3 * GIB);
    let plus_one = repo.sparse_object("plus-one", LIMIT + 1);
    repo.sparse_object("at-limit", LIMIT);
    let gone = common::git_lfs::sha256_hex(b"never stored");
    repo.pointer("gone.bin", &gone, 10);
    // Starts like a pointer, breaks the spec; not tracked, so committed as is.
    repo.write(
        "broken.ptr",
        b"version https://git-lfs.github.com/spec/v1\noid sha256:xyz\nsize ten\n",
    );
    repo.commit(
        &["media/big.iso", "copy.iso", "gone.bin", "broken.ptr"],
        "hand-written pointers",
    );
    Fixture {
        small: [(oid_of(&a), a.len() as u64), (oid_of(&b), b.len() as u64)],
        big,
        plus_one,
        repo,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_repositories_report_objects_limits_pointers_and_errors() {
    if !tools_present() && skip_or_fail("git and git-lfs are not installed") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let fx = build_fixture(&t.path().join("lfs-repo"));

    // git-lfs itself agrees that the hand-written files are pointers, and
    // that the small objects are real LFS objects.
    let ls = fx.repo.git(&["lfs", "ls-files", "--long", "--size"]);
    for (oid, _) in &fx.small {
        assert!(ls.contains(oid.as_str()), "{ls}");
    }
    assert!(
        ls.contains(&fx.big) && ls.contains("media/big.iso") && ls.contains("3.2 GB"),
        "{ls}"
    );
    assert!(ls.contains("gone.bin") && !ls.contains("broken.ptr"), "{ls}");

    let plain = Repo::init(&t.path().join("plain-repo"));
    plain.write("file.txt", b"no lfs here\n");
    plain.commit(&["file.txt"], "plain");
    let unborn = Repo::init(&t.path().join("unborn-repo"));
    let missing = t.path().join("does-not-exist");
    let not_git = t.path().join("just-a-dir");
    std::fs::create_dir_all(&not_git).unwrap();
    std::fs::write(t.path().join("a-file"), "x").unwrap();

    let cfg = git_lfs_config(|g| {
        g.paths(
            "repos",
            [
                &fx.repo.dir,
                &plain.dir,
                &unborn.dir,
                &missing,
                &not_git,
                &t.path().join("a-file"),
            ],
        )
        .set("max_series_per_repo", 1)
        .set("size_limit", "2GiB")
        .set("scan_interval", "1h");
    })
    .parse();
    let srv = InProcess::start(cfg).await;
    let repo_a = fx.repo.dir.display().to_string();
    let set = eventually(Duration::from_secs(30), "first git_lfs scan", || async {
        let set = srv.app.scrape().await;
        set.value("hostmedic_git_lfs_repo_up", &[("repo", repo_a.as_str())])
            .map(|_| set)
    })
    .await;
    let v = |name: &str, repo: &Path| {
        set.value(name, &[("repo", repo.display().to_string().as_str())])
            .unwrap_or_else(|| panic!("{name} for {}", repo.display()))
    };
    let a = fx.repo.dir.as_path();
    let small_bytes: u64 = fx.small.iter().map(|s| s.1).sum();
    assert_eq!(
        set.value("hostmedic_git_lfs_repo_up", &[("repo", repo_a.as_str()), ("error", "")]),
        Some(1.0)
    );
    assert_eq!(v("hostmedic_git_lfs_objects", a), 5.0);
    assert_eq!(
        v("hostmedic_git_lfs_objects_bytes", a),
        (small_bytes + 3 * GIB + LIMIT + 1 + LIMIT) as f64
    );
    assert_eq!(v("hostmedic_git_lfs_largest_object_bytes", a), (3 * GIB) as f64);
    assert_eq!(v("hostmedic_git_lfs_object_size_limit_bytes", a), LIMIT as f64);
    // Strictly larger than the limit: 3 GiB and limit+1, not the one at it.
    assert_eq!(v("hostmedic_git_lfs_objects_over_limit", a), 2.0);
    assert_eq!(v("hostmedic_git_lfs_pointers_missing_object", a), 1.0);
    assert_eq!(v("hostmedic_git_lfs_pointers_invalid", a), 1.0);
    assert!(v("hostmedic_git_lfs_scan_timestamp_seconds", a) > 1.7e9);
    // max_series_per_repo = 1: only the largest, with both HEAD paths.
    let fam = set.get("hostmedic_git_lfs_object_over_limit_bytes").unwrap();
    assert_eq!(fam.samples.len(), 1, "{:?}", fam.samples);
    assert_eq!(
        set.value(
            "hostmedic_git_lfs_object_over_limit_bytes",
            &[
                ("repo", repo_a.as_str()),
                ("oid", fx.big.as_str()),
                ("path", "copy.iso,media/big.iso")
            ]
        ),
        Some((3 * GIB) as f64)
    );
    assert!(fam.samples.iter().all(|s| !s.labels.iter().any(|l| l.1 == fx.plus_one)));

    // A repository without LFS, and one without commits, are up and empty.
    for r in [&plain.dir, &unborn.dir] {
        assert_eq!(v("hostmedic_git_lfs_repo_up", r), 1.0);
        assert_eq!(v("hostmedic_git_lfs_objects", r), 0.0);
        assert_eq!(v("hostmedic_git_lfs_pointers_missing_object", r), 0.0);
    }
    // Errors are per repository, with a reason label and no data series.
    for (p, err) in [
        (missing.clone(), "missing"),
        (not_git.clone(), "not_a_git_repo"),
        (t.path().join("a-file"), "not_a_git_repo"),
    ] {
        let repo = p.display().to_string();
        assert_eq!(
            set.value("hostmedic_git_lfs_repo_up", &[("repo", repo.as_str()), ("error", err)]),
            Some(0.0),
            "{repo}"
        );
        assert_eq!(set.value("hostmedic_git_lfs_objects", &[("repo", repo.as_str())]), None);
    }

    // The HTTP exposition says the values are cached.
    let (code, body) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    assert!(body.contains("# HELP hostmedic_git_lfs_objects Number of objects in the local LFS store. Cached: from the last background scan"), "{body}");
    assert!(body.contains("hostmedic_scrape_collector_success{collector=\"git_lfs\"} 1"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn new_objects_show_up_after_the_next_background_scan() {
    if !tools_present() && skip_or_fail("git and git-lfs are not installed") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::init_lfs(&t.path().join("r"), &["*.bin"]);
    repo.write("one.bin", b"one\n");
    repo.commit(&[".gitattributes", "one.bin"], "one");
    let cfg = git_lfs_config(|g| {
        g.paths("search_roots", [t.path()])
            .set("search_depth", 1)
            .set("scan_interval", "200ms");
    })
    .disable(&["host"])
    .parse();
    let srv = InProcess::start(cfg).await;
    let name = repo.dir.display().to_string();
    let count = |srv: &InProcess| {
        let app = srv.app.clone();
        let name = name.clone();
        async move {
            app.scrape()
                .await
                .value("hostmedic_git_lfs_objects", &[("repo", name.as_str())])
        }
    };
    eventually(Duration::from_secs(30), "1 object", || async {
        (count(&srv).await == Some(1.0)).then_some(())
    })
    .await;

    // A new object (new fan-out directories) and an over-limit one.
    repo.write("two.bin", b"two two\n");
    repo.commit(&["two.bin"], "two");
    let big = repo.sparse_object("grown", 5 * GIB);
    repo.pointer("grown.bin", &big, 5 * GIB);
    repo.commit(&["grown.bin"], "big");
    // A scan may land between the object and the commit of its pointer (3
    // objects, no HEAD path yet): wait for one that saw both.
    let over_limit = [("repo", name.as_str()), ("oid", big.as_str()), ("path", "grown.bin")];
    let set = eventually(
        Duration::from_secs(30),
        "3 objects, the big one named by HEAD",
        || async {
            let set = srv.app.scrape().await;
            let named = set
                .value("hostmedic_git_lfs_object_over_limit_bytes", &over_limit)
                .is_some();
            (named && set.value("hostmedic_git_lfs_objects", &[("repo", name.as_str())]) == Some(3.0)).then_some(set)
        },
    )
    .await;
    assert_eq!(
        set.value("hostmedic_git_lfs_object_over_limit_bytes", &over_limit),
        Some((5 * GIB) as f64)
    );

    // The object vanishes from the store: its pointer is now missing one.
    let obj = repo.objects_dir().join(&big[0..2]).join(&big[2..4]).join(&big);
    std::fs::remove_file(obj).unwrap();
    eventually(Duration::from_secs(30), "missing object", || async {
        let set = srv.app.scrape().await;
        let l = [("repo", name.as_str())];
        (set.value("hostmedic_git_lfs_pointers_missing_object", &l) == Some(1.0)
            && set.value("hostmedic_git_lfs_objects_over_limit", &l) == Some(0.0))
        .then_some(())
    })
    .await;
    srv.stop().await;
}

#[test]
fn rescans_skip_unchanged_fanout_directories_in_a_real_repo() {
    if !tools_present() && skip_or_fail("git and git-lfs are not installed") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::init_lfs(&t.path().join("r"), &["*.bin"]);
    let mut files = Vec::new();
    for i in 0..20 {
        let name = format!("f{i}.bin");
        repo.write(&name, format!("object number {i}\n").as_bytes());
        files.push(name);
    }
    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.push(".gitattributes");
    repo.commit(&args, "twenty");
    age_dirs(&repo.objects_dir());

    let cfg = git_lfs_config(|g| {
        g.paths("repos", [&repo.dir]).set("scan_interval", "1h");
    })
    .parse()
    .git_lfs;
    let c = GitLfsCollector::new(&cfg, &Default::default());
    let stats = |snap: &git_lfs::Snapshot| snap.repos[0].result.as_ref().unwrap().stats;
    let first = c.scan_once();
    assert_eq!(first.repos[0].result.as_ref().unwrap().objects, 20);
    let s1 = stats(&first);
    assert!(s1.dirs_listed >= 21, "{s1:?}");
    let s2 = stats(&c.scan_once());
    assert_eq!((s2.dirs_listed, s2.dirs_skipped), (0, s1.dirs_listed), "{s2:?}");

    repo.write("new.bin", b"a new object\n");
    repo.commit(&["new.bin"], "new");
    let third = c.scan_once();
    let r = third.repos[0].result.as_ref().unwrap();
    assert_eq!((r.objects, r.pointers_missing_object), (21, 0));
    // Only the path to the new object is listed: at most top, aa and bb.
    assert!((1..=3).contains(&r.stats.dirs_listed), "{:?}", r.stats);
}

#[test]
fn permission_denied_is_reported_per_repo_when_not_root() {
    if !tools_present() && skip_or_fail("git and git-lfs are not installed") {
        return;
    }
    if std::process::Command::new("setpriv").arg("--version").output().is_err()
        && skip_or_fail("setpriv (util-linux) is not installed")
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // The test tree must be traversable by `nobody`.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let good = Repo::init_lfs(&t.path().join("good"), &["*.bin"]);
    good.write("g.bin", b"readable\n");
    good.commit(&[".gitattributes", "g.bin"], "g");
    let locked = Repo::init_lfs(&t.path().join("locked"), &["*.bin"]);
    locked.write("l.bin", b"locked\n");
    locked.commit(&[".gitattributes", "l.bin"], "l");
    let store_locked = Repo::init_lfs(&t.path().join("store-locked"), &["*.bin"]);
    store_locked.write("s.bin", b"store\n");
    store_locked.commit(&[".gitattributes", "s.bin"], "s");
    // Root owns everything; mode 0700 shuts `nobody` out.
    std::fs::set_permissions(&locked.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(store_locked.objects_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();

    let cfg_path = git_lfs_config(|g| {
        g.paths("repos", [&good.dir, &locked.dir, &store_locked.dir])
            .set("scan_interval", "1h");
    })
    .write(t.path().join("hostmedic.toml"));
    let logdir = t.path().join("log");
    std::fs::create_dir_all(&logdir).unwrap();
    let bin = Binary::start_as_nobody(&cfg_path, &logdir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = rt.block_on(eventually(Duration::from_secs(30), "3 repos scanned", || async {
        let (_, body) = get(&bin.url("/metrics")).await;
        (body.matches("hostmedic_git_lfs_repo_up{").count() == 3).then_some(body)
    }));
    let up = |p: &Path, err: &str, v: u8| {
        format!(
            "hostmedic_git_lfs_repo_up{{repo=\"{}\",error=\"{err}\"}} {v}",
            p.display()
        )
    };
    assert!(body.contains(&up(&good.dir, "", 1)), "{body}\n{}", bin.log());
    assert!(body.contains(&up(&locked.dir, "unreadable", 0)), "{body}");
    assert!(body.contains(&up(&store_locked.dir, "unreadable", 0)), "{body}");
    assert!(
        body.contains(&format!(
            "hostmedic_git_lfs_objects{{repo=\"{}\"}} 1",
            good.dir.display()
        )),
        "{body}"
    );
    // One log line per failing repository.
    let log = bin.log();
    for p in [&locked.dir, &store_locked.dir] {
        let lines = log
            .lines()
            .filter(|l| l.contains("repository cannot be scanned") && l.contains(&format!("repo={}", p.display())))
            .count();
        assert_eq!(lines, 1, "{log}");
    }
    assert!(log.contains("Permission denied"), "{log}");
}

//! The `filesystems` collector on real mounts: the real binary runs as PID 1
//! of its own PID and mount namespaces (`unshare`), so its default mount
//! table, `/proc/1/mountinfo`, is the namespace's own; the test mounts a
//! tmpfs with 64 inodes there (`nsenter`), exhausts them, binds it
//! read-only (a per-mount flag: must not count as read-only) and remounts
//! its superblock read-only (must). On the way, the `disk_usage` collector
//! names the tmpfs's largest directory with the tmpfs's mount point (what
//! the disk alerts join on). The series are read from `/metrics`, the
//! service log must name the read-only filesystem. The CI host's own mounts
//! are never touched.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::config::TestConfig;
use common::*;

/// Runs `argv` inside the mount namespace of `pid`; panics with its stderr.
fn in_namespace(pid: i32, argv: &[&str]) {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "--"])
        .args(argv)
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of `name` for the series whose `mountpoint` is `mnt`.
fn series(body: &str, name: &str, mnt: &Path) -> Option<f64> {
    let prefix = format!("{name}{{");
    let label = format!("mountpoint=\"{}\"", mnt.display());
    body.lines()
        .find(|l| l.starts_with(&prefix) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Waits until a scrape shows `name` of `mnt` at `want`.
async fn wait_for(bin: &Binary, name: &str, mnt: &Path, want: f64) {
    let url = bin.url("/metrics");
    eventually(
        Duration::from_secs(20),
        &format!("{name} of {} = {want}", mnt.display()),
        || {
            let url = url.clone();
            async move { (series(&get(&url).await.1, name, mnt) == Some(want)).then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inodes_and_a_read_only_superblock_on_real_mounts() {
    if !nix::unistd::Uid::effective().is_root() && skip_or_fail("needs root for mount namespaces") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let config = TestConfig::new()
        .disable(&["host", "hwmon", "pressure", "processes", "docker", "systemd"])
        .section("filesystems", |s| {
            // tmpfs is left out by default (memory, not disk): let it in.
            s.set("fs_types_exclude", "^(proc|sysfs|cgroup2?|devpts|mqueue|nsfs|overlay)$");
        })
        .section("disk_usage", |s| {
            s.strings("roots", [mnt.to_str().unwrap()])
                .set("depth", 1)
                .set("scan_interval", "10s")
                .strings("journal_dirs", Vec::<&str>::new());
        })
        .write(dir.path().join("hostmedic.toml"));
    let prefix = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--",
    ];
    let bin = Binary::start_with_prefix(&prefix, &config, dir.path(), &[]);
    let m = mnt.to_str().unwrap();
    in_namespace(
        bin.pid(),
        &["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=64", "hm-inodes", m],
    );

    wait_for(&bin, "hostmedic_filesystem_files", &mnt, 64.0).await;
    // 1 MiB in one directory: the largest consumer, on the tmpfs.
    in_namespace(
        bin.pid(),
        &[
            "sh",
            "-c",
            &format!("mkdir {m}/big && head -c 1048576 /dev/zero > {m}/big/blob"),
        ],
    );
    let want = format!("hostmedic_disk_usage_bytes{{kind=\"directory\",path=\"{m}/big\",mountpoint=\"{m}\"}} 1048576");
    eventually(
        Duration::from_secs(30),
        "disk_usage names the big directory on the tmpfs",
        || {
            let url = bin.url("/metrics");
            let want = want.clone();
            async move { get(&url).await.1.lines().any(|l| l == want).then_some(()) }
        },
    )
    .await;
    wait_for(&bin, "hostmedic_filesystem_readonly", &mnt, 0.0).await;
    wait_for(&bin, "hostmedic_filesystem_device_error", &mnt, 0.0).await;
    // Files until the tmpfs refuses one: no inode left.
    in_namespace(
        bin.pid(),
        &[
            "sh",
            "-c",
            &format!("i=0; while touch {m}/f$i 2>/dev/null; do i=$((i+1)); done; test $i -gt 50"),
        ],
    );
    wait_for(&bin, "hostmedic_filesystem_files_free", &mnt, 0.0).await;

    // A read-only bind of the writable tmpfs: the per-mount flag only.
    in_namespace(bin.pid(), &["mount", "-o", "remount,bind,ro", m]);
    assert!(
        Command::new("nsenter")
            .args(["-t", &bin.pid().to_string(), "-m", "--", "touch", &format!("{m}/g")])
            .output()
            .is_ok_and(|o| !o.status.success()),
        "the bind is read-only"
    );
    // Two scrapes later it is still not a read-only filesystem.
    for _ in 0..2 {
        let body = get(&bin.url("/metrics")).await.1;
        assert_eq!(
            series(&body, "hostmedic_filesystem_readonly", &mnt),
            Some(0.0),
            "{body}"
        );
    }

    // The superblock itself read-only: what a remount after an I/O error does.
    in_namespace(bin.pid(), &["mount", "-o", "remount,ro", m]);
    wait_for(&bin, "hostmedic_filesystem_readonly", &mnt, 1.0).await;
    eventually(
        Duration::from_secs(10),
        "the service log names the read-only filesystem",
        || {
            let log = bin.log();
            async move {
                log.lines()
                    .any(|l| l.contains("became read-only") && l.contains(m) && l.contains("level=warn"))
                    .then_some(())
            }
        },
    )
    .await;
}

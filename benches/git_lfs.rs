//! Benchmark for the git_lfs store scan (issue 5): a store of 100,000
//! objects, first scan ≤ 1 s, unchanged rescan ≤ 50 ms.
//!
//! Run: `cargo bench --bench git_lfs` (env `HOSTMEDIC_BENCH_OBJECTS` changes
//! the object count). The store is made of empty and small sparse files in
//! the real `<aa>/<bb>/<oid>` layout inside a real `git init` repository,
//! with 1,000 LFS pointers committed in HEAD; directory mtimes are set an
//! hour back, as in a store that is not being written right now (the racy
//! window would otherwise force a relist of freshly made directories).
//! Reported: min / median / max over repeated runs, each "first scan" with a
//! fresh cache (warm kernel dentry/inode cache), as wall time and as process
//! CPU time (user + system, all threads; the machine is shared, so wall time
//! includes waiting for a core), plus `du -sb` over the same store as a
//! reference walk.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use hostmedic::collectors::git_lfs::{self, GitLfsCollector, StoreCache};

// The git_lfs tests' repository fixture (`Repo`, `age_dirs`).
use hostmedic_test_support::git_lfs::{Repo, age_dirs};

fn oid(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut s = String::with_capacity(64);
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s
}

/// CPU time of the whole process (all threads), robust against other
/// processes competing for the two cores.
fn cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).unwrap();
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, (Duration, Duration)) {
    let (w, c) = (Instant::now(), cpu());
    let out = f();
    (out, (w.elapsed(), cpu() - c))
}

fn stats(v: Vec<(Duration, Duration)>) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let line = |mut v: Vec<Duration>| {
        v.sort();
        format!(
            "min {:.1} / median {:.1} / max {:.1} ms",
            ms(v[0]),
            ms(v[v.len() / 2]),
            ms(v[v.len() - 1])
        )
    };
    format!(
        "wall {}; cpu {} (n={})",
        line(v.iter().map(|x| x.0).collect()),
        line(v.iter().map(|x| x.1).collect()),
        v.len()
    )
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: u64 = std::env::var("HOSTMEDIC_BENCH_OBJECTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::init(&tmp.path().join("repo"));
    let store = repo.objects_dir();

    let t0 = Instant::now();
    for i in 0..n {
        let o = oid(i);
        let d = store.join(&o[0..2]).join(&o[2..4]);
        std::fs::create_dir_all(&d).unwrap();
        let f = std::fs::File::create(d.join(&o)).unwrap();
        f.set_len(i % 4096).unwrap();
        if i < 1000 {
            repo.pointer(&format!("p{i}.bin"), &o, i % 4096);
        }
    }
    repo.commit(&["."], "pointers");
    age_dirs(&store);
    let leaves = walkdir::WalkDir::new(&store)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .count();
    println!(
        "store: {n} objects in {leaves} leaf fan-out directories, built in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // Store scan alone.
    let mut first = Vec::new();
    for _ in 0..5 {
        let mut c = StoreCache::default();
        let (st, t) = timed(|| c.scan(&store, SystemTime::now()).unwrap());
        first.push(t);
        assert_eq!(c.objects().count() as u64, n);
        assert!(st.dirs_listed > leaves);
    }
    let mut cache = StoreCache::default();
    cache.scan(&store, SystemTime::now()).unwrap();
    let mut again = Vec::new();
    for _ in 0..30 {
        let (st, t) = timed(|| cache.scan(&store, SystemTime::now()).unwrap());
        again.push(t);
        assert_eq!(st.dirs_listed, 0);
    }
    println!("store scan, first (fresh cache):   {}", stats(first));
    println!("store scan, unchanged rescan:      {}", stats(again));

    // Whole collector scan: gix open, HEAD tree with 1,000 pointers, store.
    let cfg: git_lfs::Config = toml::from_str(&format!("repos = [\"{}\"]\n", repo.dir.display())).unwrap();
    let mut first = Vec::new();
    for _ in 0..5 {
        let c = GitLfsCollector::new(&cfg, &Default::default());
        let (snap, t) = timed(|| c.scan_once());
        first.push(t);
        let r = snap.repos[0].result.as_ref().unwrap();
        assert_eq!((r.objects, r.pointers_missing_object), (n, 0));
    }
    let c = GitLfsCollector::new(&cfg, &Default::default());
    c.scan_once();
    let mut again = Vec::new();
    for _ in 0..30 {
        let (snap, t) = timed(|| c.scan_once());
        again.push(t);
        assert_eq!(snap.repos[0].result.as_ref().unwrap().stats.dirs_listed, 0);
    }
    println!("collector scan_once, first:        {}", stats(first));
    println!("collector scan_once, unchanged:    {}", stats(again));

    // 100 new objects, then rescan.
    for i in n..n + 100 {
        let o = oid(i);
        let d = store.join(&o[0..2]).join(&o[2..4]);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::File::create(d.join(&o)).unwrap();
    }
    let (snap, (wall, cpu)) = timed(|| c.scan_once());
    let r = snap.repos[0].result.as_ref().unwrap();
    assert_eq!(r.objects, n + 100);
    println!(
        "collector scan_once after 100 new objects: wall {:.1} ms, cpu {:.1} ms ({} directories listed)",
        wall.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() * 1000.0,
        r.stats.dirs_listed
    );

    // Reference: coreutils du over the same store.
    let mut du = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        let out = Command::new("du").arg("-sb").arg(&store).output().unwrap();
        assert!(out.status.success());
        du.push(s.elapsed());
    }
    du.sort();
    println!(
        "reference `du -sb` of the store:   wall min {:.1} / median {:.1} ms",
        du[0].as_secs_f64() * 1000.0,
        du[1].as_secs_f64() * 1000.0
    );
}

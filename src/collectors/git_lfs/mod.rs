//! `git_lfs` collector: local Git LFS object stores measured against the
//! remote's per-object size limit, so an over-limit object is seen before a
//! nightly push fails on it (HTTP 422 "Size must be less than or equal to
//! 2147483648").
//!
//! Per repository it reports the objects under `<git-common-dir>/lfs/objects/
//! <oid[0:2]>/<oid[2:4]>/<oid>` (count, bytes, largest, how many are over the
//! limit and, bounded, which ones with the HEAD paths whose pointer names
//! them) and the LFS pointers in HEAD whose object is missing locally or that
//! are not valid pointers.
//!
//! Scanning runs in [`Collector::background`] every `scan_interval` and its
//! result is cached: a scrape only copies the cached numbers. Rescans are
//! incremental: a fan-out directory whose mtime has not changed is not listed
//! again (git's "racy" rule applies: an mtime too close to the scan start is
//! never trusted, so a change in the same clock tick is not missed). HEAD is
//! read through `gix` (refs, trees, blob headers and small blobs); pointer
//! text is parsed here, per the git-lfs pointer spec, and only re-read when
//! HEAD's tree changes.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::bytes::ByteSize;
use crate::collector::{CollectError, Collector, scan_every};
use crate::error::ConfigError;
use crate::metrics::MetricSet;

mod head;
mod pointers;
mod repo;
mod store;
pub use self::head::*;
pub use self::pointers::*;
pub use self::repo::*;
pub use self::store::*;

/// The default per-object limit of the common LFS hosts: 2 GiB.
pub const DEFAULT_SIZE_LIMIT: u64 = 2_147_483_648;

/// `[git_lfs]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Repositories to watch (work trees or bare repositories).
    pub repos: Vec<PathBuf>,
    /// Directories searched for repositories on every scan (a directory with
    /// a `.git` entry is a repository; the search does not descend into one).
    pub search_roots: Vec<PathBuf>,
    /// How deep below each search root to look (1 = the root's children).
    pub search_depth: usize,
    /// The remote's per-object limit; objects strictly larger are over it.
    pub size_limit: ByteSize,
    /// At most this many `hostmedic_git_lfs_object_over_limit_bytes` series
    /// per repository (the largest objects win).
    pub max_series_per_repo: usize,
    /// Time between two background scans.
    #[serde(with = "humantime_serde")]
    pub scan_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            repos: Vec::new(),
            search_roots: Vec::new(),
            search_depth: 3,
            size_limit: ByteSize(DEFAULT_SIZE_LIMIT),
            max_series_per_repo: 20,
            scan_interval: Duration::from_secs(300),
        }
    }
}

/// Deepest `search_depth` accepted: deeper searches belong in `repos`.
pub const MAX_SEARCH_DEPTH: usize = 8;

impl Config {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.scan_interval.is_zero() {
            return Err(ConfigError::invalid(
                format!("{key}.scan_interval"),
                "must be greater than 0",
            ));
        }
        if self.search_depth == 0 || self.search_depth > MAX_SEARCH_DEPTH {
            return Err(ConfigError::invalid(
                format!("{key}.search_depth"),
                format!("must be between 1 and {MAX_SEARCH_DEPTH}"),
            ));
        }
        if self.size_limit.0 == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.size_limit"),
                "must be greater than 0",
            ));
        }
        for (i, p) in self.repos.iter().enumerate() {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(format!("{key}.repos[{i}]"), "must not be empty"));
            }
        }
        for (i, p) in self.search_roots.iter().enumerate() {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.search_roots[{i}]"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The collector.

/// The cached result of the last scan.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub repos: Vec<RepoReport>,
    /// When the last scan finished (`None` before the first).
    pub finished: Option<SystemTime>,
}

pub struct GitLfsCollector {
    cfg: Config,
    state: Mutex<HashMap<PathBuf, RepoState>>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Where each scan's over-limit objects are published for the receiver's evidence.
    observed: crate::observed::Observed,
}

impl GitLfsCollector {
    /// `observed` receives every scan's over-limit objects (the receiver's evidence reads them).
    pub fn new(cfg: &Config, observed: &crate::observed::Observed) -> Self {
        GitLfsCollector {
            cfg: cfg.clone(),
            observed: observed.clone(),
            state: Mutex::new(HashMap::new()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
        }
    }

    /// The configured repositories plus those found under the search roots.
    pub fn repo_paths(&self) -> Vec<PathBuf> {
        let mut v = self.cfg.repos.clone();
        for root in &self.cfg.search_roots {
            v.extend(discover_repos(root, self.cfg.search_depth));
        }
        let mut seen = HashSet::new();
        v.retain(|p| seen.insert(p.clone()));
        v
    }

    /// Runs one full (incremental) scan synchronously and publishes it.
    /// Blocking: call from a blocking thread.
    pub fn scan_once(&self) -> Arc<Snapshot> {
        let paths = self.repo_paths();
        let mut state = crate::sync::lock(&self.state);
        state.retain(|p, _| paths.contains(p));
        let mut repos = Vec::with_capacity(paths.len());
        for path in paths {
            let st = state.entry(path.clone()).or_default();
            let scan_start = SystemTime::now();
            let result = st.scan(&path, &self.cfg, scan_start);
            let label = path.display().to_string();
            // One log line per change of a repository's state.
            let now_err = result.as_ref().err().map(RepoError::as_label);
            if !st.reported || now_err != st.last_error {
                match &result {
                    Err(e) => {
                        tracing::warn!(collector = "git_lfs", repo = %label, error = now_err.unwrap_or(""), detail = %e, "git_lfs: repository cannot be scanned")
                    }
                    Ok(_) if st.reported => {
                        tracing::info!(collector = "git_lfs", repo = %label, "git_lfs: repository scannable again")
                    }
                    Ok(_) => {}
                }
                st.reported = true;
                st.last_error = now_err;
            }
            if result.is_err() {
                // Start from scratch once it is readable again.
                *st = RepoState {
                    reported: true,
                    last_error: now_err,
                    ..RepoState::default()
                };
            }
            repos.push(RepoReport {
                repo: label,
                scanned_at: SystemTime::now(),
                result,
            });
        }
        drop(state);
        let snap = Arc::new(Snapshot {
            repos,
            finished: Some(SystemTime::now()),
        });
        *crate::sync::write(&self.snapshot) = snap.clone();
        self.observed.publish_lfs(
            snap.repos
                .iter()
                .map(|r| (r.repo.clone(), observed(r, &self.cfg)))
                .collect(),
        );
        snap
    }

    /// The last published scan.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        crate::sync::read(&self.snapshot).clone()
    }
}

/// What the receiver's evidence sees of one repository's scan.
fn observed(r: &RepoReport, cfg: &Config) -> crate::observed::LfsReport {
    let (over_limit, objects, error) = match &r.result {
        Ok(s) => (
            s.over_limit,
            s.over_limit_series
                .iter()
                .map(|(oid, size, paths)| crate::observed::LfsObject {
                    oid: oid.clone(),
                    size: *size,
                    paths: paths.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect(),
                })
                .collect(),
            None,
        ),
        Err(e) => (0, Vec::new(), Some(e.to_string())),
    };
    crate::observed::LfsReport {
        scanned_at: unix(r.scanned_at),
        limit: cfg.size_limit.0,
        over_limit,
        objects,
        error,
    }
}

const CACHED: &str = "Cached: from the last background scan (see hostmedic_git_lfs_scan_timestamp_seconds).";

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Writes one snapshot's series (used by `collect`).
pub fn write_snapshot(snap: &Snapshot, limit: u64, out: &mut MetricSet) {
    let h = |s: &str| format!("{s} {CACHED}");
    for r in &snap.repos {
        let repo = r.repo.as_str();
        let l = [("repo", repo)];
        let err = r.result.as_ref().err().map(RepoError::as_label).unwrap_or("");
        out.gauge(
            "hostmedic_git_lfs_repo_up",
            &h("Whether the repository could be scanned (0: see the error label)."),
            &[("repo", repo), ("error", err)],
            if r.result.is_ok() { 1.0 } else { 0.0 },
        );
        out.gauge(
            "hostmedic_git_lfs_scan_timestamp_seconds",
            "Unix time of the last background scan of this repository; scraped values are this old.",
            &l,
            unix(r.scanned_at),
        );
        out.gauge(
            "hostmedic_git_lfs_object_size_limit_bytes",
            "The configured per-object size limit of the LFS remote (git_lfs.size_limit).",
            &l,
            limit as f64,
        );
        let Ok(s) = &r.result else { continue };
        out.gauge(
            "hostmedic_git_lfs_objects",
            &h("Number of objects in the local LFS store."),
            &l,
            s.objects as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_objects_bytes",
            &h("Total size of the objects in the local LFS store."),
            &l,
            s.bytes as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_largest_object_bytes",
            &h("Size of the largest object in the local LFS store."),
            &l,
            s.largest as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_objects_over_limit",
            &h("Number of local LFS objects larger than the size limit."),
            &l,
            s.over_limit as f64,
        );
        for (oid, size, paths) in &s.over_limit_series {
            out.gauge(
                "hostmedic_git_lfs_object_over_limit_bytes",
                &h("Size of one local LFS object over the limit; path lists the HEAD paths whose pointer names it (comma-separated, empty if none). Bounded by git_lfs.max_series_per_repo, largest first."),
                &[("repo", repo), ("oid", oid.as_str()), ("path", paths.as_str())],
                *size as f64,
            );
        }
        out.gauge(
            "hostmedic_git_lfs_pointers_missing_object",
            &h("Number of LFS pointers in HEAD whose object is not in the local store."),
            &l,
            s.pointers_missing_object as f64,
        );
        out.gauge(
            "hostmedic_git_lfs_pointers_invalid",
            &h("Number of blobs in HEAD that start like an LFS pointer but break the pointer spec."),
            &l,
            s.pointers_invalid as f64,
        );
    }
}

#[async_trait]
impl Collector for GitLfsCollector {
    fn name(&self) -> &'static str {
        "git_lfs"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let snap = self.snapshot();
        let none_configured = self.cfg.repos.is_empty() && self.cfg.search_roots.is_empty();
        if none_configured || (snap.finished.is_some() && snap.repos.is_empty()) {
            return Err(CollectError::Unavailable(
                "no repositories configured or found (git_lfs.repos, git_lfs.search_roots)".into(),
            ));
        }
        write_snapshot(&snap, self.cfg.size_limit.0, out);
        Ok(())
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        if self.cfg.repos.is_empty() && self.cfg.search_roots.is_empty() {
            return;
        }
        let interval = self.cfg.scan_interval;
        scan_every("git_lfs", interval, shutdown, move || {
            self.scan_once();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    fn ptr(body: &str) -> PointerParse {
        parse_pointer(body.as_bytes())
    }

    #[test]
    fn parses_spec_pointer() {
        let p = ptr(&format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n"
        ));
        let PointerParse::Pointer(p) = p else { panic!("{p:?}") };
        assert_eq!(oid_hex(&p.oid), OID);
        assert_eq!(p.size, 12345);
        // Legacy version URL and extension keys sorted before oid.
        let p = ptr(&format!(
            "version https://hawser.github.com/spec/v1\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 0\n"
        ));
        assert!(matches!(p, PointerParse::Pointer(Pointer { size: 0, .. })), "{p:?}");
    }

    #[test]
    fn ordinary_content_is_not_a_pointer() {
        assert_eq!(ptr("hello\n"), PointerParse::NotPointer);
        assert_eq!(ptr(""), PointerParse::NotPointer);
        assert_eq!(ptr("version 1.2.3\n"), PointerParse::NotPointer);
        assert_eq!(parse_pointer(&[0xff, 0, 1]), PointerParse::NotPointer);
    }

    #[test]
    fn broken_pointers_are_invalid() {
        let v = "version https://git-lfs.github.com/spec/v1\n";
        for (body, why) in [
            (format!("{v}oid sha256:{OID}\nsize 12"), "no trailing newline"),
            (format!("{v}oid sha256:xyz\nsize 12\n"), "oid is not 64"),
            (
                format!("{v}oid sha256:{}\nsize 12\n", OID.to_uppercase()),
                "oid is not 64",
            ),
            (format!("{v}oid md5:{OID}\nsize 12\n"), "not sha256"),
            (format!("{v}oid sha256:{OID}\nsize -1\n"), "size is not"),
            (format!("{v}oid sha256:{OID}\nsize +1\n"), "size is not"),
            (format!("{v}oid sha256:{OID}\nsize abc\n"), "size is not"),
            (format!("{v}size 12\noid sha256:{OID}\n"), "out of order"),
            (format!("{v}oid sha256:{OID}\n"), "no size"),
            (format!("{v}size 12\n"), "no oid"),
            (format!("{v}oid sha256:{OID}\nSize 12\n"), "invalid key"),
            (format!("{v}oid sha256:{OID}\nsize 12\nzzz\n"), "key value"),
            (
                format!("{v}oid sha256:{OID}\nsize 12\n{}\n", "x ".repeat(600)),
                "larger than",
            ),
            (
                "version https://git-lfs.github.com/spec/v2\n".to_string(),
                "unknown pointer version",
            ),
        ] {
            match ptr(&body) {
                PointerParse::Invalid(w) => assert!(w.contains(why), "{body:?}: {w} (want {why})"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn oid_hex_round_trip() {
        let o = parse_oid_hex(OID.as_bytes()).unwrap();
        assert_eq!(oid_hex(&o), OID);
        assert!(parse_oid_hex(&OID.as_bytes()[1..]).is_none());
        assert!(parse_oid_hex(OID.replace('a', "g").as_bytes()).is_none());
    }

    fn put(store: &Path, oid: &str, len: u64) {
        let d = store.join(&oid[0..2]).join(&oid[2..4]);
        fs::create_dir_all(&d).unwrap();
        let f = fs::File::create(d.join(oid)).unwrap();
        f.set_len(len).unwrap();
    }

    /// Sets every directory's mtime an hour back, as if the store were old.
    fn age(dir: &Path) {
        let old = nix::sys::time::TimeSpec::new(
            (SystemTime::now() - Duration::from_secs(3600))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
            0,
        );
        for e in walkdir::WalkDir::new(dir) {
            let e = e.unwrap();
            if e.file_type().is_dir() {
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    e.path(),
                    &old,
                    &old,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .unwrap();
            }
        }
    }

    fn oid_n(n: u32) -> String {
        // Deterministic, well-spread oids.
        let mut s = String::new();
        let mut x = n.wrapping_mul(2_654_435_761).wrapping_add(12345);
        while s.len() < 64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            s.push_str(&format!("{x:08x}"));
        }
        s
    }

    #[test]
    fn store_scan_is_incremental_by_mtime() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("objects");
        // 300 objects: more than 64 top-level fan-out directories, so the
        // two-thread path runs.
        for n in 0..300 {
            put(&store, &oid_n(n), n as u64 * 10);
        }
        // A temporary download and a foreign file are ignored.
        fs::create_dir_all(store.join("zz")).unwrap();
        fs::write(store.join(&oid_n(0)[0..2]).join(&oid_n(0)[2..4]).join("tmp123"), "x").unwrap();
        age(&store);

        let mut c = StoreCache::default();
        let s1 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(c.objects().count(), 300);
        assert_eq!(
            c.objects().map(|o| o.1).sum::<u64>(),
            (0..300).map(|n| n * 10).sum::<u64>()
        );
        assert!(s1.dirs_listed > 300, "{s1:?}");
        assert!(c.mids.iter().filter(|m| m.is_some()).count() > 64);
        assert_eq!(s1.dirs_skipped, 0);

        // Nothing changed: nothing is listed again.
        let s2 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(s2.dirs_listed, 0, "{s2:?}");
        assert_eq!(s2.dirs_skipped, s1.dirs_listed);

        // One new object in an existing leaf: only that leaf is listed.
        let o0 = oid_n(0);
        let new = format!("{}{}", &o0[..4], &oid_n(999)[4..]);
        put(&store, &new, 7);
        let s3 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(s3.dirs_listed, 1, "{s3:?}");
        assert_eq!(c.objects().count(), 301);
        assert!(c.contains(&parse_oid_hex(new.as_bytes()).unwrap()));

        // The just-changed leaf is racy (mtime within RACY_WINDOW): listed
        // again next time, and trusted once it is old enough.
        let s4 = c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(s4.dirs_listed, 1, "{s4:?}");
        let s5 = c.scan(&store, SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(s5.dirs_listed, 1, "{s5:?}");
        let s6 = c.scan(&store, SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(s6.dirs_listed, 0, "{s6:?}");

        // A removed fan-out directory disappears from the totals.
        fs::remove_dir_all(store.join(&o0[0..2])).unwrap();
        c.scan(&store, SystemTime::now()).unwrap();
        assert!(!c.contains(&parse_oid_hex(new.as_bytes()).unwrap()));
        assert!(c.objects().count() < 301);

        // A store that disappears is empty.
        fs::remove_dir_all(&store).unwrap();
        c.scan(&store, SystemTime::now()).unwrap();
        assert_eq!(c.objects().count(), 0);
    }

    #[test]
    fn discovers_repos_to_bounded_depth() {
        let t = tempfile::tempdir().unwrap();
        for d in ["a/.git", "b/c/.git", "b/c/inner/.git", "d/e/f/g/.git"] {
            fs::create_dir_all(t.path().join(d)).unwrap();
        }
        fs::create_dir_all(t.path().join("h")).unwrap();
        fs::write(t.path().join("h/.git"), "gitdir: /elsewhere\n").unwrap(); // linked worktree
        let found = discover_repos(t.path(), 3);
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(t.path()).unwrap().to_owned())
            .collect();
        assert_eq!(rel, vec![PathBuf::from("a"), PathBuf::from("b/c"), PathBuf::from("h")]);
    }

    #[test]
    fn config_validation_names_keys() {
        let mut c = Config::default();
        c.validate("git_lfs").unwrap();
        c.search_depth = 0;
        assert!(
            c.validate("git_lfs")
                .unwrap_err()
                .to_string()
                .contains("git_lfs.search_depth")
        );
        c.search_depth = 2;
        c.scan_interval = Duration::ZERO;
        assert!(
            c.validate("git_lfs")
                .unwrap_err()
                .to_string()
                .contains("git_lfs.scan_interval")
        );
    }
}

//! `paths` collector: size, modification time and existence of configured
//! files and directories (glob patterns allowed), so a write-ahead log or a
//! spool directory that keeps growing is seen before the disk fills.
//!
//! Walking a directory can take long, so it never happens during a scrape:
//! [`Collector::background`] measures every watch each `scan_interval` on a
//! blocking thread and a scrape copies the cached result. A directory's size
//! is the apparent size (`st_size`) of the regular files below it, walked
//! without following symlinks and without leaving its file system; the walk
//! stops at the watch's `timeout` or after `max_entries` entries, and a walk
//! cut short reports no size (a partial sum would look like shrinkage). A
//! directory's modification time is the newest mtime of anything in it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::bytes::ByteSize;
use crate::collector::{CollectError, Collector, scan_every};
use crate::error::ConfigError;
use crate::metrics::MetricSet;

/// `[paths]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Time between two background measurements.
    #[serde(with = "humantime_serde")]
    pub scan_interval: Duration,
    /// Default time limit for walking one directory (per watch: `timeout`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Most entries visited in one directory walk.
    pub max_entries: u64,
    /// Most paths one glob pattern may report (sorted; the rest are dropped).
    pub max_matches: usize,
    /// `[[paths.watch]]` entries.
    pub watch: Vec<Watch>,
}

/// One `[[paths.watch]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// The `watch` label; unique.
    pub name: String,
    /// An absolute path or glob pattern (`*`, `?`, `[...]`).
    pub path: String,
    /// Exported as `hostmedic_path_size_limit_bytes` for alert rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
    /// Overrides `paths.timeout` for this watch.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            scan_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            max_entries: 1_000_000,
            max_matches: 100,
            watch: Vec::new(),
        }
    }
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

impl Config {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for (k, d) in [("scan_interval", self.scan_interval), ("timeout", self.timeout)] {
            if d.is_zero() {
                return Err(ConfigError::invalid(format!("{key}.{k}"), "must be greater than 0"));
            }
        }
        if self.max_entries == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.max_entries"),
                "must be greater than 0",
            ));
        }
        if self.max_matches == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.max_matches"),
                "must be greater than 0",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, w) in self.watch.iter().enumerate() {
            let k = |f: &str| format!("{key}.watch[{i}].{f}");
            if w.name.trim().is_empty() {
                return Err(ConfigError::invalid(k("name"), "must not be empty"));
            }
            if !names.insert(w.name.as_str()) {
                return Err(ConfigError::invalid(
                    k("name"),
                    format!("duplicate watch name `{}`", w.name),
                ));
            }
            if !Path::new(&w.path).is_absolute() {
                return Err(ConfigError::invalid(k("path"), "must be an absolute path or pattern"));
            }
            if is_glob(&w.path) {
                glob::Pattern::new(&w.path)
                    .map_err(|e| ConfigError::invalid(k("path"), format!("invalid glob: {e}")))?;
            }
            if w.timeout.is_some_and(|t| t.is_zero()) {
                return Err(ConfigError::invalid(k("timeout"), "must be greater than 0"));
            }
        }
        Ok(())
    }
}

/// What one measurement found for one path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathReport {
    pub watch: String,
    pub path: String,
    pub exists: bool,
    /// Bytes; `None` when absent or the walk was cut short.
    pub size: Option<u64>,
    /// Unix seconds of the newest modification.
    pub modified: Option<f64>,
    pub limit: Option<u64>,
    /// Why `size` is missing although the path exists.
    pub incomplete: Option<String>,
}

/// Total of a directory walk.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkTotal {
    pub bytes: u64,
    pub newest: Option<SystemTime>,
    pub entries: u64,
    /// Entries that could not be read (skipped, like `du` does).
    pub errors: u64,
}

/// Why a walk stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error("walk timed out after {0:?}")]
    Timeout(Duration),
    #[error("walk stopped after {0} entries (paths.max_entries)")]
    TooMany(u64),
}

/// Sums the regular files below `dir` (not following symlinks, not leaving
/// its file system), stopping at `timeout` or `max_entries`.
pub fn walk_dir(dir: &Path, timeout: Duration, max_entries: u64) -> Result<WalkTotal, WalkError> {
    let deadline = Instant::now() + timeout;
    let mut t = WalkTotal {
        bytes: 0,
        newest: None,
        entries: 0,
        errors: 0,
    };
    let walker = walkdir::WalkDir::new(dir).follow_links(false).same_file_system(true);
    for entry in walker {
        t.entries += 1;
        if t.entries > max_entries {
            return Err(WalkError::TooMany(max_entries));
        }
        if t.entries.is_multiple_of(256) && Instant::now() > deadline {
            return Err(WalkError::Timeout(timeout));
        }
        let Ok(entry) = entry else {
            t.errors += 1;
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            t.errors += 1;
            continue;
        };
        if let Ok(m) = meta.modified() {
            t.newest = t.newest.max(Some(m));
        }
        if meta.is_file() {
            t.bytes = t.bytes.saturating_add(meta.len());
        }
    }
    if Instant::now() > deadline {
        return Err(WalkError::Timeout(timeout));
    }
    Ok(t)
}

fn unix(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Measures one existing or missing path.
pub fn measure(watch: &Watch, path: &Path, cfg: &Config) -> PathReport {
    let mut r = PathReport {
        watch: watch.name.clone(),
        path: path.display().to_string(),
        exists: false,
        size: None,
        modified: None,
        limit: watch.max_size.map(|b| b.0),
        incomplete: None,
    };
    let Ok(meta) = std::fs::metadata(path) else {
        return r;
    };
    r.exists = true;
    if meta.is_dir() {
        match walk_dir(path, watch.timeout.unwrap_or(cfg.timeout), cfg.max_entries) {
            Ok(t) => {
                r.size = Some(t.bytes);
                r.modified = t.newest.map(unix);
            }
            Err(e) => {
                r.modified = meta.modified().ok().map(unix);
                r.incomplete = Some(e.to_string());
            }
        }
    } else {
        r.size = Some(meta.len());
        r.modified = meta.modified().ok().map(unix);
    }
    r
}

/// Measures every path of one watch (expanding a glob).
pub fn measure_watch(watch: &Watch, cfg: &Config) -> Vec<PathReport> {
    if !is_glob(&watch.path) {
        return vec![measure(watch, Path::new(&watch.path), cfg)];
    }
    let mut paths: Vec<PathBuf> = match glob::glob(&watch.path) {
        Ok(it) => it.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(), // validated at load time
    };
    paths.sort();
    paths.truncate(cfg.max_matches);
    if paths.is_empty() {
        // Nothing matches: say so under the pattern itself.
        return vec![measure(watch, Path::new(&watch.path), cfg)];
    }
    paths.iter().map(|p| measure(watch, p, cfg)).collect()
}

pub struct PathsCollector {
    cfg: Config,
    cache: RwLock<Option<Arc<Vec<PathReport>>>>,
    /// Last "incomplete" reason per (watch, path), to log once per change.
    logged: Mutex<std::collections::HashMap<(String, String), String>>,
    /// Where each scan's sizes are recorded for the receiver's evidence.
    observed: crate::observed::Observed,
}

impl PathsCollector {
    /// `observed` receives every scan's sizes (the receiver's evidence reads them).
    pub fn new(cfg: &Config, observed: &crate::observed::Observed) -> Self {
        PathsCollector {
            cfg: cfg.clone(),
            observed: observed.clone(),
            cache: RwLock::new(None),
            logged: Mutex::new(Default::default()),
        }
    }

    /// Measures every watch now (blocking) and publishes the result.
    pub fn scan_once(&self) -> Arc<Vec<PathReport>> {
        let reports: Vec<PathReport> = self
            .cfg
            .watch
            .iter()
            .flat_map(|w| measure_watch(w, &self.cfg))
            .collect();
        {
            let mut logged = crate::sync::lock(&self.logged);
            for r in &reports {
                let key = (r.watch.clone(), r.path.clone());
                match &r.incomplete {
                    Some(why) if logged.get(&key) != Some(why) => {
                        tracing::warn!(collector = "paths", watch = %r.watch, path = %r.path, reason = %why, "paths: directory size not measured");
                        logged.insert(key, why.clone());
                    }
                    None if logged.remove(&key).is_some() => {
                        tracing::info!(collector = "paths", watch = %r.watch, path = %r.path, "paths: directory size measured again");
                    }
                    _ => {}
                }
            }
        }
        // The receiver's evidence reads the history of what was measured.
        let now = crate::time::now();
        for r in &reports {
            self.observed.record_path_size(&r.watch, &r.path, r.limit, now, r.size);
        }
        self.observed
            .retain_paths(&|w, p| reports.iter().any(|r| r.watch == w && r.path == p));
        let reports = Arc::new(reports);
        *crate::sync::write(&self.cache) = Some(reports.clone());
        reports
    }
}

const CACHED: &str = "Cached: measured in the background every paths.scan_interval.";

/// Writes the series of one measurement.
pub fn write_reports(reports: &[PathReport], out: &mut MetricSet) {
    for r in reports {
        let l = [("watch", r.watch.as_str()), ("path", r.path.as_str())];
        out.gauge(
            "hostmedic_path_exists",
            &format!("Whether the watched path exists (a glob matching nothing reports its pattern with 0). {CACHED}"),
            &l,
            if r.exists { 1.0 } else { 0.0 },
        );
        if let Some(s) = r.size {
            out.gauge(
                "hostmedic_path_size_bytes",
                &format!("Size of a file, or total apparent size of the regular files below a directory. {CACHED}"),
                &l,
                s as f64,
            );
        }
        if let Some(m) = r.modified {
            out.gauge(
                "hostmedic_path_modified_timestamp_seconds",
                &format!("Unix time of the last modification (directories: newest entry below). {CACHED}"),
                &l,
                m,
            );
        }
        if let Some(limit) = r.limit {
            out.gauge(
                "hostmedic_path_size_limit_bytes",
                "The watch's configured max_size.",
                &l,
                limit as f64,
            );
        }
    }
}

#[async_trait]
impl Collector for PathsCollector {
    fn name(&self) -> &'static str {
        "paths"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        if self.cfg.watch.is_empty() {
            return Err(CollectError::Unavailable(
                "no [[paths.watch]] entries configured".into(),
            ));
        }
        let cached = crate::sync::read(&self.cache).clone();
        if let Some(reports) = cached {
            write_reports(&reports, out);
        }
        Ok(())
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        if self.cfg.watch.is_empty() {
            return;
        }
        let interval = self.cfg.scan_interval;
        scan_every("paths", interval, shutdown, move || {
            self.scan_once();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn watch(name: &str, path: &str) -> Watch {
        Watch {
            name: name.into(),
            path: path.into(),
            max_size: None,
            timeout: None,
        }
    }

    #[test]
    fn file_dir_glob_and_missing() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("spool");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("a"), vec![0u8; 100]).unwrap();
        fs::write(d.join("sub/b"), vec![0u8; 50]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap(); // not followed
        fs::write(t.path().join("x.log"), "12345").unwrap();
        fs::write(t.path().join("y.log"), "1").unwrap();
        let cfg = Config::default();

        let r = measure_watch(&watch("dir", d.to_str().unwrap()), &cfg);
        assert_eq!((r.len(), r[0].exists, r[0].size), (1, true, Some(150)));
        assert!(r[0].modified.unwrap() > 1e9);

        let pat = format!("{}/*.log", t.path().display());
        let r = measure_watch(&watch("logs", &pat), &cfg);
        let got: Vec<_> = r.iter().map(|r| (r.path.rsplit('/').next().unwrap(), r.size)).collect();
        assert_eq!(got, vec![("x.log", Some(5)), ("y.log", Some(1))]);

        let pat = format!("{}/*.nothing", t.path().display());
        let r = measure_watch(&watch("none", &pat), &cfg);
        assert_eq!((r.len(), r[0].exists, r[0].path.as_str()), (1, false, pat.as_str()));

        let mut w = watch("gone", "/nonexistent/hostmedic/file");
        w.max_size = Some(ByteSize(10));
        let r = measure_watch(&w, &cfg);
        assert_eq!((r[0].exists, r[0].size, r[0].limit), (false, None, Some(10)));
    }

    #[test]
    fn walk_is_bounded() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..600 {
            fs::write(t.path().join(format!("f{i}")), "x").unwrap();
        }
        assert_eq!(
            walk_dir(t.path(), Duration::from_secs(30), 10),
            Err(WalkError::TooMany(10))
        );
        assert_eq!(
            walk_dir(t.path(), Duration::from_nanos(1), 1_000_000),
            Err(WalkError::Timeout(Duration::from_nanos(1)))
        );
        let ok = walk_dir(t.path(), Duration::from_secs(30), 1_000_000).unwrap();
        assert_eq!((ok.bytes, ok.entries), (600, 601));

        // A cut-short walk reports the directory but no size.
        let mut w = watch("big", t.path().to_str().unwrap());
        w.timeout = Some(Duration::from_nanos(1));
        let r = measure(&w, t.path(), &Config::default());
        assert!(r.exists && r.size.is_none() && r.incomplete.as_deref().unwrap().contains("timed out"));
    }

    #[test]
    fn config_round_trips_through_check_config() {
        let text = "[paths]\n[[paths.watch]]\nname = \"wal\"\npath = \"/var/lib/app/db-wal\"\nmax_size = \"100MB\"\ntimeout = \"3s\"\n[[paths.watch]]\nname = \"logs\"\npath = \"/var/log/*.log\"\n[git_lfs]\nsize_limit = \"2GiB\"\nrepos = [\"/srv/repo\"]\n";
        let cfg = crate::config::Config::parse(text, "t").unwrap();
        assert_eq!(cfg.paths.watch[0].max_size, Some(ByteSize(100_000_000)));
        assert_eq!(cfg.paths.watch[0].timeout, Some(Duration::from_secs(3)));
        assert_eq!(cfg.paths.watch[1].timeout, None);
        assert_eq!(cfg.git_lfs.size_limit.0, 2_147_483_648);
        let again = crate::config::Config::parse(&cfg.to_toml(), "rendered").unwrap();
        assert_eq!(again.paths.watch[0].max_size, Some(ByteSize(100_000_000)));
        assert_eq!(again.paths.watch[0].timeout, Some(Duration::from_secs(3)));
        assert_eq!(again.git_lfs.repos, vec![PathBuf::from("/srv/repo")]);
        let err = crate::config::Config::parse(
            "[[paths.watch]]\nname = \"x\"\npath = \"/x\"\nmax_size = \"9 parsecs\"\n",
            "t",
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_size"), "{err}");
    }

    #[test]
    fn validation_names_the_watch_key() {
        let mut c = Config::default();
        c.watch.push(watch("a", "/tmp/x"));
        c.validate("paths").unwrap();
        c.watch.push(watch("a", "/tmp/y"));
        assert!(
            c.validate("paths")
                .unwrap_err()
                .to_string()
                .contains("paths.watch[1].name")
        );
        c.watch[1] = watch("b", "relative/path");
        assert!(
            c.validate("paths")
                .unwrap_err()
                .to_string()
                .contains("paths.watch[1].path")
        );
        c.watch[1] = watch("b", "/tmp/[unclosed");
        assert!(c.validate("paths").unwrap_err().to_string().contains("invalid glob"));
    }
}

//! `disk_usage` collector: *who* fills a disk. The byte and inode series say
//! that a filesystem fills; the operator's next question is what grew, and
//! the answer on a small host is usually one of a few: the journal, Docker,
//! one runaway directory. This collector measures, in the background and
//! never on the scrape path, the disk use (allocated blocks, as `du`) of the
//! journal's directories and of the largest directories `depth` levels below
//! each configured root, and exports the largest `top` of each root with the
//! mount point of the filesystem they are on, so an alert about a mount
//! point can name its largest consumers (the shipped disk rules do).
//!
//! Bounded: one walk per root per `scan_interval`, that never leaves the
//! root's filesystem nor follows symlinks, stops after `max_entries`
//! entries or `scan_timeout` (its figures are then lower bounds, and
//! `hostmedic_disk_usage_scan_complete{root}` says so), counts a file with
//! several hard links once, and keeps only `top` directories per root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::filesystems::{self, Mount};
use crate::collector::{CollectError, Collector, scan_every};
use crate::du;
use crate::error::ConfigError;
use crate::metrics::MetricSet;

/// `[disk_usage]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Directories whose largest subdirectories are named; absent ones are
    /// skipped.
    pub roots: Vec<PathBuf>,
    /// How deep below a root the named directories are (1: `/var/lib`
    /// under `/var`; 2: `/var/lib/docker`).
    pub depth: usize,
    /// Directories named per root.
    pub top: usize,
    /// The journal's directories (persistent and volatile); each one that
    /// exists is measured whole.
    pub journal_dirs: Vec<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub scan_interval: Duration,
    /// One root's walk stops after this long…
    #[serde(with = "humantime_serde")]
    pub scan_timeout: Duration,
    /// …or after this many entries.
    pub max_entries: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            roots: ["/var", "/home", "/srv", "/opt", "/root", "/tmp"]
                .map(PathBuf::from)
                .to_vec(),
            depth: 2,
            top: 5,
            journal_dirs: crate::journal_files::DEFAULT_DIRS.map(PathBuf::from).to_vec(),
            scan_interval: Duration::from_secs(15 * 60),
            scan_timeout: Duration::from_secs(120),
            max_entries: 2_000_000,
        }
    }
}

impl Config {
    /// Checks the section; errors name `key.<field>`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(1..=8).contains(&self.depth) {
            return Err(ConfigError::invalid(format!("{key}.depth"), "must be 1 to 8"));
        }
        if !(1..=50).contains(&self.top) {
            return Err(ConfigError::invalid(format!("{key}.top"), "must be 1 to 50"));
        }
        if self.scan_interval < Duration::from_secs(10) {
            return Err(ConfigError::invalid(
                format!("{key}.scan_interval"),
                "must be at least 10s",
            ));
        }
        if self.scan_timeout.is_zero() || self.max_entries == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.scan_timeout"),
                "scan_timeout and max_entries must be above 0",
            ));
        }
        for (i, p) in self.roots.iter().chain(&self.journal_dirs).enumerate() {
            if !p.is_absolute() {
                let field = if i < self.roots.len() { "roots" } else { "journal_dirs" };
                return Err(ConfigError::invalid(
                    format!("{key}.{field}"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
        }
        Ok(())
    }
}

/// One consumer found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// `directory` or `journal`.
    pub kind: &'static str,
    pub path: String,
    /// The mount point the filesystem is reported at (its shortest).
    pub mountpoint: String,
    pub bytes: u64,
}

/// The walk of one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootScan {
    pub root: String,
    /// False when the walk was cut short: its figures are lower bounds.
    pub complete: bool,
}

/// What one scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub consumers: Vec<Consumer>,
    pub roots: Vec<RootScan>,
    /// Unix seconds the scan ended, and how long it took.
    pub at: f64,
    pub duration: f64,
}

/// Disk use below `root`, summed per directory `depth` levels down (files
/// higher up count for their own directory), within `deadline` and
/// `max_entries`. Returns the sums and whether the walk finished.
fn walk(root: &Path, depth: usize, deadline: Instant, max_entries: u64) -> (BTreeMap<PathBuf, u64>, bool) {
    let mut sums: BTreeMap<PathBuf, u64> = BTreeMap::new();
    let complete = du::walk_files(root, deadline, max_entries, |entry, meta| {
        // The directory that holds the file, cut at `depth` below the root.
        let parent_depth = entry.depth().saturating_sub(1).min(depth);
        let dir: PathBuf = entry
            .path()
            .ancestors()
            .nth(entry.depth() - parent_depth)
            .unwrap_or(root)
            .to_path_buf();
        *sums.entry(dir).or_default() += du::allocated(meta);
    });
    (sums, complete)
}

/// The mount point `path` is reported at: the filesystem holding it (the
/// longest mount point that is a prefix of it), at that filesystem's
/// shortest mount point, as the byte and inode series label it.
pub fn reported_mount_point(mounts: &[Mount], path: &Path) -> Option<String> {
    let holder = mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.len())?;
    filesystems::one_per_filesystem(mounts.to_vec())
        .into_iter()
        .find(|m| m.device_id == holder.device_id)
        .map(|m| m.mount_point)
}

pub struct DiskUsageCollector {
    cfg: Config,
    mountinfo: Vec<PathBuf>,
    last: RwLock<Option<Arc<Report>>>,
}

impl DiskUsageCollector {
    pub fn new(cfg: &Config, procfs_root: &Path) -> Result<Self, ConfigError> {
        cfg.validate("disk_usage")?;
        Ok(DiskUsageCollector {
            cfg: cfg.clone(),
            mountinfo: vec![procfs_root.join("1/mountinfo"), procfs_root.join("self/mountinfo")],
            last: RwLock::new(None),
        })
    }

    /// Scans every root and journal directory now (blocking) and keeps the
    /// result for the scrapes.
    pub fn scan_once(&self) -> Arc<Report> {
        let started = Instant::now();
        let mounts = filesystems::read_mount_table(&self.mountinfo).unwrap_or_default();
        let mount_of = |p: &Path| reported_mount_point(&mounts, p).unwrap_or_default();
        let mut report = Report::default();
        for root in self.cfg.roots.iter().filter(|r| r.is_dir()) {
            let (sums, complete) = walk(
                root,
                self.cfg.depth,
                Instant::now() + self.cfg.scan_timeout,
                self.cfg.max_entries,
            );
            if !complete {
                tracing::info!(root = %root.display(), "disk_usage: walk cut short (disk_usage.scan_timeout or max_entries): its sizes are lower bounds");
            }
            let mut largest: Vec<(PathBuf, u64)> = sums.into_iter().collect();
            largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let mountpoint = mount_of(root);
            for (path, bytes) in largest.into_iter().take(self.cfg.top) {
                report.consumers.push(Consumer {
                    kind: "directory",
                    path: path.to_string_lossy().into_owned(),
                    mountpoint: mountpoint.clone(),
                    bytes,
                });
            }
            report.roots.push(RootScan {
                root: root.to_string_lossy().into_owned(),
                complete,
            });
        }
        for dir in self.cfg.journal_dirs.iter().filter(|d| d.is_dir()) {
            let (sums, _) = walk(dir, 1, Instant::now() + self.cfg.scan_timeout, self.cfg.max_entries);
            report.consumers.push(Consumer {
                kind: "journal",
                path: dir.to_string_lossy().into_owned(),
                mountpoint: mount_of(dir),
                bytes: sums.values().sum(),
            });
        }
        report.at = crate::time::now();
        report.duration = started.elapsed().as_secs_f64();
        let report = Arc::new(report);
        *crate::sync::write(&self.last) = Some(report.clone());
        report
    }
}

/// Writes the series of one scan.
pub fn write_report(r: &Report, out: &mut MetricSet) {
    for c in &r.consumers {
        out.gauge(
            "hostmedic_disk_usage_bytes",
            "Disk use (allocated blocks) of a large directory or of the journal. Measured in the background every disk_usage.scan_interval.",
            &[("kind", c.kind), ("path", c.path.as_str()), ("mountpoint", c.mountpoint.as_str())],
            c.bytes as f64,
        );
    }
    for s in &r.roots {
        out.gauge(
            "hostmedic_disk_usage_scan_complete",
            "1 when the last walk of the root finished; 0 when it was cut short (its sizes are lower bounds).",
            &[("root", s.root.as_str())],
            f64::from(u8::from(s.complete)),
        );
    }
    out.gauge(
        "hostmedic_disk_usage_last_scan_timestamp_seconds",
        "When the last disk_usage scan ended (Unix seconds).",
        &[],
        r.at,
    );
    out.gauge(
        "hostmedic_disk_usage_scan_duration_seconds",
        "How long the last disk_usage scan took.",
        &[],
        r.duration,
    );
}

#[async_trait]
impl Collector for DiskUsageCollector {
    fn name(&self) -> &'static str {
        "disk_usage"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let last = crate::sync::read(&self.last).clone();
        if let Some(r) = last {
            write_report(&r, out);
        }
        Ok(())
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.cfg.scan_interval;
        scan_every("disk_usage", interval, shutdown, move || {
            self.scan_once();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &Path, bytes: usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![1u8; bytes]).unwrap();
    }

    #[test]
    fn sums_per_directory_at_depth_and_counts_hard_links_once() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        file(&r.join("lib/docker/overlay/a"), 400_000);
        file(&r.join("lib/docker/overlay/deep/b"), 100_000);
        file(&r.join("log/syslog"), 50_000);
        file(&r.join("top-level-file"), 10_000);
        std::fs::hard_link(r.join("lib/docker/overlay/a"), r.join("log/a-again")).unwrap();
        let (sums, complete) = walk(r, 2, Instant::now() + Duration::from_secs(10), 1000);
        assert!(complete);
        let at = |p: &str| sums.get(&r.join(p)).copied().unwrap_or(0);
        // Allocated blocks: at least the bytes written, rounded up to blocks.
        assert!(at("lib/docker") >= 100_000 && at("log") >= 50_000, "{sums:?}");
        // The hard-linked 400 kB once, under whichever directory came first.
        let total: u64 = sums.values().sum();
        assert!(
            (560_000..900_000).contains(&total),
            "the hard link counted once: {sums:?}"
        );
        assert!(at("") >= 10_000, "{sums:?}");
        assert!(
            !sums.contains_key(&r.join("lib")),
            "files are counted at depth 2: {sums:?}"
        );
    }

    #[test]
    fn walk_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..20 {
            file(&d.path().join(format!("x/{i}")), 10);
        }
        let (_, complete) = walk(d.path(), 2, Instant::now() + Duration::from_secs(10), 5);
        assert!(!complete);
    }

    #[test]
    fn mount_point_is_the_filesystems_reported_one() {
        let m = |id: &str, mp: &str| Mount {
            device_id: id.into(),
            mount_point: mp.into(),
            fstype: "ext4".into(),
            device: "/dev/x".into(),
            readonly: false,
        };
        let mounts = vec![
            m("8:1", "/"),
            m("8:2", "/srv"),
            m("8:2", "/srv/again/deeper"),
            m("8:3", "/srvx"),
        ];
        assert_eq!(
            reported_mount_point(&mounts, Path::new("/srv/again/deeper/a")).as_deref(),
            Some("/srv")
        );
        assert_eq!(
            reported_mount_point(&mounts, Path::new("/srvx/a")).as_deref(),
            Some("/srvx")
        );
        assert_eq!(
            reported_mount_point(&mounts, Path::new("/var/lib")).as_deref(),
            Some("/")
        );
    }

    #[test]
    fn validation_names_the_key() {
        let bad = Config {
            roots: vec![PathBuf::from("var")],
            ..Config::default()
        };
        assert!(
            bad.validate("disk_usage")
                .unwrap_err()
                .to_string()
                .contains("disk_usage.roots")
        );
        let bad = Config {
            depth: 0,
            ..Config::default()
        };
        assert!(
            bad.validate("disk_usage")
                .unwrap_err()
                .to_string()
                .contains("disk_usage.depth")
        );
    }
}

//! `filesystems` collector: what the `host` collector's byte counts do not
//! say about a filesystem — its inodes (a disk with free bytes and no free
//! inodes is as full as one without bytes), whether its superblock went
//! read-only (ext4's `errors=remount-ro` after an I/O error: every write
//! fails while the bytes look fine), and whether it answers at all
//! (`statvfs` failing or hanging, a stale network mount).
//!
//! The mounts are read from the host's mount view,
//! `<procfs_root>/1/mountinfo` by default (PID 1's mount namespace, which is
//! the host's even when hostmedic runs in a container with the host's
//! `/proc`), falling back to `<procfs_root>/self/mountinfo` when PID 1's is
//! not readable. Read-only is the *superblock's* `ro` (mountinfo's last
//! field), never the per-mount flag: a read-only bind mount of a writable
//! filesystem (the usual `-v /:/host:ro` of a containerised exporter, or
//! `mount --bind -o ro`) is not a read-only filesystem, and node_exporter's
//! `node_filesystem_readonly` has reported such mounts as read-only more than
//! once.
//!
//! A filesystem mounted more than once is reported once, at its shortest
//! mount point, like the `host` collector's byte series (same labels, same
//! exclusion defaults), so the two join on `mountpoint`. `statvfs` runs off
//! the runtime, one blocking task per mount under `statfs_timeout`; a mount
//! whose call has not returned is reported as a device error and not asked
//! again until that call ends, so one hung NFS server cannot pile up
//! blocked threads scrape after scrape.
//!
//! mountinfo is parsed here rather than with the `procfs-core` crate: that
//! crate keeps the kernel's octal escapes (`\040` for a space) in mount
//! points, and the format is one line per mount with fixed fields.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::collector::{CollectError, Collector};
use crate::error::{ConfigError, compile_regex};
use crate::metrics::MetricSet;

/// `[filesystems]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// The mount table to read; empty: `<procfs_root>/1/mountinfo`, else
    /// `<procfs_root>/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// Where the host's root is seen from hostmedic (`/host` in a container
    /// with the host's root mounted there): each mount point is asked at
    /// `<rootfs>/<mount point>`.
    pub rootfs: PathBuf,
    /// Filesystem types left out (regex); the `host` collector's default.
    pub fs_types_exclude: String,
    /// Mount points left out (regex); the `host` collector's default.
    pub mount_points_exclude: String,
    /// The longest one `statvfs` may take before the mount counts as not
    /// answering.
    #[serde(with = "humantime_serde")]
    pub statfs_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let host = super::host::Config::default();
        Config {
            enabled: true,
            mountinfo: PathBuf::new(),
            rootfs: PathBuf::from("/"),
            fs_types_exclude: host.fs_types_exclude,
            mount_points_exclude: host.mount_points_exclude,
            statfs_timeout: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// The compiled exclusion filters (fs types, mount points).
    fn filters(&self, key: &str) -> Result<(regex::Regex, regex::Regex), ConfigError> {
        Ok((
            compile_regex(&format!("{key}.fs_types_exclude"), &self.fs_types_exclude)?,
            compile_regex(&format!("{key}.mount_points_exclude"), &self.mount_points_exclude)?,
        ))
    }

    /// `statfs_timeout` must leave room inside one collection.
    fn check_timeout(&self, key: &str, collector_timeout: Duration) -> Result<(), ConfigError> {
        if self.statfs_timeout.is_zero() || self.statfs_timeout >= collector_timeout {
            return Err(ConfigError::invalid(
                format!("{key}.statfs_timeout"),
                format!(
                    "must be above 0 and below global.collector_timeout ({})",
                    humantime::format_duration(collector_timeout)
                ),
            ));
        }
        Ok(())
    }
}

/// One line of mountinfo, the fields this collector uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor`: the filesystem's identity (bind mounts share it).
    pub device_id: String,
    pub mount_point: String,
    pub fstype: String,
    /// The mount source (`/dev/sda1`, `tmpfs`, `server:/export`).
    pub device: String,
    /// The superblock is read-only.
    pub readonly: bool,
}

/// Undoes the kernel's octal escapes in mountinfo paths (`\040` space,
/// `\011` tab, `\012` newline, `\134` backslash).
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line (`proc(5)`): `id parent major:minor root
/// mountpoint options [optional fields...] - fstype source superoptions`.
pub fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let device_id = fields.nth(2)?.to_string();
    let mount_point = unescape(fields.nth(1)?);
    let mut rest = fields.skip_while(|f| *f != "-").skip(1);
    let fstype = rest.next()?.to_string();
    let device = unescape(rest.next()?);
    let readonly = rest.next()?.split(',').any(|o| o == "ro");
    Some(Mount {
        device_id,
        mount_point,
        fstype,
        device,
        readonly,
    })
}

/// Why the mount table or a mount's inodes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesystemsError {
    /// No candidate mountinfo file could be read: each, with why.
    #[error("{}", unread(.0))]
    NoMountTable(Vec<(PathBuf, std::io::Error)>),
    /// The last `statvfs` of this mount point is still blocked.
    #[error("an earlier statvfs has not returned")]
    StatvfsPending,
    /// `statvfs` did not return within `filesystems.statfs_timeout`.
    #[error("statvfs did not answer within {0:?}")]
    StatvfsTimeout(Duration),
    /// The blocking task making the call did not complete.
    #[error("statvfs task: {0}")]
    StatvfsTask(#[source] tokio::task::JoinError),
    /// `statvfs` failed (ENOENT, EACCES, EIO…).
    #[error("statvfs: {0}")]
    Statvfs(#[source] nix::Error),
}

/// `reading <path>: <error>` for each, joined with `; `.
fn unread(tried: &[(PathBuf, std::io::Error)]) -> String {
    tried
        .iter()
        .map(|(p, e)| format!("reading {}: {e}", p.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first readable of `candidates` (mountinfo files), parsed; `Err`
/// with why none could be read.
pub fn read_mount_table(candidates: &[PathBuf]) -> Result<Vec<Mount>, FilesystemsError> {
    let mut errors = Vec::new();
    for p in candidates {
        match std::fs::read_to_string(p) {
            Ok(text) => return Ok(text.lines().filter_map(parse_line).collect()),
            Err(e) => errors.push((p.clone(), e)),
        }
    }
    Err(FilesystemsError::NoMountTable(errors))
}

/// One mount per filesystem (its `major:minor`), at its shortest mount
/// point (ties: the first by name): the one rule by which every series
/// about a filesystem names it, so they join on `mountpoint`.
pub fn one_per_filesystem(mut mounts: Vec<Mount>) -> Vec<Mount> {
    mounts.sort_by(|a, b| (a.mount_point.len(), &a.mount_point).cmp(&(b.mount_point.len(), &b.mount_point)));
    let mut seen = HashSet::new();
    mounts.retain(|m| seen.insert(m.device_id.clone()));
    mounts
}

/// What `statvfs` said of one mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Inodes {
    files: u64,
    files_free: u64,
}

pub struct FilesystemsCollector {
    mountinfo: Vec<PathBuf>,
    rootfs: PathBuf,
    fs_types_exclude: regex::Regex,
    mount_points_exclude: regex::Regex,
    timeout: Duration,
    /// Mount points whose `statvfs` has not returned yet.
    pending: Arc<Mutex<HashSet<String>>>,
    /// What the last collection saw wrong with each mount point (read-only,
    /// not answering), to log each change once.
    /// `None` before the first collection.
    last: Mutex<Option<HashMap<String, Trouble>>>,
}

/// What can be wrong with a filesystem, as the service log tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Trouble {
    readonly: bool,
    not_answering: bool,
}

impl FilesystemsCollector {
    pub fn new(cfg: &Config, procfs_root: &Path, collector_timeout: Duration) -> Result<Self, ConfigError> {
        let (fs_types_exclude, mount_points_exclude) = cfg.filters("filesystems")?;
        cfg.check_timeout("filesystems", collector_timeout)?;
        let mountinfo = if cfg.mountinfo.as_os_str().is_empty() {
            vec![procfs_root.join("1/mountinfo"), procfs_root.join("self/mountinfo")]
        } else {
            vec![cfg.mountinfo.clone()]
        };
        Ok(FilesystemsCollector {
            mountinfo,
            rootfs: cfg.rootfs.clone(),
            fs_types_exclude,
            mount_points_exclude,
            timeout: cfg.statfs_timeout,
            pending: Arc::default(),
            last: Mutex::default(),
        })
    }

    /// The mount table, one mount per filesystem (its shortest mount
    /// point), exclusions applied.
    fn mounts(&self) -> Result<Vec<Mount>, CollectError> {
        let mounts: Vec<Mount> = read_mount_table(&self.mountinfo)
            .map_err(|e| CollectError::Unavailable(e.to_string()))?
            .into_iter()
            .filter(|m| {
                !self.fs_types_exclude.is_match(&m.fstype) && !self.mount_points_exclude.is_match(&m.mount_point)
            })
            .collect();
        Ok(one_per_filesystem(mounts))
    }

    /// `statvfs` of one mount off the runtime, bounded by the timeout;
    /// `Err` with the reason when it failed or has not answered.
    async fn statvfs(&self, mount_point: &str) -> Result<Inodes, FilesystemsError> {
        if !crate::sync::lock(&self.pending).insert(mount_point.to_string()) {
            return Err(FilesystemsError::StatvfsPending);
        }
        let path = self.rootfs.join(mount_point.trim_start_matches('/'));
        let pending = Arc::clone(&self.pending);
        let key = mount_point.to_string();
        let call = tokio::task::spawn_blocking(move || {
            let r = nix::sys::statvfs::statvfs(&path);
            crate::sync::lock(&pending).remove(&key);
            r
        });
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(FilesystemsError::StatvfsTimeout(self.timeout)),
            Ok(Err(e)) => Err(FilesystemsError::StatvfsTask(e)),
            Ok(Ok(Err(e))) => Err(FilesystemsError::Statvfs(e)),
            Ok(Ok(Ok(st))) => Ok(Inodes {
                files: st.files(),
                files_free: st.files_free(),
            }),
        }
    }
}

impl FilesystemsCollector {
    /// Logs what changed since the last collection: a filesystem that went
    /// read-only or stopped answering (warn), and its recovery (info). The
    /// first collection names at info what is read-only already (it may be
    /// by design), and warns of what does not answer.
    fn log_changes(&self, now: HashMap<String, Trouble>) {
        let mut guard = crate::sync::lock(&self.last);
        let first = guard.is_none();
        let last = guard.get_or_insert_with(HashMap::new);
        let points: std::collections::BTreeSet<&String> = now.keys().chain(last.keys()).collect();
        for mount_point in points {
            let was = last.get(mount_point).copied().unwrap_or_default();
            let is = now.get(mount_point).copied().unwrap_or_default();
            match (was.readonly, is.readonly) {
                (false, true) if first => {
                    tracing::info!(mountpoint = %mount_point, "filesystem is read-only (its superblock)")
                }
                (false, true) => tracing::warn!(
                    mountpoint = %mount_point,
                    "filesystem became read-only (its superblock): every write to it fails"
                ),
                (true, false) => tracing::info!(mountpoint = %mount_point, "filesystem is writable again"),
                _ => {}
            }
            match (was.not_answering, is.not_answering) {
                (false, true) => tracing::warn!(mountpoint = %mount_point, "filesystem does not answer statvfs"),
                (true, false) => tracing::info!(mountpoint = %mount_point, "filesystem answers statvfs again"),
                _ => {}
            }
        }
        *last = now;
    }
}

#[async_trait]
impl Collector for FilesystemsCollector {
    fn name(&self) -> &'static str {
        "filesystems"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let mounts = self.mounts()?;
        let asked = futures::future::join_all(mounts.iter().map(|m| self.statvfs(&m.mount_point))).await;
        let mut trouble = HashMap::new();
        for (m, inodes) in mounts.iter().zip(asked) {
            let t = Trouble {
                readonly: m.readonly,
                not_answering: inodes.is_err(),
            };
            if t != Trouble::default() {
                trouble.insert(m.mount_point.clone(), t);
            }
            let l = [
                ("mountpoint", m.mount_point.as_str()),
                ("device", m.device.as_str()),
                ("fstype", m.fstype.as_str()),
            ];
            out.gauge(
                "hostmedic_filesystem_readonly",
                "1 when the filesystem's superblock is read-only (a per-mount read-only bind does not count).",
                &l,
                f64::from(u8::from(m.readonly)),
            );
            out.gauge(
                "hostmedic_filesystem_device_error",
                "1 when statvfs on the mount point failed or did not answer within filesystems.statfs_timeout.",
                &l,
                f64::from(u8::from(inodes.is_err())),
            );
            match inodes {
                // A filesystem without an inode table (btrfs, some FUSE)
                // reports 0 files: no inode series, nothing to run out of.
                Ok(i) if i.files > 0 => {
                    out.gauge(
                        "hostmedic_filesystem_files",
                        "Inodes of the filesystem.",
                        &l,
                        i.files as f64,
                    );
                    out.gauge(
                        "hostmedic_filesystem_files_free",
                        "Free inodes of the filesystem.",
                        &l,
                        i.files_free as f64,
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(mountpoint = %m.mount_point, error = %e, "filesystems: statvfs failed"),
            }
        }
        self.log_changes(trouble);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines_with_optional_fields_and_escapes() {
        let m = parse_line(
            "36 35 98:0 / /mnt/my\\040disk rw,noatime master:1 shared:2 - ext4 /dev/sd\\134a1 ro,errors=remount-ro",
        )
        .unwrap();
        assert_eq!(m.device_id, "98:0");
        assert_eq!(m.mount_point, "/mnt/my disk");
        assert_eq!(m.fstype, "ext4");
        assert_eq!(m.device, "/dev/sd\\a1");
        assert!(m.readonly, "superblock ro");
        // A read-only bind of a writable filesystem: per-mount ro only.
        let bind = parse_line("40 35 8:1 /data /host/data ro,relatime - ext4 /dev/sda1 rw,errors=remount-ro").unwrap();
        assert!(!bind.readonly);
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn timeout_must_fit_in_a_collection() {
        let cfg = Config {
            statfs_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let err = FilesystemsCollector::new(&cfg, Path::new("/proc"), Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(err.to_string().contains("filesystems.statfs_timeout"), "{err}");
    }

    #[tokio::test]
    async fn one_filesystem_once_at_its_shortest_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("mountinfo");
        let root = dir.path().display();
        std::fs::write(
            &info,
            format!(
                "1 0 8:1 / {root} rw - ext4 /dev/sda1 rw\n\
                 2 1 8:1 /sub {root}/again rw - ext4 /dev/sda1 rw\n\
                 3 1 0:5 / /proc rw - proc proc rw\n"
            ),
        )
        .unwrap();
        let cfg = Config {
            mountinfo: info,
            ..Config::default()
        };
        let c = FilesystemsCollector::new(&cfg, Path::new("/proc"), Duration::from_secs(5)).unwrap();
        let mut out = MetricSet::new();
        c.collect(&mut out).await.unwrap();
        let ro = out.get("hostmedic_filesystem_readonly").unwrap();
        assert_eq!(ro.samples.len(), 1, "{:?}", ro.samples);
        let mp = dir.path().to_string_lossy().into_owned();
        let l = [("mountpoint", mp.as_str()), ("device", "/dev/sda1"), ("fstype", "ext4")];
        assert_eq!(out.value("hostmedic_filesystem_device_error", &l), Some(0.0));
        assert!(out.value("hostmedic_filesystem_files", &l).unwrap() > 0.0);
    }
}

//! Reading what the kernel accounts per cgroup, and who owns a process: a
//! leaf shared by the systemd collector (per-unit resources), the docker
//! collector (per-container resources), the processes collector (owner
//! labels) and the incident evidence (the owner of a process). It imports
//! none of them; it reads files through [`crate::procfs`] only.
//!
//! # Hierarchies
//!
//! cgroup v2 ("unified") is one tree; `<root>/cgroup.controllers` marks it.
//! On a hybrid host (v1 controllers plus systemd's v2 tree) it is mounted at
//! `<root>/unified`: [`Hierarchies::detect`] finds it. cgroup v1 has one tree
//! per controller, `<root>/<controllers>` (for example `memory`,
//! `cpu,cpuacct`), named by the second field of `/proc/<pid>/cgroup`.
//!
//! # Files read (v2), and what each gives
//!
//! - `cpu.stat` `usage_usec`: CPU time of the cgroup and its descendants;
//!   present in every v2 cgroup (the kernel's basic accounting), even where
//!   the `cpu` controller is not enabled.
//! - `memory.current`, `memory.peak` (kernel ≥ 5.19), `pids.current`,
//!   `io.stat` (`rbytes`/`wbytes` summed over devices): only where the
//!   parent enables the `memory`, `pids` or `io` controller.
//! - `{cpu,memory,io}.pressure`: pressure stall information (PSI), present
//!   in every v2 cgroup on a kernel with PSI; [`parse_pressure`] is also the
//!   parser of the host's `/proc/pressure/*`.
//!
//! A file that is absent gives `None` for that figure, never an error: the
//! caller exports the figure as absent and says which resources it could
//! read ([`Availability`]).
//!
//! # Files read (v1), for containers on a v1 or hybrid host
//!
//! `cpuacct.usage` (ns), `memory.usage_in_bytes` + `memory.stat`,
//! `blkio.throttle.io_service_bytes_recursive` (or the non-recursive file),
//! `pids.current`. v1 has no pressure files.
//!
//! # Owner of a process
//!
//! [`owner`] reads `<procfs>/<pid>/cgroup` and names the systemd unit that
//! owns the process (the first non-slice unit on its path, as systemd
//! itself attributes processes; below `user@<uid>.service` the user manager,
//! labelled `user:<name>` like the systemd collector's `manager` label) and
//! the Docker container (`docker-<id>.scope`, `/docker/<id>` or any 64-hex
//! path component).

mod availability;
mod owner;
mod psi;
mod series;
mod v1;
mod v2;

pub use availability::{AVAILABLE, Availability, RESOURCES};
pub use owner::{Owner, owner, owner_below, parse_owner, parse_owner_below, top_owners};
pub use psi::{PRESSURE_RESOURCES, Pressure, PressureLine, parse_pressure};
pub use series::{SeriesNames, write_usage};
pub use v1::{parse_blkio, process_usage};
pub use v2::{V2Reader, parse_io_stat, read_v2};

use std::path::{Component, Path, PathBuf};

/// The cgroup trees under one root (`<sysfs_root>/fs/cgroup` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    /// Where the v1 controller trees are mounted (`<root>/<controllers>`).
    pub root: PathBuf,
    /// The v2 tree: `root` itself on a v2-only host, `root/unified` on a
    /// hybrid one, `None` when there is none (v1 only).
    pub unified: Option<PathBuf>,
}

impl Hierarchies {
    /// Looks at `root` (blocking, two `stat`s): the v2 tree is the directory
    /// holding `cgroup.controllers`.
    pub fn detect(root: &Path) -> Self {
        let unified = [root.to_path_buf(), root.join("unified")]
            .into_iter()
            .find(|d| d.join("cgroup.controllers").is_file());
        Hierarchies {
            root: root.to_path_buf(),
            unified,
        }
    }

    /// The v2 directory of the cgroup `path` (as `/proc/<pid>/cgroup` or a
    /// unit's `ControlGroup` names it, relative to this tree's root). `None`
    /// without a v2 tree, for the root cgroup itself (whose figures are the
    /// host's, not one unit's), and for paths leaving the tree (`/..`: a
    /// process outside our cgroup namespace).
    pub fn v2_dir(&self, path: &str) -> Option<PathBuf> {
        join_below(self.unified.as_deref()?, path)
    }

    /// The v1 directory of `path` in the tree of `controllers` (e.g.
    /// `cpu,cpuacct`). Same rules as [`Hierarchies::v2_dir`].
    pub fn v1_dir(&self, controllers: &str, path: &str) -> Option<PathBuf> {
        if controllers.is_empty() || controllers.contains('/') {
            return None;
        }
        join_below(&self.root.join(controllers), path)
    }
}

/// `base/path` for a non-root cgroup path that stays below `base`.
fn join_below(base: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let mut normal = 0;
    for c in rel.components() {
        match c {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            _ => return None,
        }
    }
    (normal > 0).then(|| base.join(rel))
}

/// Bytes read and written, summed over devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoBytes {
    pub read: u64,
    pub written: u64,
}

/// What one cgroup's files say; `None`: the file is absent or unreadable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// CPU time, µs (v2 `cpu.stat` `usage_usec`; v1 `cpuacct.usage` / 1000).
    pub cpu_usec: Option<u64>,
    /// Memory charged to the cgroup, page cache included (v2
    /// `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_current: Option<u64>,
    /// Highest `memory_current` seen (v2 `memory.peak`).
    pub memory_peak: Option<u64>,
    /// `memory_current` minus inactive file pages: `docker stats`' figure.
    /// Only filled by [`process_usage`] (it costs one more read).
    pub memory_working_set: Option<u64>,
    /// Tasks (threads) in the cgroup (`pids.current`).
    pub tasks: Option<u64>,
    pub io: Option<IoBytes>,
    /// `cpu`, `memory`, `io` pressure, in [`PRESSURE_RESOURCES`] order.
    pub pressure: [Option<Pressure>; 3],
}

/// Longest cgroup file read: `io.stat` has one line per device, the others
/// are a few lines.
pub(super) const FILE_LIMIT: usize = 64 * 1024;

pub(super) fn read_text(path: &Path) -> Option<String> {
    let raw = crate::procfs::read_limited(path, FILE_LIMIT).ok()?;
    String::from_utf8(raw).ok()
}

pub(super) fn read_u64(path: &Path) -> Option<u64> {
    read_text(path)?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`cpu.stat`, `memory.stat`).
pub(super) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// `usage` minus the inactive file pages (v1 `total_inactive_file`, v2
/// `inactive_file`, looked up in the `memory.stat` fields by `stat`):
/// `docker stats`' figure, for the cgroup files and the engine's stats alike.
pub fn working_set(usage: u64, stat: impl Fn(&str) -> Option<u64>) -> u64 {
    let inactive = stat("total_inactive_file")
        .or_else(|| stat("inactive_file"))
        .unwrap_or(0);
    if inactive < usage { usage - inactive } else { usage }
}

/// One line of `/proc/<pid>/cgroup`: `id:controllers:path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLine<'a> {
    /// Comma-separated v1 controllers (`name=systemd` for systemd's named
    /// v1 tree); empty for the v2 tree.
    pub controllers: &'a str,
    pub path: &'a str,
}

/// Parses the text of `/proc/<pid>/cgroup`; malformed lines are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return None;
            };
            Some(CgroupLine { controllers, path })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the fixture file `p` (and its directories).
    pub(super) fn w(p: PathBuf, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    /// A 64-hex container id.
    pub(super) const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn detects_unified_tree() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(Hierarchies::detect(t.path()).unified, None);
        w(t.path().join("unified/cgroup.controllers"), "hugetlb\n");
        assert_eq!(Hierarchies::detect(t.path()).unified, Some(t.path().join("unified")));
        w(t.path().join("cgroup.controllers"), "cpu io memory pids\n");
        let h = Hierarchies::detect(t.path());
        assert_eq!(h.unified.as_deref(), Some(t.path()));
        assert_eq!(
            h.v2_dir("/system.slice/x.service"),
            Some(t.path().join("system.slice/x.service"))
        );
        assert_eq!(h.v2_dir("/"), None, "the root cgroup is the host's");
        assert_eq!(h.v2_dir(""), None);
        assert_eq!(h.v2_dir("/../../system.slice/x.service"), None);
        assert_eq!(h.v1_dir("cpu,cpuacct", "/a"), Some(t.path().join("cpu,cpuacct/a")));
        assert_eq!(h.v1_dir("", "/a"), None);
    }

    #[test]
    fn working_set_subtracts_inactive_file() {
        let ws = |stat: &str| working_set(1000, |k| keyed(stat, k));
        assert_eq!(ws(""), 1000);
        assert_eq!(ws("inactive_file 300\n"), 700);
        assert_eq!(ws("inactive_file 300\ntotal_inactive_file 400\n"), 600);
        assert_eq!(ws("total_inactive_file 4000\n"), 1000);
    }
}

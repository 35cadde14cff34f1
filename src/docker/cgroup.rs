//! Memory in use by a container's cgroup, read from the cgroup files the
//! container's main process names in `<procfs>/<pid>/cgroup` (through the
//! [`crate::procfs`] leaf): the same figure as `docker stats`, without the
//! engine's up-to-1 s one-shot stats.

use std::collections::HashMap;
use std::path::Path;

/// `docker stats`' memory figure: usage minus inactive file pages (cgroup v1
/// reports `total_inactive_file`, v2 `inactive_file`).
pub fn working_set(usage: u64, stats: &HashMap<String, u64>) -> u64 {
    let inactive = stats
        .get("total_inactive_file")
        .or_else(|| stats.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    if inactive < usage { usage - inactive } else { usage }
}

/// Memory in use by the cgroup of process `pid`, read from the cgroup files
/// (blocking; a few small reads): the same figure as [`working_set`]. Finds the
/// process's memory cgroup in `<procfs>/<pid>/cgroup` (cgroup v1 `memory`
/// controller, else the v2 unified hierarchy), so it works whatever the cgroup
/// driver or `--cgroup-parent`. `None` when the files cannot be read (for
/// example hostmedic in another PID or cgroup namespace): callers fall back to
/// [`super::Connection::memory_usage`].
pub fn cgroup_memory_usage(procfs: &Path, sysfs: &Path, pid: i64) -> Option<u64> {
    let text = crate::procfs::read_cgroup(procfs, pid).ok()?;
    let mut v1 = None;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path);
        } else if controllers.is_empty() {
            v2 = Some(path);
        }
    }
    let root = sysfs.join("fs/cgroup");
    let rel = |p: &str| p.trim_start_matches('/').to_string();
    let (dir, usage_file) = match (v1, v2) {
        (Some(p), _) => (root.join("memory").join(rel(p)), "memory.usage_in_bytes"),
        (None, Some(p)) => (root.join(rel(p)), "memory.current"),
        (None, None) => return None,
    };
    // In a private cgroup namespace other processes' paths start with `/..`:
    // not reachable under our sysfs view, so leave it to the stats fallback.
    if dir.components().any(|c| c == std::path::Component::ParentDir) {
        return None;
    }
    let usage: u64 = std::fs::read_to_string(dir.join(usage_file))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let stats: HashMap<String, u64> = stat
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect();
    Some(working_set(usage, &stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_subtracts_inactive_file() {
        let mut s = HashMap::new();
        assert_eq!(working_set(1000, &s), 1000);
        s.insert("inactive_file".to_string(), 300);
        assert_eq!(working_set(1000, &s), 700);
        s.insert("total_inactive_file".to_string(), 400);
        assert_eq!(working_set(1000, &s), 600);
        s.insert("total_inactive_file".to_string(), 4000);
        assert_eq!(working_set(1000, &s), 1000);
    }

    #[test]
    fn cgroup_usage_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let (proc_, sys) = (t.path().join("proc"), t.path().join("sys"));
        let w = |p: std::path::PathBuf, s: &str| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        // cgroup v1: the memory controller's line wins.
        w(
            proc_.join("42/cgroup"),
            "9:name=systemd:/x\n4:memory:/hmd1/abc\n1:cpu,cpuacct:/hmd1/abc\n0::/\n",
        );
        w(sys.join("fs/cgroup/memory/hmd1/abc/memory.usage_in_bytes"), "1000000\n");
        w(
            sys.join("fs/cgroup/memory/hmd1/abc/memory.stat"),
            "cache 5\ntotal_inactive_file 250000\n",
        );
        assert_eq!(cgroup_memory_usage(&proc_, &sys, 42), Some(750000));
        // cgroup v2 only.
        w(proc_.join("43/cgroup"), "0::/system.slice/docker-def.scope\n");
        w(
            sys.join("fs/cgroup/system.slice/docker-def.scope/memory.current"),
            "4096\n",
        );
        w(
            sys.join("fs/cgroup/system.slice/docker-def.scope/memory.stat"),
            "anon 4096\ninactive_file 96\n",
        );
        assert_eq!(cgroup_memory_usage(&proc_, &sys, 43), Some(4000));
        // Process gone or files unreadable.
        assert_eq!(cgroup_memory_usage(&proc_, &sys, 44), None);
        w(proc_.join("45/cgroup"), "4:memory:/gone\n");
        assert_eq!(cgroup_memory_usage(&proc_, &sys, 45), None);
        // Outside our cgroup namespace.
        w(proc_.join("46/cgroup"), "0::/../../system.slice/docker-def.scope\n");
        assert_eq!(cgroup_memory_usage(&proc_, &sys, 46), None);
    }
}

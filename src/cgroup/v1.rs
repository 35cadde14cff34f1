//! cgroup v1 (one tree per controller) and the resources of a process's
//! cgroup, for a container's main process: each figure from its v1
//! controller's tree on a v1 or hybrid host, else from the v2 tree.

use std::path::Path;

use super::v2::read_v2;
use super::{CgroupLine, Hierarchies, IoBytes, Usage, keyed, parse_proc_cgroup, read_text, read_u64, working_set};

/// Sums `<dev> Read N` / `<dev> Write N` of a v1
/// `blkio.throttle.io_service_bytes(_recursive)` (the `Total` line is left out).
pub fn parse_blkio(text: &str) -> IoBytes {
    let mut io = IoBytes::default();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let (Some(_dev), Some(op), Some(v)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match op {
            "Read" => io.read = io.read.saturating_add(v),
            "Write" => io.written = io.written.saturating_add(v),
            _ => {}
        }
    }
    io
}

/// The v1 line whose controllers include `controller`.
fn v1_line<'a>(lines: &[CgroupLine<'a>], controller: &str) -> Option<CgroupLine<'a>> {
    lines
        .iter()
        .find(|l| l.controllers.split(',').any(|c| c == controller))
        .copied()
}

/// The resources of the cgroup process `pid` is in (blocking; a few small
/// reads), for a container's main process: each figure from its v1
/// controller's tree when the process is in one (a v1 or hybrid host),
/// else from the v2 tree; pressure from the v2 tree only. Fills
/// `memory_working_set`. `None` when `<procfs>/<pid>/cgroup` cannot be read
/// (the process is gone); figures whose files cannot be read (for example
/// hostmedic in another cgroup namespace: paths start with `/..`) are `None`.
pub fn process_usage(procfs: &Path, h: &Hierarchies, pid: i64) -> Option<Usage> {
    let text = crate::procfs::read_cgroup(procfs, pid).ok()?;
    let lines = parse_proc_cgroup(&text);
    let v2 = lines
        .iter()
        .find(|l| l.controllers.is_empty())
        .and_then(|l| h.v2_dir(l.path));
    let mut u = v2.as_deref().map(read_v2).unwrap_or_default();
    // v1: each controller's own tree overrides what the v2 tree lacks.
    let v1 = |controller: &str| v1_line(&lines, controller).and_then(|l| h.v1_dir(l.controllers, l.path));
    let mut memory_dir = v2.clone().filter(|_| u.memory_current.is_some());
    if let Some(d) = v1("memory")
        && let Some(m) = read_u64(&d.join("memory.usage_in_bytes"))
    {
        u.memory_current = Some(m);
        u.memory_peak = read_u64(&d.join("memory.max_usage_in_bytes"));
        memory_dir = Some(d);
    }
    if let Some(ns) = v1("cpuacct").and_then(|d| read_u64(&d.join("cpuacct.usage"))) {
        u.cpu_usec = Some(ns / 1000);
    }
    let blkio = v1("blkio").and_then(|d| {
        read_text(&d.join("blkio.throttle.io_service_bytes_recursive"))
            .or_else(|| read_text(&d.join("blkio.throttle.io_service_bytes")))
    });
    if let Some(t) = blkio {
        u.io = Some(parse_blkio(&t));
    }
    if let Some(n) = v1("pids").and_then(|d| read_u64(&d.join("pids.current"))) {
        u.tasks = Some(n);
    }
    if let (Some(m), Some(d)) = (u.memory_current, memory_dir) {
        let stat = read_text(&d.join("memory.stat")).unwrap_or_default();
        u.memory_working_set = Some(working_set(m, |k| keyed(&stat, k)));
    }
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::tests::w;

    #[test]
    fn blkio_sums_devices() {
        let io = parse_blkio("8:0 Read 10\n8:0 Write 4\n8:0 Sync 3\n8:16 Read 1\nTotal 18\n");
        assert_eq!(io, IoBytes { read: 11, written: 4 });
    }

    #[test]
    fn process_usage_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let (proc_, cg) = (t.path().join("proc"), t.path().join("cgroup"));
        // Hybrid host: v1 controllers plus an (empty-controller) unified tree.
        w(cg.join("unified/cgroup.controllers"), "hugetlb\n");
        let h = Hierarchies::detect(&cg);
        w(
            proc_.join("42/cgroup"),
            "9:name=systemd:/x\n8:pids:/hmd1/abc\n7:blkio:/hmd1/abc\n4:memory:/hmd1/abc\n1:cpu,cpuacct:/hmd1/abc\n0::/hmd1/abc\n",
        );
        w(cg.join("memory/hmd1/abc/memory.usage_in_bytes"), "1000000\n");
        w(cg.join("memory/hmd1/abc/memory.max_usage_in_bytes"), "2000000\n");
        w(
            cg.join("memory/hmd1/abc/memory.stat"),
            "cache 5\ntotal_inactive_file 250000\n",
        );
        w(cg.join("cpu,cpuacct/hmd1/abc/cpuacct.usage"), "3000000000\n");
        w(
            cg.join("blkio/hmd1/abc/blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
        );
        w(cg.join("pids/hmd1/abc/pids.current"), "2\n");
        w(cg.join("unified/hmd1/abc/cpu.stat"), "usage_usec 1\n");
        w(
            cg.join("unified/hmd1/abc/memory.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=4\n",
        );
        let u = process_usage(&proc_, &h, 42).unwrap();
        assert_eq!(u.memory_current, Some(1_000_000));
        assert_eq!(u.memory_peak, Some(2_000_000));
        assert_eq!(u.memory_working_set, Some(750_000));
        assert_eq!(u.cpu_usec, Some(3_000_000), "v1 cpuacct wins over the unified cpu.stat");
        assert_eq!(
            u.io,
            Some(IoBytes {
                read: 4096,
                written: 8192
            })
        );
        assert_eq!(u.tasks, Some(2));
        assert_eq!(u.pressure[1].unwrap().full.unwrap().total_usec, 4);

        // v2 only.
        let cg2 = t.path().join("cg2");
        w(cg2.join("cgroup.controllers"), "cpu io memory pids\n");
        let h2 = Hierarchies::detect(&cg2);
        w(proc_.join("43/cgroup"), "0::/system.slice/docker-def.scope\n");
        let d = cg2.join("system.slice/docker-def.scope");
        w(d.join("memory.current"), "4096\n");
        w(d.join("memory.stat"), "anon 4096\ninactive_file 96\n");
        w(d.join("cpu.stat"), "usage_usec 77\n");
        let u = process_usage(&proc_, &h2, 43).unwrap();
        assert_eq!(
            (u.memory_current, u.memory_working_set, u.cpu_usec),
            (Some(4096), Some(4000), Some(77))
        );
        assert_eq!(u.io, None);
        // Gone, unreadable, outside our namespace, or in the root cgroup.
        assert_eq!(process_usage(&proc_, &h2, 44), None);
        w(proc_.join("45/cgroup"), "4:memory:/gone\n");
        assert_eq!(process_usage(&proc_, &h, 45).unwrap().memory_current, None);
        w(proc_.join("46/cgroup"), "0::/../../system.slice/docker-def.scope\n");
        assert_eq!(process_usage(&proc_, &h2, 46).unwrap(), Usage::default());
        w(proc_.join("47/cgroup"), "0::/\n");
        assert_eq!(process_usage(&proc_, &h2, 47).unwrap(), Usage::default());
    }
}

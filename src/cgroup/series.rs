//! Writing one cgroup's [`Usage`] as series, under the names each
//! collector chooses (systemd per unit, docker per container).

use super::Usage;
use super::psi::PRESSURE_RESOURCES;
use crate::metrics::MetricSet;

/// The series names one collector writes a cgroup's [`Usage`] under
/// (counters without `_total`); `None`: that figure is not exported.
#[derive(Debug, Clone, Copy)]
pub struct SeriesNames {
    pub cpu: &'static str,
    pub memory_current: Option<&'static str>,
    pub memory_peak: Option<&'static str>,
    pub tasks: Option<&'static str>,
    pub io_read: &'static str,
    pub io_written: &'static str,
    /// Labels `resource` (cpu, memory, io) and `kind` (some, full).
    pub pressure: &'static str,
}

/// Writes the figures of `u` that are present, each with `labels` (and
/// `resource`/`kind` on the pressure series). Absent files write nothing.
pub fn write_usage(out: &mut MetricSet, names: &SeriesNames, labels: &[(&'static str, &str)], u: &Usage) {
    if let Some(us) = u.cpu_usec {
        out.counter(
            names.cpu,
            "CPU time used by the cgroup and its descendants (cpu.stat usage_usec; cpuacct.usage on cgroup v1).",
            labels,
            us as f64 / 1e6,
        );
    }
    let gauges = [
        (
            names.memory_current,
            u.memory_current,
            "Memory charged to the cgroup, page cache included (memory.current).",
        ),
        (
            names.memory_peak,
            u.memory_peak,
            "Highest memory charged to the cgroup since it was created (memory.peak, kernel 5.19+).",
        ),
        (names.tasks, u.tasks, "Tasks (threads) in the cgroup (pids.current)."),
    ];
    for (name, v, help) in gauges {
        if let (Some(name), Some(v)) = (name, v) {
            out.gauge(name, help, labels, v as f64);
        }
    }
    if let Some(io) = u.io {
        out.counter(
            names.io_read,
            "Bytes read from block devices by the cgroup, summed over devices (io.stat rbytes; blkio on cgroup v1).",
            labels,
            io.read as f64,
        );
        out.counter(
            names.io_written,
            "Bytes written to block devices by the cgroup, summed over devices (io.stat wbytes; blkio on cgroup v1).",
            labels,
            io.written as f64,
        );
    }
    let mut l: Vec<(&'static str, &str)> = labels.to_vec();
    let n = l.len();
    for (resource, p) in PRESSURE_RESOURCES.iter().zip(&u.pressure) {
        let Some(p) = p else { continue };
        for (kind, line) in p.kinds() {
            l.truncate(n);
            l.extend([("resource", *resource), ("kind", kind)]);
            out.counter(
                names.pressure,
                "Time some (kind=some) or all (kind=full) non-idle tasks of the cgroup were stalled on the resource (PSI total, cgroup v2 only).",
                &l,
                line.total_usec as f64 / 1e6,
            );
        }
    }
}

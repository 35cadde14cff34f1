//! hostmedic's metrics about itself: the standard `process_*` series every
//! Prometheus exporter exposes (names, HELP and TYPE as client_golang's
//! process collector), and the outcome of the last configuration reload
//! (as Prometheus's own `prometheus_config_last_reload_*`).
//!
//! The process series read the real `/proc/self`, never
//! `global.procfs_root`: that root describes the host being watched (a fake
//! tree in tests, the host's `/proc` mounted into a container), while these
//! series describe this very process, which only the kernel's own view of
//! `self` names reliably. The files are read with the bounded readers of
//! [`crate::procfs`].

use std::path::Path;
use std::sync::Mutex;

use crate::metrics::MetricSet;
use crate::procfs;

/// The procfs the process series read (see the module comment).
const SELF_PROCFS: &str = "/proc";

/// Writes the `process_*` series. A file that cannot be read costs only its
/// series (logged at debug: this runs on every scrape).
pub fn write_process(out: &mut MetricSet) {
    let root = Path::new(SELF_PROCFS);
    let pid = std::process::id() as i32;
    match read_stat(root, pid) {
        Ok((stat, hz, page, start)) => {
            out.counter(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                &[],
                stat.cpu_ticks as f64 / hz as f64,
            );
            out.gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[],
                (stat.rss_pages * page) as f64,
            );
            out.gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &[],
                stat.vsize_bytes as f64,
            );
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                &[],
                start,
            );
            out.gauge(
                "process_threads",
                "Number of OS threads in the process.",
                &[],
                stat.threads as f64,
            );
        }
        Err(e) => tracing::debug!(error = %e, "cannot read /proc/self/stat"),
    }
    match std::fs::read_dir(root.join(pid.to_string()).join("fd")) {
        Ok(dir) => out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            &[],
            dir.count() as f64,
        ),
        Err(e) => tracing::debug!(error = %e, "cannot list /proc/self/fd"),
    }
    // The soft limit: the one open(2) fails at, as client_golang reports it.
    if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        out.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            &[],
            max as f64,
        );
    }
}

/// Stat of `pid`, clock ticks per second, page size and start time.
fn read_stat(root: &Path, pid: i32) -> Result<(procfs::ProcStat, u64, u64, f64), procfs::ProcError> {
    let stat = procfs::read_stat(root, pid)?;
    let hz = procfs::clock_ticks_per_second()?;
    let page = procfs::page_size()?;
    let start = procfs::ticks_to_unix(procfs::boot_time(root)?, stat.start_ticks, hz);
    Ok((stat, hz, page, start))
}

/// The outcome of the last configuration reload; start-up counts as a
/// successful one, as in Prometheus.
#[derive(Debug)]
pub struct ReloadStatus {
    inner: Mutex<(bool, f64)>,
}

impl ReloadStatus {
    /// A status whose last success is `at` (Unix seconds): the start-up load.
    pub fn new(at: f64) -> ReloadStatus {
        ReloadStatus {
            inner: Mutex::new((true, at)),
        }
    }

    /// Records one reload attempt.
    pub fn record(&self, ok: bool) {
        let mut s = crate::sync::lock(&self.inner);
        s.0 = ok;
        if ok {
            s.1 = crate::time::now();
        }
    }

    /// Writes `hostmedic_config_last_reload_*`.
    pub fn write(&self, out: &mut MetricSet) {
        let (ok, at) = *crate::sync::lock(&self.inner);
        out.gauge(
            "hostmedic_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            &[],
            if ok { 1.0 } else { 0.0 },
        );
        out.gauge(
            "hostmedic_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            &[],
            at,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_series_describe_this_process() {
        let mut set = MetricSet::new();
        write_process(&mut set);
        let v = |n: &str| set.value(n, &[]).unwrap_or_else(|| panic!("{n} missing"));
        assert!(v("process_resident_memory_bytes") > 0.0);
        assert!(v("process_virtual_memory_bytes") >= v("process_resident_memory_bytes"));
        assert!(v("process_threads") >= 1.0);
        let (open, max) = (v("process_open_fds"), v("process_max_fds"));
        assert!(open >= 3.0 && open < max, "{open} of {max}");
        let age = crate::time::now() - v("process_start_time_seconds");
        assert!((-2.0..3600.0).contains(&age), "started {age} s ago");
        assert!(v("process_cpu_seconds") >= 0.0);
    }

    #[test]
    fn reload_status_keeps_the_last_success_time() {
        let s = ReloadStatus::new(100.0);
        s.record(false);
        let mut set = MetricSet::new();
        s.write(&mut set);
        assert_eq!(set.value("hostmedic_config_last_reload_successful", &[]), Some(0.0));
        assert_eq!(
            set.value("hostmedic_config_last_reload_success_timestamp_seconds", &[]),
            Some(100.0)
        );
        s.record(true);
        let mut set = MetricSet::new();
        s.write(&mut set);
        assert_eq!(set.value("hostmedic_config_last_reload_successful", &[]), Some(1.0));
        assert!(
            set.value("hostmedic_config_last_reload_success_timestamp_seconds", &[])
                .unwrap()
                > 100.0
        );
    }
}

//! Which cgroup resources a collector could read this scrape, and why not:
//! `hostmedic_cgroup_resource_available{collector,resource,reason}`.

use super::Usage;
use crate::metrics::MetricSet;

/// The resources [`Availability`] reports, each with the file that gives it.
pub const RESOURCES: [(&str, &str); 6] = [
    ("cpu", "cpu.stat / cpuacct.usage"),
    ("memory", "memory.current / memory.usage_in_bytes"),
    ("memory_peak", "memory.peak / memory.max_usage_in_bytes"),
    ("tasks", "pids.current"),
    ("io", "io.stat / blkio.throttle.io_service_bytes"),
    ("pressure", "{cpu,memory,io}.pressure (cgroup v2 only)"),
];

/// Which resources a collector could read this scrape, over every cgroup
/// it read: a resource is available when at least one cgroup had its file.
/// Exported as `hostmedic_cgroup_resource_available{collector,resource,reason}`:
/// `1` with `reason=""`, else `0` with `reason="file_absent"` (cgroups were
/// read, none had the file: the controller is not enabled for them, or
/// cgroup v1 for pressure) or `reason="no_cgroup"` (no cgroup directory
/// could be read at all: nothing running, no v2 tree, or the paths lie
/// outside the configured root) or `reason="disabled"` (the collector was
/// configured not to read it: `systemd.resource_pressure = false`).
#[derive(Debug, Clone, Default)]
pub struct Availability {
    /// cgroups whose directory existed.
    read: u64,
    /// Per resource of [`RESOURCES`]: cgroups that had it.
    had: [u64; 6],
    /// Per resource of [`RESOURCES`]: not read by configuration.
    disabled: [bool; 6],
}

/// `hostmedic_cgroup_resource_available`.
pub const AVAILABLE: &str = "hostmedic_cgroup_resource_available";

impl Availability {
    /// Counts one cgroup read (`usage` all `None`: directory absent, not counted).
    pub fn note(&mut self, u: &Usage) {
        let has = [
            u.cpu_usec.is_some(),
            u.memory_current.is_some(),
            u.memory_peak.is_some(),
            u.tasks.is_some(),
            u.io.is_some(),
            u.pressure.iter().any(Option::is_some),
        ];
        if !has.iter().any(|h| *h) {
            return;
        }
        self.read += 1;
        for (n, h) in self.had.iter_mut().zip(has) {
            *n += u64::from(h);
        }
    }

    /// Marks `resource` (one of [`RESOURCES`]) as not read by configuration.
    pub fn disable(&mut self, resource: &str) {
        if let Some(i) = RESOURCES.iter().position(|(r, _)| *r == resource) {
            self.disabled[i] = true;
        }
    }

    /// `(resource, available, reason)` for every resource.
    pub fn report(&self) -> impl Iterator<Item = (&'static str, bool, &'static str)> + '_ {
        RESOURCES
            .iter()
            .zip(self.had)
            .zip(self.disabled)
            .map(|(((r, _), n), off)| {
                let reason = match (n, self.read) {
                    _ if off => "disabled",
                    (0, 0) => "no_cgroup",
                    (0, _) => "file_absent",
                    _ => "",
                };
                (*r, n > 0 && !off, reason)
            })
    }

    /// Writes the series for `collector`, and logs (debug) what is missing.
    pub fn write(&self, out: &mut MetricSet, collector: &str) {
        for ((resource, ok, reason), (_, file)) in self.report().zip(RESOURCES) {
            if !ok {
                tracing::debug!(collector, resource, reason, file, "cgroup resource not readable");
            }
            out.gauge(
                AVAILABLE,
                "1 when at least one cgroup read by this collector had the resource's file this scrape; 0 with the reason (file_absent: controller not enabled or cgroup v1; no_cgroup: no cgroup directory readable; disabled: not read by configuration).",
                &[("collector", collector), ("resource", resource), ("reason", reason)],
                f64::from(u8::from(ok)),
            );
        }
    }
}

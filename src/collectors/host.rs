//! `host` collector: load, CPUs, memory, swap and filesystem usage via sysinfo.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

use crate::collector::{CollectError, Collector};
use crate::error::{ConfigError, compile_regex};
use crate::metrics::MetricSet;

/// `[host]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Filesystem types left out of the per-mount series (regex, anchored by the user).
    pub fs_types_exclude: String,
    /// Mount points left out of the per-mount series (regex).
    pub mount_points_exclude: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            // node_exporter's defaults, plus tmpfs-like memory filesystems.
            fs_types_exclude: "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|ramfs|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tmpfs|tracefs)$".into(),
            mount_points_exclude: "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)".into(),
        }
    }
}

impl Config {
    /// Checks the section by building what the collector runs with.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.filters(key).map(drop)
    }

    /// The compiled exclusion filters (fs types, mount points).
    fn filters(&self, key: &str) -> Result<(regex::Regex, regex::Regex), ConfigError> {
        Ok((
            compile_regex(&format!("{key}.fs_types_exclude"), &self.fs_types_exclude)?,
            compile_regex(&format!("{key}.mount_points_exclude"), &self.mount_points_exclude)?,
        ))
    }
}

pub struct HostCollector {
    inner: Arc<Inner>,
}

/// What a collection reads with, shared with the blocking task it runs in.
struct Inner {
    fs_types_exclude: regex::Regex,
    mount_points_exclude: regex::Regex,
    state: Mutex<Option<(System, Disks)>>,
}

impl HostCollector {
    pub fn new(cfg: &Config) -> Result<Self, ConfigError> {
        let (fs_types_exclude, mount_points_exclude) = cfg.filters("host")?;
        let inner = Inner {
            fs_types_exclude,
            mount_points_exclude,
            state: Mutex::new(None),
        };
        Ok(HostCollector { inner: Arc::new(inner) })
    }
}

impl Inner {
    fn read(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut guard = crate::sync::lock(&self.state);
        if guard.is_none() {
            let sys = System::new_with_specifics(
                RefreshKind::nothing()
                    .with_memory(MemoryRefreshKind::everything())
                    .with_cpu(CpuRefreshKind::nothing()),
            )
            .map_err(|e| CollectError::failed(format!("reading system information: {e}")))?;
            let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
                .map_err(|e| CollectError::failed(format!("listing filesystems: {e}")))?;
            *guard = Some((sys, disks));
        } else if let Some((sys, disks)) = guard.as_mut() {
            sys.refresh_memory_specifics(MemoryRefreshKind::everything());
            disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        }
        let (sys, disks) = guard.as_ref().expect("initialised above");

        let load = System::load_average().map_err(|e| CollectError::failed(format!("load average: {e}")))?;
        for (name, v) in [
            ("hostmedic_host_load1", load.one),
            ("hostmedic_host_load5", load.five),
            ("hostmedic_host_load15", load.fifteen),
        ] {
            out.gauge(name, "System load average (runnable + uninterruptible tasks).", &[], v);
        }
        out.gauge(
            "hostmedic_host_cpus",
            "Number of logical CPUs.",
            &[],
            sys.cpus().len() as f64,
        );
        out.gauge(
            "hostmedic_host_memory_total_bytes",
            "Total physical memory.",
            &[],
            sys.total_memory() as f64,
        );
        out.gauge(
            "hostmedic_host_memory_available_bytes",
            "Memory available for new work without swapping (MemAvailable).",
            &[],
            sys.available_memory() as f64,
        );
        out.gauge(
            "hostmedic_host_swap_total_bytes",
            "Total swap space (0: no swap).",
            &[],
            sys.total_swap() as f64,
        );
        out.gauge(
            "hostmedic_host_swap_free_bytes",
            "Free swap space.",
            &[],
            sys.free_swap() as f64,
        );
        self.filesystems(disks, out);
        Ok(())
    }

    /// Size and space available per filesystem.
    fn filesystems(&self, disks: &Disks, out: &mut MetricSet) {
        // A filesystem mounted more than once (bind mounts, a container
        // engine's directories) is one filesystem: report it once, at its
        // shortest mount point, so one full disk raises one alert. The
        // identity is the mount's device number (bind mounts share it;
        // distinct tmpfs or overlay mounts, which share a "device" name, do not).
        let mut mounts: Vec<_> = disks
            .iter()
            .filter(|d| {
                !self.fs_types_exclude.is_match(&d.file_system().to_string_lossy())
                    && !self.mount_points_exclude.is_match(&d.mount_point().to_string_lossy())
            })
            .collect();
        mounts.sort_by_key(|d| (d.mount_point().as_os_str().len(), d.mount_point().to_path_buf()));
        let mut seen = std::collections::HashSet::new();
        for d in mounts {
            let mount = d.mount_point().to_string_lossy();
            let identity = match nix::sys::stat::stat(d.mount_point()) {
                Ok(st) => format!("dev:{}", st.st_dev),
                Err(_) => format!("mount:{mount}"),
            };
            if !seen.insert(identity) {
                continue;
            }
            let fstype = d.file_system().to_string_lossy();
            let device = d.name().to_string_lossy();
            let l = [
                ("mountpoint", mount.as_ref()),
                ("device", device.as_ref()),
                ("fstype", fstype.as_ref()),
            ];
            out.gauge(
                "hostmedic_host_filesystem_size_bytes",
                "Filesystem size.",
                &l,
                d.total_space() as f64,
            );
            out.gauge(
                "hostmedic_host_filesystem_avail_bytes",
                "Filesystem space available to unprivileged users.",
                &l,
                d.available_space() as f64,
            );
        }
    }
}

#[async_trait]
impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        "host"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        // sysinfo does blocking reads of /proc; keep them off the runtime.
        let inner = self.inner.clone();
        crate::collector::collect_blocking(out, move |set| inner.read(set)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_real_host_values() {
        let c = HostCollector::new(&Config::default()).unwrap();
        let mut m = MetricSet::new();
        c.collect(&mut m).await.unwrap();
        assert!(m.value("hostmedic_host_cpus", &[]).unwrap() >= 1.0);
        assert!(m.value("hostmedic_host_memory_total_bytes", &[]).unwrap() > 0.0);
        let avail = m.value("hostmedic_host_memory_available_bytes", &[]).unwrap();
        assert!(avail > 0.0 && avail <= m.value("hostmedic_host_memory_total_bytes", &[]).unwrap());
        assert!(m.value("hostmedic_host_load1", &[]).unwrap() >= 0.0);
        let fs = m
            .get("hostmedic_host_filesystem_size_bytes")
            .expect("at least one filesystem");
        assert!(fs.samples.iter().all(|s| {
            !s.labels
                .iter()
                .any(|(k, v)| k == "fstype" && (v == "proc" || v == "sysfs"))
        }));
        // A second collection refreshes the same System.
        let mut m2 = MetricSet::new();
        c.collect(&mut m2).await.unwrap();
        assert!(m2.value("hostmedic_host_memory_total_bytes", &[]).is_some());
    }
}

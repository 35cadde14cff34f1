//! The collectors, one file each, and the one function that builds the
//! enabled set from the configuration.

use std::sync::Arc;

use crate::collector::Collector;
use crate::config::{Config, ConfigError};

pub mod docker;
pub mod git_lfs;
pub mod host;
pub mod hwmon;
pub mod logfile;
pub mod paths;
pub mod probes;
pub mod processes;
pub mod systemd;

/// Builds every enabled collector. Sources are not probed here: a collector
/// whose source is absent reports `hostmedic_collector_source_present 0` at
/// scrape time, so a host that gains Docker later needs no restart.
pub fn build(cfg: &Config) -> Result<Vec<Arc<dyn Collector>>, ConfigError> {
    let mut v: Vec<Arc<dyn Collector>> = Vec::new();
    if cfg.host.enabled {
        v.push(Arc::new(host::HostCollector::new(&cfg.host)?));
    }
    if cfg.hwmon.enabled {
        v.push(Arc::new(hwmon::HwmonCollector::new(&cfg.global.sysfs_root)));
    }
    if cfg.processes.enabled {
        v.push(Arc::new(processes::ProcessesCollector::new(
            &cfg.processes,
            &cfg.global.procfs_root,
        )?));
    }
    // Nothing to follow or probe: no collector, so no always-empty series.
    if cfg.logfile.enabled && !cfg.logfile.watch.is_empty() {
        v.push(Arc::new(logfile::LogfileCollector::new(&cfg.logfile)?));
    }
    if cfg.probes.enabled && !(cfg.probes.http.is_empty() && cfg.probes.command.is_empty()) {
        v.push(Arc::new(probes::ProbesCollector::new(&cfg.probes)?));
    }
    if cfg.docker.enabled {
        v.push(Arc::new(docker::DockerCollector::new(&cfg.docker, &cfg.global)?));
    }
    if cfg.systemd.enabled {
        v.push(Arc::new(systemd::SystemdCollector::new(&cfg.systemd)?));
    }
    if cfg.git_lfs.enabled && !(cfg.git_lfs.repos.is_empty() && cfg.git_lfs.search_roots.is_empty()) {
        v.push(Arc::new(git_lfs::GitLfsCollector::new(&cfg.git_lfs)));
    }
    if cfg.paths.enabled && !cfg.paths.watch.is_empty() {
        v.push(Arc::new(paths::PathsCollector::new(&cfg.paths)));
    }
    Ok(v)
}

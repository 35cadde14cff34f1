//! "Is this host OK?" at a glance: a short summary of the last scrape — CPU
//! and other temperatures against the chip's own thresholds, disk use per
//! filesystem, load per CPU, memory, failed units, unhealthy containers and
//! expected units that are missing or inactive — for the status document
//! and the landing page.
//!
//! It is read from the scrape's metric snapshot right after the collectors
//! ran (a few lookups by family name, no second scrape), and kept in a
//! [`LastScrape`] until the next scrape replaces it. Reads only metric names
//! of the contract (docs/metrics.md); a collector without a source leaves its
//! part empty and is named in `absent_sources` (one that failed in
//! `failing_sources`, one that succeeded in `watched`, a disabled one in
//! none), so "no failed units" and "systemd not watched" are told apart.
//! `serve` runs one collection at start ([`crate::app::App::spawn_background`])
//! so the summary is there before Prometheus' first scrape.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};

use crate::metrics::{MetricSet, Sample, Value};

/// Longest list in the summary; what is left out is counted in `omitted`.
pub const MAX_ITEMS: usize = 20;

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    pub chip: String,
    pub sensor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    pub celsius: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_celsius: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit_celsius: Option<f64>,
    pub state: TempState,
}

/// A temperature against its chip's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TempState {
    /// At or over crit.
    #[serde(rename = "critical")]
    Critical,
    #[serde(rename = "over max")]
    OverMax,
    #[serde(rename = "ok")]
    Ok,
    /// The chip reports none (the shipped rules then use a fallback).
    #[serde(rename = "no threshold")]
    NoThreshold,
}

impl TempState {
    /// The status document's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TempState::Critical => "critical",
            TempState::OverMax => "over max",
            TempState::Ok => "ok",
            TempState::NoThreshold => "no threshold",
        }
    }
}

/// One filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    pub mountpoint: String,
    pub device: String,
    pub fstype: String,
    pub size_bytes: f64,
    pub avail_bytes: f64,
    /// 1 − avail / size.
    pub used_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub cpus: f64,
    pub load1_per_cpu: f64,
    pub load5_per_cpu: f64,
    pub load15_per_cpu: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: f64,
    pub available_bytes: f64,
    pub available_ratio: f64,
}

/// A unit of a manager (`system` or `user:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unit {
    pub manager: String,
    pub name: String,
}

/// The summary of one scrape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// When the scrape ran (Unix seconds).
    pub scraped_at: f64,
    /// Hottest first.
    pub temperatures: Vec<Temperature>,
    /// Fullest first.
    pub filesystems: Vec<Filesystem>,
    pub load: Option<Load>,
    pub memory: Option<Memory>,
    pub failed_units: Vec<Unit>,
    pub unhealthy_containers: Vec<String>,
    /// Expected units (`systemd.expect`) that are not installed.
    pub expected_units_missing: Vec<Unit>,
    /// Expected units that are installed but not active.
    pub expected_units_inactive: Vec<Unit>,
    /// Collectors whose source does not exist on this host.
    pub absent_sources: Vec<String>,
    /// Collectors that collected successfully.
    pub watched: Vec<String>,
    /// Collectors whose source exists but whose collection failed.
    pub failing_sources: Vec<String>,
    /// From hostmedic's own collection at start, not from a scrape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_startup: bool,
    /// Per list, how many entries past [`MAX_ITEMS`] were left out.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub omitted: std::collections::BTreeMap<String, usize>,
}

fn label<'a>(s: &'a Sample, key: &str) -> &'a str {
    s.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

fn number(s: &Sample) -> Option<f64> {
    match s.value {
        Value::Number(n) => Some(n),
        Value::Histogram { .. } => None,
    }
}

/// The samples of `family` (none when absent).
fn samples<'a>(set: &'a MetricSet, family: &str) -> &'a [Sample] {
    set.get(family).map(|f| f.samples.as_slice()).unwrap_or_default()
}

/// The value of `family`'s sample whose `keys` labels equal those of `like`.
fn matching(set: &MetricSet, family: &str, like: &Sample, keys: &[&str]) -> Option<f64> {
    samples(set, family)
        .iter()
        .find(|s| keys.iter().all(|k| label(s, k) == label(like, k)))
        .and_then(number)
}

/// The first sample's value of an unlabelled gauge.
fn scalar(set: &MetricSet, family: &str) -> Option<f64> {
    samples(set, family).first().and_then(number)
}

/// Units of `family` whose value satisfies `want`.
fn units(set: &MetricSet, family: &str, want: impl Fn(&Sample, f64) -> bool) -> Vec<Unit> {
    let mut v: Vec<Unit> = samples(set, family)
        .iter()
        .filter(|s| number(s).is_some_and(|n| want(s, n)))
        .map(|s| Unit {
            manager: label(s, "manager").to_string(),
            name: label(s, "name").to_string(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The `collector` label of `family`'s samples whose value is `value`.
fn collectors(set: &MetricSet, family: &str, value: f64) -> Vec<String> {
    samples(set, family)
        .iter()
        .filter(|s| number(s) == Some(value))
        .map(|s| label(s, "collector").to_string())
        .collect()
}

/// Every hwmon temperature with its thresholds, hottest first.
fn temperatures(set: &MetricSet) -> Vec<Temperature> {
    const SENSOR: &[&str] = &["source", "device", "sensor"];
    let mut v = Vec::new();
    for s in samples(set, "hostmedic_hwmon_temp_celsius") {
        let Some(c) = number(s) else { continue };
        let max = matching(set, "hostmedic_hwmon_temp_max_celsius", s, SENSOR);
        let crit = matching(set, "hostmedic_hwmon_temp_crit_celsius", s, SENSOR);
        let state = match (max, crit) {
            (_, Some(k)) if c >= k => TempState::Critical,
            (Some(m), _) if c >= m => TempState::OverMax,
            (None, None) => TempState::NoThreshold,
            _ => TempState::Ok,
        };
        v.push(Temperature {
            chip: label(s, "chip").to_string(),
            sensor: label(s, "sensor").to_string(),
            label: label(s, "label").to_string(),
            celsius: c,
            max_celsius: max,
            crit_celsius: crit,
            state,
        });
    }
    v.sort_by(|a, b| b.celsius.total_cmp(&a.celsius));
    v
}

/// Every filesystem with a size and free space, fullest first.
fn filesystems(set: &MetricSet) -> Vec<Filesystem> {
    let mut v = Vec::new();
    for s in samples(set, "hostmedic_host_filesystem_size_bytes") {
        let Some(size) = number(s).filter(|n| *n > 0.0) else {
            continue;
        };
        let Some(avail) = matching(
            set,
            "hostmedic_host_filesystem_avail_bytes",
            s,
            &["mountpoint", "device"],
        ) else {
            continue;
        };
        v.push(Filesystem {
            mountpoint: label(s, "mountpoint").to_string(),
            device: label(s, "device").to_string(),
            fstype: label(s, "fstype").to_string(),
            size_bytes: size,
            avail_bytes: avail,
            used_ratio: 1.0 - avail / size,
        });
    }
    v.sort_by(|a, b| b.used_ratio.total_cmp(&a.used_ratio));
    v
}

/// Load averages per CPU, when the CPU count and all three are there.
fn load(set: &MetricSet) -> Option<Load> {
    let cpus = scalar(set, "hostmedic_host_cpus").filter(|n| *n > 0.0)?;
    let per = |f: &str| scalar(set, f).map(|l| l / cpus);
    Some(Load {
        cpus,
        load1_per_cpu: per("hostmedic_host_load1")?,
        load5_per_cpu: per("hostmedic_host_load5")?,
        load15_per_cpu: per("hostmedic_host_load15")?,
    })
}

/// Total and available memory, when both are there.
fn memory(set: &MetricSet) -> Option<Memory> {
    let total = scalar(set, "hostmedic_host_memory_total_bytes").filter(|n| *n > 0.0)?;
    let avail = scalar(set, "hostmedic_host_memory_available_bytes")?;
    Some(Memory {
        total_bytes: total,
        available_bytes: avail,
        available_ratio: avail / total,
    })
}

impl HostSummary {
    /// Summarizes a scrape's snapshot taken at `now`.
    pub fn from_set(set: &MetricSet, now: f64) -> HostSummary {
        let mut h = HostSummary {
            scraped_at: now,
            temperatures: temperatures(set),
            filesystems: filesystems(set),
            load: load(set),
            memory: memory(set),
            ..Default::default()
        };
        h.failed_units = units(set, "hostmedic_systemd_unit_state", |s, n| {
            label(s, "state") == "failed" && n == 1.0
        });
        h.expected_units_missing = units(set, "hostmedic_systemd_expected_unit_present", |_, n| n == 0.0);
        let missing = h.expected_units_missing.clone();
        h.expected_units_inactive = units(set, "hostmedic_systemd_expected_unit_active", |_, n| n == 0.0);
        h.expected_units_inactive.retain(|u| !missing.contains(u));
        let mut containers: Vec<String> = samples(set, "hostmedic_docker_container_health")
            .iter()
            .filter(|s| label(s, "health") == "unhealthy" && number(s) == Some(1.0))
            .map(|s| label(s, "container").to_string())
            .collect();
        containers.sort();
        h.unhealthy_containers = containers;
        h.absent_sources = collectors(set, "hostmedic_collector_source_present", 0.0);
        h.watched = collectors(set, "hostmedic_scrape_collector_success", 1.0);
        h.failing_sources = collectors(set, "hostmedic_scrape_collector_success", 0.0);
        h.failing_sources.retain(|c| !h.absent_sources.contains(c));
        h.bound();
        h
    }

    /// Cuts every list to [`MAX_ITEMS`], counting what was left out.
    fn bound(&mut self) {
        fn cut<T>(omitted: &mut std::collections::BTreeMap<String, usize>, name: &str, v: &mut Vec<T>) {
            if v.len() > MAX_ITEMS {
                omitted.insert(name.to_string(), v.len() - MAX_ITEMS);
                v.truncate(MAX_ITEMS);
            }
        }
        let o = &mut self.omitted;
        cut(o, "temperatures", &mut self.temperatures);
        cut(o, "filesystems", &mut self.filesystems);
        cut(o, "failed_units", &mut self.failed_units);
        cut(o, "unhealthy_containers", &mut self.unhealthy_containers);
        cut(o, "expected_units_missing", &mut self.expected_units_missing);
        cut(o, "expected_units_inactive", &mut self.expected_units_inactive);
    }
}

/// The summary of the last scrape, replaced whole after each one.
#[derive(Debug, Default)]
pub struct LastScrape(ArcSwapOption<HostSummary>);

impl LastScrape {
    pub fn store(&self, s: HostSummary) {
        self.0.store(Some(Arc::new(s)));
    }

    /// Stores `s` unless a summary is there already (a scrape that ended
    /// first is newer); whether it was stored.
    pub fn store_first(&self, s: HostSummary) -> bool {
        let next = Some(Arc::new(s));
        let prev = self.0.compare_and_swap(&None::<Arc<HostSummary>>, next);
        prev.is_none()
    }

    /// The last summary; none before the first scrape.
    pub fn load(&self) -> Option<Arc<HostSummary>> {
        self.0.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_temperatures_disks_load_units_containers() {
        let mut m = MetricSet::new();
        let t = |s: &'static str| {
            [
                ("source", "hwmon"),
                ("device", "hwmon0"),
                ("chip", "coretemp"),
                ("sensor", s),
            ]
        };
        m.gauge("hostmedic_hwmon_temp_celsius", "", &t("temp1"), 101.0);
        m.gauge("hostmedic_hwmon_temp_max_celsius", "", &t("temp1"), 100.0);
        m.gauge("hostmedic_hwmon_temp_crit_celsius", "", &t("temp1"), 105.0);
        m.gauge("hostmedic_hwmon_temp_celsius", "", &t("temp2"), 40.0);
        m.gauge("hostmedic_hwmon_temp_celsius", "", &t("temp3"), 106.0);
        m.gauge("hostmedic_hwmon_temp_crit_celsius", "", &t("temp3"), 105.0);
        let fs = |mp: &'static str| [("mountpoint", mp), ("device", "sda1"), ("fstype", "ext4")];
        m.gauge("hostmedic_host_filesystem_size_bytes", "", &fs("/"), 100.0);
        m.gauge("hostmedic_host_filesystem_avail_bytes", "", &fs("/"), 10.0);
        m.gauge("hostmedic_host_filesystem_size_bytes", "", &fs("/srv"), 100.0);
        m.gauge("hostmedic_host_filesystem_avail_bytes", "", &fs("/srv"), 60.0);
        m.gauge("hostmedic_host_cpus", "", &[], 4.0);
        for (f, v) in [("load1", 8.0), ("load5", 4.0), ("load15", 2.0)] {
            m.gauge(&format!("hostmedic_host_{f}"), "", &[], v);
        }
        let u = |n: &'static str, st: &'static str| {
            [("manager", "system"), ("name", n), ("type", "service"), ("state", st)]
        };
        m.gauge("hostmedic_systemd_unit_state", "", &u("a.service", "failed"), 1.0);
        m.gauge("hostmedic_systemd_unit_state", "", &u("b.service", "failed"), 0.0);
        m.gauge("hostmedic_systemd_unit_state", "", &u("b.service", "active"), 1.0);
        let e = |n: &'static str| [("manager", "system"), ("name", n)];
        m.gauge("hostmedic_systemd_expected_unit_present", "", &e("gone.service"), 0.0);
        m.gauge("hostmedic_systemd_expected_unit_active", "", &e("gone.service"), 0.0);
        m.gauge("hostmedic_systemd_expected_unit_present", "", &e("idle.service"), 1.0);
        m.gauge("hostmedic_systemd_expected_unit_active", "", &e("idle.service"), 0.0);
        let c = |n: &'static str, h: &'static str| [("container", n), ("health", h)];
        m.gauge("hostmedic_docker_container_health", "", &c("web", "unhealthy"), 1.0);
        m.gauge("hostmedic_docker_container_health", "", &c("db", "unhealthy"), 0.0);
        m.gauge(
            "hostmedic_collector_source_present",
            "",
            &[("collector", "docker")],
            1.0,
        );
        m.gauge(
            "hostmedic_collector_source_present",
            "",
            &[("collector", "git_lfs")],
            0.0,
        );
        for (c, ok) in [("docker", 1.0), ("git_lfs", 0.0), ("systemd", 0.0)] {
            m.gauge("hostmedic_scrape_collector_success", "", &[("collector", c)], ok);
        }

        let h = HostSummary::from_set(&m, 7.0);
        let temps: Vec<_> = h.temperatures.iter().map(|t| (t.sensor.as_str(), t.state)).collect();
        assert_eq!(
            temps,
            [
                ("temp3", TempState::Critical),
                ("temp1", TempState::OverMax),
                ("temp2", TempState::NoThreshold)
            ]
        );
        assert_eq!(h.filesystems[0].mountpoint, "/");
        assert!((h.filesystems[0].used_ratio - 0.9).abs() < 1e-9);
        let l = h.load.unwrap();
        assert_eq!((l.load1_per_cpu, l.load5_per_cpu, l.load15_per_cpu), (2.0, 1.0, 0.5));
        assert_eq!(
            h.failed_units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["a.service"]
        );
        assert_eq!(h.expected_units_missing[0].name, "gone.service");
        assert_eq!(
            h.expected_units_inactive
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>(),
            ["idle.service"]
        );
        assert_eq!(h.unhealthy_containers, ["web"]);
        assert_eq!(h.absent_sources, ["git_lfs"]);
        assert_eq!(h.watched, ["docker"]);
        assert_eq!(h.failing_sources, ["systemd"], "absent is not failing");
        assert!(h.memory.is_none() && h.omitted.is_empty());
    }

    #[test]
    fn long_lists_are_bounded_and_counted() {
        let mut m = MetricSet::new();
        for i in 0..MAX_ITEMS + 3 {
            let n = format!("u{i}.service");
            m.gauge(
                "hostmedic_systemd_unit_state",
                "",
                &[("manager", "system"), ("name", &n), ("state", "failed")],
                1.0,
            );
        }
        let h = HostSummary::from_set(&m, 0.0);
        assert_eq!(h.failed_units.len(), MAX_ITEMS);
        assert_eq!(h.omitted["failed_units"], 3);
    }
}

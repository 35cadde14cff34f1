//! Benchmark for the host summary of the status document and landing page:
//! what `HostSummary::from_set` adds to every scrape, side by side in one
//! run with what every scrape already does to the same snapshot (encoding
//! it as the classic text format, and as OpenMetrics).
//!
//! Run: `cargo bench --bench hostsummary`. The snapshot is a busy small host
//! as the fleet-series test sizes it: 200 systemd units with every state
//! series (`unit_state_series = "all"`, 3 failed), 20 containers (2
//! unhealthy), 10 filesystems, 8 temperature sensors, the host gauges and the
//! collectors' own series. Reported: min / median / max per call over 15
//! rounds of 200 calls each, wall time (the machine is shared; the ratio of
//! medians in one run is the number to read).

use std::time::{Duration, Instant};

use hostmedic::collectors::systemd::ACTIVE_STATES;
use hostmedic::docker::{HEALTHS, STATES};
use hostmedic::hostsummary::HostSummary;
use hostmedic::metrics::MetricSet;

fn snapshot() -> MetricSet {
    let mut m = MetricSet::new();
    for i in 0..200 {
        let name = format!("unit{i}.service");
        let current = if i % 67 == 5 { "failed" } else { "active" };
        for st in &ACTIVE_STATES {
            let l = [
                ("manager", "system"),
                ("name", name.as_str()),
                ("type", "service"),
                ("state", st.as_str()),
            ];
            m.gauge(
                "hostmedic_systemd_unit_state",
                "",
                &l,
                if st == current { 1.0 } else { 0.0 },
            );
        }
        let l = [("manager", "system"), ("name", name.as_str()), ("type", "service")];
        m.gauge("hostmedic_systemd_unit_active_enter_timestamp_seconds", "", &l, 1.7e9);
        m.counter("hostmedic_systemd_service_restarts", "", &l[..2], 0.0);
    }
    for i in 0..5 {
        let name = format!("expected{i}.service");
        let l = [("manager", "system"), ("name", name.as_str())];
        m.gauge("hostmedic_systemd_expected_unit_present", "", &l, 1.0);
        m.gauge(
            "hostmedic_systemd_expected_unit_active",
            "",
            &l,
            if i == 0 { 0.0 } else { 1.0 },
        );
    }
    for i in 0..20 {
        let c = format!("app{i}");
        let sick = if i % 10 == 3 { "unhealthy" } else { "healthy" };
        for h in HEALTHS {
            let l = [("container", c.as_str()), ("health", h)];
            m.gauge(
                "hostmedic_docker_container_health",
                "",
                &l,
                if h == sick { 1.0 } else { 0.0 },
            );
        }
        for s in STATES {
            let l = [("container", c.as_str()), ("state", s)];
            m.gauge(
                "hostmedic_docker_container_state",
                "",
                &l,
                if s == "running" { 1.0 } else { 0.0 },
            );
        }
        m.gauge(
            "hostmedic_docker_container_memory_usage_bytes",
            "",
            &[("container", &c)],
            1e8,
        );
    }
    for i in 0..10 {
        let mp = format!("/srv/vol{i}");
        let l = [("mountpoint", mp.as_str()), ("device", "/dev/vdb"), ("fstype", "ext4")];
        m.gauge("hostmedic_host_filesystem_size_bytes", "", &l, 1e11);
        m.gauge("hostmedic_host_filesystem_avail_bytes", "", &l, 1e10 * i as f64);
    }
    for i in 0..8 {
        let s = format!("temp{}", i + 1);
        let l = [
            ("source", "hwmon"),
            ("device", "hwmon0"),
            ("chip", "coretemp"),
            ("sensor", s.as_str()),
            ("label", "Core"),
        ];
        m.gauge("hostmedic_hwmon_temp_celsius", "", &l, 40.0 + i as f64);
        m.gauge("hostmedic_hwmon_temp_max_celsius", "", &l, 100.0);
        m.gauge("hostmedic_hwmon_temp_crit_celsius", "", &l, 105.0);
    }
    for (n, v) in [
        ("cpus", 4.0),
        ("load1", 1.0),
        ("load5", 0.8),
        ("load15", 0.5),
        ("memory_total_bytes", 8e9),
        ("memory_available_bytes", 4e9),
    ] {
        m.gauge(&format!("hostmedic_host_{n}"), "", &[], v);
    }
    for c in [
        "host",
        "hwmon",
        "systemd",
        "docker",
        "processes",
        "logfile",
        "probes",
        "git_lfs",
        "paths",
    ] {
        m.gauge("hostmedic_collector_source_present", "", &[("collector", c)], 1.0);
        m.gauge("hostmedic_scrape_collector_success", "", &[("collector", c)], 1.0);
    }
    m
}

/// Per-call wall time of `f`, over 15 rounds of `n` calls.
fn rounds(n: u32, mut f: impl FnMut()) -> Vec<Duration> {
    let mut v: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n
        })
        .collect();
    v.sort();
    v
}

fn line(what: &str, v: &[Duration]) -> Duration {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what:<34} min {:>8.1} / median {:>8.1} / max {:>8.1} µs",
        us(v[0]),
        us(v[v.len() / 2]),
        us(v[v.len() - 1])
    );
    v[v.len() / 2]
}

fn main() {
    let set = snapshot();
    let samples: usize = set.families().iter().map(|f| f.samples.len()).sum();
    let h = HostSummary::from_set(&set, 0.0);
    assert_eq!(h.failed_units.len(), 3, "the snapshot is what it claims");
    assert_eq!(h.unhealthy_containers.len(), 2);
    assert_eq!(h.expected_units_inactive.len(), 1);
    println!("snapshot: {} families, {samples} samples", set.families().len());
    let summary = line(
        "HostSummary::from_set",
        &rounds(200, || {
            std::hint::black_box(HostSummary::from_set(std::hint::black_box(&set), 0.0));
        }),
    );
    let classic = line(
        "encode_classic (text 0.0.4)",
        &rounds(200, || {
            std::hint::black_box(std::hint::black_box(&set).encode_classic());
        }),
    );
    let om = line(
        "clone + encode_openmetrics",
        &rounds(200, || {
            std::hint::black_box(std::hint::black_box(&set).clone().encode_openmetrics());
        }),
    );
    println!(
        "summary / classic encoding: {:.3}; summary / openmetrics (with clone): {:.3}",
        summary.as_secs_f64() / classic.as_secs_f64(),
        summary.as_secs_f64() / om.as_secs_f64()
    );
}

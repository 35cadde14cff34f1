//! The series a realistic host costs, measured for docs/fleet.md: a real
//! systemd 252 (tests/support/src/systemd.rs) holding 200 generated services
//! next to its own units, a private Docker engine (tests/support/src/docker.rs)
//! running 20 containers, and this machine's own host, sensors and
//! processes. Two hostmedic binaries read the same sources, one with
//! `systemd.unit_state_series = "all"` (the default) and one with
//! `"current"`; a real Prometheus scrapes both.
//!
//! Prints the series per metric family of both (`benches/series.sh` runs
//! this test and keeps the table) and checks what the docs say about them:
//! `"all"` has six `unit_state` series per exported unit, `"current"` one,
//! everything else is the same, and Prometheus counts as many samples per
//! scrape as the exposition has.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::config::TestConfig;
use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::prometheus::{Prometheus, PrometheusOptions};
use common::systemd::{Spec, boot_or_skip};
use common::{Binary, eventually};

const UNITS: usize = 200;
const CONTAINERS: usize = 20;

/// Series per family of one exposition (classic or OpenMetrics text): each
/// sample line belongs to the family of the `# TYPE` line before it.
fn series_per_family(text: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut family = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            family = rest.split(' ').next().unwrap_or_default().to_string();
        } else if !line.is_empty() && !line.starts_with('#') {
            *out.entry(family.clone()).or_insert(0) += 1;
        }
    }
    out
}

async fn exposition(hm: &Binary) -> String {
    common::client()
        .get(format!("http://{}/metrics", hm.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn series_of_a_host_with_200_units_and_20_containers() {
    // 200 services as benches/systemd.sh makes them: oneshot, left active
    // (exited), every 10th failing, so the states are mixed.
    let mut spec = Spec::new();
    for i in 1..=UNITS {
        let exe = if i % 10 == 0 { "/bin/false" } else { "/bin/true" };
        spec = spec.enabled_unit(
            &format!("app-{i:03}.service"),
            &format!("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={exe}\n"),
        );
    }
    let Some(m) = boot_or_skip(spec) else {
        return;
    };
    let Some(engine) = PrivateEngine::start_or_skip() else {
        return;
    };
    // 20 containers with a memory limit; half with a health check.
    for i in 1..=CONTAINERS {
        let name = format!("svc-{i:02}");
        let mut args = vec!["--name", &name, "--memory=32m"];
        if i % 2 == 0 {
            args.extend(["--health-cmd=true", "--health-interval=2s"]);
        }
        args.extend([BUSYBOX_IMAGE, "sleep", "3600"]);
        engine.run_detached(&args);
    }

    let dir = tempfile::tempdir().unwrap();
    // disk_usage is off: its first background scan of this machine's /var,
    // /tmp... ends at a different moment in each instance (and /tmp changes
    // under the running suite), so its series would differ by timing, not
    // by `unit_state_series`.
    let start = |mode: &str| {
        let cfg = TestConfig::new()
            .section("systemd", |s| {
                s.set("bus_address", m.bus_address())
                    .set("user_managers", "none")
                    .set("unit_state_series", mode)
                    .path("cgroup_root", m.cgroup());
            })
            .section("docker", |d| {
                d.set("host", engine.docker_host());
            })
            .disable(&["disk_usage"])
            .write(dir.path().join(format!("hostmedic-{mode}.toml")));
        let d = dir.path().join(mode);
        std::fs::create_dir_all(&d).unwrap();
        Binary::start(&cfg, &d)
    };
    let all = start("all");
    let current = start("current");
    let prom = Prometheus::start(PrometheusOptions {
        targets: vec![all.addr.to_string(), current.addr.to_string()],
        alertmanagers: vec![],
        rule_files: vec![],
    })
    .await;

    // Wait for both to see every unit and container, and for Prometheus to
    // count the same samples per scrape as the exposition has.
    let running = "hostmedic_docker_container_state";
    let (a, c, prom_a, prom_c) = eventually(Duration::from_secs(90), "steady series counts", || async {
        let a = series_per_family(&exposition(&all).await);
        let c = series_per_family(&exposition(&current).await);
        let info = a.get("hostmedic_systemd_unit_info").copied().unwrap_or(0);
        let containers = a.get(running).copied().unwrap_or(0) / 7;
        let scraped = |hm: &Binary| format!("scrape_samples_scraped{{instance=\"{}\"}}", hm.addr);
        let prom_a = prom.query_value(&scraped(&all)).await? as usize;
        let prom_c = prom.query_value(&scraped(&current)).await? as usize;
        let total = |f: &BTreeMap<String, usize>| f.values().sum::<usize>();
        (info > UNITS && containers == CONTAINERS && prom_a == total(&a) && prom_c == total(&c))
            .then_some((a, c, prom_a, prom_c))
    })
    .await;

    let units = a["hostmedic_systemd_unit_info"];
    println!("series per family (unit_state_series = all | current), {units} units, {CONTAINERS} containers:");
    let mut names: Vec<&String> = a.keys().chain(c.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let (x, y) = (a.get(n).copied().unwrap_or(0), c.get(n).copied().unwrap_or(0));
        println!("series {n} {x} {y}");
    }
    println!("series TOTAL {prom_a} {prom_c}");

    assert_eq!(a["hostmedic_systemd_unit_state"], 6 * units, "all: six per unit");
    assert_eq!(c["hostmedic_systemd_unit_state"], units, "current: one per unit");
    assert_eq!(prom_a - prom_c, 5 * units, "nothing but unit_state differs");
    for (fam, n) in &a {
        if fam != "hostmedic_systemd_unit_state" && !fam.starts_with("hostmedic_scrape") {
            assert_eq!(c.get(fam), Some(n), "{fam}");
        }
    }
}

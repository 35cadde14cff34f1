//! The Grafana dashboards: generated files are current and well-formed
//! (datasource and host variables, every selector filtered by host, only
//! contract metrics), and every panel query, variable query and annotation
//! runs against a real Prometheus that scraped a real hostmedic.
//!
//! Which queries must return data grows with the collectors present in the
//! test world: extend [`PRESENT`] (metric-name prefixes this test's hostmedic
//! exports). tests/e2e/dashboards_full.rs runs every collector and the receiver
//! and requires data from every prefix; the query helpers both use are in
//! tests/support/src/grafana.rs.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::grafana::*;
use common::prometheus::*;
use common::*;

/// Metric-name prefixes the hostmedic in this test exports (host collector,
/// fake hwmon tree with max and crit thresholds, framework metrics).
const PRESENT: &[&str] = &[
    "hostmedic_host_",
    "hostmedic_hwmon_",
    "hostmedic_scrape_collector_",
    "hostmedic_collector_source_present",
    "hostmedic_build_info",
    "hostmedic_start_time_seconds",
];

/// Queries that may legitimately return nothing even with every source
/// present: they only list things in a bad state (dashboard uid, panel title).
const MAY_BE_EMPTY: &[(&str, &str)] = &[("hostmedic-fleet", "Hosts down")];

#[test]
fn committed_dashboards_match_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("grafana/generate.py"))
        .arg(dir.path())
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut generated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    generated.sort();
    let committed: Vec<_> = dashboard_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(generated, committed);
    for name in generated {
        let a = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let b = std::fs::read_to_string(repo_root().join("grafana/dashboards").join(&name)).unwrap();
        assert!(
            a == b,
            "{name:?} differs from grafana/generate.py output: run it and commit"
        );
    }
}

#[test]
fn dashboards_are_importable_and_filter_by_host() {
    let contract = contract_metric_names();
    let mut uids = BTreeSet::new();
    let selector = regex::Regex::new(r"(hostmedic_[a-z0-9_]+|ALERTS|\bup)(\{[^}]*\})?").unwrap();
    let files = dashboard_files();
    let titles: BTreeSet<String> = files
        .iter()
        .map(|f| load(f)["title"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "Host overview",
        "systemd units",
        "Containers",
        "Git LFS",
        "Remediation",
        "Fleet overview",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no dashboard for {want}: {titles:?}"
        );
    }
    for f in files {
        let d = load(&f);
        let name = f.display().to_string();
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_string()),
            "{name}: duplicate uid"
        );
        assert!(d["id"].is_null(), "{name}: an `id` breaks import into another Grafana");
        let vars = d["templating"]["list"].as_array().unwrap();
        let ds = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .expect("datasource variable");
        assert_eq!(ds["type"], "datasource");
        assert_eq!(ds["query"], "prometheus");
        let host = vars.iter().find(|v| v["name"] == "host").expect("host variable");
        assert_eq!(host["query"]["query"], "label_values(hostmedic_build_info, instance)");
        assert_eq!(host["includeAll"], true);
        assert_eq!(host["multi"], true);
        assert_eq!(host["allValue"], ".*");

        let mut ids = BTreeSet::new();
        let mut cells = BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(ids.insert(p["id"].as_i64().unwrap()), "{name}: duplicate panel id");
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().unwrap(),
                g["y"].as_i64().unwrap(),
                g["w"].as_i64().unwrap(),
                g["h"].as_i64().unwrap(),
            );
            assert!(x + w <= 24, "{name}/{title}: wider than the grid");
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{name}/{title}: overlaps another panel");
                }
            }
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{name}/{title}");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}/{title}: no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{name}/{title}");
            }
        }
        for q in queries(&d) {
            for m in metrics_in(&q.expr) {
                assert!(contract.contains(&m), "{name}/{}: {m} not in docs/metrics.md", q.panel);
            }
            if q.ref_id == "var" {
                continue;
            }
            for c in selector.captures_iter(&q.expr) {
                let sel = c.get(2).map(|m| m.as_str()).unwrap_or_default();
                assert!(
                    sel.contains("instance=~\"$host\""),
                    "{name}/{}: `{}` is not filtered by $host",
                    q.panel,
                    &c[0]
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_runs_against_real_prometheus() {
    let sysfs = tempfile::tempdir().unwrap();
    hot_sysfs(sysfs.path());
    let hm = InProcess::start(config_with_sysfs(sysfs.path())).await;
    let instance = hm.addr.to_string();
    let prom = Prometheus::start_with_short_rules(vec![instance.clone()], vec![]).await;
    prom.wait_scraped(5).await;
    prom.wait_firing(
        "HostmedicTemperatureOverCrit",
        &[("instance", &instance)],
        Duration::from_secs(60),
    )
    .await;
    prom.wait_firing(
        "HostmedicTemperatureOverMax",
        &[("instance", &instance)],
        Duration::from_secs(30),
    )
    .await;
    // ALERTS is written one evaluation after the alert turns firing.
    eventually(Duration::from_secs(30), "ALERTS series", || async {
        prom.query_value("count(ALERTS{alertstate=\"firing\", severity=\"critical\"})")
            .await
    })
    .await;

    let escaped = grafana_regex_escape(&instance);
    let report = check_panel_queries(&prom, &[".*", &escaped], PRESENT, MAY_BE_EMPTY).await;
    let required = print_report("panel queries against a real Prometheus scraping hostmedic", &report);
    assert!(required >= 40, "too few queries required data: {required}");

    assert_unknown_host_filters_everything(&prom).await;
    drop(prom);
    hm.stop().await;
}

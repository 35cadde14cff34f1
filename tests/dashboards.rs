//! The Grafana dashboards: generated files are current and well-formed
//! (datasource and host variables, every selector filtered by host, only
//! contract metrics), and every panel query, variable query and annotation
//! runs against a real Prometheus that scraped a real hostmedic.
//!
//! Which queries must return data grows with the collectors present in the
//! test world: extend [`PRESENT`] (metric-name prefixes this test's hostmedic
//! exports) — the end-to-end suite, which runs every collector, passes its own
//! list to [`check_panel_queries`].

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::prometheus::*;
use common::*;
use serde_json::Value;

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

fn dashboard_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("grafana/dashboards"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn load(p: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Panels including those nested in collapsed rows.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().cloned().unwrap_or_default() {
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter().cloned());
        }
        out.push(p);
    }
    out
}

/// One query of a dashboard, with where it comes from.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

/// Every query in a dashboard: panel targets, the `host` variable (its
/// `label_values(m, l)` turned into `group by (l) (m)`) and annotations.
pub fn queries(d: &Value) -> Vec<PanelQuery> {
    let uid = d["uid"].as_str().unwrap().to_string();
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().cloned().unwrap_or_default() {
            out.push(PanelQuery {
                dashboard: uid.clone(),
                panel: p["title"].as_str().unwrap_or_default().to_string(),
                ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    let lv = regex::Regex::new(r"^label_values\(\s*([^,]+?)\s*,\s*(\w+)\s*\)$").unwrap();
    for v in d["templating"]["list"].as_array().cloned().unwrap_or_default() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or_default();
            let c = lv
                .captures(q)
                .unwrap_or_else(|| panic!("{uid}: unsupported variable query {q}"));
            out.push(PanelQuery {
                dashboard: uid.clone(),
                panel: format!("variable {}", v["name"].as_str().unwrap()),
                ref_id: "var".into(),
                expr: format!("group by ({}) ({})", &c[2], &c[1]),
            });
        }
    }
    for a in d["annotations"]["list"].as_array().cloned().unwrap_or_default() {
        if let Some(e) = a["expr"].as_str() {
            out.push(PanelQuery {
                dashboard: uid.clone(),
                panel: format!("annotation {}", a["name"].as_str().unwrap_or_default()),
                ref_id: "ann".into(),
                expr: e.to_string(),
            });
        }
    }
    out
}

/// Substitutes Grafana's variables the way Grafana does for Prometheus
/// (`host` regex-escaped with doubled backslashes inside the string literal).
pub fn substitute_vars(expr: &str, host_regex: &str) -> String {
    expr.replace("${host}", host_regex)
        .replace("$host", host_regex)
        .replace("$__rate_interval", "30s")
        .replace("$__interval", "15s")
        .replace("$__range", "5m")
}

/// Grafana's escaping of one value of a multi-value variable.
pub fn grafana_regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\^$*+?.()|{}[]".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Runs every query of every dashboard (with each `host_values` value). Each
/// must succeed; one whose metrics all start with a `present` prefix must
/// return data unless listed in `may_be_empty` (an empty `present` requires
/// nothing). Returns the report, one line per query.
pub async fn check_panel_queries(
    prom: &Prometheus,
    host_values: &[&str],
    present: &[&str],
    may_be_empty: &[(&str, &str)],
) -> Vec<String> {
    use futures::StreamExt;
    let mut jobs = Vec::new();
    for f in dashboard_files() {
        for q in queries(&load(&f)) {
            for host in host_values {
                let expr = substitute_vars(&q.expr, host);
                assert!(!expr.contains('$'), "unsubstituted variable in {expr}");
                let required = !present.is_empty()
                    && metrics_in(&expr)
                        .iter()
                        .all(|m| present.iter().any(|p| m.starts_with(p)))
                    && !may_be_empty.iter().any(|(u, t)| *u == q.dashboard && *t == q.panel);
                let what = format!("{} / {} [{}] host={host}", q.dashboard, q.panel, q.ref_id);
                jobs.push((what, expr, required));
            }
        }
    }
    let results: Vec<_> = futures::stream::iter(jobs)
        .map(|(what, expr, required)| async move {
            let r = prom.query(&expr).await;
            (what, expr, required, r)
        })
        .buffered(8)
        .collect()
        .await;
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (what, expr, required, r) in results {
        match r {
            Err(e) => failures.push(format!("{what}: query failed: {e}\n  {expr}")),
            Ok(r) => {
                let n = r.as_array().map(|a| a.len()).unwrap_or(1);
                let state = if n > 0 {
                    format!("data ({n} series)")
                } else {
                    "no data".into()
                };
                if required && n == 0 {
                    failures.push(format!("{what}: required data, got none\n  {expr}"));
                }
                report.push(format!("{what}: {state}{}", if required { " [required]" } else { "" }));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    report
}

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

/// Writes a fake hwmon chip: temp1 above max and crit (a warning and a
/// critical alert fire), temp2 without thresholds.
fn hot_sysfs(root: &std::path::Path) {
    fake_hwmon(root, 106_000);
    let d = root.join("class/hwmon/hwmon0");
    std::fs::write(d.join("temp2_input"), "45000\n").unwrap();
    std::fs::write(d.join("temp2_label"), "Core 0\n").unwrap();
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
    println!("panel queries against a real Prometheus scraping hostmedic:");
    for line in &report {
        println!("  {line}");
    }
    let with_data = report.iter().filter(|l| l.contains(": data (")).count();
    let required = report.iter().filter(|l| l.ends_with("[required]")).count();
    println!(
        "{} queries, {with_data} returned data, {required} required data",
        report.len()
    );
    assert!(required >= 40, "too few queries required data: {required}");

    // A host that does not exist filters everything out (the variable works).
    let none = check_panel_queries(&prom, &["no-such-host:1"], &[], &[]).await;
    let leaking: Vec<_> = none
        .iter()
        .filter(|l| l.contains(": data (") && !l.contains("variable host"))
        .collect();
    assert!(
        leaking.is_empty(),
        "queries not filtered by host returned data: {leaking:#?}"
    );
    drop(prom);
    hm.stop().await;
}

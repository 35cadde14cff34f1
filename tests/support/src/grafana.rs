//! The Grafana dashboards as test data, shared by tests/e2e/dashboards.rs (host
//! and hwmon world) and tests/e2e/dashboards_full.rs (every source present):
//! loading grafana/dashboards/*.json, extracting every panel, variable and
//! annotation query, substituting Grafana's variables, and running them all
//! against a real Prometheus.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::prometheus::{Prometheus, metrics_in, repo_root};

/// The committed dashboards, sorted.
pub fn dashboard_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("grafana/dashboards"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

pub fn load(p: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Panels including those nested in collapsed rows.
pub fn panels(d: &Value) -> Vec<Value> {
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
    let (report, failures) = run_panel_queries(prom, host_values, present, may_be_empty).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    report
}

/// [`check_panel_queries`] without the assertion: (report, failures), for a
/// caller that waits until a world has settled.
pub async fn run_panel_queries(
    prom: &Prometheus,
    host_values: &[&str],
    present: &[&str],
    may_be_empty: &[(&str, &str)],
) -> (Vec<String>, Vec<String>) {
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
    (report, failures)
}

/// Prints a report of [`check_panel_queries`] under `title` with its totals;
/// returns how many queries were required to return data.
pub fn print_report(title: &str, report: &[String]) -> usize {
    println!("{title}:");
    for line in report {
        println!("  {line}");
    }
    let with_data = report.iter().filter(|l| l.contains(": data (")).count();
    let required = report.iter().filter(|l| l.ends_with("[required]")).count();
    println!(
        "{} queries, {with_data} returned data, {required} required data",
        report.len()
    );
    required
}

/// Writes a fake hwmon chip under `root`: temp1 above max and crit (a
/// warning and a critical alert fire), temp2 without thresholds.
pub fn hot_sysfs(root: &Path) {
    super::fake_hwmon(root, 106_000);
    let d = root.join("class/hwmon/hwmon0");
    std::fs::write(d.join("temp2_input"), "45000\n").unwrap();
    std::fs::write(d.join("temp2_label"), "Core 0\n").unwrap();
}

/// Label names a panel shows: `{{label}}` in each target's legend, and the
/// label columns of a table (its `organize` transformation's order). Each
/// must be carried by a series the panel's queries return with `host` =
/// `host_value` (a target without data is [`run_panel_queries`]' business),
/// except the `(dashboard uid, panel title, label)` of `may_lack`. Returns
/// one line per label shown that no series carries.
pub async fn shown_labels_missing(prom: &Prometheus, host_value: &str, may_lack: &[(&str, &str, &str)]) -> Vec<String> {
    use std::collections::BTreeSet;
    let legend_re = regex::Regex::new(r"\{\{\s*(\w+)\s*\}\}").unwrap();
    let mut missing = Vec::new();
    for f in dashboard_files() {
        let d = load(&f);
        let uid = d["uid"].as_str().unwrap().to_string();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let mut panel_labels = BTreeSet::new();
            let mut any_data = false;
            for t in p["targets"].as_array().cloned().unwrap_or_default() {
                let expr = substitute_vars(t["expr"].as_str().unwrap_or_default(), host_value);
                let Ok(result) = prom.query(&expr).await else { continue };
                let series = result.as_array().cloned().unwrap_or_default();
                if series.is_empty() {
                    continue;
                }
                any_data = true;
                let labels: BTreeSet<String> = series
                    .iter()
                    .flat_map(|s| s["metric"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()))
                    .flatten()
                    .collect();
                for c in legend_re.captures_iter(t["legendFormat"].as_str().unwrap_or_default()) {
                    if !labels.contains(&c[1]) && !may_lack.contains(&(uid.as_str(), title.as_str(), &c[1])) {
                        let r = t["refId"].as_str().unwrap_or_default();
                        missing.push(format!(
                            "{uid} / {title} [{r}]: legend label `{}` not in any series\n  {expr}",
                            &c[1]
                        ));
                    }
                }
                panel_labels.extend(labels);
            }
            if !any_data {
                continue;
            }
            for tr in p["transformations"].as_array().cloned().unwrap_or_default() {
                if tr["id"] != "organize" {
                    continue;
                }
                let columns = tr["options"]["indexByName"].as_object().cloned().unwrap_or_default();
                for col in columns.keys() {
                    if col.starts_with("Value") || panel_labels.contains(col) {
                        continue;
                    }
                    if !may_lack.contains(&(uid.as_str(), title.as_str(), col.as_str())) {
                        missing.push(format!(
                            "{uid} / {title}: table column `{col}` not a label of any series"
                        ));
                    }
                }
            }
        }
    }
    missing
}

/// A host that does not exist filters everything out: only the `host`
/// variable's own query may return data (the variable works in every query).
pub async fn assert_unknown_host_filters_everything(prom: &Prometheus) {
    let none = check_panel_queries(prom, &["no-such-host:1"], &[], &[]).await;
    let leaking: Vec<_> = none
        .iter()
        .filter(|l| l.contains(": data (") && !l.contains("variable host"))
        .collect();
    assert!(
        leaking.is_empty(),
        "queries not filtered by host returned data: {leaking:#?}"
    );
}

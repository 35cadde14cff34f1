//! The shipped alert rules: promtool checks and unit tests, consistency with
//! the runbooks and the metric contract, and the whole path on real parts —
//! a real hostmedic scraped by a real Prometheus (compose/prometheus.yml,
//! shortened `for:`), its alert delivered by a real Alertmanager
//! (compose/alertmanager.yml) to a webhook with the bearer token.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::alertmanager::{Alertmanager, WebhookTarget};
use common::prometheus::*;
use common::sink::Sink;
use common::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Alert names in the shipped rule files, in file order.
fn alert_names() -> Vec<String> {
    let mut v = Vec::new();
    for f in shipped_rule_files() {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            if let Some(name) = line.trim_start().strip_prefix("- alert:") {
                v.push(name.trim().to_string());
            }
        }
    }
    v
}

fn rule_test_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo_root().join("alerting-rules/tests"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    v.sort();
    v
}

#[test]
fn promtool_check_and_unit_tests_pass() {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .args(shipped_rule_files())
        .output()
        .expect("promtool (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check rules:\n{text}");
    assert!(!text.contains("WARNING"), "promtool check rules:\n{text}");

    let out = Command::new("promtool")
        .args(["test", "rules"])
        .args(rule_test_files())
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every alert has a promtool test that expects it to fire and one that
/// expects silence, a runbook section with all parts, and a runbook_url
/// pointing at it; every runbook section belongs to an alert.
#[test]
fn every_alert_has_tests_and_a_runbook() {
    let names = alert_names();
    assert!(names.len() >= 27, "{names:?}");
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicate alert names");

    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for f in rule_test_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(name) = l.trim().strip_prefix("alertname:") {
                let next = lines.get(i + 1).map(|s| s.trim()).unwrap_or_default();
                let name = name.trim().to_string();
                if next == "exp_alerts: []" {
                    silent.insert(name);
                } else if next == "exp_alerts:" && lines.get(i + 2).is_some_and(|s| s.contains("exp_labels")) {
                    fires.insert(name);
                }
            }
        }
    }
    let runbooks = read("docs/runbooks.md");
    let rules_text: String = shipped_rule_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for name in &names {
        assert!(fires.contains(name), "{name}: no promtool test expects it to fire");
        // The heartbeat fires from any input on: nothing can silence it.
        assert!(
            silent.contains(name) || name == hostmedic::receiver::config::DEFAULT_ALERTNAME,
            "{name}: no promtool test expects it to stay silent"
        );
        let heading = format!("\n## {name}\n");
        let start = runbooks
            .find(&heading)
            .unwrap_or_else(|| panic!("{name}: no `## {name}` section in docs/runbooks.md"));
        let body = &runbooks[start + heading.len()..];
        let section = &body[..body.find("\n## ").unwrap_or(body.len())];
        let parts = if section.contains("**Symptom, Diagnosis, Resolution, Prevention.**") {
            vec!["**hostmedic by default.**"]
        } else {
            vec![
                "**Symptom.**",
                "**Diagnosis.**",
                "**Resolution.**",
                "**Prevention.**",
                "**hostmedic by default.**",
            ]
        };
        for part in parts {
            assert!(section.contains(part), "{name}: runbook section lacks {part}");
        }
        let url = format!("runbook_url: \"docs/runbooks.md#{}\"", name.to_lowercase());
        assert!(rules_text.contains(&url), "{name}: missing or wrong {url}");
    }
    for line in runbooks.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            assert!(names.iter().any(|n| n == h), "runbook section `{h}` has no alert");
        }
    }
    // Every intra-document link resolves to a section.
    for (i, _) in runbooks.match_indices("](#") {
        let rest = &runbooks[i + 3..];
        let anchor = &rest[..rest.find(')').unwrap()];
        assert!(
            names.iter().any(|n| n.to_lowercase() == anchor),
            "dangling runbook link #{anchor}"
        );
    }
}

#[test]
fn rules_only_use_contract_metrics() {
    let names = contract_metric_names();
    for f in shipped_rule_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for m in metrics_in(&text) {
            assert!(names.contains(&m), "{}: {m} is not in docs/metrics.md", f.display());
        }
    }
}

#[test]
fn shortened_copy_rewrites_every_for() {
    let dir = tempfile::tempdir().unwrap();
    let files = shortened_rules_copy_keeping(dir.path(), Duration::from_secs(1), &[]);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for l in text.lines().filter(|l| l.trim_start().starts_with("for:")) {
            let v = l.trim_start().strip_prefix("for:").unwrap().trim();
            assert!(v == "0s" || v == "1s", "{}: {l}", f.display());
        }
        // Nothing but the `for:` lines changed.
        let orig = std::fs::read_to_string(repo_root().join("alerting-rules").join(f.file_name().unwrap())).unwrap();
        let strip = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.trim_start().starts_with("for:"))
                .map(String::from)
                .collect()
        };
        assert_eq!(strip(&text), strip(&orig));
    }
    let (t, n) = shorten_for("  for: 10m\n  for: 0s\n  for: 500ms\n", Duration::from_secs(2), &[]);
    assert_eq!((t.as_str(), n), ("  for: 2s\n  for: 0s\n  for: 500ms\n", 3));
    let kept = "  - alert: Quick\n    for: 10m\n  - alert: Machine\n    for: 10m\n";
    let (t, n) = shorten_for(kept, Duration::from_secs(2), &["Machine"]);
    assert_eq!(
        (t.as_str(), n),
        ("  - alert: Quick\n    for: 2s\n  - alert: Machine\n    for: 10m\n", 2)
    );
}

/// A fake hwmon chip: temp1 over its max (100), temp2 without thresholds over
/// the 85 °C fallback, temp3 cool.
fn hot_sysfs(root: &Path) {
    fake_hwmon(root, 101_000);
    let d = root.join("class/hwmon/hwmon0");
    std::fs::write(d.join("temp2_input"), "90000\n").unwrap();
    std::fs::write(d.join("temp2_label"), "Core 9\n").unwrap();
    std::fs::write(d.join("temp3_input"), "40000\n").unwrap();
    std::fs::write(d.join("temp3_max"), "100000\n").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn real_hostmedic_alert_reaches_webhook_through_prometheus_and_alertmanager() {
    let sysfs = tempfile::tempdir().unwrap();
    hot_sysfs(sysfs.path());
    let fault_at = std::time::Instant::now();
    let hm = InProcess::start(config_with_sysfs(sysfs.path())).await;
    let instance = hm.addr.to_string();

    let sink = Sink::start().await;
    let token = "s3cret-test-token";
    let am = Alertmanager::start(
        sysfs.path(),
        "am",
        &WebhookTarget {
            url: sink.url("/api/v1/alerts"),
            bearer: Some(token.into()),
        },
        None,
    );
    let prom = Prometheus::start_with_short_rules(vec![instance.clone()], vec![am.addr()]).await;

    // Every alert of the shipped files is loaded, well-formed, shortened (but
    // the machine-bound ones, see `MACHINE_BOUND_ALERTS`).
    let loaded = prom.rules().await;
    let alerting: Vec<_> = loaded.iter().filter(|r| r["type"] == "alerting").collect();
    assert_eq!(alerting.len(), alert_names().len(), "{}", prom.log());
    for r in &alerting {
        let name = r["name"].as_str().unwrap();
        let sev = r["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["info", "warning", "critical"].contains(&sev),
            "{name}: severity {sev:?}"
        );
        for a in ["summary", "description", "runbook_url"] {
            assert!(
                r["annotations"][a].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: {a}"
            );
        }
        let bound = MACHINE_BOUND_ALERTS.contains(&name);
        assert!(
            bound || r["duration"].as_f64().unwrap() <= 1.0,
            "{name}: {}",
            r["duration"]
        );
    }

    // The hot sensor fires with its labels and a rendered description.
    let a = prom
        .wait_firing(
            "HostmedicTemperatureOverMax",
            &[("sensor", "temp1")],
            Duration::from_secs(60),
        )
        .await;
    assert!(
        a.has_labels(&[
            ("severity", "warning"),
            ("instance", &instance),
            ("job", "hostmedic"),
            ("chip", "coretemp"),
            ("device", "hwmon0"),
            ("source", "hwmon"),
            ("label", "Package id 0"),
        ]),
        "{a:?}"
    );
    assert_eq!(
        a.annotations["description"],
        format!(
            "Sensor coretemp/temp1 (Package id 0) on {instance} reads 101 °C, at or above its high threshold of 100 °C."
        )
    );
    // By now every rule has been evaluated without error.
    for r in prom.rules().await {
        assert_eq!(r["health"], "ok", "{r}");
    }
    // The sensor without thresholds fires the fallback alert, not OverMax.
    let f = prom
        .wait_firing(
            "HostmedicTemperatureOverFallback",
            &[("sensor", "temp2")],
            Duration::from_secs(30),
        )
        .await;
    assert!(
        f.annotations["description"].contains("the configured fallback is 85 °C"),
        "{f:?}"
    );
    let active = prom.alerts().await;
    assert!(
        !active
            .iter()
            .any(|a| a.name().starts_with("HostmedicTemperature") && a.labels["sensor"] == "temp3"),
        "cool sensor alerted: {active:?}"
    );
    assert!(
        !active
            .iter()
            .any(|a| a.name() == "HostmedicTemperatureOverMax" && a.labels["sensor"] == "temp2"),
        "{active:?}"
    );

    // Alertmanager delivers it to the webhook with the bearer token.
    let delivery = eventually(Duration::from_secs(30), "webhook delivery", || async {
        sink.all().into_iter().find(|r| {
            json(&r.body)["alerts"].as_array().is_some_and(|v| {
                v.iter().any(|a| {
                    a["labels"]["alertname"] == "HostmedicTemperatureOverMax" && a["labels"]["sensor"] == "temp1"
                })
            })
        })
    })
    .await;
    println!(
        "hot sensor to webhook delivery (Prometheus 1 s scrape/eval, for: 1s, group_wait 1s): {:.1} s",
        fault_at.elapsed().as_secs_f64()
    );
    assert_eq!(delivery.method, "POST");
    assert_eq!(delivery.path, "/api/v1/alerts");
    assert_eq!(
        delivery.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    let body = json(&delivery.body);
    assert_eq!(body["version"], "4");
    let alert = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "HostmedicTemperatureOverMax")
        .unwrap();
    assert_eq!(alert["labels"]["instance"], instance.as_str());
    assert_eq!(
        alert["annotations"]["runbook_url"],
        "docs/runbooks.md#hostmedictemperatureovermax"
    );
    // group_by ["..."]: one notification per alert.
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1, "{body}");
    assert!(
        !am.alerts().await.is_empty(),
        "alertmanager holds no alerts; log:\n{}",
        am.log()
    );
    drop(prom);
    drop(am);
    hm.stop().await;
}

/// The test copies of the shipped Prometheus and Alertmanager configurations
/// are valid for the real tools (with and without a bearer token).
#[test]
fn test_copies_of_the_compose_configs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let rules = shortened_rules_copy(&dir.path().join("rules"), Duration::from_secs(1));
    let prom = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom,
        prometheus_config(
            &["127.0.0.1:9877".into()],
            &["127.0.0.1:9093".into()],
            rules[0].parent().unwrap(),
        ),
    )
    .unwrap();
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&prom)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    // Every alert and recording rule of the shipped files (counted, so a
    // new rule does not need this test changed).
    let n: usize = shipped_rule_files()
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    l.starts_with("- alert:") || l.starts_with("- record:")
                })
                .count()
        })
        .sum();
    assert!(
        text.contains(&format!("SUCCESS: {n} rules found")),
        "the rules were not loaded:\n{text}"
    );

    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    for (name, cfg) in [
        (
            "with-token.yml",
            alertmanager_config("http://127.0.0.1:1/api/v1/alerts", Some(&token)),
        ),
        (
            "without-token.yml",
            alertmanager_config("http://127.0.0.1:1/api/v1/alerts", None),
        ),
    ] {
        assert_eq!(cfg.contains("credentials_file"), name == "with-token.yml", "{cfg}");
        let f = dir.path().join(name);
        std::fs::write(&f, cfg).unwrap();
        let out = Command::new("amtool").arg("check-config").arg(&f).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

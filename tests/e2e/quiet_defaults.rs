//! A healthy small host is quiet out of the box (issue 21, "Defaults that do
//! not cry wolf"): the shipped rules fire nothing at warning or critical on
//! a healthy host without swap (`alerting-rules/tests/healthy_host.test.yml`,
//! run by promtool here and in `rules::promtool_check_and_unit_tests_pass`),
//! and every shipped Alertmanager configuration routes the info-level
//! `HostmedicNoSwap` to a receiver that notifies nobody, judged by
//! Alertmanager's own router (`amtool config routes test`).

use crate::common;

use std::process::Command;

use common::prometheus::repo_root;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// (alert name, severity) of every shipped alert.
fn alerts() -> Vec<(String, String)> {
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("alerting-rules/hostmedic.rules.yml")).unwrap();
    let mut out = Vec::new();
    for g in rules["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            if let Some(name) = r["alert"].as_str() {
                let sev = r["labels"]["severity"].as_str().unwrap_or_default();
                out.push((name.to_string(), sev.to_string()));
            }
        }
    }
    out
}

/// The healthy-host test names every alert at every evaluation, and
/// expects silence from every alert above info.
#[test]
fn the_healthy_host_rule_test_covers_every_alert() {
    let text = read("alerting-rules/tests/healthy_host.test.yml");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let cases = doc["tests"][0]["alert_rule_test"].as_sequence().unwrap();
    let times = ["1m", "5m", "10m", "15m"];
    for (name, severity) in alerts() {
        for t in times {
            let case = cases
                .iter()
                .find(|c| c["alertname"].as_str() == Some(&name) && c["eval_time"].as_str() == Some(t))
                .unwrap_or_else(|| panic!("healthy_host.test.yml: no case for {name} at {t}"));
            let fired = case["exp_alerts"].as_sequence().unwrap();
            if severity != "info" {
                assert!(
                    fired.is_empty(),
                    "{name} ({severity}) is expected to fire on a healthy host at {t}"
                );
            }
            for a in fired {
                assert_eq!(a["exp_labels"]["severity"].as_str(), Some("info"), "{name} at {t}");
            }
        }
    }
    let out = Command::new("promtool")
        .args(["test", "rules", "alerting-rules/tests/healthy_host.test.yml"])
        .current_dir(repo_root())
        .output()
        .expect("promtool (Debian package prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The receiver `labels` route to in `config`, by Alertmanager's router.
fn route(config: &str, labels: &[&str]) -> String {
    let out = Command::new("amtool")
        .args(["config", "routes", "test", "--config.file"])
        .arg(repo_root().join(config))
        .args(labels)
        .output()
        .expect("amtool (Debian package prometheus-alertmanager)");
    assert!(
        out.status.success(),
        "amtool on {config}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether `receiver` in `config` has no notifier at all (only its name).
fn notifies_nobody(config: &str, receiver: &str) -> bool {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(config)).unwrap();
    let r = doc["receivers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str() == Some(receiver))
        .unwrap_or_else(|| panic!("{config}: no receiver {receiver}"));
    r.as_mapping().unwrap().len() == 1
}

#[test]
fn every_shipped_alertmanager_config_routes_info_to_nobody() {
    if Command::new("amtool").arg("--version").output().is_err() && common::skip_or_fail("amtool is not installed") {
        return;
    }
    // (file, instance label of one of its hosts, the receiver of its alerts)
    let configs = [
        ("docs/getting-started/alertmanager.yml", "localhost:9877", "hostmedic"),
        ("compose/alertmanager.yml", "hostmedic:9877", "hostmedic"),
        ("deploy/fleet/alertmanager.yml", "10.99.0.12:9100", "hostmedic-web-2"),
    ];
    for (file, instance, host_receiver) in configs {
        let inst = format!("instance={instance}");
        let quiet = route(file, &["severity=info", "alertname=HostmedicNoSwap", &inst]);
        assert!(!quiet.contains(','), "{file}: info goes to several receivers: {quiet}");
        assert!(
            notifies_nobody(file, &quiet),
            "{file}: info goes to {quiet}, which notifies"
        );
        // The heartbeat (also info) still reaches hostmedic; a warning too.
        let hb = route(file, &["severity=info", "alertname=HostmedicWatchdog"]);
        assert!(hb.contains(host_receiver), "{file}: the heartbeat goes to {hb}");
        let warn = route(file, &["severity=warning", "alertname=HostmedicDiskAlmostFull", &inst]);
        assert_eq!(warn, host_receiver, "{file}");
        assert!(!notifies_nobody(file, &warn), "{file}");
    }
}

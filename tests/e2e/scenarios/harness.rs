//! Self-check of the e2e wiring the scenario tests stand on: real Prometheus
//! scrapes the real hostmedic binary at 1 s, evaluates a rule on one of its
//! metrics, and real Alertmanager delivers the alert (webhook v4, bearer
//! token) to the local sink within seconds.

use crate::common;

use std::time::Duration;

use common::alertmanager::{Alertmanager, WebhookTarget};
use common::e2e::*;
use common::prometheus::{Prometheus, PrometheusOptions};

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_alertmanager_deliver_hostmedic_metric_alert_with_bearer() {
    let mut st = Stack::new("harness").await;
    let sysfs = st.path("sys");
    common::fake_hwmon(&sysfs, 95_500);
    st.start_hostmedic(
        &common::config::TestConfig::new()
            .global(|g| {
                g.path("sysfs_root", &sysfs);
            })
            .render(),
    );
    let hm = st.hostmedic().addr;

    let am = Alertmanager::start(
        st.dir.path(),
        "alertmanager",
        &WebhookTarget {
            url: st.sink.url("/am-webhook"),
            bearer: Some(TOKEN.to_string()),
        },
        None,
    );
    // A rule written here (not a shipped one): the harness itself is under test.
    let rule = st.path("harness-rules.yml");
    std::fs::write(
        &rule,
        "groups:\n  - name: harness\n    rules:\n      - alert: HarnessHot\n        expr: hostmedic_hwmon_temp_celsius > 90\n        labels:\n          severity: warning\n",
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let prom = Prometheus::start(PrometheusOptions {
        targets: vec![hm.to_string()],
        alertmanagers: vec![am.addr()],
        rule_files: vec![rule],
    })
    .await;
    st.alertmanager = Some(am);
    st.prometheus = Some(prom);

    let got = st
        .wait_for(Duration::from_secs(40), "webhook at the sink", |st| {
            st.sink.all().into_iter().find(|r| r.path.starts_with("/am-webhook"))
        })
        .await;
    eprintln!("harness: rule to webhook in {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(got.method, "POST");
    assert_eq!(got.header("authorization"), Some(&*format!("Bearer {TOKEN}")));
    let v: serde_json::Value = serde_json::from_str(&got.body).expect("json payload");
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing");
    let a = &v["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "HarnessHot");
    assert_eq!(a["labels"]["chip"], "coretemp");
    assert_eq!(a["labels"]["label"], "Package id 0");
    assert!(a["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    assert_eq!(st.query("up{job=\"hostmedic\"}").await, Some(1.0));
    assert_eq!(st.query("hostmedic_hwmon_temp_celsius").await, Some(95.5));
}

#[test]
fn test_copy_edits_must_match_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = rules_test_copy_watching(
        dir.path(),
        Duration::from_secs(2),
        true,
        &[(
            "hostmedic_host_load1 / hostmedic_host_cpus > 2",
            "hostmedic_host_load1 / hostmedic_host_cpus > 1",
        )],
    );
    let all: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    assert!(all.contains("hostmedic_host_load1 / hostmedic_host_cpus > 1"));
    assert!(!all.contains("for: 10m") && !all.contains("for: 5m"));
    // By default the machine-bound alerts keep their shipped `for:`.
    let kept = tempfile::tempdir().unwrap();
    let all: String = rules_test_copy(kept.path(), Duration::from_secs(2), &[])
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let after = |alert: &str| all.split(&format!("- alert: {alert}\n")).nth(1).unwrap_or_default();
    for alert in common::prometheus::MACHINE_BOUND_ALERTS {
        let rest = after(alert);
        let own = rest.split("- alert:").next().unwrap();
        assert!(!own.contains("for: 2s") && own.contains("for: "), "{alert}: {own}");
    }
    let r = std::panic::catch_unwind(|| rules_test_copy(dir.path(), Duration::from_secs(2), &[("no such text", "x")]));
    assert!(r.is_err(), "an edit that matches nothing is refused");
}

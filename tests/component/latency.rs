//! `hostmedic_remediation_latency_seconds{stage}` after a real delivery: a
//! real Alertmanager delivers an alert naming a real process, the receiver
//! kills it and verifies it gone, and the histogram then holds one
//! observation per stage whose values are consistent with each other and
//! with the journal's own timeline (no timing thresholds: how fast the
//! machine is does not matter, only that the instants are ordered).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::alertmanager::{Alertmanager, WebhookTarget};
use common::config::{Action, Rule, TestConfig};
use common::*;
use hostmedic::config::Config;
use hostmedic::receiver::journal::{self, Event};
use hostmedic::receiver::timeline::{Stage, from_journal};
use serde_json::json;

const TOKEN: &str = "t0ken-for-latency-tests-42";
const FAMILY: &str = "hostmedic_remediation_latency_seconds";

/// One stage's series: sum, count and the cumulative buckets by bound.
#[derive(Debug, Default)]
struct Series {
    sum: f64,
    count: f64,
    buckets: Vec<(f64, f64)>,
}

/// The latency family of a scrape, by stage.
fn latency_series(metrics: &str) -> BTreeMap<String, Series> {
    let re = regex::Regex::new(&format!(
        r#"^{FAMILY}_(bucket|sum|count)\{{stage="([a-z_]+)"(?:,le="([^"]+)")?\}} (\S+)$"#
    ))
    .unwrap();
    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(c) = re.captures(line) else { continue };
        let s = out.entry(c[2].to_string()).or_default();
        let v: f64 = c[4].parse().unwrap();
        match &c[1] {
            "sum" => s.sum = v,
            "count" => s.count = v,
            _ => {
                let le = c.get(3).expect("bucket with le").as_str();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                s.buckets.push((le, v));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stage_is_observed_once_and_the_stages_add_up_to_the_total() {
    if !Alertmanager::available() && skip_or_fail("prometheus-alertmanager is not installed") {
        return;
    }
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    // The process the alert names; a rule kills it (TERM ends it) and the
    // verification sees it gone.
    let mut stray = std::process::Command::new("/usr/bin/sleep")
        .arg("3597")
        .spawn()
        .unwrap();
    let pid = stray.id().to_string();
    let text = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"));
        })
        .rule(
            Rule::new("stray", "StraySleep").action(
                Action::new("kill")
                    .set("allow", "^/usr/bin/sleep 3597$")
                    .set("grace", "2s"),
            ),
        )
        .render();
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let am = Alertmanager::start(
        d,
        "am",
        &WebhookTarget {
            url: srv.url("/api/v1/alerts"),
            bearer: Some(TOKEN.into()),
        },
        None,
    );
    // As Prometheus sends it: startsAt is when the alert fired, now.
    let starts = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let labels = json!({"alertname": "StraySleep", "instance": "h1", "pid": pid});
    am.post_alerts(&json!([{"labels": labels, "startsAt": starts}])).await;

    let journal_path = d.join("journal.jsonl");
    let entries = eventually(Duration::from_secs(30), "kill verified", || async {
        let entries = journal::read_from(&journal_path, 0).ok()?.0;
        entries
            .iter()
            .any(|e| matches!(&e.event, Event::Verify { result, .. } if result == "verified"))
            .then_some(entries)
    })
    .await;
    let status = stray.wait().unwrap();
    assert!(!status.success(), "the stray process was killed: {status:?}");

    let (code, metrics) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    promtool_check_metrics(&metrics);
    let series = latency_series(&metrics);
    let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(series.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut n = names.clone();
        n.sort();
        n
    });
    let mut sums = BTreeMap::new();
    for (stage, s) in &series {
        assert_eq!(s.count, 1.0, "{stage}: one run, one observation");
        assert!(s.sum >= 0.0, "{stage}: {}", s.sum);
        // Cumulative buckets, bounds rising, +Inf last and equal to the count.
        assert!(
            s.buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{stage}: {:?}",
            s.buckets
        );
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 1.0)), "{stage}");
        // The one observation sits in the first bucket whose bound holds it.
        let first = s.buckets.iter().find(|(_, c)| *c == 1.0).unwrap().0;
        assert!(s.sum <= first, "{stage}: {} in bucket le={first}", s.sum);
        sums.insert(stage.as_str(), s.sum);
    }
    // The stages partition startsAt → verified: they add up to the total,
    // so each is at most the total.
    let parts: f64 = names[..5].iter().map(|n| sums[n]).sum();
    assert!((parts - sums["total"]).abs() < 1e-3, "{sums:?}");
    assert!(names[..5].iter().all(|n| sums[n] <= sums["total"] + 1e-9), "{sums:?}");

    // The journal tells the same story: one run, every stage known, each
    // close to the live value (the journal's action instants are taken when
    // the entry is written, a few milliseconds later at most on a busy box,
    // so only their consistency is compared, not a speed).
    let runs = from_journal(&entries);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let tl = runs.values().next().unwrap();
    assert!(tl.succeeded, "{tl:?}");
    let stages: BTreeMap<&str, f64> = tl.stages().into_iter().map(|(s, d)| (s.as_str(), d)).collect();
    assert_eq!(stages.len(), 6, "{stages:?}");
    assert!(stages.values().all(|d| *d >= 0.0), "{stages:?}");
    let received = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Alert { received, .. } => *received,
            _ => None,
        })
        .expect("the alert entry has `received`");
    let decided = entries
        .iter()
        .find(|e| matches!(e.event, Event::Decision { .. }))
        .unwrap()
        .ts;
    assert!(received <= decided, "received {received} after the decision {decided}");
    assert!(
        (stages["alert_to_delivery"] - sums["alert_to_delivery"]).abs() < 1e-3,
        "the same instants: {stages:?} vs {sums:?}"
    );
    // Alertmanager first: no delivery into a closed port.
    drop(am);
    srv.stop().await;
}

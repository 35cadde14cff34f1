//! The webhook receiver and remediation engine on real parts: a real
//! Alertmanager (Debian's `prometheus-alertmanager`) delivering with bearer
//! auth, the real hostmedic binary killed with SIGKILL and restarted, two
//! clustered Alertmanagers, a local HTTP sink receiving escalations, and a
//! corpus of bad requests. The observable effect of an action is an `exec`
//! of `/usr/bin/mktemp` creating one file per run.
//!
//! This file holds what every test here shares: the `Fixture` (token,
//! journal, effects folder) and the payload and post helpers; the tests are
//! in one file per topic below.

use crate::common;

mod alertmanager;
mod budget;
mod modes;
mod requests;
mod systemd;

use std::path::PathBuf;
use std::time::Duration;

use common::alertmanager::{Alertmanager, WebhookTarget};
use common::config::{Action, Rule, Section, TestConfig};
use common::sink::Sink;
use common::*;
use hostmedic::config::Config;
use hostmedic::receiver::journal::{self, Decision, Entry, Event};
use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "t0ken-for-tests-0123456789";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: receiver_dir(TOKEN),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn effects(&self) -> usize {
        std::fs::read_dir(self.path("effects")).map(|d| d.count()).unwrap_or(0)
    }
    fn journal(&self) -> Vec<Entry> {
        journal::read_from(&self.path("journal.jsonl"), 0).unwrap().0
    }
    /// Config text: receiver with bearer auth, an exec rule (`WorkerDown`,
    /// budget `budget` per hour, no cooldown), a systemd rule (`UnitFailed`,
    /// target from the `unit` label) and a notify-only rule (`Runaway`).
    fn config(&self, sink: &str, budget: i64, receiver_extra: impl FnOnce(&mut Section)) -> String {
        let d = self.dir.path();
        TestConfig::new()
            .disable(&["host", "hwmon"])
            // Alerts name host "h1" (instance) or none (fleet identity, issue 9).
            .single_host("h1")
            .receiver(d, |r| {
                r.path("bearer_token_file", d.join("token")).set("cooldown", "0s");
                receiver_extra(r);
            })
            .notify_webhook("sink", sink)
            .rule(
                Rule::new("worker", "WorkerDown")
                    .strings("matchers", [r#"severity=~"critical|page""#])
                    .action(Action::exec([
                        "/usr/bin/mktemp",
                        &format!("{}/effects/ran.XXXXXX", d.display()),
                    ]))
                    .set("budget_attempts", budget)
                    .strings("escalate", ["sink"]),
            )
            .rule(Rule::new("unit", "UnitFailed").action(Action::systemd("restart", "{{ labels.unit }}")))
            .rule(
                Rule::new("runaway", "Runaway")
                    .set("mode", "notify-only")
                    .strings("notify", ["sink"])
                    .action(Action::exec([
                        "/usr/bin/mktemp",
                        &format!("{}/effects/approved.XXXXXX", d.display()),
                    ])),
            )
            .render()
    }
    fn write_config(&self, text: &str) -> PathBuf {
        let p = self.path("hostmedic.toml");
        std::fs::write(&p, text).unwrap();
        p
    }
}

pub(crate) fn alert(name: &str, labels: &[(&str, &str)], starts: &str, status: &str, fp: &str) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("alertname".into(), json!(name));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    json!({"status": status, "labels": l, "annotations": {"summary": "test alert"},
           "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
           "generatorURL": "http://prom/graph", "fingerprint": fp})
}

fn worker(starts: &str) -> Value {
    alert(
        "WorkerDown",
        &[("severity", "critical")],
        starts,
        "firing",
        "00aa11bb22cc33dd",
    )
}

pub(crate) async fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, String) {
    let mut r = client().post(url).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn decisions(entries: &[Entry]) -> Vec<(String, Decision, Option<String>)> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Decision {
                rule, decision, reason, ..
            } => Some((rule.clone(), *decision, reason.map(|r| r.as_str().to_string()))),
            _ => None,
        })
        .collect()
}

async fn wait_effects(fx: &Fixture, n: usize) {
    eventually(Duration::from_secs(20), &format!("{n} action effects"), || async {
        (fx.effects() == n).then_some(())
    })
    .await;
}

fn am_or_skip() -> bool {
    if Alertmanager::available() {
        return false;
    }
    skip_or_fail("prometheus-alertmanager is not installed")
}

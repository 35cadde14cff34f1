//! The webhook receiver and remediation engine on real parts: a real
//! Alertmanager (Debian's `prometheus-alertmanager`) delivering with bearer
//! auth, the real hostmedic binary killed with SIGKILL and restarted, two
//! clustered Alertmanagers, a local HTTP sink receiving escalations, and a
//! corpus of bad requests. The observable effect of an action is an `exec`
//! of `/usr/bin/mktemp` creating one file per run.
//!
//! Over 600 lines on purpose: one module of the component binary per area,
//! every test here sharing the `Fixture` (token, journal, effects folder) and
//! the payload and post helpers at the top.

use crate::common;

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

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_delivers_with_bearer_auth_and_the_action_runs_once() {
    if am_or_skip() {
        return;
    }
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(Config::parse(&fx.config(&sink.url("/hook"), 3, |_| {}), "test").unwrap()).await;
    let am = Alertmanager::start(
        fx.dir.path(),
        "am",
        &WebhookTarget {
            url: srv.url("/api/v1/alerts"),
            bearer: Some(TOKEN.into()),
        },
        None,
    );
    let starts = "2026-01-01T00:00:00Z";
    let labels = json!({"alertname": "WorkerDown", "severity": "critical", "instance": "h1"});
    am.post_alerts(&json!([{"labels": labels, "annotations": {"summary": "worker is down"}, "startsAt": starts}]))
        .await;
    wait_effects(&fx, 1).await;
    // Re-sent by Prometheus: Alertmanager de-duplicates; its group re-sends
    // (if any) carry the same fingerprint+startsAt: still exactly one run.
    am.post_alerts(&json!([{"labels": labels, "startsAt": starts}])).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fx.effects(), 1, "action ran more than once");

    let entries = fx.journal();
    let d = decisions(&entries);
    assert_eq!(d.iter().filter(|x| x.1 == Decision::Act).count(), 1, "{d:?}");
    let action = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Action { result, action, .. } => Some((action.clone(), result.clone())),
            _ => None,
        })
        .expect("action result journaled");
    assert_eq!(action, ("exec".to_string(), "ok".to_string()));
    // The delivery really came from Alertmanager, with its fingerprint.
    let fp = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Alert {
                fingerprint, receiver, ..
            } => Some((fingerprint.clone(), receiver.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(fp.1, "hostmedic");
    assert_eq!(fp.0.len(), 16);

    // Resolution is delivered (send_resolved) and journaled.
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    am.post_alerts(&json!([{"labels": labels, "startsAt": starts, "endsAt": now}]))
        .await;
    eventually(Duration::from_secs(20), "resolved delivery journaled", || async {
        fx.journal()
            .iter()
            .any(|e| matches!(&e.event, Event::Alert { status, .. } if status == "resolved"))
            .then_some(())
    })
    .await;
    assert_eq!(fx.effects(), 1);

    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(
        metrics.contains("hostmedic_alerts_received_total{status=\"firing\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_alerts_received_total{status=\"resolved\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_actions_total{action=\"exec\",result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_action_duration_seconds_count{action=\"exec\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"200\"}"),
        "{metrics}"
    );
    assert!(!am.log().contains("status code 401"), "{}", am.log());
    drop(am);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn budget_exhausted_escalates_and_holds_until_cleared_or_resolved() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(Config::parse(&fx.config(&sink.url("/hook"), 2, |_| {}), "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    // Three firings of the same alert (each a new startsAt): two attempts,
    // then the budget is spent.
    for (i, s) in ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z"].iter().enumerate() {
        let (code, body) = post(&url, Some(TOKEN), &payload(vec![worker(s)])).await;
        assert_eq!(code, 200, "{body}");
        wait_effects(&fx, i + 1).await;
    }
    eventually(Duration::from_secs(10), "two action results journaled", || async {
        (fx.journal()
            .iter()
            .filter(|e| matches!(e.event, Event::Action { .. }))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    let (code, _) = post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:20:00Z")])).await;
    assert_eq!(code, 200);
    let esc = eventually(Duration::from_secs(20), "escalation at the sink", || async {
        sink.all()
            .into_iter()
            .find(|r| r.body.contains("remediation exhausted"))
    })
    .await;
    assert_eq!(esc.method, "POST");
    assert!(esc.body.contains("after 2 remediation attempt(s)"), "{}", esc.body);
    assert!(esc.body.contains("History"), "{}", esc.body);
    assert!(esc.body.contains("exec ok"), "history lists the attempts: {}", esc.body);
    assert!(!esc.body.contains(TOKEN));
    assert_eq!(fx.effects(), 2);

    // Held: a further firing does nothing.
    post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:30:00Z")])).await;
    let d = decisions(&fx.journal());
    assert_eq!(d.last().unwrap().2.as_deref(), Some("hold"), "{d:?}");
    let (code, status) = client()
        .get(srv.url("/api/v1/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(code, 200);
    let status: Value = status.json().await.unwrap();
    let target = status["holds"].as_object().unwrap().keys().next().unwrap().clone();
    assert!(target.starts_with("exec:/usr/bin/mktemp"), "{status}");
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(metrics.contains("hostmedic_remediation_holds_active 1"), "{metrics}");
    assert!(
        metrics.contains("hostmedic_actions_skipped_total{reason=\"budget\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_actions_skipped_total{reason=\"hold\"} 1"),
        "{metrics}"
    );
    // The status file is written atomically in the background.
    eventually(Duration::from_secs(10), "status file with the hold", || async {
        let s = std::fs::read_to_string(fx.path("status.json")).ok()?;
        s.contains("\"holds\"")
            .then_some(())
            .filter(|_| s.contains("exec:/usr/bin/mktemp"))
    })
    .await;

    // A person clears it (wrong token first): acting resumes.
    let clear = srv.url(&format!(
        "/api/v1/holds/{}/clear",
        hostmedic::http::percent_encode(&target)
    ));
    assert_eq!(
        client().post(&clear).bearer_auth("nope").send().await.unwrap().status(),
        401
    );
    assert_eq!(
        client().post(&clear).bearer_auth(TOKEN).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        client().post(&clear).bearer_auth(TOKEN).send().await.unwrap().status(),
        404
    );
    post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:40:00Z")])).await;
    wait_effects(&fx, 3).await;
    post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:50:00Z")])).await;
    wait_effects(&fx, 4).await;
    // Spent again → held again; this time the alert resolves → released.
    post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T01:00:00Z")])).await;
    let mut resolved = worker("2026-01-01T01:00:00Z");
    resolved["status"] = json!("resolved");
    post(&url, Some(TOKEN), &payload(vec![resolved])).await;
    let cleared: Vec<String> = fx
        .journal()
        .iter()
        .filter_map(|e| match &e.event {
            Event::HoldCleared { by, .. } => Some(by.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cleared, vec!["api".to_string(), "resolved".to_string()]);
    assert_eq!(fx.effects(), 4);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart_keep_budget_and_journal() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let cfg = fx.write_config(&fx.config(&sink.url("/hook"), 2, |_| {}));
    let mut bin = Binary::start(&cfg, fx.dir.path());
    let url = bin.url("/api/v1/alerts");
    for (i, s) in ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z"].iter().enumerate() {
        assert_eq!(post(&url, Some(TOKEN), &payload(vec![worker(s)])).await.0, 200);
        wait_effects(&fx, i + 1).await;
    }
    // Wait for the action results to be journaled, then kill -9.
    eventually(Duration::from_secs(10), "two action results", || async {
        (fx.journal()
            .iter()
            .filter(|e| matches!(e.event, Event::Action { .. }))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    let before = fx.journal();
    bin.signal_and_wait(nix::sys::signal::Signal::SIGKILL, Duration::from_secs(10))
        .expect("killed");
    // A crash in the middle of a write leaves a torn line.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(fx.path("journal.jsonl"))
        .unwrap();
    f.write_all(br#"{"seq":999,"ts":1.0,"event":"alert","key":"x"#).unwrap();
    drop(f);
    // And the checkpoint is gone: state is rebuilt from the journal alone.
    let _ = std::fs::remove_file(fx.path("state.json"));

    let bin = Binary::start(&cfg, fx.dir.path());
    let url = bin.url("/api/v1/alerts");
    // A duplicate of an already handled firing is still recognised.
    post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:10:00Z")])).await;
    // The budget survived: the third firing is not acted on but held.
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:20:00Z")]))
            .await
            .0,
        200
    );
    eventually(Duration::from_secs(20), "escalation after restart", || async {
        sink.all()
            .into_iter()
            .find(|r| r.body.contains("remediation exhausted"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.effects(), 2);
    let after = fx.journal();
    assert_eq!(&after[..before.len()], &before[..], "journal kept intact");
    let d = decisions(&after[before.len()..]);
    assert_eq!(
        d.iter().map(|x| x.2.clone().unwrap_or_default()).collect::<Vec<_>>(),
        vec!["budget".to_string()],
        "{d:?}"
    );
    assert!(
        after[before.len()..]
            .iter()
            .any(|e| matches!(&e.event, Event::Alert { duplicate: true, .. }))
    );
    assert!(bin.log().contains("torn"), "{}", bin.log());
    // Sequence numbers continue after the restart.
    assert!(after.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

/// Duplicates are deliveries within `dedup_window` of the previous one (the
/// window slides); an alert that keeps firing and is repeated after the window
/// (Alertmanager's `repeat_interval`) is a new occurrence and acts again. The
/// de-dup memory survives a restart through the journal replay the
/// checkpoint points at.
#[tokio::test(flavor = "multi_thread")]
async fn repeat_after_the_dedup_window_acts_again_and_dedup_survives_a_restart() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let cfg = fx.write_config(&fx.config(&sink.url("/hook"), 5, |r| {
        r.set("dedup_window", "3s");
    }));
    let mut bin = Binary::start(&cfg, fx.dir.path());
    let url = bin.url("/api/v1/alerts");
    let firing = payload(vec![worker("2026-01-01T00:00:00Z")]);
    assert_eq!(post(&url, Some(TOKEN), &firing).await.0, 200);
    wait_effects(&fx, 1).await;
    // Re-sent every second for longer than the window: still one occurrence.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(post(&url, Some(TOKEN), &firing).await.0, 200);
    }
    assert_eq!(fx.effects(), 1, "re-sends within the sliding window are duplicates");
    // Silence for longer than the window, then Alertmanager repeats it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(post(&url, Some(TOKEN), &firing).await.0, 200);
    wait_effects(&fx, 2).await;

    // A graceful stop writes the checkpoint, without the de-dup memory but
    // with the journal offset that rebuilds it; a delivery right after the
    // restart is still a duplicate.
    bin.signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(10))
        .expect("stopped");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(fx.path("state.json")).unwrap()).unwrap();
    assert!(
        state.get("dedup").is_none(),
        "no de-dup memory in the checkpoint: {state}"
    );
    assert!(
        state["dedup_offset"].as_u64().unwrap() < state["journal_offset"].as_u64().unwrap(),
        "the replay starts before the checkpoint: {state}"
    );
    let bin = Binary::start(&cfg, fx.dir.path());
    assert_eq!(post(&bin.url("/api/v1/alerts"), Some(TOKEN), &firing).await.0, 200);
    eventually(Duration::from_secs(10), "duplicate journaled after restart", || async {
        fx.journal()
            .iter()
            .rev()
            .any(|e| matches!(e.event, Event::Alert { duplicate: true, .. }) && e.seq > 1)
            .then_some(())
    })
    .await;
    let last = fx.journal().pop().unwrap();
    assert!(
        matches!(last.event, Event::Alert { duplicate: true, .. }),
        "the delivery after the restart is a duplicate: {last:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.effects(), 2);
    assert!(!bin.log().contains("checkpoint unreadable"), "{}", bin.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clustered_alertmanagers_cause_one_action() {
    if am_or_skip() {
        return;
    }
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(Config::parse(&fx.config(&sink.url("/hook"), 3, |_| {}), "test").unwrap()).await;
    let hook = WebhookTarget {
        url: srv.url("/api/v1/alerts"),
        bearer: Some(TOKEN.into()),
    };
    let am1 = Alertmanager::start(fx.dir.path(), "am1", &hook, Some(&[]));
    let am2 = Alertmanager::start(fx.dir.path(), "am2", &hook, Some(&[am1.cluster_addr().unwrap()]));
    eventually(Duration::from_secs(30), "a two-member gossip cluster", || async {
        (am1.cluster_peers().await == 2 && am2.cluster_peers().await == 2).then_some(())
    })
    .await;
    // Prometheus sends every alert to every Alertmanager.
    let labels = json!({"alertname": "WorkerDown", "severity": "page"});
    let alerts = json!([{"labels": labels, "startsAt": "2026-01-01T00:00:00Z"}]);
    am1.post_alerts(&alerts).await;
    am2.post_alerts(&alerts).await;
    wait_effects(&fx, 1).await;
    // Give the second peer time to (not) deliver, and any duplicate to land.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fx.effects(), 1);
    let entries = fx.journal();
    let deliveries = entries
        .iter()
        .filter(|e| matches!(e.event, Event::Alert { .. }))
        .count();
    assert!(deliveries >= 1);
    assert_eq!(decisions(&entries).iter().filter(|d| d.1 == Decision::Act).count(), 1);
    drop((am1, am2));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_only_waits_for_approval_via_api_and_cli() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let text = fx.config(&sink.url("/hook"), 3, |_| {});
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    let runaway = |s: &str, fp: &str| alert("Runaway", &[("pid", "4242")], s, "firing", fp);
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![runaway("2026-01-01T00:00:00Z", "01")]))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![runaway("2026-01-01T00:00:00Z", "02")]))
            .await
            .0,
        200
    );
    eventually(Duration::from_secs(20), "approval request at the sink", || async {
        sink.all().into_iter().find(|r| r.body.contains("approval needed"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.effects(), 0, "notify-only must not act");
    let ids = decision_ids(&fx.journal(), Decision::PendingApproval);
    assert_eq!(ids.len(), 2);
    // Each request's approval note is sent by its own task, so the two may
    // reach the sink in either order: take the first request's by its id.
    let wanted = format!("hostmedic approve {}`", ids[0]);
    let note = eventually(Duration::from_secs(20), "the first request's approval note", || async {
        sink.all().into_iter().find(|r| r.body.contains(&wanted))
    })
    .await;
    assert!(note.body.contains("test alert"), "the alert's summary: {}", note.body);

    let approve = |id: &str| srv.url(&format!("/api/v1/actions/{id}/approve"));
    assert_eq!(client().post(approve(&ids[0])).send().await.unwrap().status(), 401);
    assert_eq!(
        client()
            .get(approve(&ids[0]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        client()
            .post(approve("a999999"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client()
            .post(approve(&ids[0]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    wait_effects(&fx, 1).await;
    let again = client().post(approve(&ids[0])).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(
        again.status(),
        409,
        "a second approval is a conflict, not a missing action"
    );
    let body = again.text().await.unwrap();
    assert!(body.contains("already approved by api at "), "{body}");

    // The CLI approves the second one through the running server.
    let cfg = fx.write_config(&text);
    let out = std::process::Command::new(binary_path())
        .args(["--config"])
        .arg(&cfg)
        .args(["approve", &ids[1], "--url", &srv.url("")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_effects(&fx, 2).await;
    let by = approved_by(&fx.journal());
    assert_eq!(by.len(), 2);
    assert_eq!(by[0], "api");
    assert!(by[1].starts_with("cli:"), "{by:?}");

    // The markdown incident log tells the story.
    let out = std::process::Command::new(binary_path())
        .args(["--config"])
        .arg(&cfg)
        .args(["incidents", "--since", "1h"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(md.starts_with("# hostmedic incident log"), "{md}");
    assert!(md.contains("**Runaway** firing `pid=4242`"), "{md}");
    assert!(md.contains("waiting for approval"), "{md}");
    assert!(md.contains("approved by api"), "{md}");
    assert!(
        md.contains("exec /usr/bin/mktemp") && !md.contains("exec exec:"),
        "{md}"
    );
    let out = std::process::Command::new(binary_path())
        .args(["--config"])
        .arg(&cfg)
        .args(["incidents", "--format", "json", "--since", "2999-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn global_dry_run_records_what_would_run() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(
        Config::parse(
            &fx.config(&sink.url("/hook"), 1, |r| {
                r.set("dry_run", true);
            }),
            "test",
        )
        .unwrap(),
    )
    .await;
    let url = srv.url("/api/v1/alerts");
    for s in ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"] {
        assert_eq!(post(&url, Some(TOKEN), &payload(vec![worker(s)])).await.0, 200);
    }
    eventually(Duration::from_secs(20), "three dry-run results", || async {
        (fx.journal()
            .iter()
            .filter(|e| matches!(&e.event, Event::Action { result, .. } if result == "dry_run"))
            .count()
            == 3)
            .then_some(())
    })
    .await;
    assert_eq!(fx.effects(), 0);
    // Dry runs do not spend the budget.
    assert!(decisions(&fx.journal()).iter().all(|d| d.1 == Decision::DryRun));
    srv.stop().await;
}

/// A dry run's outcome notification says nothing ran; a real run's says it
/// ran and how it went.
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_outcome_title_says_nothing_ran() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let d = fx.dir.path();
    let text = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token")).set("cooldown", "0s");
        })
        .notify_webhook("sink", &sink.url("/hook"))
        .rule(
            Rule::new("trial", "WorkerDown")
                .set("mode", "dry-run")
                .strings("notify", ["sink"])
                .action(Action::exec([
                    "/usr/bin/mktemp",
                    &format!("{}/effects/ran.XXXXXX", d.display()),
                ])),
        )
        .rule(
            Rule::new("real", "DiskFull")
                .strings("notify", ["sink"])
                .action(Action::exec(["/bin/true"])),
        )
        .render();
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let disk = alert(
        "DiskFull",
        &[("severity", "warning")],
        "2026-01-01T00:00:00Z",
        "firing",
        "0d15c",
    );
    let url = srv.url("/api/v1/alerts");
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:00:00Z"), disk]))
            .await
            .0,
        200
    );
    let titles = eventually(Duration::from_secs(20), "two outcome notifications", || async {
        let t: Vec<String> = sink
            .all()
            .iter()
            .map(|r| r.json()["title"].as_str().unwrap_or_default().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        (t.len() == 2).then_some(t)
    })
    .await;
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("trial dry run on exec:") && t.ends_with(": nothing ran, nothing changed")),
        "{titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.starts_with("trial") && t.contains(" ran on")),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"real ran on exec:/bin/true: ok".to_string()),
        "{titles:?}"
    );
    assert_eq!(fx.effects(), 0, "the dry run ran nothing");
    srv.stop().await;
}

#[test]
fn refuses_non_loopback_without_auth_and_names_bad_rule_keys() {
    let fx = Fixture::new();
    let d = fx.dir.path().display();
    let open = format!(
        "[receiver]\nenabled = true\njournal_path = \"{d}/j\"\nstate_path = \"{d}/s\"\nstatus_path = \"{d}/st\"\n"
    );
    let cfg = fx.write_config(&open);
    let out = std::process::Command::new(binary_path())
        .arg("--config")
        .arg(&cfg)
        .args(["--web.listen-address", "0.0.0.0:0", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("receiver.allow_unauthenticated_non_loopback"), "{err}");

    let check = |text: &str| {
        let p = fx.write_config(text);
        let out = std::process::Command::new(binary_path())
            .arg("check-config")
            .arg(&p)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let rule = |body: &str| format!("{open}\n[[remediation]]\nname = \"r\"\nalertname = \"A\"\n{body}\n");
    let e = check(&rule(
        "actions = [{ type = \"exec\", argv = [\"/nonexistent/script.sh\"] }]",
    ));
    assert!(e.contains("remediation[0].actions[0].argv[0]"), "{e}");
    let e = check(&rule(
        "matchers = ['unit=~\"(\"']\nactions = [{ type = \"exec\", argv = [\"/usr/bin/true\"] }]",
    ));
    assert!(e.contains("remediation[0].matchers[0]"), "{e}");
    let e = check(&rule("actions = [{ type = \"reboot\" }]"));
    assert!(e.contains("reboot"), "{e}");
    let e = check(&rule(
        "escalate = [\"pager\"]\nactions = [{ type = \"exec\", argv = [\"/usr/bin/true\"] }]",
    ));
    assert!(e.contains("remediation[0].escalate[0]"), "{e}");
    let e = check(&format!("{open}bearer_token_file = \"{d}/missing\"\n"));
    assert!(e.contains("receiver.bearer_token_file"), "{e}");
}

/// A corpus of bad requests: each gets a 4xx and nothing runs.
#[tokio::test(flavor = "multi_thread")]
async fn bad_request_corpus_gets_4xx_and_runs_nothing() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(Config::parse(&fx.config(&sink.url("/hook"), 3, |_| {}), "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    let good = payload(vec![worker("2026-01-01T00:00:00Z")]);
    let good_text = good.to_string();
    let unit = |u: &str| {
        payload(vec![alert(
            "UnitFailed",
            &[("unit", u)],
            "2026-01-01T00:00:00Z",
            "firing",
            "ab",
        )])
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let many: Vec<Value> = (0..10_000)
        .map(|i| {
            alert(
                "WorkerDown",
                &[("severity", "critical")],
                "2026-01-01T00:00:00Z",
                "firing",
                &format!("{i:x}"),
            )
        })
        .collect();
    let many_small = json!({"status": "firing", "alerts": (0..1001).map(|i| json!({"status":"firing","labels":{"alertname":"WorkerDown","severity":"critical"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":format!("{i:x}")})).collect::<Vec<_>>()});

    enum Auth {
        Good,
        None,
        Bearer(&'static str),
        Raw(&'static str),
    }
    struct Case {
        name: &'static str,
        method: &'static str,
        auth: Auth,
        ctype: &'static str,
        body: Vec<u8>,
        want: u16,
    }
    let case = |name, body: String, want| Case {
        name,
        method: "POST",
        auth: Auth::Good,
        ctype: "application/json",
        body: body.into_bytes(),
        want,
    };
    let mut cases = vec![
        Case {
            method: "GET",
            ..case("wrong method GET", String::new(), 405)
        },
        Case {
            method: "PUT",
            ..case("wrong method PUT", good_text.clone(), 405)
        },
        Case {
            method: "DELETE",
            ..case("wrong method DELETE", good_text.clone(), 405)
        },
        Case {
            auth: Auth::None,
            ..case("no auth", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Bearer("wrong"),
            ..case("wrong token", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Bearer("t0ken-for-tests-012345678"),
            ..case("token prefix", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Bearer("t0ken-for-tests-01234567890"),
            ..case("token with extra char", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Raw("Basic dDB rZW4="),
            ..case("basic instead of bearer", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Raw("t0ken-for-tests-0123456789"),
            ..case("token without scheme", good_text.clone(), 401)
        },
        Case {
            ctype: "text/plain",
            ..case("wrong content type", good_text.clone(), 415)
        },
        Case {
            ctype: "",
            ..case("no content type", good_text.clone(), 415)
        },
        case(
            "huge body (2 MiB)",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20)),
            413,
        ),
        case("10,000 alerts in one payload", payload(many).to_string(), 413),
        case("1,001 small alerts", many_small.to_string(), 413),
        case("empty body", String::new(), 400),
        case("truncated JSON", good_text[..good_text.len() / 2].to_string(), 400),
        case("not JSON", "alert!".into(), 400),
        case("JSON array", "[]".into(), 400),
        case("alerts is a string", with(&|v| v["alerts"] = json!("many")), 400),
        case(
            "labels is a list",
            with(&|v| v["alerts"][0]["labels"] = json!(["a"])),
            400,
        ),
        case(
            "label value is a number",
            with(&|v| v["alerts"][0]["labels"]["severity"] = json!(5)),
            400,
        ),
        case(
            "status unknown",
            with(&|v| v["alerts"][0]["status"] = json!("burning")),
            400,
        ),
        case(
            "fingerprint not hex",
            with(&|v| v["alerts"][0]["fingerprint"] = json!("zz;rm -rf")),
            400,
        ),
        case(
            "startsAt not a time",
            with(&|v| v["alerts"][0]["startsAt"] = json!("yesterday")),
            400,
        ),
        case(
            "missing alerts",
            with(&|v| v.as_object_mut().unwrap().remove("alerts").map(|_| ()).unwrap()),
            400,
        ),
        case(
            "label name with a dash",
            with(&|v| v["alerts"][0]["labels"]["bad-name"] = json!("x")),
            400,
        ),
        case("payload version 5", with(&|v| v["version"] = json!("5")), 400),
        case(
            "payload without version",
            with(&|v| v.as_object_mut().unwrap().remove("version").map(|_| ()).unwrap()),
            400,
        ),
        case(
            "label given twice",
            good_text.replacen("\"labels\":{", "\"labels\":{\"severity\":\"info\",", 1),
            400,
        ),
        case("unit with slash", unit("../../etc/passwd").to_string(), 422),
        case("unit with ..", unit("foo..service").to_string(), 422),
        case("unit with space", unit("foo bar.service").to_string(), 422),
        case("unit with shell chars", unit("x.service;reboot").to_string(), 422),
        case("unit with $()", unit("$(reboot).service").to_string(), 422),
        case("unit with newline", unit("a.service\nb.service").to_string(), 422),
        case("unit without type", unit("sshd").to_string(), 422),
        case("unit empty", unit("").to_string(), 422),
        case(
            "unit label missing",
            payload(vec![alert("UnitFailed", &[], "2026-01-01T00:00:00Z", "firing", "ab")]).to_string(),
            422,
        ),
    ];
    let total = cases.len();
    assert!(total >= 25);
    let http = client();
    for c in cases.drain(..) {
        if c.body.len() > (1 << 20) {
            // An oversized body is refused from its Content-Length before it
            // is read; the connection then closes, so speak raw HTTP to see
            // the answer deterministically (a client still sending would see
            // a reset instead).
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
            let head = format!(
                "POST /api/v1/alerts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                c.body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            let _ = s.write_all(&c.body[..65536]).await;
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(
                text.starts_with(&format!("HTTP/1.1 {}", c.want)),
                "case {:?}: {text}",
                c.name
            );
            continue;
        }
        let mut r = http.request(c.method.parse().unwrap(), &url).body(c.body);
        if !c.ctype.is_empty() {
            r = r.header("content-type", c.ctype);
        }
        r = match c.auth {
            Auth::Good => r.bearer_auth(TOKEN),
            Auth::None => r,
            Auth::Bearer(t) => r.bearer_auth(t),
            Auth::Raw(h) => r.header("authorization", h),
        };
        let resp = r.send().await.unwrap();
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(code, c.want, "case {:?}: {text}", c.name);
        assert!(!text.contains(TOKEN), "case {:?} echoed the token", c.name);
    }
    // Other endpoints: unknown action id, bad paths, wrong methods.
    let other = [
        ("POST", "/api/v1/actions/nope/approve", 404),
        ("POST", "/api/v1/actions/a1/reject", 404),
        ("GET", "/api/v1/actions/a1/approve", 405),
        ("POST", "/api/v1/holds/%zz/clear", 404),
        ("POST", "/api/v1/holds/systemd:system:x.service/clear", 404),
        ("POST", "/api/v1/status", 405),
    ];
    for (m, p, want) in other {
        let r = http
            .request(m.parse().unwrap(), srv.url(p))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{m} {p}");
    }
    let r = http.get(srv.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.effects(), 0);
    let entries = fx.journal();
    assert!(
        entries.iter().all(|e| matches!(e.event, Event::Refused { .. })),
        "only refusals may be journaled: {entries:?}"
    );
    assert_eq!(entries.len(), 9, "one refusal per bad unit");
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(!metrics.contains("hostmedic_alerts_received_total"), "{metrics}");
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"401\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"422\"} 9"),
        "{metrics}"
    );
    assert!(sink.all().is_empty());
    // And a good request still works afterwards.
    assert_eq!(post(&url, Some(TOKEN), &good).await.0, 200);
    wait_effects(&fx, 1).await;
    eprintln!(
        "{total} bad webhook requests + {} control requests rejected",
        other.len() + 1
    );
    srv.stop().await;
}

/// Unmounts a tmpfs mounted by the test (by path; lazily).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The one 5xx: the journal cannot be written (a full file system). Nothing
/// of the failed request counts, so Alertmanager's retry acts normally.
#[tokio::test(flavor = "multi_thread")]
async fn journal_failure_answers_500_and_the_retry_is_processed() {
    let fx = Fixture::new();
    let mnt = fx.path("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "hostmedic-test"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok && skip_or_fail("cannot mount a tmpfs (needs root)") {
        return;
    }
    let _mount = Mount(mnt.clone());
    let sink = Sink::start().await;
    let text = fx.config(&sink.url("/hook"), 3, |r| {
        r.path("journal_path", mnt.join("journal.jsonl"));
    });
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    // Fill the file system.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(mnt.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
    }
    let body = payload(vec![worker("2026-01-01T00:00:00Z")]);
    let (code, text) = post(&url, Some(TOKEN), &body).await;
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("cannot record"), "{text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.effects(), 0);
    // Space again: the retry (same alert) is not a duplicate and acts once.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let (code, text) = post(&url, Some(TOKEN), &body).await;
    assert_eq!(code, 200, "{text}");
    wait_effects(&fx, 1).await;
    let entries = journal::read_from(&mnt.join("journal.jsonl"), 0).unwrap().0;
    assert!(
        entries
            .iter()
            .filter(|e| matches!(e.event, Event::Alert { .. }))
            .all(|e| matches!(e.event, Event::Alert { duplicate: false, .. }))
    );
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"500\"} 1"),
        "{metrics}"
    );
    srv.stop().await;
}

const CRASHY: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=1\n[Install]\nWantedBy=multi-user.target\n";
const HEALTHY: &str = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";

/// S1/S6 end to end on a real systemd (booted in its own rootfs by
/// tests/support/src/systemd.rs): the webhook restarts a healthy unit (verified);
/// a crash-looping unit is restarted until its budget is spent (not helped),
/// then held, escalated, and stopped + masked by `exhausted_actions`.
#[tokio::test(flavor = "multi_thread")]
async fn systemd_restart_verified_and_crash_loop_budget_stops_and_masks() {
    use common::systemd::{Spec, boot_or_skip};
    let Some(m) = boot_or_skip(
        Spec::new()
            .file("/usr/lib/systemd/system/crashy.service", CRASHY, 0o644)
            .enabled_unit("healthy.service", HEALTHY),
    ) else {
        return;
    };
    let (ok, out) = m.systemctl(&["start", "crashy.service"]);
    assert!(ok || out.contains("failed"), "{out}");
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let d = fx.dir.path();
    let text = TestConfig::new()
        .disable(&["host", "hwmon", "docker"])
        .section("systemd", |s| {
            s.set("enabled", false)
                .set("bus_address", m.bus_address())
                .path("user_runtime_dir", m.root().join("run/user"))
                .path("passwd_file", m.rootfs().join("etc/passwd"));
        })
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"))
                .set("cooldown", "0s")
                .set("verify_timeout", "4s");
        })
        .notify_webhook("sink", &sink.url("/hook"))
        .rule(
            Rule::new("restart-down", "UnitDown")
                .strings("matchers", [r#"manager="system""#])
                .action(Action::systemd("restart", "{{ labels.name }}")),
        )
        .rule(
            Rule::new("crash-loop", "UnitCrashLooping")
                .action(Action::systemd("restart", "{{ labels.name }}"))
                .set("budget_attempts", 2)
                .exhausted_action(Action::systemd("stop", "{{ labels.name }}"))
                .exhausted_action(Action::systemd("mask", "{{ labels.name }}"))
                .strings("escalate", ["sink"]),
        )
        .render();
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    let results = |fx: &Fixture| -> Vec<(String, String)> {
        fx.journal()
            .iter()
            .filter_map(|e| match &e.event {
                Event::Action { action, result, .. } => Some((action.clone(), result.clone())),
                Event::Verify { result, .. } => Some(("verify".into(), result.clone())),
                _ => None,
            })
            .collect()
    };

    // A healthy unit restarted on request: verified active.
    let before = m.show("healthy.service", "ExecMainPID");
    let down = alert(
        "UnitDown",
        &[("manager", "system"), ("name", "healthy.service")],
        "2026-01-01T00:00:00Z",
        "firing",
        "0a",
    );
    assert_eq!(post(&url, Some(TOKEN), &payload(vec![down])).await.0, 200);
    eventually(Duration::from_secs(30), "restart verified", || async {
        results(&fx)
            .contains(&("verify".into(), "verified".into()))
            .then_some(())
    })
    .await;
    assert_ne!(m.show("healthy.service", "ExecMainPID"), before, "restarted");
    assert_eq!(m.show("healthy.service", "ActiveState"), "active");

    // The crash loop: two restarts that do not help, then the budget is spent.
    for (i, s) in ["2026-01-01T01:00:00Z", "2026-01-01T01:10:00Z"].iter().enumerate() {
        let a = alert("UnitCrashLooping", &[("name", "crashy.service")], s, "firing", "0b");
        assert_eq!(post(&url, Some(TOKEN), &payload(vec![a])).await.0, 200);
        eventually(Duration::from_secs(30), "restart judged", || async {
            (results(&fx)
                .iter()
                .filter(|r| r.0 == "verify" && r.1 == "not_helped")
                .count()
                == i + 1)
                .then_some(())
        })
        .await;
    }
    let a = alert(
        "UnitCrashLooping",
        &[("name", "crashy.service")],
        "2026-01-01T01:20:00Z",
        "firing",
        "0b",
    );
    assert_eq!(post(&url, Some(TOKEN), &payload(vec![a])).await.0, 200);
    let esc = eventually(Duration::from_secs(30), "escalation", || async {
        sink.all()
            .into_iter()
            .find(|r| r.body.contains("remediation exhausted"))
    })
    .await;
    assert!(esc.body.contains("systemd:system:crashy.service"), "{}", esc.body);
    assert!(
        esc.body.contains("not_helped"),
        "history shows the failed verifications: {}",
        esc.body
    );
    eventually(Duration::from_secs(30), "stop + mask ran", || async {
        let r = results(&fx);
        (r.contains(&("systemd.stop".into(), "ok".into())) && r.contains(&("systemd.mask".into(), "ok".into())))
            .then_some(())
    })
    .await;
    assert_eq!(m.systemctl(&["is-enabled", "crashy.service"]).1.trim(), "masked");
    let n = m.show("crashy.service", "NRestarts");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(m.show("crashy.service", "NRestarts"), n, "the loop is stopped");
    let restarts = results(&fx).iter().filter(|r| r.0 == "systemd.restart").count();
    assert_eq!(restarts, 3, "1 healthy + 2 crash-loop restarts, none after the budget");
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(
        metrics.contains("hostmedic_actions_total{action=\"systemd.restart\",result=\"verified\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_actions_total{action=\"systemd.restart\",result=\"not_helped\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_remediation_hold{rule=\"crash-loop\",target=\"systemd:system:crashy.service\"} 1"),
        "{metrics}"
    );
    srv.stop().await;
}

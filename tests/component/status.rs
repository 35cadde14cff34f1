//! What the operator reads at a glance, on real parts: the status document
//! (`/api/v1/status`, `receiver.status_path`) and the landing page (`/`)
//! after a real scrape of a fixture hwmon tree plus this machine's own
//! disks and load, with firing and resolved deliveries adding and removing
//! alerts; and the alert pipeline's dead-man's switch (silence told once,
//! remembered across a restart, "back" on the next heartbeat, switched on by
//! a reload of the real binary, shown by `hostmedic incidents`).
//! The whole loop with real Prometheus and Alertmanager is `tests/e2e/heartbeat.rs`.

use crate::common;

use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::sink::Sink;
use common::*;
use hostmedic::config::Config;
use hostmedic::receiver::journal::PipelineChange;
use hostmedic::receiver::journal::{self, Event};
use serde_json::Value;

use super::receiver::{TOKEN, alert, post};

/// Collectors these tests do not need (they would only slow the scrape).
const UNUSED: [&str; 7] = [
    "docker",
    "systemd",
    "processes",
    "probes",
    "logfile",
    "git_lfs",
    "paths",
];

async fn status(srv: &InProcess) -> Value {
    srv.status(TOKEN).await
}

fn names(firing: &Value) -> Vec<String> {
    firing
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

/// A receiver in `dir` reading the fake hwmon tree at `sysfs`, with a
/// dry-run rule for WorkerDown and a notify-only one for Runaway.
fn status_config(dir: &std::path::Path, sysfs: &std::path::Path) -> String {
    TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", sysfs);
        })
        .disable(&UNUSED)
        .single_host("h1")
        .receiver(dir, |r| {
            r.path("bearer_token_file", dir.join("token"));
        })
        .rule(
            Rule::new("restart-worker", "WorkerDown")
                .set("mode", "dry-run")
                .action(Action::systemd("restart", "{{ labels.unit }}")),
        )
        .rule(
            Rule::new("ask-runaway", "Runaway")
                .set("mode", "notify-only")
                .action(Action::systemd("restart", "{{ labels.unit }}")),
        )
        .render()
}

/// Before the first collection the host part says so (in-process, no
/// first collection at start runs: `serve` starts it, see
/// tests/e2e/landing_browser.rs).
async fn host_part_says_not_collected_yet(srv: &InProcess) {
    let (_, page) = get_with_token(&srv.url("/"), TOKEN).await;
    assert!(page.contains("not collected yet"), "{page}");
    assert_eq!(status(srv).await["host"], Value::Null);
}

/// One real scrape: the summary comes from its snapshot. Returns the
/// fullest filesystem's mountpoint.
async fn a_scrape_fills_the_host_summary(srv: &InProcess) -> String {
    let (code, metrics) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    assert!(metrics.contains("hostmedic_hwmon_temp_celsius{"), "{metrics}");
    let st = status(srv).await;
    let host = &st["host"];
    let t = &host["temperatures"][0];
    assert_eq!(
        (t["chip"].as_str(), t["sensor"].as_str()),
        (Some("coretemp"), Some("temp1"))
    );
    assert_eq!(t["celsius"], 101.0);
    assert_eq!(
        (t["max_celsius"].as_f64(), t["crit_celsius"].as_f64()),
        (Some(100.0), Some(105.0))
    );
    assert_eq!(t["state"], "over max");
    let fs = host["filesystems"].as_array().expect("this machine's disks");
    assert!(!fs.is_empty(), "{host}");
    for f in fs {
        let r = f["used_ratio"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&r), "{f}");
        assert!(f["size_bytes"].as_f64().unwrap() > 0.0, "{f}");
    }
    // The same numbers /metrics carried for the fullest filesystem.
    let mp = fs[0]["mountpoint"].as_str().unwrap();
    let size_line = format!("hostmedic_host_filesystem_size_bytes{{mountpoint=\"{mp}\"");
    assert!(metrics.contains(&size_line), "{mp} in /metrics");
    let load = &host["load"];
    let cpus = load["cpus"].as_f64().unwrap();
    assert!(cpus >= 1.0, "{load}");
    let load1 = sample_value(&metrics, "hostmedic_host_load1").unwrap();
    assert!(
        (load["load1_per_cpu"].as_f64().unwrap() - load1 / cpus).abs() < 1e-9,
        "{load}"
    );
    mp.to_string()
}

/// The critical alert a rule targets (dry run).
fn worker_down() -> Value {
    alert(
        "WorkerDown",
        &[("severity", "critical"), ("unit", "worker.service"), ("instance", "h1")],
        "2026-11-01T10:00:00Z",
        "firing",
        "00aa11bb22cc33dd",
    )
}

/// Deliveries: a critical alert a rule targets, a warning no rule maps,
/// a heartbeat (never listed) and an alert whose rule waits for approval.
/// The status lists them critical first; returns the pending approval's id.
async fn deliveries_are_listed_critical_first(srv: &InProcess) -> String {
    let disk = alert(
        "DiskSlow",
        &[("severity", "warning"), ("instance", "h1")],
        "2026-11-01T09:00:00Z",
        "firing",
        "11bb22cc33dd44ee",
    );
    let heartbeat = alert(
        "HostmedicWatchdog",
        &[("severity", "info")],
        "2026-11-01T08:00:00Z",
        "firing",
        "99",
    );
    let runaway = alert(
        "Runaway",
        &[("severity", "info"), ("unit", "batch.service"), ("instance", "h1")],
        "2026-11-01T07:00:00Z",
        "firing",
        "22cc33dd44ee55ff",
    );
    let (code, body) = post(
        &srv.url("/api/v1/alerts"),
        Some(TOKEN),
        &payload(vec![disk, worker_down(), heartbeat, runaway]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let st = status(srv).await;
    assert_eq!(
        names(&st["firing"]),
        ["WorkerDown", "DiskSlow", "Runaway"],
        "critical first: {}",
        st["firing"]
    );
    let w = &st["firing"][0];
    assert_eq!(w["severity"], "critical");
    assert_eq!(w["since"], "2026-11-01T10:00:00Z");
    assert_eq!(w["summary"], "test alert");
    assert!(w["target"].as_str().unwrap().contains("worker.service"), "{w}");
    assert_eq!(st["firing"][1]["target"], Value::Null, "no rule maps DiskSlow");
    assert!(
        st["pipeline"]["last_heartbeat"].as_f64().is_some(),
        "{}",
        st["pipeline"]
    );
    assert_eq!(st["pipeline"]["silent"], false);
    st["pending_approvals"][0]["id"]
        .as_str()
        .expect("Runaway waits")
        .to_string()
}

/// The landing page shows the same, to the same credentials (without
/// them it hides what the status API protects: tests/component/security.rs).
async fn landing_page_shows_the_same(srv: &InProcess, mountpoint: &str, pending: &str) {
    let (_, page) = get_with_token(&srv.url("/"), TOKEN).await;
    for want in [
        "<h2 id=\"host\">Host</h2>",
        "coretemp/temp1 (Package id 0)",
        "101.0 °C",
        "over max",
        "load per CPU",
        &format!("<td>{}</td>", hostmedic::landing::html_escape(mountpoint)),
        "<h2 id=\"firing\">Alerts firing</h2>",
        "WorkerDown",
        "DiskSlow",
        "ok; last HostmedicWatchdog heartbeat",
        "<h2 id=\"holds\">Holds</h2>",
        // No rule failed and none has a quiet window: both sections say so.
        "<h2 id=\"backoff\">Grown cooldowns (backoff)</h2>\n<p>none</p>",
        "<h2 id=\"quiet\">Quiet windows now</h2>\n<p>none</p>",
        "<h2 id=\"approvals\">Pending approvals</h2>",
        // What hostmedic did about each alert: the dry run said nothing ran,
        // the notify-only rule waits for a person.
        "dry run, nothing ran",
        "waiting for approval (",
        "<strong>Needs you:</strong> <a href=\"#approvals\">1 pending approval</a>",
        &format!("hostmedic approve {pending}"),
    ] {
        assert!(page.contains(want), "landing page lacks {want:?}:\n{page}");
    }
    assert!(
        !page.contains(">HostmedicWatchdog<"),
        "the heartbeat is not an alert of the host"
    );
}

/// A resolution removes its alert, here, on the page and in the status
/// file in `dir`.
async fn a_resolution_removes_its_alert(srv: &InProcess, dir: &std::path::Path) {
    let mut resolved = worker_down();
    resolved["status"] = "resolved".into();
    resolved["endsAt"] = "2026-11-01T10:05:00Z".into();
    let (code, _) = post(&srv.url("/api/v1/alerts"), Some(TOKEN), &payload(vec![resolved])).await;
    assert_eq!(code, 200);
    assert_eq!(names(&status(srv).await["firing"]), ["DiskSlow", "Runaway"]);
    let (_, page) = get_with_token(&srv.url("/"), TOKEN).await;
    assert!(!page.contains("WorkerDown") && page.contains("DiskSlow"), "{page}");
    let file = dir.join("status.json");
    eventually(
        Duration::from_secs(30),
        "the status file lists only DiskSlow",
        || async {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
            (names(&v["firing"]) == ["DiskSlow", "Runaway"] && v["host"]["temperatures"][0]["celsius"] == 101.0)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_landing_page_show_the_last_scrape_and_the_alerts_firing() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    let sysfs = d.join("sys");
    fake_hwmon(&sysfs, 101_000); // max 100 °C, crit 105 °C
    let text = status_config(d, &sysfs);
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    host_part_says_not_collected_yet(&srv).await;
    let mountpoint = a_scrape_fills_the_host_summary(&srv).await;
    let pending = deliveries_are_listed_critical_first(&srv).await;
    landing_page_shows_the_same(&srv, &mountpoint, &pending).await;
    a_resolution_removes_its_alert(&srv, d).await;
    srv.stop().await;

    // The firing list is state: rebuilt from the journal after a restart.
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    assert_eq!(names(&status(&srv).await["firing"]), ["DiskSlow", "Runaway"]);
    srv.stop().await;
}

/// Pipeline events of the journal in `dir`.
fn pipeline_events(dir: &std::path::Path) -> Vec<PipelineChange> {
    journal::read_from(&dir.join("journal.jsonl"), 0)
        .unwrap()
        .0
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Pipeline(p) => Some(p.state),
            _ => None,
        })
        .collect()
}

async fn metric(srv: &InProcess, name: &str) -> Option<f64> {
    let (_, body) = get(&srv.url("/metrics")).await;
    common::sample_value(&body, name)
}

/// A receiver in `dir` whose heartbeat (`enabled` or not) may be silent for
/// 1 s, checked every 100 ms, telling the webhook channel `sink` only.
fn heartbeat_config(dir: &std::path::Path, sink: &Sink, enabled: bool) -> TestConfig {
    heartbeat_config_silent_after(dir, sink, enabled, "1s")
}

/// [`heartbeat_config`] with its own `max_silence`.
fn heartbeat_config_silent_after(dir: &std::path::Path, sink: &Sink, enabled: bool, max_silence: &str) -> TestConfig {
    TestConfig::new()
        .disable(&UNUSED)
        .disable(&["hwmon"])
        .single_host("h1")
        .receiver(dir, |r| {
            r.path("bearer_token_file", dir.join("token")).table("heartbeat", |h| {
                h.set("enabled", enabled)
                    .set("max_silence", max_silence)
                    .set("check_interval", "100ms");
            });
        })
        .notify_webhook("sink", &sink.url("/hook"))
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_silence_is_told_once_survives_a_restart_and_ends_with_a_heartbeat() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    let sink = Sink::start().await;
    let text = heartbeat_config(d, &sink, true).render();
    let bad = heartbeat_config(d, &sink, true)
        .section("receiver", |r| {
            r.table("heartbeat", |h| {
                h.set("bogus", 1);
            });
        })
        .render();
    let e = Config::parse(&bad, "test").unwrap_err().to_string();
    assert!(e.contains("bogus"), "unknown keys are refused: {e}");
    let told = |what: &str| sink.all().into_iter().filter(|r| r.body.contains(what)).count();

    // No heartbeat at all: after the grace period (max_silence) it is told.
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    eventually(Duration::from_secs(30), "the silence told to the sink", || async {
        (told("alert pipeline silent since") == 1).then_some(())
    })
    .await;
    let body = sink.all()[0].body.clone();
    assert!(
        body.contains("no HostmedicWatchdog heartbeat has come since hostmedic started"),
        "{body}"
    );
    assert_eq!(pipeline_events(d), [PipelineChange::Silent]);
    assert_eq!(metric(&srv, "hostmedic_pipeline_silent").await, Some(1.0));
    assert_eq!(
        metric(&srv, "hostmedic_pipeline_heartbeat_last_timestamp_seconds").await,
        Some(0.0)
    );
    srv.stop().await;

    // Restarted, still silent: not told again (the journal remembers).
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    assert_eq!(status(&srv).await["pipeline"]["silent"], true);
    // Long enough for many checks past the grace period: any repeat would be sent by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(told("alert pipeline silent since"), 1, "{:#?}", sink.all());
    assert_eq!(pipeline_events(d), [PipelineChange::Silent]);
    srv.stop().await;

    // A resolved heartbeat is no sign of life; a firing one ends the silence.
    // Restarted once more with a max_silence the checks below cannot outlast
    // (with 1 s, a slow machine's next check could rightly find the pipeline
    // silent again before the last assertion); the silence is the journal's.
    let patient = heartbeat_config_silent_after(d, &sink, true, "1h").render();
    let srv = InProcess::start(Config::parse(&patient, "test").unwrap()).await;
    assert_eq!(status(&srv).await["pipeline"]["silent"], true);
    let url = srv.url("/api/v1/alerts");
    let hb = |status: &str| {
        alert(
            "HostmedicWatchdog",
            &[("severity", "info")],
            "2026-11-01T08:00:00Z",
            status,
            "99",
        )
    };
    let (code, _) = post(&url, Some(TOKEN), &payload(vec![hb("resolved")])).await;
    assert_eq!(code, 200);
    assert_eq!(status(&srv).await["pipeline"]["silent"], true);
    let (code, body) = post(&url, Some(TOKEN), &payload(vec![hb("firing")])).await;
    assert_eq!(code, 200, "{body}");
    eventually(Duration::from_secs(30), "'pipeline back' told to the sink", || async {
        (told("alert pipeline back after") == 1).then_some(())
    })
    .await;
    assert_eq!(pipeline_events(d), [PipelineChange::Silent, PipelineChange::Back]);
    assert_eq!(metric(&srv, "hostmedic_pipeline_silent").await, Some(0.0));
    assert!(
        metric(&srv, "hostmedic_pipeline_heartbeat_last_timestamp_seconds")
            .await
            .unwrap()
            > 0.0
    );
    let st = status(&srv).await;
    assert_eq!(st["pipeline"]["silent"], false);
    assert!(st["firing"].as_array().unwrap().is_empty(), "{}", st["firing"]);
    let journal = std::fs::read_to_string(d.join("journal.jsonl")).unwrap();
    assert!(
        !journal.contains("\"event\":\"alert\""),
        "heartbeats are not journaled as alerts"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_settings_follow_a_reload_and_the_incident_log_tells_the_silence() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    let sink = Sink::start().await;
    let config = |enabled| heartbeat_config(d, &sink, enabled).render();
    let cfg = d.join("hostmedic.toml");
    std::fs::write(&cfg, config(false)).unwrap();
    let bin = Binary::start(&cfg, d);

    // Off: many checks past max_silence, nothing is told or journaled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(sink.all().is_empty(), "{:#?}", sink.all());
    assert!(pipeline_events(d).is_empty());

    // Switched on by a reload: the running check loop takes it up.
    std::fs::write(&cfg, config(true)).unwrap();
    let (code, body) = post(&bin.url("/-/reload"), Some(TOKEN), &Value::Null).await;
    assert_eq!(code, 200, "{body}");
    eventually(Duration::from_secs(30), "the silence told after the reload", || async {
        sink.all()
            .iter()
            .any(|r| r.body.contains("alert pipeline silent since"))
            .then_some(())
    })
    .await;
    assert_eq!(pipeline_events(d), [PipelineChange::Silent]);

    let md = incidents_last_hour(&cfg);
    assert!(md.contains("**alert pipeline silent since"), "{md}");
    assert!(md.contains("Prometheus or Alertmanager down?"), "{md}");
    assert!(md.contains(" pipeline_silent notification to sink: sent"), "{md}");
    assert!(!md.contains("[]"), "{md}");
}

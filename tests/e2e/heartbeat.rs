//! The alert pipeline's dead-man's switch on real parts: the shipped
//! `HostmedicWatchdog` rule evaluated by a real Prometheus, delivered by a real
//! Alertmanager on the shipped heartbeat route (`compose/alertmanager.yml`,
//! this test shortens that route's `group_interval` and `repeat_interval` to
//! 1 s besides the harness's usual substitutions) to the real hostmedic
//! binary. Prometheus is killed by its PID → hostmedic tells every channel
//! (the local sink) "alert pipeline silent since …"; a new Prometheus starts →
//! "alert pipeline back after …".

use crate::common;

use std::time::Duration;

use common::alertmanager::Alertmanager;
use common::e2e::*;
use common::prometheus::{Prometheus, PrometheusOptions, alertmanager_config, substitute};
use hostmedic::receiver::journal::Event;
use hostmedic::receiver::journal::{PipelineChange, PipelineEvent};

const MAX_SILENCE: u64 = 6;

/// The shipped Alertmanager configuration delivering to `hostmedic` with the
/// e2e token, its heartbeat route repeating every second.
fn heartbeat_alertmanager(st: &Stack) -> Alertmanager {
    let dir = st.path("alertmanager");
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let url = format!("http://{}/api/v1/alerts", st.hostmedic().addr);
    let file = "compose/alertmanager.yml";
    let yml = alertmanager_config(&url, Some(&token));
    let yml = substitute(&yml, "group_interval: 30s", "group_interval: 1s", file);
    let yml = substitute(&yml, "repeat_interval: 1m", "repeat_interval: 1s", file);
    Alertmanager::start_config(&dir, &yml, None, Duration::from_secs(2))
}

async fn prometheus(st: &Stack, am: &Alertmanager) -> Prometheus {
    Prometheus::start(PrometheusOptions {
        targets: vec![st.hostmedic().addr.to_string()],
        alertmanagers: vec![am.addr()],
        rule_files: rules_test_copy(&st.path("rules"), Duration::from_secs(1), &[]),
    })
    .await
}

/// The `pipeline` events of the journal, with their time.
fn pipeline_events(st: &Stack) -> Vec<(f64, PipelineEvent)> {
    st.journal()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Pipeline(p) => Some((e.ts, p)),
            _ => None,
        })
        .collect()
}

/// Sink requests (path, body) whose body mentions `text`.
fn told(st: &Stack, text: &str) -> Vec<(String, String)> {
    st.sink
        .all()
        .into_iter()
        .filter(|r| r.body.contains(text))
        .map(|r| (r.path, r.body))
        .collect()
}

fn status(st: &Stack) -> serde_json::Value {
    std::fs::read_to_string(st.status_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

async fn metric(st: &Stack, name: &str) -> Option<f64> {
    let (_, body) = common::get(&st.hostmedic().url("/metrics")).await;
    common::sample_value(&body, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_prometheus_makes_hostmedic_report_the_pipeline_silent_then_back() {
    let mut st = Stack::new("heartbeat").await;
    let config = st
        .receiver()
        .disable(&["docker", "systemd"])
        .section("receiver", |r| {
            r.table("heartbeat", |h| {
                h.set("max_silence", format!("{MAX_SILENCE}s"))
                    .set("check_interval", "1s");
            });
        })
        .render();
    st.start_hostmedic(&config);
    let am = heartbeat_alertmanager(&st);
    st.prometheus = Some(prometheus(&st, &am).await);
    st.alertmanager = Some(am);

    // Heartbeats flow: recorded, never journaled as alerts, never listed as
    // firing. (On a slow start the grace period, max_silence after
    // hostmedic's start, may run out before the stack delivers the first
    // one: then a silence and its end are already journaled and told, and
    // only what comes after counts below.)
    st.wait_for(Duration::from_secs(60), "a heartbeat in the status file", |st| {
        let s = status(st);
        (s["pipeline"]["last_heartbeat"].as_f64().is_some() && s["pipeline"]["silent"] == false).then_some(())
    })
    .await;
    let before = pipeline_events(&st).len();
    let (silent_before, back_before) = (
        told(&st, "alert pipeline silent since").len(),
        told(&st, "alert pipeline back after").len(),
    );
    assert_eq!(
        silent_before, back_before,
        "a start-up silence ended with the first heartbeat"
    );
    assert_eq!(metric(&st, "hostmedic_pipeline_silent").await, Some(0.0));
    assert!(
        metric(&st, "hostmedic_pipeline_heartbeat_last_timestamp_seconds")
            .await
            .unwrap()
            > 0.0
    );

    // Fault: Prometheus dies (killed by its PID as the harness drops it).
    let prom = st.prometheus.take().unwrap();
    let pid = prom.pid();
    drop(prom);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "prometheus {pid} is gone"
    );

    // Every configured channel (none named: all of them) hears it directly.
    let silent = st
        .wait_for(
            Duration::from_secs(MAX_SILENCE + 60),
            "the 'pipeline silent' notification on every channel",
            |st| {
                let t = told(st, "alert pipeline silent since").split_off(silent_before);
                let all = ["/ntfy", "/tg/", "/hook"]
                    .iter()
                    .all(|p| t.iter().any(|(path, _)| path.starts_with(p)));
                all.then_some(t)
            },
        )
        .await;
    assert_eq!(silent.len(), 3, "one per channel: {silent:#?}");
    assert!(silent[0].1.contains("Prometheus or Alertmanager down?"), "{silent:#?}");
    let events = pipeline_events(&st).split_off(before);
    assert_eq!(events.len(), 1, "{events:#?}");
    let (ts, ev) = &events[0];
    assert_eq!(ev.state, PipelineChange::Silent);
    assert_eq!(ev.alertname, "HostmedicWatchdog");
    let last = ev.last_heartbeat.expect("a heartbeat had come");
    assert_eq!(ev.silent_since, last);
    assert!(
        ts - last >= MAX_SILENCE as f64,
        "not reported before max_silence: {ts} - {last}"
    );
    st.wait_for(Duration::from_secs(10), "the silence in the status file", |st| {
        (status(st)["pipeline"]["silent"] == true).then_some(())
    })
    .await;
    assert_eq!(metric(&st, "hostmedic_pipeline_silent").await, Some(1.0));
    let (_, page) = common::get_with_token(&st.hostmedic().url("/"), TOKEN).await;
    assert!(page.contains("SILENT since"), "the landing page says so:\n{page}");

    // Prometheus comes back: the heartbeat returns, and so does the word.
    let am = st.alertmanager.take().unwrap();
    st.prometheus = Some(prometheus(&st, &am).await);
    st.alertmanager = Some(am);
    let back = st
        .wait_for(
            Duration::from_secs(60),
            "the 'pipeline back' notification on every channel",
            |st| {
                let t = told(st, "alert pipeline back after").split_off(back_before);
                (t.len() >= 3).then_some(t)
            },
        )
        .await;
    assert_eq!(back.len(), 3, "{back:#?}");
    let events = pipeline_events(&st).split_off(before);
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[1].1.state, PipelineChange::Back);
    assert_eq!(events[1].1.silent_since, last);
    st.wait_for(
        Duration::from_secs(10),
        "the status file says the pipeline is back",
        |st| (status(st)["pipeline"]["silent"] == false).then_some(()),
    )
    .await;
    assert_eq!(metric(&st, "hostmedic_pipeline_silent").await, Some(0.0));
    assert_eq!(
        told(&st, "alert pipeline silent since").len(),
        silent_before + 3,
        "said once"
    );

    // Heartbeats never reached routing or the journal as alerts.
    let st_json = status(&st);
    assert!(
        !st_json["firing"].to_string().contains("HostmedicWatchdog"),
        "{}",
        st_json["firing"]
    );
    assert!(
        !st.journal()
            .iter()
            .any(|e| matches!(&e.event, Event::Alert { alertname, .. } if alertname == "HostmedicWatchdog")),
        "heartbeats are not journaled one by one"
    );
    let notified: Vec<_> = st
        .journal()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Notified { kind, ok, .. } if kind.as_str().starts_with("pipeline_") => Some((kind, ok)),
            _ => None,
        })
        .collect();
    assert_eq!(notified.len(), 2 * (silent_before + 3), "{notified:?}");
    assert!(notified.iter().all(|(_, ok)| *ok), "{notified:?}");
    st.assert_no_secrets();
}

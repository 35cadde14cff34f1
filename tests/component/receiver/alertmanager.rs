//! A real Alertmanager delivering to the receiver: bearer auth and one
//! action per alert, and two clustered Alertmanagers causing one action.

use super::*;

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
            Event::Action { result, action, .. } => Some((action.clone(), result.to_string())),
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

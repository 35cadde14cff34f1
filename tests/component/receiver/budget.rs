//! Budgets and de-duplication across time and restarts: an exhausted budget
//! escalates and holds, SIGKILL and restart keep budget and journal, and a
//! repeat after the de-dup window acts again.

use super::*;

/// Two firings of `WorkerDown` (00:00 and 00:10) posted to `url`, each acted
/// on, and both action results in the journal.
async fn two_attempts(fx: &Fixture, url: &str) {
    for (i, s) in ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z"].iter().enumerate() {
        let (code, body) = post(url, Some(TOKEN), &payload(vec![worker(s)])).await;
        assert_eq!(code, 200, "{body}");
        wait_effects(fx, i + 1).await;
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
}

#[tokio::test(flavor = "multi_thread")]
async fn budget_exhausted_escalates_and_holds_until_cleared_or_resolved() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(Config::parse(&fx.config(&sink.url("/hook"), 2, |_| {}), "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    // Three firings of the same alert (each a new startsAt): two attempts,
    // then the budget is spent.
    two_attempts(&fx, &url).await;
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
    // Two attempts, their results journaled, then kill -9.
    two_attempts(&fx, &url).await;
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

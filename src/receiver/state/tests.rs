use super::*;
use crate::receiver::journal::Decision;

fn ev(state: PipelineChange, since: f64) -> PipelineEvent {
    PipelineEvent {
        state,
        alertname: "HostmedicWatchdog".into(),
        silent_since: since,
        last_heartbeat: None,
        message: String::new(),
    }
}

#[test]
fn fold_silent_then_back() {
    let mut p = PipelineState {
        last_heartbeat: Some(100.0),
        silent_since: None,
    };
    p.apply(500.0, &ev(PipelineChange::Silent, 100.0));
    assert_eq!(p.silent_since, Some(100.0));
    p.apply(900.0, &ev(PipelineChange::Back, 100.0));
    assert_eq!(p.silent_since, None);
    assert_eq!(p.last_heartbeat, Some(900.0));
}

fn decision(seq: u64, ts: f64, target: &str) -> Entry {
    Entry {
        seq,
        ts,
        event: Event::Decision {
            id: format!("a{seq}"),
            rule: "r".into(),
            target: target.into(),
            alertname: "A".into(),
            fingerprint: "f".into(),
            mode: crate::receiver::mode::Mode::Auto,
            decision: Decision::Act,
            reason: None,
            detail: String::new(),
            actions: vec!["exec x".into()],
            alert: None,
        },
    }
}

#[test]
fn fold_counts_attempts_and_holds_and_is_idempotent() {
    let mut s = State::default();
    s.apply(&decision(1, 100.0, "t"));
    s.apply(&decision(2, 200.0, "t"));
    s.apply(&decision(2, 200.0, "t"));
    assert_eq!(s.attempts_within("t", 250.0, 3600.0), 2);
    assert_eq!(s.attempts_within("t", 250.0, 100.0), 1);
    assert_eq!(s.cooldowns[&cooldown_key("r", "t")], 200.0);
    s.apply(&Entry {
        seq: 3,
        ts: 300.0,
        event: Event::Hold {
            rule: "r".into(),
            target: "t".into(),
            fingerprint: "f".into(),
            alertname: "A".into(),
            attempts: 2,
        },
    });
    assert!(s.holds.contains_key("t"));
    s.apply(&Entry {
        seq: 4,
        ts: 400.0,
        event: Event::HoldCleared {
            target: "t".into(),
            by: "api".into(),
        },
    });
    assert!(s.holds.is_empty() && s.attempts.is_empty() && s.cooldowns.is_empty());
    s.prune(10_000.0, 10.0, 10.0, 10.0);
}

fn result(seq: u64, id: &str, event: &str, index: usize, result: &str) -> Entry {
    let (rule, target) = ("r".to_string(), "t".to_string());
    let event = match event {
        "action" => Event::Action {
            id: id.into(),
            rule,
            target,
            index,
            action: "exec".into(),
            description: "exec x".into(),
            result: serde_json::from_value(result.into()).expect("a journal spelling"),
            detail: String::new(),
            duration_seconds: 0.1,
        },
        _ => Event::Verify {
            id: id.into(),
            rule,
            target,
            result: serde_json::from_value(result.into()).expect("a journal spelling"),
            detail: String::new(),
        },
    };
    Entry {
        seq,
        ts: seq as f64,
        event,
    }
}

fn action(seq: u64, id: &str, index: usize, outcome: &str) -> Entry {
    result(seq, id, "action", index, outcome)
}

#[test]
fn failure_streaks_count_failed_attempts_and_reset_on_help() {
    let mut s = State::default();
    let failures = |s: &State| s.streaks[&cooldown_key("r", "t")].failures();
    // a1 fails its action, a3's verification says not helped.
    s.apply(&decision(1, 1.0, "t"));
    assert_eq!(failures(&s), 0, "open, nothing failed before");
    s.apply(&result(2, "a1", "action", 0, "failed"));
    assert_eq!(failures(&s), 1);
    s.apply(&decision(3, 3.0, "t"));
    assert_eq!(failures(&s), 1, "running: keeps the level");
    s.apply(&result(4, "a3", "action", 0, "ok"));
    s.apply(&result(5, "a3", "verify", 0, "not_helped"));
    assert_eq!(failures(&s), 2);
    // Exhausted actions and older plans are not the streak's.
    s.apply(&result(6, "a1", "action", 0, "ok"));
    s.apply(&result(7, "a9", "verify", 0, "verified"));
    assert_eq!(failures(&s), 2);
    // A refusal counts as a failure; so does anything that is not ok.
    s.apply(&decision(8, 8.0, "t"));
    s.apply(&result(9, "a8", "action", 0, "refused"));
    assert_eq!(failures(&s), 3);
    // A helped attempt resets: its last action ok, then verified.
    s.apply(&decision(10, 10.0, "t"));
    s.apply(&result(11, "a10", "action", 0, "ok"));
    assert_eq!(failures(&s), 0);
    s.apply(&result(12, "a10", "verify", 0, "verified"));
    assert_eq!(failures(&s), 0);
    // …and the next failure starts from one; a later failure of the
    // same attempt does not count twice.
    s.apply(&decision(13, 13.0, "t"));
    s.apply(&result(14, "a13", "action", 0, "failed"));
    s.apply(&result(15, "a13", "verify", 0, "not_helped"));
    assert_eq!(failures(&s), 1);
    // A checkpoint round trip keeps the streak (restart, kill -9).
    let back: State = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
    assert_eq!(back.streaks, s.streaks);
    // Pruned with its cooldown; cleared with a hold.
    let mut p = s.clone();
    p.prune(1000.0, 10.0, 100.0, 10.0);
    assert!(p.streaks.is_empty() && p.cooldowns.is_empty());
    s.apply(&Entry {
        seq: 16,
        ts: 16.0,
        event: Event::HoldCleared {
            target: "t".into(),
            by: "api".into(),
        },
    });
    assert!(s.streaks.is_empty());
}

#[test]
fn a_plan_is_acting_until_every_action_or_the_first_failure_has_an_outcome() {
    let mut s = State::default();
    let mut d = decision(1, 1.0, "t");
    if let Event::Decision { actions, .. } = &mut d.event {
        *actions = vec!["exec a".into(), "exec b".into()];
    }
    s.apply(&d);
    assert_eq!(s.acting["a1"].actions.len(), 2);
    s.apply(&Entry {
        seq: 2,
        ts: 2.0,
        event: Event::Spawned {
            id: "a1".into(),
            index: 0,
            pid: 42,
            pgid: 42,
            sid: 1,
            start_ticks: 7,
            boot_id: "b".into(),
        },
    });
    s.apply(&action(3, "a1", 0, "ok"));
    assert_eq!(s.acting["a1"].done, 1);
    assert_eq!(s.acting["a1"].children[0].pid, 42);
    // What a checkpoint keeps, a restart finds.
    let cp: State = serde_json::from_str(&serde_json::to_string(&s.checkpoint()).unwrap()).unwrap();
    assert_eq!(cp.acting, s.acting);
    s.apply(&action(4, "a1", 1, "ok"));
    assert!(s.acting.is_empty());

    // Stopped by a failure, or by an interruption journaled at start.
    for (seq, result) in [(10, "failed"), (20, "interrupted")] {
        let mut d = decision(seq, 1.0, "t");
        if let Event::Decision { actions, .. } = &mut d.event {
            *actions = vec!["exec a".into(), "exec b".into()];
        }
        s.apply(&d);
        s.apply(&action(seq + 1, &format!("a{seq}"), 0, result));
        assert!(s.acting.is_empty(), "{result}");
    }
    // A plan without actions has nothing to interrupt.
    let mut d = decision(30, 1.0, "t");
    if let Event::Decision { actions, .. } = &mut d.event {
        actions.clear();
    }
    s.apply(&d);
    assert!(s.acting.is_empty());
    // An approval acts with the pending plan's actions and alert.
    s.pending.insert(
        "a40".into(),
        Pending {
            rule: "r".into(),
            target: "t".into(),
            at: 1.0,
            alert: serde_json::from_str(
                r#"{"status":"firing","labels":{"alertname":"A"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}"#,
            )
            .unwrap(),
            actions: vec!["exec a".into()],
        },
    );
    s.apply(&Entry {
        seq: 41,
        ts: 41.0,
        event: Event::Approved {
            id: "a40".into(),
            rule: "r".into(),
            target: "t".into(),
            by: "cli".into(),
        },
    });
    assert!(s.acting["a40"].alert.is_some() && s.pending.is_empty());
}

#[test]
fn atomic_write_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x/state.json");
    write_atomic(&p, b"1").unwrap();
    write_atomic(&p, b"2").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"2");
    assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
}

//! A synthetic journal shared by the incidents tests: a crash-looping
//! unit acted on, verified and resolved, and a runaway process waiting for
//! approval.

use crate::evidence::{Item, Stage};
use crate::receiver::journal::{Decision, Entry, Event};
use crate::receiver::payload::Status;

pub(super) fn entry(seq: u64, ts: f64, event: Event) -> Entry {
    Entry { seq, ts, event }
}

pub(super) fn alert(status: Status, fp: &str, alertname: &str, duplicate: bool) -> Event {
    Event::Alert {
        key: format!("{fp}-{status}"),
        alertname: alertname.into(),
        status,
        fingerprint: fp.into(),
        starts_at: "2026-12-01T12:00:00Z".into(),
        labels: [("severity", "critical"), ("unit", "worker.service")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        summary: Some("worker.service is crash-looping".into()),
        description: Some("It restarted 5 times in 2 minutes.".into()),
        runbook_url: Some("docs/runbooks.md#hostmedicunitcrashlooping".into()),
        receiver: "hostmedic".into(),
        duplicate,
        received: None,
    }
}

pub(super) fn decision(id: &str, fp: &str, decision: Decision) -> Event {
    Event::Decision {
        id: id.into(),
        rule: "unit-crash-loop".into(),
        target: "systemd:system:worker.service".into(),
        alertname: "HostmedicUnitCrashLooping".into(),
        fingerprint: fp.into(),
        mode: crate::receiver::mode::Mode::Auto,
        decision,
        reason: None,
        detail: String::new(),
        actions: vec!["systemd.stop systemd:system:worker.service".into()],
        alert: None,
    }
}

/// Plan `a1`'s action `action` on worker.service, ok after `took` seconds.
fn action_ok(action: &str, took: f64) -> Event {
    Event::Action {
        id: "a1".into(),
        rule: "unit-crash-loop".into(),
        target: "systemd:system:worker.service".into(),
        index: 0,
        action: action.into(),
        description: format!("{action} systemd:system:worker.service"),
        result: crate::actions::OutcomeResult::Ok,
        detail: String::new(),
        duration_seconds: took,
    }
}

/// Plan `a1`'s verification: verified.
fn verified() -> Event {
    Event::Verify {
        id: "a1".into(),
        rule: "unit-crash-loop".into(),
        target: "systemd:system:worker.service".into(),
        result: crate::receiver::journal::VerifyResult::Verified,
        detail: String::new(),
    }
}

pub(super) fn journal() -> Vec<Entry> {
    let mut item = Item::new("systemd:system:worker.service", "unit");
    item.fact("ExecMainStatus", 3);
    item.section(
        "journal",
        vec!["2026-12-01T12:00:01+0000 run.sh[7]: ModuleNotFoundError: No module named 'feeds'".into()],
        true,
    );
    item.look_further = "journalctl -u worker.service -n 50".into();
    let fp = "f1";
    vec![
        entry(1, 100.0, alert(Status::Firing, fp, "HostmedicUnitCrashLooping", false)),
        entry(2, 100.0, decision("a1", fp, Decision::Act)),
        entry(
            3,
            100.1,
            Event::Evidence {
                id: "a1".into(),
                stage: Stage::Before,
                items: vec![item],
            },
        ),
        entry(4, 100.2, action_ok("systemd.stop", 0.1)),
        entry(5, 101.0, verified()),
        entry(6, 102.0, alert(Status::Firing, fp, "HostmedicUnitCrashLooping", true)),
        entry(
            7,
            160.0,
            alert(Status::Resolved, fp, "HostmedicUnitCrashLooping", false),
        ),
        entry(8, 200.0, alert(Status::Firing, "f2", "Runaway", false)),
        entry(9, 200.0, decision("a2", "f2", Decision::PendingApproval)),
    ]
}

/// A journal with real instants (`startsAt` 2026-12-01T12:00:00Z = the
/// returned Unix seconds): delivered 1 s later, decided 0.25 s after that,
/// one action of 0.5 s, verified 1.5 s after it; then a plan that waits for
/// approval (nothing ran, no timeline).
pub(super) fn timed_journal() -> (Vec<Entry>, f64) {
    let t0 = 1_796_126_400.0;
    let mut delivered = alert(Status::Firing, "f1", "HostmedicUnitCrashLooping", false);
    if let Event::Alert { received, .. } = &mut delivered {
        *received = Some(t0 + 1.0);
    }
    let entries = vec![
        entry(1, t0 + 1.25, delivered),
        entry(2, t0 + 1.25, decision("a1", "f1", Decision::Act)),
        entry(3, t0 + 2.0, action_ok("systemd.restart", 0.5)),
        entry(4, t0 + 3.5, verified()),
        entry(5, t0 + 4.0, alert(Status::Firing, "f2", "Runaway", false)),
        entry(6, t0 + 4.0, decision("a2", "f2", Decision::PendingApproval)),
    ];
    (entries, t0)
}

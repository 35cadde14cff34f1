//! Where the seconds of one remediation go: the instants of an incident
//! (the alert's `startsAt`, the delivery received, the decision, the first
//! action's start, the last action's end, the verification's end) and the
//! stages between them, exported as
//! `hostmedic_remediation_latency_seconds{stage}` (docs/metrics.md).
//!
//! The same [`Timeline`] is filled live by the run stage (for the histogram)
//! and rebuilt from the journal ([`from_journal`]) for benchmarks and
//! incident reports: the journal already carries every instant (each
//! entry's `ts`, an action's `duration_seconds`, the alert's `starts_at`),
//! plus the one that happens before the journal sees a request, the
//! alert entry's `received`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::journal::{Entry, Event, VerifyResult};
use super::payload::Status;
use crate::actions::OutcomeResult;

/// One stage of a remediation (the `stage` label; serialized the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// `startsAt` (Prometheus: the evaluation at which the alert fired) →
    /// the webhook request received: Prometheus' notifier, Alertmanager's
    /// `group_wait`, the delivery.
    AlertToDelivery,
    /// Request received → the decision journaled in memory: body, payload,
    /// routing, the wait for the core lock.
    DeliveryToDecision,
    /// Decision → the first action starts: the journal's fsync, the
    /// per-target lock, the action semaphore, the evidence captured before
    /// acting.
    DecisionToActionStart,
    /// First action's start → last action's end.
    Action,
    /// Last action's end → the verification's end (verified or not).
    Verification,
    /// `startsAt` → the remediation done (verified; without a verification,
    /// the last action's end); only for remediations that succeeded (not
    /// for failures, verifications that did not help, or dry runs).
    Total,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::AlertToDelivery,
        Stage::DeliveryToDecision,
        Stage::DecisionToActionStart,
        Stage::Action,
        Stage::Verification,
        Stage::Total,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AlertToDelivery => "alert_to_delivery",
            Stage::DeliveryToDecision => "delivery_to_decision",
            Stage::DecisionToActionStart => "decision_to_action_start",
            Stage::Action => "action",
            Stage::Verification => "verification",
            Stage::Total => "total",
        }
    }
}

/// The instants of one remediation, Unix seconds; `None` when unknown (an
/// approved plan has no delivery of its own, an action without a
/// verification has no verification end).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// The alert's `startsAt` (firing alerts only: a resolution's `startsAt`
    /// is when the problem began, not when the resolution was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<f64>,
    /// The webhook request arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<f64>,
    /// The decision (or, for an approved plan, the approval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_end: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_end: Option<f64>,
    /// Every action ran for real and ok (not a dry run), and the
    /// verification (if any) verified.
    pub succeeded: bool,
}

impl Timeline {
    /// A plan decided at `decided` for a delivery received at `received`
    /// of an alert with status `status` and `startsAt` `starts_at` (RFC 3339).
    pub fn delivered(status: Status, starts_at: &str, received: f64, decided: f64) -> Timeline {
        Timeline {
            starts_at: (status == Status::Firing)
                .then(|| crate::time::parse_rfc3339(starts_at))
                .flatten()
                .filter(|t| *t > 0.0),
            received: Some(received),
            decided: Some(decided),
            ..Timeline::default()
        }
    }

    /// A plan run after a person approved it at `approved`: the wait for
    /// the person is not a stage, so only what follows the approval counts.
    pub fn approved(approved: f64) -> Timeline {
        Timeline {
            decided: Some(approved),
            ..Timeline::default()
        }
    }

    /// Records one action that ran from `start` to `end`, with its result.
    pub fn action(&mut self, start: f64, end: f64, ok: bool) {
        if self.action_start.is_none() {
            self.action_start = Some(start);
            self.succeeded = true;
        }
        self.action_end = Some(end);
        self.succeeded &= ok;
    }

    /// Records the end of a verification and whether it verified.
    pub fn verified(&mut self, end: f64, verified: bool) {
        self.verify_end = Some(end);
        self.succeeded &= verified;
    }

    /// The stages that are known, in [`Stage::ALL`] order. A negative span
    /// (the Prometheus host's clock ahead of this one, or a clock step) is
    /// left out rather than counted as zero.
    pub fn stages(&self) -> Vec<(Stage, f64)> {
        let span = |from: Option<f64>, to: Option<f64>| Some(to? - from?).filter(|d| *d >= 0.0);
        let done = self.verify_end.or(self.action_end).filter(|_| self.succeeded);
        [
            (Stage::AlertToDelivery, span(self.starts_at, self.received)),
            (Stage::DeliveryToDecision, span(self.received, self.decided)),
            (Stage::DecisionToActionStart, span(self.decided, self.action_start)),
            (Stage::Action, span(self.action_start, self.action_end)),
            (Stage::Verification, span(self.action_end, self.verify_end)),
            (Stage::Total, span(self.starts_at, done)),
        ]
        .into_iter()
        .filter_map(|(s, d)| Some((s, d?)))
        .collect()
    }
}

/// The timeline of every plan that ran an action in `entries` (decided
/// `act`/`dry_run`, approved, or the exhausted actions of a spent budget),
/// by plan id, rebuilt from the journal alone. Journals written before the
/// `received` field use the alert entry's `ts` (the decision's batch time)
/// instead.
pub fn from_journal(entries: &[Entry]) -> BTreeMap<String, Timeline> {
    // The alert entry of each fingerprint most recently delivered: a
    // decision is journaled in the same batch, right after its alert.
    let mut alerts: BTreeMap<&str, (Status, &str, f64)> = BTreeMap::new();
    let mut out: BTreeMap<String, Timeline> = BTreeMap::new();
    for e in entries {
        match &e.event {
            Event::Alert {
                fingerprint,
                status,
                starts_at,
                received,
                ..
            } => {
                alerts.insert(fingerprint, (*status, starts_at, received.unwrap_or(e.ts)));
            }
            // Every decision: a skip for a spent budget may run the rule's
            // exhausted actions under its id; plans that never ran an action
            // are dropped below.
            Event::Decision { id, fingerprint, .. } => {
                if let Some((status, starts_at, received)) = alerts.get(fingerprint.as_str()) {
                    out.insert(id.clone(), Timeline::delivered(*status, starts_at, *received, e.ts));
                }
            }
            Event::Approved { id, .. } => {
                out.insert(id.clone(), Timeline::approved(e.ts));
            }
            Event::Action {
                id,
                result,
                duration_seconds,
                ..
            } => {
                if let Some(t) = out.get_mut(id) {
                    t.action(e.ts - duration_seconds, e.ts, *result == OutcomeResult::Ok);
                }
            }
            Event::Verify { id, result, .. } => {
                if let Some(t) = out.get_mut(id) {
                    t.verified(e.ts, *result == VerifyResult::Verified);
                }
            }
            Event::Refused { .. }
            | Event::RefusedForeign { .. }
            | Event::Spawned { .. }
            | Event::Hold { .. }
            | Event::HoldCleared { .. }
            | Event::Evidence { .. }
            | Event::Notified { .. }
            | Event::Pipeline(_) => {}
        }
    }
    out.retain(|_, t| t.action_start.is_some());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::journal::Decision;

    const STARTS: &str = "2026-12-01T12:00:00Z";
    const T0: f64 = 1_796_126_400.0; // STARTS as Unix seconds

    fn get(t: &Timeline, s: Stage) -> Option<f64> {
        t.stages().into_iter().find(|(x, _)| *x == s).map(|(_, d)| d)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn every_stage_of_a_verified_remediation() {
        assert_eq!(crate::time::parse_rfc3339(STARTS), Some(T0));
        let mut t = Timeline::delivered(Status::Firing, STARTS, T0 + 1.0, T0 + 1.01);
        t.action(T0 + 1.05, T0 + 1.25, true);
        t.action(T0 + 1.25, T0 + 1.5, true);
        t.verified(T0 + 2.5, true);
        let st = t.stages();
        let names: Vec<Stage> = st.iter().map(|(s, _)| *s).collect();
        assert_eq!(names, Stage::ALL);
        assert!(close(get(&t, Stage::AlertToDelivery), 1.0));
        assert!(close(get(&t, Stage::DeliveryToDecision), 0.01));
        assert!(close(get(&t, Stage::DecisionToActionStart), 0.04));
        assert!(close(get(&t, Stage::Action), 0.45), "first start to last end");
        assert!(close(get(&t, Stage::Verification), 1.0));
        assert!(close(get(&t, Stage::Total), 2.5));
        // The stages before the total add up to it.
        let parts: f64 = st.iter().filter(|(s, _)| *s != Stage::Total).map(|(_, d)| d).sum();
        assert!(close(get(&t, Stage::Total), parts));
    }

    #[test]
    fn without_verification_the_total_ends_with_the_last_action() {
        let mut t = Timeline::delivered(Status::Firing, STARTS, T0 + 1.0, T0 + 1.0);
        t.action(T0 + 1.1, T0 + 3.0, true);
        assert_eq!(get(&t, Stage::Verification), None);
        assert!(close(get(&t, Stage::Total), 3.0));
    }

    #[test]
    fn a_failure_has_its_stages_but_no_total() {
        let mut t = Timeline::delivered(Status::Firing, STARTS, T0 + 1.0, T0 + 1.0);
        t.action(T0 + 1.0, T0 + 2.0, true);
        t.verified(T0 + 12.0, false);
        assert!(close(get(&t, Stage::Verification), 10.0));
        assert_eq!(get(&t, Stage::Total), None);
        let mut t = Timeline::delivered(Status::Firing, STARTS, T0 + 1.0, T0 + 1.0);
        t.action(T0 + 1.0, T0 + 2.0, false);
        assert!(close(get(&t, Stage::Action), 1.0));
        assert_eq!(get(&t, Stage::Total), None);
    }

    #[test]
    fn approved_resolved_skewed_and_unparsable_leave_out_what_is_unknown() {
        // An approval: the person's wait is no stage, nor is the total.
        let mut t = Timeline::approved(T0 + 100.0);
        t.action(T0 + 100.5, T0 + 103.0, true);
        let names: Vec<Stage> = t.stages().iter().map(|(s, _)| *s).collect();
        assert_eq!(names, [Stage::DecisionToActionStart, Stage::Action]);
        // A resolution's startsAt is the problem's start: not counted.
        let t = Timeline::delivered(Status::Resolved, STARTS, T0 + 600.0, T0 + 600.0);
        assert_eq!(get(&t, Stage::AlertToDelivery), None);
        // startsAt ahead of this host's clock: left out, not zero.
        let t = Timeline::delivered(Status::Firing, STARTS, T0 - 0.5, T0);
        assert_eq!(get(&t, Stage::AlertToDelivery), None);
        assert!(close(get(&t, Stage::DeliveryToDecision), 0.5));
        // Go's zero time or garbage: no startsAt.
        for s in ["0001-01-01T00:00:00Z", "soon"] {
            assert_eq!(Timeline::delivered(Status::Firing, s, T0, T0).starts_at, None, "{s}");
        }
    }

    fn entry(seq: u64, ts: f64, event: Event) -> Entry {
        Entry { seq, ts, event }
    }

    fn alert(fp: &str, received: Option<f64>) -> Event {
        Event::Alert {
            key: format!("{fp}:k"),
            alertname: "A".into(),
            status: Status::Firing,
            fingerprint: fp.into(),
            starts_at: STARTS.into(),
            labels: BTreeMap::new(),
            summary: None,
            description: None,
            runbook_url: None,
            receiver: "hostmedic".into(),
            duplicate: false,
            received,
        }
    }

    fn decision(id: &str, fp: &str, decision: Decision) -> Event {
        Event::Decision {
            id: id.into(),
            rule: "r".into(),
            target: "t".into(),
            alertname: "A".into(),
            fingerprint: fp.into(),
            mode: crate::receiver::mode::Mode::Auto,
            decision,
            reason: None,
            detail: String::new(),
            actions: vec![],
            alert: None,
        }
    }

    fn action(id: &str, result: &str, took: f64) -> Event {
        Event::Action {
            id: id.into(),
            rule: "r".into(),
            target: "t".into(),
            index: 0,
            action: "systemd.restart".into(),
            description: String::new(),
            result: serde_json::from_value(result.into()).expect("a journal spelling"),
            detail: String::new(),
            duration_seconds: took,
        }
    }

    fn verify(id: &str, result: &str) -> Event {
        Event::Verify {
            id: id.into(),
            rule: "r".into(),
            target: "t".into(),
            result: serde_json::from_value(result.into()).expect("a journal spelling"),
            detail: String::new(),
        }
    }

    #[test]
    fn rebuilt_from_the_journal() {
        let entries = vec![
            entry(1, T0 + 1.02, alert("f1", Some(T0 + 1.0))),
            entry(2, T0 + 1.02, decision("a2", "f1", Decision::Act)),
            // An old journal line without `received`, and a skipped plan.
            entry(3, T0 + 5.0, alert("f2", None)),
            entry(4, T0 + 5.0, decision("a4", "f2", Decision::Act)),
            entry(5, T0 + 5.0, decision("a5", "f2", Decision::Skip)),
            entry(6, T0 + 1.5, action("a2", "ok", 0.4)),
            entry(7, T0 + 2.5, verify("a2", "verified")),
            entry(8, T0 + 6.0, action("a4", "failed", 0.5)),
            entry(
                9,
                T0 + 9.0,
                Event::Approved {
                    id: "a9".into(),
                    rule: "r".into(),
                    target: "t".into(),
                    by: "cli".into(),
                },
            ),
            entry(10, T0 + 9.5, action("a9", "ok", 0.25)),
            // An action of an unknown plan (journal cut before it): ignored.
            entry(11, T0 + 9.6, action("a0", "ok", 0.1)),
            // A spent budget: skipped, and the exhausted actions run.
            entry(12, T0 + 20.0, alert("f3", Some(T0 + 19.9))),
            entry(13, T0 + 20.0, decision("a13", "f3", Decision::Skip)),
            entry(14, T0 + 20.5, action("a13", "ok", 0.3)),
        ];
        let tl = from_journal(&entries);
        assert_eq!(tl.keys().collect::<Vec<_>>(), ["a13", "a2", "a4", "a9"], "a5 never ran");
        assert!(close(get(&tl["a13"], Stage::DecisionToActionStart), 0.2));
        let a2 = &tl["a2"];
        assert!(close(get(a2, Stage::AlertToDelivery), 1.0));
        assert!(close(get(a2, Stage::DeliveryToDecision), 0.02));
        assert!(close(get(a2, Stage::DecisionToActionStart), 0.08));
        assert!(close(get(a2, Stage::Action), 0.4));
        assert!(close(get(a2, Stage::Verification), 1.0));
        assert!(close(get(a2, Stage::Total), 2.5));
        let a4 = &tl["a4"];
        assert!(
            close(get(a4, Stage::AlertToDelivery), 5.0),
            "old line: ts stands in for received"
        );
        assert!(close(get(a4, Stage::DeliveryToDecision), 0.0));
        assert_eq!(get(a4, Stage::Total), None, "failed");
        let a9 = &tl["a9"];
        assert!(close(get(a9, Stage::DecisionToActionStart), 0.25));
        assert_eq!(get(a9, Stage::AlertToDelivery), None);
    }
}

//! The alerts currently firing as the receiver knows them, for the status
//! document and the landing page ("critical alerts: none" at a glance). A
//! pure fold over the journal like the rest of the state: a firing `alert`
//! event adds or refreshes its fingerprint, a resolved one removes it, and a
//! decision names the target a rule resolved for it and is remembered as
//! what hostmedic did about it (the landing page joins it with the plan's
//! last action result). Bounded: at most
//! [`MAX_FIRING`] alerts are kept; past that the one delivered longest ago
//! makes room. Heartbeats and other hosts' alerts never reach it (they are
//! not journaled as `alert` events).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::journal::{Decision, Event};
use super::payload::Status;

/// The most firing alerts remembered.
pub const MAX_FIRING: usize = 100;

/// One firing alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringAlert {
    pub name: String,
    /// The `severity` label (empty when it has none).
    #[serde(default)]
    pub severity: String,
    /// Alertmanager's `startsAt`, as delivered.
    pub since: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The target the first matching rule resolved (none: no rule matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When it was last delivered (Unix seconds).
    pub last_delivery: f64,
    /// The latest decision a rule took for it (none: no rule matched yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<SeenDecision>,
}

/// A decision taken for a firing alert, as the journal has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenDecision {
    /// The plan id (the approval id of a pending one): its actions'
    /// results carry it.
    pub id: String,
    pub rule: String,
    /// `act`, `dry_run`, `pending_approval` or `skip`.
    pub decision: Decision,
    /// Why it was skipped (`cooldown`, `hold`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was journaled (Unix seconds).
    pub at: f64,
}

/// Fingerprint → firing alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Firing(BTreeMap<String, FiringAlert>);

/// Sort rank of a severity: critical first.
fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 0,
        "warning" => 1,
        "info" => 2,
        _ => 3,
    }
}

impl Firing {
    /// Folds one journal event (only `alert` and `decision` matter).
    pub fn apply(&mut self, ts: f64, e: &Event) {
        match e {
            Event::Alert { .. } => self.delivered(ts, e),
            Event::Decision {
                id,
                rule,
                fingerprint,
                target,
                decision,
                reason,
                ..
            } => {
                if let Some(a) = self.0.get_mut(fingerprint) {
                    if a.target.is_none() {
                        a.target = Some(target.clone());
                    }
                    a.decision = Some(SeenDecision {
                        id: id.clone(),
                        rule: rule.clone(),
                        decision: *decision,
                        reason: reason.map(|r| r.as_str().to_string()),
                        at: ts,
                    });
                }
            }
            Event::Refused { .. }
            | Event::RefusedForeign { .. }
            | Event::Approved { .. }
            | Event::Action { .. }
            | Event::Spawned { .. }
            | Event::Verify { .. }
            | Event::Hold { .. }
            | Event::HoldCleared { .. }
            | Event::Evidence { .. }
            | Event::Notified { .. }
            | Event::Pipeline(_) => {}
        }
    }

    /// A delivery: a firing one adds or refreshes its alert (making room
    /// by the one delivered longest ago), a resolved one removes it.
    fn delivered(&mut self, ts: f64, e: &Event) {
        let Event::Alert {
            alertname,
            status,
            fingerprint,
            starts_at,
            labels,
            summary,
            duplicate,
            ..
        } = e
        else {
            return;
        };
        if *status != Status::Firing {
            self.0.remove(fingerprint);
            return;
        }
        if let Some(a) = self.0.get_mut(fingerprint) {
            a.last_delivery = ts;
            if !duplicate {
                a.since.clone_from(starts_at);
                a.summary.clone_from(summary);
            }
            return;
        }
        if self.0.len() >= MAX_FIRING
            && let Some(oldest) = self
                .0
                .iter()
                .min_by(|a, b| a.1.last_delivery.total_cmp(&b.1.last_delivery))
                .map(|(k, _)| k.clone())
        {
            self.0.remove(&oldest);
        }
        let alert = FiringAlert {
            name: alertname.clone(),
            severity: labels.get("severity").cloned().unwrap_or_default(),
            since: starts_at.clone(),
            summary: summary.clone(),
            target: None,
            last_delivery: ts,
            decision: None,
        };
        self.0.insert(fingerprint.clone(), alert);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The firing alerts, most severe first, then oldest first.
    pub fn list(&self) -> Vec<&FiringAlert> {
        let mut v: Vec<&FiringAlert> = self.0.values().collect();
        v.sort_by(|a, b| {
            rank(&a.severity)
                .cmp(&rank(&b.severity))
                .then_with(|| a.since.cmp(&b.since))
                .then_with(|| a.name.cmp(&b.name))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(fp: &str, status: Status, severity: &str) -> Event {
        Event::Alert {
            key: format!("{fp}|t|{status}"),
            alertname: format!("A{fp}"),
            status,
            fingerprint: fp.into(),
            starts_at: format!("2026-01-01T00:00:0{}Z", fp.len()),
            labels: [("severity".to_string(), severity.to_string())].into(),
            summary: Some(format!("summary {fp}")),
            description: None,
            runbook_url: None,
            receiver: "hostmedic".into(),
            duplicate: false,
            received: None,
        }
    }

    #[test]
    fn firing_adds_resolved_removes_decision_names_the_target() {
        let mut f = Firing::default();
        f.apply(1.0, &alert("a", Status::Firing, "warning"));
        f.apply(2.0, &alert("bb", Status::Firing, "critical"));
        f.apply(
            3.0,
            &Event::Decision {
                id: "a3".into(),
                rule: "r".into(),
                target: "crashy.service".into(),
                alertname: "Aa".into(),
                fingerprint: "a".into(),
                mode: crate::receiver::mode::Mode::Auto,
                decision: super::super::journal::Decision::Act,
                reason: None,
                detail: String::new(),
                actions: vec![],
                alert: None,
            },
        );
        let l = f.list();
        assert_eq!(l.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["Abb", "Aa"]);
        assert_eq!(l[1].target.as_deref(), Some("crashy.service"));
        let d = l[1].decision.as_ref().expect("the decision is remembered");
        assert_eq!((d.id.as_str(), d.decision, d.at), ("a3", Decision::Act, 3.0));
        f.apply(4.0, &alert("a", Status::Resolved, "warning"));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn bounded_the_longest_undelivered_makes_room() {
        let mut f = Firing::default();
        for i in 0..MAX_FIRING + 5 {
            f.apply(i as f64, &alert(&format!("f{i}"), Status::Firing, "info"));
        }
        assert_eq!(f.len(), MAX_FIRING);
        assert!(!f.0.contains_key("f0") && f.0.contains_key(&format!("f{}", MAX_FIRING + 4)));
    }
}

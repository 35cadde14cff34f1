//! The route stage: which compiled rules an alert matches, and the targets
//! their actions name (rendered from the alert's labels and checked against
//! each target grammar). A value that fails its grammar is a refusal: the
//! whole request is rejected and nothing of it runs.
//!
//! This is the one place that resolves action targets.

use super::config::{On, Rule};
use super::journal::Event;
use super::payload::{Payload, PayloadAlert, Status};
use crate::actions::{Alert, AlertStatus, Compiled, Resolved};

impl Rule {
    /// alertname + matchers, ignoring `on`.
    pub fn matches_labels(&self, a: &PayloadAlert) -> bool {
        a.alertname() == self.cfg.alertname && self.matchers.iter().all(|m| m.matches(&a.labels))
    }

    /// Labels and `on` (firing or resolved).
    pub fn matches(&self, a: &PayloadAlert) -> bool {
        let on = match a.status {
            Status::Firing => On::Firing,
            Status::Resolved => On::Resolved,
        };
        on == self.cfg.on && self.matches_labels(a)
    }

    /// Resolves every action's target; the first destructive (non-notify)
    /// target names the rule's target (else the alert itself).
    pub fn resolve(&self, alert: &Alert) -> Result<(String, Vec<Resolved>), String> {
        let targets = resolve_all(&self.actions, alert)?;
        let key = targets
            .iter()
            .find(|t| t.is_destructive())
            .map(Resolved::key)
            .unwrap_or_else(|| format!("alert:{}:{}", alert.alertname, alert.fingerprint));
        Ok((key, targets))
    }
}

/// Resolves the targets of `specs` (a rule's actions or exhausted actions);
/// the error names the failing action (`actions[1] (restart): …`).
pub fn resolve_all(specs: &[Compiled], alert: &Alert) -> Result<Vec<Resolved>, String> {
    specs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.resolve(alert)
                .map_err(|e| format!("actions[{i}] ({}): {e}", a.name()))
        })
        .collect()
}

/// A rule that matched an alert's labels, with its resolved targets.
#[derive(Debug)]
pub struct Hit {
    pub rule: usize,
    /// The rule's target key (`systemd:system:x.service`, …).
    pub target: String,
    pub targets: Vec<Resolved>,
}

impl Hit {
    /// One line per action as it would run (`restart systemd:system:x.service`).
    pub fn descriptions(&self) -> Vec<String> {
        self.targets.iter().map(Resolved::describe).collect()
    }
}

/// The route stage's result for one request.
#[derive(Debug)]
pub struct Routed {
    /// Per alert of the payload (same order): the rules it reaches.
    pub hits: Vec<Vec<Hit>>,
    /// `refused` events: non-empty means the request is rejected.
    pub refused: Vec<Event>,
}

impl Routed {
    /// The refusals as one message (`rule r: reason; …`).
    pub fn refusal_message(&self) -> String {
        self.refused
            .iter()
            .filter_map(|e| match e {
                Event::Refused { rule, reason, .. } => Some(format!("rule {rule}: {reason}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Routes every alert to the rules whose labels match. Resolutions also
/// reach firing rules (to release their holds); a target that fails its
/// grammar is refused only for a rule that would act on this alert.
pub fn route(rules: &[Rule], payload: &Payload) -> Routed {
    let mut routed = Routed {
        hits: Vec::with_capacity(payload.alerts.len()),
        refused: Vec::new(),
    };
    for a in &payload.alerts {
        let alert = to_alert(a);
        let mut hits = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            if !rule.matches_labels(a) {
                continue;
            }
            match rule.resolve(&alert) {
                Ok((target, targets)) => hits.push(Hit {
                    rule: ri,
                    target,
                    targets,
                }),
                Err(e) if rule.matches(a) => routed.refused.push(Event::Refused {
                    alertname: alert.alertname.clone(),
                    fingerprint: a.fingerprint.clone(),
                    rule: rule.cfg.name.clone(),
                    reason: e,
                }),
                Err(_) => {}
            }
        }
        routed.hits.push(hits);
    }
    routed
}

/// Converts the payload's alert to what actions see.
pub fn to_alert(a: &PayloadAlert) -> Alert {
    Alert {
        alertname: a.alertname().to_string(),
        status: match a.status {
            Status::Firing => AlertStatus::Firing,
            Status::Resolved => AlertStatus::Resolved,
        },
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        fingerprint: a.fingerprint.clone(),
        starts_at: a.starts_at.clone(),
    }
}

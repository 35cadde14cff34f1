//! The fold of journal entries into incidents: each entry finds (or
//! opens) the incident of its alert occurrence and the plan it follows;
//! follow-ups of a decision outside the entries are kept apart.

use std::collections::HashMap;

use super::{
    ActionResult, Captured, Cleared, Delivery, Held, Incident, Notification, Plan, VerifyResult, clock, code, one_line,
};
use crate::receiver::journal::{Entry, Event};
use crate::receiver::journal::{PipelineChange, PipelineEvent};

/// The fold's bookkeeping: the incidents so far, the current occurrence of
/// each fingerprint and each plan's place.
#[derive(Default)]
pub(super) struct Fold<'a> {
    pub(super) incidents: Vec<Incident>,
    current: HashMap<String, usize>,
    plans: HashMap<String, (usize, usize)>,
    pub(super) orphans: Vec<&'a Entry>,
    /// The alert pipeline's current silence (an incident of its own).
    pipeline: Option<usize>,
}

impl<'a> Fold<'a> {
    /// The incident of `fingerprint`: its occurrence starting at
    /// `starts_at` (`None`: whichever is current), created when new.
    fn incident(&mut self, alertname: &str, fingerprint: &str, starts_at: Option<&str>, at: f64) -> usize {
        match (self.current.get(fingerprint), starts_at) {
            (Some(&i), None) => return i,
            (Some(&i), Some(s)) if self.incidents[i].starts_at == s => return i,
            _ => {}
        }
        self.incidents
            .push(Incident::new(alertname, fingerprint, starts_at.unwrap_or(""), at));
        let i = self.incidents.len() - 1;
        self.current.insert(fingerprint.to_string(), i);
        i
    }

    pub(super) fn add(&mut self, e: &'a Entry) {
        match &e.event {
            Event::Alert {
                alertname,
                status,
                fingerprint,
                starts_at,
                labels,
                summary,
                description,
                runbook_url,
                duplicate,
                ..
            } => {
                let i = self.incident(alertname, fingerprint, Some(starts_at), e.ts);
                let inc = &mut self.incidents[i];
                if !duplicate {
                    inc.labels = labels.clone();
                    inc.severity = labels.get("severity").cloned();
                    inc.summary = summary.clone().or(inc.summary.take());
                    inc.description = description.clone().or(inc.description.take());
                    inc.runbook_url = runbook_url.clone().or(inc.runbook_url.take());
                    if status == "resolved" && inc.resolved_at.is_none() {
                        inc.resolved_at = Some(e.ts);
                    }
                }
                inc.deliveries.push(Delivery {
                    at: e.ts,
                    status: status.clone(),
                    duplicate: *duplicate,
                });
            }
            Event::RefusedForeign {
                alertname,
                status,
                fingerprint,
                starts_at,
                names,
                identity,
                ..
            } => {
                let i = self.incident(alertname, fingerprint, Some(starts_at), e.ts);
                let names: Vec<String> = names.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let why = if names.is_empty() {
                    "names no host (not single-host mode)".to_string()
                } else {
                    format!("names another host ({})", code(&names.join(", ")))
                };
                self.incidents[i].refusals.push(format!(
                    "{} {status} refused: {why}; this host is {}",
                    clock(e.ts),
                    code(identity)
                ));
            }
            Event::Refused {
                alertname,
                fingerprint,
                rule,
                reason,
            } => {
                let i = self.incident(alertname, fingerprint, None, e.ts);
                self.incidents[i].refusals.push(format!(
                    "{} refused for rule {}: {}",
                    clock(e.ts),
                    code(rule),
                    one_line(reason)
                ));
            }
            Event::Decision {
                id,
                rule,
                target,
                alertname,
                fingerprint,
                mode,
                decision,
                reason,
                detail,
                actions,
                ..
            } => {
                let i = self.incident(alertname, fingerprint, None, e.ts);
                self.incidents[i].plans.push(Plan {
                    rule: rule.clone(),
                    target: target.clone(),
                    mode: mode.clone(),
                    decision: *decision,
                    reason: *reason,
                    detail: detail.clone(),
                    planned: actions.clone(),
                    ..Plan::follow_ups_of(id, e.ts)
                });
                self.plans.insert(id.clone(), (i, self.incidents[i].plans.len() - 1));
            }
            Event::Hold {
                rule,
                target,
                fingerprint,
                alertname,
                attempts,
            } => {
                let i = self.incident(alertname, fingerprint, None, e.ts);
                self.incidents[i].holds.push(Held {
                    at: e.ts,
                    rule: rule.clone(),
                    target: target.clone(),
                    attempts: *attempts,
                    cleared: None,
                });
            }
            Event::HoldCleared { target, by } => {
                for inc in self.incidents.iter_mut() {
                    for h in inc
                        .holds
                        .iter_mut()
                        .filter(|h| h.target == *target && h.cleared.is_none())
                    {
                        h.cleared = Some(Cleared {
                            at: e.ts,
                            by: by.clone(),
                        });
                    }
                }
            }
            Event::Pipeline(p) => self.pipeline(e, p),
            // A started process matters only when a crash interrupts its
            // plan: the `interrupted` outcome then names the survivors.
            Event::Spawned { .. } => {}
            // The pipeline's own notifications belong to no plan (no id).
            Event::Notified {
                id,
                channel,
                kind,
                ok,
                detail,
            } if id.is_empty() => {
                let i = match self.pipeline {
                    Some(i) => i,
                    None => {
                        self.incidents.push(Incident::new("alert pipeline", "", "", e.ts));
                        self.incidents.len() - 1
                    }
                };
                self.incidents[i].notifications.push(Notification {
                    at: e.ts,
                    channel: channel.clone(),
                    kind: kind.clone(),
                    ok: *ok,
                    detail: detail.clone(),
                });
            }
            Event::Action { id, .. }
            | Event::Verify { id, .. }
            | Event::Approved { id, .. }
            | Event::Evidence { id, .. }
            | Event::Notified { id, .. } => {
                let Some(&(i, p)) = self.plans.get(id.as_str()) else {
                    if !id.is_empty() {
                        self.orphans.push(e);
                    }
                    return;
                };
                follow(&mut self.incidents[i].plans[p], e);
            }
        }
    }
}

impl Fold<'_> {
    /// A silence of the alert pipeline is an incident: it opens with the
    /// `silent` event and is resolved by the `back` one.
    fn pipeline(&mut self, e: &Entry, p: &PipelineEvent) {
        // The last silence, unless it is over and a new one begins.
        let current = self
            .pipeline
            .filter(|&i| !(p.state == PipelineChange::Silent && self.incidents[i].resolved_at.is_some()));
        let i = match current {
            Some(i) => i,
            None => {
                let starts = crate::time::rfc3339_seconds(p.silent_since);
                let mut inc = Incident::new(&p.alertname, "", &starts, e.ts);
                inc.summary = Some(format!("alert pipeline silent (no {} heartbeat)", p.alertname));
                self.incidents.push(inc);
                self.incidents.len() - 1
            }
        };
        let inc = &mut self.incidents[i];
        inc.notes.push(format!("{} **{}**", clock(e.ts), one_line(&p.message)));
        if p.state == PipelineChange::Back {
            inc.resolved_at = Some(e.ts);
        }
        self.pipeline = Some(i);
    }
}

/// Adds a plan's follow-up event to it.
pub(super) fn follow(plan: &mut Plan, e: &Entry) {
    match &e.event {
        Event::Action {
            action,
            description,
            result,
            detail,
            duration_seconds,
            ..
        } => plan.actions.push(ActionResult {
            at: e.ts,
            action: action.clone(),
            description: description.clone(),
            result: result.as_str().to_string(),
            detail: detail.clone(),
            duration_seconds: *duration_seconds,
        }),
        Event::Verify { result, detail, .. } => {
            plan.verification = Some(VerifyResult {
                at: e.ts,
                result: result.as_str().to_string(),
                detail: detail.clone(),
            })
        }
        Event::Approved { by, .. } => plan.approved_by = Some(by.clone()),
        Event::Evidence { stage, items, .. } => plan.evidence.push(Captured {
            at: e.ts,
            stage: *stage,
            items: items.clone(),
        }),
        Event::Notified {
            channel,
            kind,
            ok,
            detail,
            ..
        } => plan.notifications.push(Notification {
            at: e.ts,
            channel: channel.clone(),
            kind: kind.clone(),
            ok: *ok,
            detail: detail.clone(),
        }),
        _ => {}
    }
}

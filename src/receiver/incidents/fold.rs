//! The fold of journal entries into incidents: each entry finds (or
//! opens) the incident of its alert occurrence and the plan it follows;
//! follow-ups of a decision outside the entries are kept apart.

use std::collections::HashMap;

use super::{
    ActionResult, Captured, Cleared, Delivery, Held, Incident, Notification, Plan, VerifyResult, clock, code, one_line,
};
use crate::receiver::identity::Refusal;
use crate::receiver::journal::{Entry, Event, PipelineChange, PipelineEvent};
use crate::receiver::payload::Status;

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

    /// Adds one entry: an event that opens or names an incident goes to it,
    /// a plan's follow-up to its plan.
    pub(super) fn add(&mut self, e: &'a Entry) {
        match &e.event {
            Event::Alert { .. } => self.delivered(e),
            Event::RefusedForeign { .. } => self.refused_foreign(e),
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
            Event::Decision { .. } => self.decided(e),
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
            Event::HoldCleared { target, by } => self.hold_cleared(e.ts, target, by),
            Event::Pipeline(p) => self.pipeline(e, p),
            // A started process matters only when a crash interrupts its
            // plan: the `interrupted` outcome then names the survivors.
            Event::Spawned { .. } => {}
            // The pipeline's own notifications belong to no plan (no id).
            Event::Notified { id, .. } if id.is_empty() => self.pipeline_notified(e),
            Event::Action { id, .. }
            | Event::Verify { id, .. }
            | Event::Approved { id, .. }
            | Event::Evidence { id, .. }
            | Event::Notified { id, .. } => match self.plans.get(id.as_str()) {
                Some(&(i, p)) => follow(&mut self.incidents[i].plans[p], e),
                None if !id.is_empty() => self.orphans.push(e),
                None => {}
            },
        }
    }

    /// An `alert` delivery: its occurrence's labels and annotations, and
    /// when it resolved.
    fn delivered(&mut self, e: &Entry) {
        let Event::Alert {
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
        } = &e.event
        else {
            return;
        };
        let i = self.incident(alertname, fingerprint, Some(starts_at), e.ts);
        let inc = &mut self.incidents[i];
        if !duplicate {
            inc.labels = labels.clone();
            inc.severity = labels.get("severity").cloned();
            inc.summary = summary.clone().or(inc.summary.take());
            inc.description = description.clone().or(inc.description.take());
            inc.runbook_url = runbook_url.clone().or(inc.runbook_url.take());
            if *status == Status::Resolved && inc.resolved_at.is_none() {
                inc.resolved_at = Some(e.ts);
            }
        }
        inc.deliveries.push(Delivery {
            at: e.ts,
            status: *status,
            duplicate: *duplicate,
        });
    }

    /// An alert that is not this host's, in words.
    fn refused_foreign(&mut self, e: &Entry) {
        let Event::RefusedForeign {
            alertname,
            status,
            fingerprint,
            starts_at,
            names,
            identity,
            reason,
        } = &e.event
        else {
            return;
        };
        let i = self.incident(alertname, fingerprint, Some(starts_at), e.ts);
        let names: Vec<String> = names.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let why = match reason {
            Refusal::NoHost => "names no host (not single-host mode)".to_string(),
            Refusal::Foreign => format!("names another host ({})", code(&names.join(", "))),
        };
        self.incidents[i].refusals.push(format!(
            "{} {status} refused: {why}; this host is {}",
            clock(e.ts),
            code(identity)
        ));
    }

    /// A decision opens a plan that its follow-ups find by id.
    fn decided(&mut self, e: &Entry) {
        let Event::Decision {
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
        } = &e.event
        else {
            return;
        };
        let i = self.incident(alertname, fingerprint, None, e.ts);
        self.incidents[i].plans.push(Plan {
            rule: rule.clone(),
            target: target.clone(),
            mode: mode.journal_str().to_string(),
            decision: *decision,
            reason: *reason,
            detail: detail.clone(),
            planned: actions.clone(),
            ..Plan::follow_ups_of(id, e.ts)
        });
        self.plans.insert(id.clone(), (i, self.incidents[i].plans.len() - 1));
    }

    /// A person cleared the holds on `target`, in every incident.
    fn hold_cleared(&mut self, at: f64, target: &str, by: &str) {
        let open = self
            .incidents
            .iter_mut()
            .flat_map(|inc| inc.holds.iter_mut())
            .filter(|h| h.target == target && h.cleared.is_none());
        for h in open {
            h.cleared = Some(Cleared { at, by: by.to_string() });
        }
    }

    /// A notification of the alert pipeline's heartbeat (no plan): it goes
    /// to the pipeline's incident.
    fn pipeline_notified(&mut self, e: &Entry) {
        let Some(n) = notification(e) else {
            return;
        };
        let i = match self.pipeline {
            Some(i) => i,
            None => {
                self.incidents.push(Incident::new("alert pipeline", "", "", e.ts));
                self.incidents.len() - 1
            }
        };
        self.incidents[i].notifications.push(n);
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

/// Adds a plan's follow-up event to it (other events are not follow-ups).
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
            result: *result,
            detail: detail.clone(),
            duration_seconds: *duration_seconds,
        }),
        Event::Verify { result, detail, .. } => {
            plan.verification = Some(VerifyResult {
                at: e.ts,
                result: *result,
                detail: detail.clone(),
            })
        }
        Event::Approved { by, .. } => plan.approved_by = Some(by.clone()),
        Event::Evidence { stage, items, .. } => plan.evidence.push(Captured {
            at: e.ts,
            stage: *stage,
            items: items.clone(),
        }),
        Event::Notified { .. } => plan.notifications.extend(notification(e)),
        Event::Alert { .. }
        | Event::Refused { .. }
        | Event::RefusedForeign { .. }
        | Event::Decision { .. }
        | Event::Spawned { .. }
        | Event::Hold { .. }
        | Event::HoldCleared { .. }
        | Event::Pipeline(_) => {}
    }
}

/// A `notified` entry as the report shows it.
fn notification(e: &Entry) -> Option<Notification> {
    let Event::Notified {
        channel,
        kind,
        ok,
        detail,
        ..
    } = &e.event
    else {
        return None;
    };
    Some(Notification {
        at: e.ts,
        channel: channel.clone(),
        kind: *kind,
        ok: *ok,
        detail: detail.clone(),
    })
}

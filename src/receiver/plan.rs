//! Turns routed alerts into journal events and background jobs, under the
//! core lock: the alert itself (duplicate or not), holds released by a
//! resolution, then per (rule, target) the [`policy::decide`] verdict, the
//! hold and escalation a spent budget brings, and what runs or waits for
//! approval. Every event is applied to the state as it is planned, so later
//! alerts of the same request see the earlier decisions.

use super::config::{Mode, ReceiverConfig, Rule};
use super::job::Job;
use super::journal::{Event, NotifyKind, SkipReason};
use super::ledger::Batch;
use super::messages;
use super::payload::{Payload, PayloadAlert, Status};
use super::policy::{self, Decision};
use super::route::{self, Hit};
use super::state::LastAction;
use super::timeline::Timeline;
use crate::actions::Alert;

/// What the webhook handler reports back.
#[derive(Debug, Default, serde::Serialize)]
pub struct Accepted {
    pub alerts: usize,
    /// Alerts not this host's (`[fleet]`): journaled, never acted on.
    pub foreign: usize,
    pub duplicates: usize,
    pub planned: usize,
    pub skipped: usize,
}

/// A request's plan: the summary, the work to start once it is journaled,
/// and the skip reasons to count.
#[derive(Debug, Default)]
pub struct Plan {
    pub accepted: Accepted,
    pub jobs: Vec<Job>,
    pub skips: Vec<&'static str>,
    /// When the request arrived (the planning time when unknown): where
    /// each run's [`Timeline`] starts.
    pub received: f64,
}

/// Plans every alert of `payload` (`hits` from the route stage, same order).
pub fn plan(
    batch: &mut Batch<'_>,
    cfg: &ReceiverConfig,
    rules: &[Rule],
    payload: &Payload,
    hits: Vec<Vec<Hit>>,
) -> Plan {
    let mut p = Plan {
        received: payload.received.unwrap_or(batch.now()),
        ..Plan::default()
    };
    for (a, hits) in payload.alerts.iter().zip(hits) {
        let key = a.dedup_key();
        let duplicate = policy::duplicate(batch.state(), &key, batch.now(), cfg.dedup_window);
        batch.push(Event::Alert {
            key,
            alertname: a.alertname().to_string(),
            status: a.status,
            fingerprint: a.fingerprint.clone(),
            starts_at: a.starts_at.clone(),
            labels: a.labels.clone(),
            summary: a.annotations.get("summary").cloned(),
            description: a.annotations.get("description").map(|d| {
                let mut d = d.trim().to_string();
                crate::evidence::cut(&mut d, 4096);
                d
            }),
            runbook_url: a.annotations.get("runbook_url").cloned(),
            receiver: payload.receiver.clone(),
            duplicate,
            received: payload.received,
        });
        if duplicate {
            p.accepted.duplicates += 1;
            p.skips.push(SkipReason::Duplicate.as_str());
            continue;
        }
        if a.status == Status::Resolved {
            release_holds(batch, a, &hits);
        }
        let hits: Vec<Hit> = hits.into_iter().filter(|h| rules[h.rule].matches(a)).collect();
        if hits.is_empty() {
            p.skips.push(SkipReason::NoRule.as_str());
            continue;
        }
        let alert = route::to_alert(a);
        for hit in hits {
            plan_hit(batch, cfg, rules, a, &alert, hit, &mut p);
        }
    }
    p
}

/// A resolution releases the holds its alert (fingerprint) or its rules'
/// targets put in place.
fn release_holds(batch: &mut Batch<'_>, a: &PayloadAlert, hits: &[Hit]) {
    let holds = &batch.state().holds;
    let mut release: Vec<String> = holds
        .iter()
        .filter(|(_, h)| h.fingerprint == a.fingerprint)
        .map(|(t, _)| t.clone())
        .collect();
    for h in hits {
        if holds.contains_key(&h.target) && !release.contains(&h.target) {
            release.push(h.target.clone());
        }
    }
    for target in release {
        batch.push(Event::HoldCleared {
            target,
            by: "resolved".into(),
        });
    }
}

/// One (rule, target): decide, journal the decision, plan what follows.
fn plan_hit(
    batch: &mut Batch<'_>,
    cfg: &ReceiverConfig,
    rules: &[Rule],
    a: &PayloadAlert,
    alert: &Alert,
    hit: Hit,
    p: &mut Plan,
) {
    let rule = &rules[hit.rule];
    let descriptions = hit.descriptions();
    let Hit {
        rule: ri,
        target,
        targets,
    } = hit;
    let mode = policy::mode(cfg.dry_run, rule);
    let id = batch.next_id();
    let decision = policy::decide(batch.state(), rule, &target, batch.now(), mode);
    let detail = policy::detail(batch.state(), rule, &target, batch.now(), decision);
    let decided = Decided {
        id: &id,
        rule,
        target: &target,
        a,
        alert,
        mode,
        decision,
        detail: &detail,
        descriptions: &descriptions,
    };
    decided.journal(batch);
    match decision {
        Decision::Skip(reason) => {
            p.accepted.skipped += 1;
            p.skips.push(reason.as_str());
            if reason == SkipReason::Budget {
                exhausted(batch, rule, ri, a, alert, &id, &target, p);
            }
            if reason == SkipReason::Quiet {
                // Recorded above; told instead of acted on.
                p.jobs.push(Job::Notify {
                    id: id.clone(),
                    channels: rule.quiet_channels().to_vec(),
                    kind: NotifyKind::Quiet,
                    alert: alert.clone(),
                    title: format!("not acting (quiet window): {} on {target}", rule.cfg.name),
                    message: messages::quiet(alert, &rule.cfg.name, &descriptions, &detail),
                });
            }
        }
        Decision::PendingApproval => {
            p.accepted.planned += 1;
            p.skips.push(SkipReason::NotifyOnly.as_str());
            p.jobs.push(Job::Notify {
                id: id.clone(),
                channels: rule.cfg.notify.clone(),
                kind: NotifyKind::Approval,
                alert: alert.clone(),
                title: format!("approval needed: {} on {target}", rule.cfg.name),
                message: messages::approval(alert, &rule.cfg.name, &descriptions, &id),
            });
        }
        Decision::Act | Decision::DryRun => {
            p.accepted.planned += 1;
            p.jobs.push(Job::Run {
                id,
                rule: ri,
                target,
                alert: alert.clone(),
                targets,
                dry_run: decision == Decision::DryRun,
                timeline: Timeline::delivered(a.status, &a.starts_at, p.received, batch.now()),
            });
        }
    }
}

/// A decision for one (rule, target), as it is logged and journaled.
struct Decided<'a> {
    id: &'a str,
    rule: &'a Rule,
    target: &'a str,
    a: &'a PayloadAlert,
    alert: &'a Alert,
    mode: Mode,
    decision: Decision,
    detail: &'a str,
    descriptions: &'a [String],
}

impl Decided<'_> {
    /// The `remediation decision` log line and the journal's `decision`.
    fn journal(&self, batch: &mut Batch<'_>) {
        let (journaled, reason, with_alert) = self.decision.journal();
        tracing::info!(
            id = %self.id,
            rule = %self.rule.cfg.name,
            target = %self.target,
            alertname = %self.alert.alertname,
            decision = journaled.as_str(),
            reason = reason.map(SkipReason::as_str).unwrap_or(""),
            detail = %self.detail,
            actions = %self.descriptions.join("; "),
            "remediation decision"
        );
        batch.push(Event::Decision {
            id: self.id.to_string(),
            rule: self.rule.cfg.name.clone(),
            target: self.target.to_string(),
            alertname: self.alert.alertname.clone(),
            fingerprint: self.a.fingerprint.clone(),
            mode: self.mode,
            decision: journaled,
            reason,
            detail: self.detail.to_string(),
            actions: self.descriptions.to_vec(),
            alert: with_alert.then(|| Box::new(self.a.clone())),
        });
    }
}

/// The budget is spent: hold the target, escalate, and run the rule's
/// exhausted actions (refused, and journaled so, when a target fails).
#[allow(clippy::too_many_arguments)]
fn exhausted(
    batch: &mut Batch<'_>,
    rule: &Rule,
    ri: usize,
    a: &PayloadAlert,
    alert: &Alert,
    id: &str,
    target: &str,
    p: &mut Plan,
) {
    let attempts = batch
        .state()
        .attempts_within(target, batch.now(), rule.budget_window.as_secs_f64());
    let history: Vec<LastAction> = batch
        .state()
        .last_actions
        .iter()
        .filter(|l| l.target == target)
        .cloned()
        .collect();
    batch.push(Event::Hold {
        rule: rule.cfg.name.clone(),
        target: target.to_string(),
        fingerprint: a.fingerprint.clone(),
        alertname: alert.alertname.clone(),
        attempts,
    });
    p.jobs.push(Job::Notify {
        id: id.to_string(),
        channels: rule.escalate.clone(),
        kind: NotifyKind::Escalation,
        alert: alert.clone(),
        title: format!("remediation exhausted: {} on {target}", rule.cfg.name),
        message: messages::exhausted(rule, target, alert, attempts, &history),
    });
    if rule.exhausted_actions.is_empty() {
        return;
    }
    match route::resolve_all(&rule.exhausted_actions, alert) {
        Ok(targets) => p.jobs.push(Job::Run {
            id: id.to_string(),
            rule: ri,
            target: target.to_string(),
            alert: alert.clone(),
            targets,
            dry_run: false,
            timeline: Timeline::delivered(a.status, &a.starts_at, p.received, batch.now()),
        }),
        Err(e) => batch.push(Event::Refused {
            alertname: alert.alertname.clone(),
            fingerprint: a.fingerprint.clone(),
            rule: rule.cfg.name.clone(),
            reason: format!("exhausted_{e}"),
        }),
    }
}

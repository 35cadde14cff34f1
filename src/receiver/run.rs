//! The run stage: work done after the webhook is acknowledged. Actions run
//! serialized per target and bounded globally (a semaphore), each under its
//! timeout, then verified; every result is journaled and counted, and the
//! rule's channels are told the outcome.
//!
//! This is the one place that runs or verifies actions ([`Receiver::run_actions`])
//! and sends notifications ([`Receiver::send`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;

use super::Receiver;
use super::config::Rule;
use super::engine::Settings;
use super::journal::Event;
use super::lock;
use super::messages::sep;
use super::timeline::Timeline;
use crate::actions::{ActionEnv, Alert, OutcomeResult, Resolved, SpawnSink, Verification};
use crate::evidence::{self, Stage};

/// Work to do after the webhook has been acknowledged.
#[derive(Debug)]
pub enum Job {
    /// Run a rule's actions (or exhausted actions) on their targets.
    Run {
        id: String,
        rule: usize,
        target: String,
        alert: Alert,
        targets: Vec<Resolved>,
        dry_run: bool,
        /// The instants so far (alert, delivery, decision); the run adds
        /// the rest and the stages go to the latency histogram.
        timeline: Timeline,
    },
    /// Tell channels something (an approval request, an escalation).
    Notify {
        id: String,
        channels: Vec<String>,
        kind: &'static str,
        alert: Alert,
        title: String,
        message: String,
    },
}

impl Receiver {
    /// Runs `jobs` in the background, each in its own task, under the
    /// settings they were planned with (`rule` indexes its rules).
    pub(super) fn spawn(self: &Arc<Self>, settings: &Arc<Settings>, jobs: Vec<Job>) {
        for job in jobs {
            let me = self.clone();
            let s = settings.clone();
            tokio::spawn(async move { me.run_job(&s, job).await });
        }
    }

    async fn run_job(self: Arc<Self>, s: &Settings, job: Job) {
        match job {
            Job::Notify {
                id,
                channels,
                kind,
                alert,
                title,
                message,
            } => {
                // An approval request or escalation carries the evidence of
                // what its alert names (the plan's targets are not acted on).
                let before = self.evidence(s, &id, &alert, &[], None).await;
                let text = evidence::render_bounded(&before, Stage::Before, evidence::NOTIFY_BUDGET);
                for ch in channels {
                    self.notify_with_evidence(s, &id, ch, kind, &alert, &title, &message, &text)
                        .await;
                }
            }
            Job::Run {
                id,
                rule,
                target,
                alert,
                targets,
                dry_run,
                mut timeline,
            } => {
                let lock = self.target_lock(&target);
                let _serial = lock.lock().await;
                let Ok(permit) = self.semaphore.clone().acquire_owned().await else {
                    return;
                };
                let dry_run = s.env.dry_run || dry_run;
                let before = self.evidence(s, &id, &alert, &targets, None).await;
                let text = evidence::render_bounded(&before, Stage::Before, evidence::NOTIFY_BUDGET);
                let (all_ok, ran, verdict) = self
                    .run_actions(s, &id, rule, &target, &alert, &targets, dry_run, &text, &mut timeline)
                    .await;
                drop(permit);
                self.metrics.latency(&timeline);
                // What the subjects look like now (nothing changed in a dry run).
                let after = if dry_run {
                    Vec::new()
                } else {
                    self.evidence(s, &id, &alert, &targets, Some(&before)).await
                };
                let rule = &s.rules[rule];
                if !rule.cfg.notify.is_empty() {
                    let title = super::messages::outcome_title(&rule.cfg.name, &target, dry_run, all_ok, &verdict);
                    let message = format!("{} ({})\n{}", alert.alertname, alert.status, ran.join("\n"));
                    let text = outcome_evidence(&before, &after);
                    for ch in &rule.cfg.notify {
                        self.notify_with_evidence(s, &id, ch.clone(), "outcome", &alert, &title, &message, &text)
                            .await;
                    }
                }
            }
        }
    }

    /// Runs the actions in order, each followed by the actions it brings
    /// along ([`Resolved::followers`]: a restarted container's dependents),
    /// stopping at the first failure; then, when all succeeded for real and
    /// the rule asks, verifies each one that ran; `notify` actions carry
    /// `evidence`. Returns (all ok, one line per action ran, the
    /// verification verdict); each action's start and end and the
    /// verification's end go into `timeline`.
    #[allow(clippy::too_many_arguments)]
    async fn run_actions(
        &self,
        s: &Settings,
        id: &str,
        rule: usize,
        target: &str,
        alert: &Alert,
        targets: &[Resolved],
        dry_run: bool,
        evidence: &str,
        timeline: &mut Timeline,
    ) -> (bool, Vec<String>, String) {
        let rule = &s.rules[rule];
        let mut env = s.env.clone();
        env.dry_run = dry_run;
        env.evidence = evidence.to_string();
        // The processes the actions start are journaled as they start.
        let (sink, mut spawned) = SpawnSink::channel();
        env.spawned = Some(sink);
        let mut all_ok = true;
        let mut ran = Vec::new();
        let event = |index, action, description, result: &str, detail, took| Event::Action {
            id: id.to_string(),
            rule: rule.cfg.name.clone(),
            target: target.to_string(),
            index,
            action,
            description,
            result: result.to_string(),
            detail,
            duration_seconds: took,
        };
        // The rule's actions, each followed by what it brings along (the
        // dependents of a restarted container), in order.
        let mut work: VecDeque<Resolved> = targets.iter().cloned().collect();
        let mut done: Vec<Resolved> = Vec::with_capacity(targets.len());
        while let Some(t) = work.pop_front() {
            let name = t.name();
            let timeout = rule.action_timeout.max(t.suggested_timeout());
            let started = Instant::now();
            let started_at = crate::time::now();
            let run = tokio::time::timeout(timeout, t.run(alert, &env));
            let (result, detail) = match self.journal_spawned(&mut spawned, id, done.len(), run).await {
                Ok(o) => (o.result.as_str(), o.detail),
                Err(_) => (
                    OutcomeResult::Failed.as_str(),
                    format!("timed out after {}", humantime::format_duration(timeout)),
                ),
            };
            let took = started.elapsed().as_secs_f64();
            timeline.action(started_at, started_at + took, result == "ok");
            self.metrics.action(&name, result);
            self.metrics.duration(&name, took);
            let description = t.describe();
            log_outcome(id, &rule.cfg.name, target, &description, result, &detail);
            self.ledger
                .record(vec![event(
                    done.len(),
                    name.clone(),
                    description,
                    result,
                    detail.clone(),
                    took,
                )])
                .await;
            ran.push(format!("{}: {result}{}", t.describe(), sep(&detail)));
            let stop = !matches!(result, "ok" | "dry_run");
            all_ok &= matches!(result, "ok" | "dry_run");
            let followers = if stop { Ok(Vec::new()) } else { t.followers(&env).await };
            done.push(t);
            match followers {
                Ok(f) => f.into_iter().rev().for_each(|f| work.push_front(f)),
                Err(e) => {
                    // The dependents cannot be named: the plan fails here.
                    let failed = OutcomeResult::Failed.as_str();
                    self.metrics.action(&name, failed);
                    let description = format!("{} dependents of {}", name.clone(), done[done.len() - 1]);
                    self.ledger
                        .record(vec![event(
                            done.len(),
                            name.clone(),
                            description,
                            failed,
                            e.clone(),
                            0.0,
                        )])
                        .await;
                    ran.push(format!("{} dependents: {failed}{}", name.clone(), sep(&e)));
                    all_ok = false;
                    break;
                }
            }
            if stop {
                break;
            }
        }
        let mut verdict = String::new();
        if all_ok && !env.dry_run && rule.cfg.verify {
            verdict = self.verify_plan(rule, id, target, &done, &env, Some(timeline)).await;
        }
        (all_ok, ran, verdict)
    }

    /// Verifies each action of a plan (stopping at the first that did not
    /// help), journaling each verdict (and its end into `timeline`, when the
    /// run keeps one); returns the last one ("" when no action can be
    /// verified).
    pub(super) async fn verify_plan(
        &self,
        rule: &Rule,
        id: &str,
        target: &str,
        targets: &[Resolved],
        env: &ActionEnv,
        mut timeline: Option<&mut Timeline>,
    ) -> String {
        let mut verdict = String::new();
        for t in targets {
            let (result, detail) = match t.verify(env, rule.verify_timeout).await {
                Verification::Verified => ("verified", String::new()),
                Verification::NotHelped(why) => ("not_helped", why),
                Verification::NotApplicable => continue,
            };
            if let Some(tl) = timeline.as_deref_mut() {
                tl.verified(crate::time::now(), result == "verified");
            }
            self.metrics.action(&t.name(), result);
            self.ledger
                .record(vec![Event::Verify {
                    id: id.to_string(),
                    rule: rule.cfg.name.clone(),
                    target: target.to_string(),
                    result: result.to_string(),
                    detail: detail.clone(),
                }])
                .await;
            log_outcome(id, &rule.cfg.name, target, &t.describe(), result, &detail);
            verdict = format!("{result}{}", sep(&detail));
            if result == "not_helped" {
                break;
            }
        }
        verdict
    }

    /// Captures the evidence about the subjects of `alert` and `targets`
    /// ([`evidence::subjects`]) and journals it with plan `id`; returns the
    /// items (empty when evidence is off or there is no subject).
    /// At verification, log lines already captured before acting
    /// (`before`) are left out ([`evidence::only_new`]).
    async fn evidence(
        &self,
        s: &Settings,
        id: &str,
        alert: &Alert,
        targets: &[Resolved],
        before: Option<&[evidence::Item]>,
    ) -> Vec<evidence::Item> {
        let subjects = evidence::subjects(alert, targets);
        if id.is_empty() || subjects.is_empty() || !s.evidence.enabled {
            return Vec::new();
        }
        let mut items = s.evidence.capture(&s.env, &subjects).await;
        let stage = match before {
            None => Stage::Before,
            Some(b) => {
                evidence::only_new(b, &mut items);
                Stage::Verification
            }
        };
        self.ledger
            .record(vec![Event::Evidence {
                id: id.to_string(),
                stage,
                items: items.clone(),
            }])
            .await;
        items
    }

    /// Sends one notification (no evidence: the receiver's own messages)
    /// and journals how it went.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn notify_one(
        &self,
        s: &Settings,
        id: &str,
        channel: String,
        kind: &str,
        alert: &Alert,
        title: &str,
        message: &str,
    ) {
        self.notify_with_evidence(s, id, channel, kind, alert, title, message, "")
            .await
    }

    /// Sends one notification with evidence appended within the channel's
    /// limit, and journals how it went.
    #[allow(clippy::too_many_arguments)]
    async fn notify_with_evidence(
        &self,
        s: &Settings,
        id: &str,
        channel: String,
        kind: &str,
        alert: &Alert,
        title: &str,
        message: &str,
        evidence: &str,
    ) {
        let (ok, detail) = self.send(s, &channel, alert, title, message, evidence).await;
        if ok {
            tracing::info!(id, channel = %channel, kind, "notification sent");
        } else {
            tracing::warn!(id, channel = %channel, kind, detail = %detail, "notification failed");
        }
        self.ledger
            .record(vec![Event::Notified {
                id: id.to_string(),
                channel,
                kind: kind.to_string(),
                ok,
                detail,
            }])
            .await;
    }

    /// Sends one notification through a configured channel.
    async fn send(
        &self,
        s: &Settings,
        channel: &str,
        alert: &Alert,
        title: &str,
        message: &str,
        evidence: &str,
    ) -> (bool, String) {
        // Notifications are sent even in dry-run mode: they change nothing.
        let started = Instant::now();
        let sent = s
            .env
            .notify_client
            .send_to_with_evidence(&s.env.notify, channel, title, message, evidence, alert);
        let res = match tokio::time::timeout(crate::notify::SEND_TIMEOUT, sent).await {
            Ok(r) => r,
            Err(_) => return (false, "timed out".into()),
        };
        let ok = res.is_ok();
        let result = if ok { OutcomeResult::Ok } else { OutcomeResult::Failed };
        self.metrics.action("notify", result.as_str());
        self.metrics.duration("notify", started.elapsed().as_secs_f64());
        let detail = res.unwrap_or_else(|failed| failed);
        (ok, crate::actions::truncate(detail, crate::actions::DETAIL_MAX))
    }

    /// The lock serializing actions on one target (the map forgets unused
    /// locks once it grows past 1024).
    pub(super) fn target_lock(&self, target: &str) -> Arc<Mutex<()>> {
        let mut locks = lock(&self.target_locks);
        if locks.len() > 1024 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(target.to_string()).or_default().clone()
    }
}

/// The evidence of an outcome notification: what was captured before acting
/// (the why), then one line per subject of how it looked at verification.
/// Both within [`evidence::NOTIFY_BUDGET`] (the state lines first).
fn outcome_evidence(before: &[evidence::Item], after: &[evidence::Item]) -> String {
    let mut state = String::new();
    if !after.is_empty() {
        state.push_str(&format!("State ({}):\n", Stage::Verification.heading()));
        for item in after {
            let facts: Vec<String> = item.facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut line = format!("[{}] {}", item.subject, facts.join(", "));
            evidence::cut(&mut line, 300);
            state.push_str(&line);
            state.push('\n');
        }
    }
    let budget = evidence::NOTIFY_BUDGET.saturating_sub(state.len()).max(512);
    evidence::render_bounded(before, Stage::Before, budget) + &state
}

/// One line in the service log per action outcome and verification: info
/// when it went as hoped, a warning when it did not (the first line of its
/// detail says why).
fn log_outcome(id: &str, rule: &str, target: &str, action: &str, result: &str, detail: &str) {
    let why = detail.lines().next().unwrap_or("");
    if matches!(result, "ok" | "dry_run" | "verified") {
        tracing::info!(id, rule, target, action, result, detail = why, "remediation action");
    } else {
        tracing::warn!(
            id,
            rule,
            target,
            action,
            result,
            detail = why,
            "remediation action did not succeed"
        );
    }
}

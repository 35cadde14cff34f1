//! The run stage: work done after the webhook is acknowledged. Actions run
//! serialized per target and bounded globally (a semaphore), each under its
//! timeout, then verified; every result is journaled and counted, and the
//! rule's channels are told the outcome.
//!
//! This is the one place that runs or verifies actions ([`Receiver::run_actions`])
//! and sends notifications ([`Receiver::send`]).

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
                for ch in channels {
                    self.notify_one(s, &id, ch, kind, &alert, &title, &message).await;
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
                let (all_ok, ran, verdict) = self
                    .run_actions(s, &id, rule, &target, &alert, &targets, dry_run, &mut timeline)
                    .await;
                drop(permit);
                self.metrics.latency(&timeline);
                let rule = &s.rules[rule];
                if !rule.cfg.notify.is_empty() {
                    let title = format!(
                        "{} {} on {target}: {}",
                        rule.cfg.name,
                        if dry_run { "(dry run)" } else { "ran" },
                        if verdict.is_empty() {
                            if all_ok { "ok" } else { "failed" }
                        } else {
                            verdict.as_str()
                        }
                    );
                    let message = format!("{} ({})\n{}", alert.alertname, alert.status, ran.join("\n"));
                    for ch in &rule.cfg.notify {
                        self.notify_one(s, &id, ch.clone(), "outcome", &alert, &title, &message)
                            .await;
                    }
                }
            }
        }
    }

    /// Runs the actions in order (stopping at the first failure), then, when
    /// all succeeded for real and the rule asks, verifies each. Returns
    /// (all ok, one line per action ran, the verification verdict); each
    /// action's start and end and the verification's end go into `timeline`.
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
        timeline: &mut Timeline,
    ) -> (bool, Vec<String>, String) {
        let rule = &s.rules[rule];
        let mut env = s.env.clone();
        env.dry_run = dry_run;
        // The processes the actions start are journaled as they start.
        let (sink, mut spawned) = SpawnSink::channel();
        env.spawned = Some(sink);
        let mut all_ok = true;
        let mut ran = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let spec = t.spec();
            let timeout = rule.action_timeout.max(spec.suggested_timeout());
            let started = Instant::now();
            let started_at = crate::time::now();
            let run = tokio::time::timeout(timeout, t.run(alert, &env));
            let (result, detail) = match self.journal_spawned(&mut spawned, id, i, run).await {
                Ok(o) => (o.result.as_str(), o.detail),
                Err(_) => (
                    OutcomeResult::Failed.as_str(),
                    format!("timed out after {}", humantime::format_duration(timeout)),
                ),
            };
            let took = started.elapsed().as_secs_f64();
            timeline.action(started_at, started_at + took, result == "ok");
            self.metrics.action(&spec.name(), result);
            self.metrics.duration(&spec.name(), took);
            self.ledger
                .record(vec![Event::Action {
                    id: id.to_string(),
                    rule: rule.cfg.name.clone(),
                    target: target.to_string(),
                    index: i,
                    action: spec.name(),
                    description: format!("{} {}", spec.name(), t),
                    result: result.to_string(),
                    detail: detail.clone(),
                    duration_seconds: took,
                }])
                .await;
            ran.push(format!("{} {t}: {result}{}", spec.name(), sep(&detail)));
            if result != "ok" {
                all_ok = result == "dry_run" && all_ok;
                if result != "dry_run" {
                    break;
                }
            }
        }
        let mut verdict = String::new();
        if all_ok && !env.dry_run && rule.cfg.verify {
            verdict = self.verify_plan(rule, id, target, targets, &env, Some(timeline)).await;
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
            verdict = format!("{result}{}", sep(&detail));
            if result == "not_helped" {
                break;
            }
        }
        verdict
    }

    /// Sends one notification and journals how it went.
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
        let (ok, detail) = self.send(s, &channel, alert, title, message).await;
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
    async fn send(&self, s: &Settings, channel: &str, alert: &Alert, title: &str, message: &str) -> (bool, String) {
        // Notifications are sent even in dry-run mode: they change nothing.
        let started = Instant::now();
        let sent = s
            .env
            .notify_client
            .send_to(&s.env.notify, channel, title, message, alert);
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

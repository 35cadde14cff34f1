//! The run stage: work done after the webhook is acknowledged. Actions run
//! serialized per target and bounded globally (a semaphore), each under its
//! timeout, then verified; every result is journaled and counted, and the
//! rule's channels are told the outcome.
//!
//! This is the one place that runs or verifies actions ([`Runner::spawn`],
//! [`Runner::verify_plan`]) and sends notifications ([`Runner::notify_one`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{Mutex, Semaphore};

use super::config::Rule;
use super::job::Job;
use super::journal::{Event, NotifyKind, VerifyResult};
use super::ledger::Ledger;
use super::messages::sep;
use super::metrics::Metrics;
use super::settings::Settings;
use super::timeline::Timeline;
use crate::actions::env::OWN_PROCFS;
use crate::actions::{ActionEnv, Alert, FollowersError, OutcomeResult, Resolved, SpawnSink, Spawned, Verification};
use crate::evidence::{self, Stage};
use crate::sync::lock;

/// The plan a run is for, as its journal events name it.
struct PlanRef<'a> {
    settings: &'a Settings,
    id: &'a str,
    rule: &'a Rule,
    target: &'a str,
}

impl PlanRef<'_> {
    /// How long action `t` may take: the rule's timeout, or longer when
    /// the action needs it (a restart that waits for its unit).
    fn timeout(&self, t: &Resolved) -> std::time::Duration {
        self.rule.action_timeout.max(t.suggested_timeout())
    }

    /// The journal's `action` event of this plan's action `index`.
    fn action(
        &self,
        index: usize,
        action: String,
        description: String,
        result: OutcomeResult,
        detail: String,
        took: f64,
    ) -> Event {
        Event::Action {
            id: self.id.to_string(),
            rule: self.rule.cfg.name.clone(),
            target: self.target.to_string(),
            index,
            action,
            description,
            result,
            detail,
            duration_seconds: took,
        }
    }
}

/// What the run stage uses of the receiver: the ledger it journals into,
/// the metrics it counts in, the action semaphore and the per-target
/// locks. Cheap to clone (shared): each job's task takes a copy.
#[derive(Clone)]
pub struct Runner {
    pub ledger: Arc<Ledger>,
    pub metrics: Arc<Metrics>,
    semaphore: Arc<Semaphore>,
    target_locks: Arc<std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>>,
}

impl Runner {
    /// A runner journaling into `ledger`, running at most `max_concurrent`
    /// plans at once.
    pub fn new(ledger: Arc<Ledger>, metrics: Arc<Metrics>, max_concurrent: usize) -> Runner {
        Runner {
            ledger,
            metrics,
            semaphore: Arc::new(Semaphore::new(max_concurrent)),
            target_locks: Default::default(),
        }
    }

    /// Runs `jobs` in the background, each in its own task, under the
    /// settings they were planned with (`rule` indexes its rules).
    pub fn spawn(&self, settings: &Arc<Settings>, jobs: Vec<Job>) {
        for job in jobs {
            let me = self.clone();
            let s = settings.clone();
            tokio::spawn(async move { me.run_job(&s, job).await });
        }
    }

    async fn run_job(self, s: &Settings, job: Job) {
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
                let plan = PlanRef {
                    settings: s,
                    id: &id,
                    rule: &s.rules[rule],
                    target: &target,
                };
                let (all_ok, ran, verdict) = self
                    .run_actions(&plan, &alert, &targets, dry_run, &text, &mut timeline)
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
                        self.notify_with_evidence(
                            s,
                            &id,
                            ch.clone(),
                            NotifyKind::Outcome,
                            &alert,
                            &title,
                            &message,
                            &text,
                        )
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
    async fn run_actions(
        &self,
        plan: &PlanRef<'_>,
        alert: &Alert,
        targets: &[Resolved],
        dry_run: bool,
        evidence: &str,
        timeline: &mut Timeline,
    ) -> (bool, Vec<String>, String) {
        let mut env = plan.settings.env.clone();
        env.dry_run = dry_run;
        env.evidence = evidence.to_string();
        // The processes the actions start are journaled as they start.
        let (sink, mut spawned) = SpawnSink::channel();
        env.spawned = Some(sink);
        let mut all_ok = true;
        let mut ran = Vec::new();
        // The rule's actions, each followed by what it brings along (the
        // dependents of a restarted container), in order.
        let mut work: VecDeque<Resolved> = targets.iter().cloned().collect();
        let mut done: Vec<Resolved> = Vec::with_capacity(targets.len());
        while let Some(t) = work.pop_front() {
            let run = tokio::time::timeout(plan.timeout(&t), t.run(alert, &env));
            let run = self.journal_spawned(&mut spawned, plan.id, done.len(), run);
            let (result, detail) = self.run_one(plan, &t, done.len(), run, timeline).await;
            ran.push(format!("{}: {result}{}", t.describe(), sep(&detail)));
            all_ok &= result.went_as_hoped();
            if !result.went_as_hoped() {
                break;
            }
            let followers = t.followers(&env).await;
            done.push(t);
            match followers {
                Ok(f) => f.into_iter().rev().for_each(|f| work.push_front(f)),
                Err(e) => {
                    // The dependents cannot be named: the plan fails here.
                    ran.push(self.dependents_failed(plan, &done, e).await);
                    all_ok = false;
                    break;
                }
            }
        }
        let mut verdict = String::new();
        if all_ok && !env.dry_run && plan.rule.cfg.verify {
            verdict = self
                .verify_plan(plan.rule, plan.id, plan.target, &done, &env, Some(timeline))
                .await;
        }
        (all_ok, ran, verdict)
    }

    /// Waits for one action (`run`, under its timeout) and journals,
    /// counts and logs its outcome; its start and end go into `timeline`.
    async fn run_one(
        &self,
        plan: &PlanRef<'_>,
        t: &Resolved,
        index: usize,
        run: impl Future<Output = Result<crate::actions::Outcome, tokio::time::error::Elapsed>>,
        timeline: &mut Timeline,
    ) -> (OutcomeResult, String) {
        let name = t.name();
        let started = Instant::now();
        let started_at = crate::time::now();
        let (result, detail) = match run.await {
            Ok(o) => (o.result, o.detail),
            Err(_) => (
                OutcomeResult::Failed,
                format!("timed out after {}", humantime::format_duration(plan.timeout(t))),
            ),
        };
        let took = started.elapsed().as_secs_f64();
        timeline.action(started_at, started_at + took, result == OutcomeResult::Ok);
        self.metrics.action(&name, result.as_str());
        self.metrics.duration(&name, took);
        let description = t.describe();
        let (rule, target) = (&plan.rule.cfg.name, plan.target);
        log_outcome(
            plan.id,
            rule,
            target,
            &description,
            result.as_str(),
            result.went_as_hoped(),
            &detail,
        );
        let event = plan.action(index, name, description, result, detail.clone(), took);
        self.ledger.record(vec![event]).await;
        (result, detail)
    }

    /// The dependents of the last action `done` cannot be named (`e`): a
    /// failed outcome of its own, journaled and counted; returns its line.
    async fn dependents_failed(&self, plan: &PlanRef<'_>, done: &[Resolved], e: FollowersError) -> String {
        let e = e.to_string();
        let of = &done[done.len() - 1];
        let name = of.name();
        let failed = OutcomeResult::Failed;
        self.metrics.action(&name, failed.as_str());
        let description = format!("{name} dependents of {of}");
        let line = format!("{name} dependents: {failed}{}", sep(&e));
        let event = plan.action(done.len(), name, description, failed, e, 0.0);
        self.ledger.record(vec![event]).await;
        line
    }

    /// Verifies each action of a plan (stopping at the first that did not
    /// help), journaling each verdict (and its end into `timeline`, when the
    /// run keeps one); returns the last one ("" when no action can be
    /// verified).
    pub async fn verify_plan(
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
                Verification::Verified => (VerifyResult::Verified, String::new()),
                Verification::NotHelped(why) => (VerifyResult::NotHelped, why),
                Verification::NotApplicable => continue,
            };
            if let Some(tl) = timeline.as_deref_mut() {
                tl.verified(crate::time::now(), result == VerifyResult::Verified);
            }
            self.metrics.action(&t.name(), result.as_str());
            self.ledger
                .record(vec![Event::Verify {
                    id: id.to_string(),
                    rule: rule.cfg.name.clone(),
                    target: target.to_string(),
                    result,
                    detail: detail.clone(),
                }])
                .await;
            log_outcome(
                id,
                &rule.cfg.name,
                target,
                &t.describe(),
                result.as_str(),
                result == VerifyResult::Verified,
                &detail,
            );
            verdict = format!("{result}{}", sep(&detail));
            if result == VerifyResult::NotHelped {
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
        let mut items = s.evidence.capture(&s.env, &s.observed, &subjects).await;
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
    pub async fn notify_one(
        &self,
        s: &Settings,
        id: &str,
        channel: String,
        kind: NotifyKind,
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
        kind: NotifyKind,
        alert: &Alert,
        title: &str,
        message: &str,
        evidence: &str,
    ) {
        let (ok, detail) = self.send(s, &channel, alert, title, message, evidence).await;
        if ok {
            tracing::info!(id, channel = %channel, %kind, "notification sent");
        } else {
            tracing::warn!(id, channel = %channel, %kind, detail = %detail, "notification failed");
        }
        self.ledger
            .record(vec![Event::Notified {
                id: id.to_string(),
                channel,
                kind,
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
        let detail = res.unwrap_or_else(|failed| failed.to_string());
        (ok, crate::actions::truncate(detail, crate::actions::DETAIL_MAX))
    }

    /// Runs `action` (one action of plan `id`, number `index`), journaling
    /// each process it reports on `spawned` as it starts.
    async fn journal_spawned<F: Future>(
        &self,
        spawned: &mut UnboundedReceiver<Spawned>,
        id: &str,
        index: usize,
        action: F,
    ) -> F::Output {
        let procfs = Path::new(OWN_PROCFS);
        tokio::pin!(action);
        loop {
            tokio::select! {
                out = &mut action => return out,
                Some(p) = spawned.recv() => {
                    let boot_id = crate::procfs::boot_id(procfs).unwrap_or_default();
                    self.ledger
                        .record(vec![Event::Spawned {
                            id: id.to_string(),
                            index,
                            pid: p.pid,
                            pgid: p.pgid,
                            sid: p.sid,
                            start_ticks: p.start_ticks,
                            boot_id,
                        }])
                        .await;
                }
            }
        }
    }

    /// The lock serializing actions on one target (the map forgets unused
    /// locks once it grows past 1024).
    pub fn target_lock(&self, target: &str) -> Arc<Mutex<()>> {
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
fn log_outcome(id: &str, rule: &str, target: &str, action: &str, result: &str, as_hoped: bool, detail: &str) {
    let why = detail.lines().next().unwrap_or("");
    if as_hoped {
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

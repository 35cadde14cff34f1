//! The remediation engine: routes each accepted alert to the matching
//! `[[remediation]]` rules, applies the safety policy (de-dup, holds,
//! cooldown, budget, modes), journals every decision before the webhook is
//! acknowledged, then runs the actions asynchronously — serialized per
//! target, bounded globally, each under a timeout, then verified.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::auth::Auth;
use super::config::{Matcher, Mode, On, ReceiverConfig, RuleConfig};
use super::journal::{self, Committer, Decision, Entry, Event, JournalError, JournalWriter, SkipReason};
use super::metrics::Metrics;
use super::payload::{Payload, PayloadAlert, Status};
use super::state::{self, LastAction, State};
use crate::actions::{ActionEnv, ActionSpec, Alert, OutcomeResult, Resolved, Verification};
use crate::config::{Config, ConfigError};

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub cfg: RuleConfig,
    matchers: Vec<Matcher>,
    cooldown: Duration,
    budget_attempts: u32,
    budget_window: Duration,
    action_timeout: Duration,
    verify_timeout: Duration,
    escalate: Vec<String>,
}

impl Rule {
    fn compile(cfg: &RuleConfig, rc: &ReceiverConfig) -> Result<Rule, ConfigError> {
        let mut matchers = Vec::new();
        for (j, m) in cfg.matchers.iter().enumerate() {
            matchers.push(Matcher::parse(m).map_err(|e| ConfigError::invalid(format!("matchers[{j}]"), e))?);
        }
        let mut escalate = cfg.escalate.clone();
        for c in &rc.escalate {
            if !escalate.contains(c) {
                escalate.push(c.clone());
            }
        }
        Ok(Rule {
            cfg: cfg.clone(),
            matchers,
            cooldown: cfg.cooldown.unwrap_or(rc.cooldown),
            budget_attempts: cfg.budget_attempts.unwrap_or(rc.budget_attempts),
            budget_window: cfg.budget_window.unwrap_or(rc.budget_window),
            action_timeout: cfg.action_timeout.unwrap_or(rc.action_timeout),
            verify_timeout: cfg.verify_timeout.unwrap_or(rc.verify_timeout),
            escalate,
        })
    }

    /// alertname + matchers, ignoring `on`.
    fn matches_labels(&self, a: &PayloadAlert) -> bool {
        a.alertname() == self.cfg.alertname && self.matchers.iter().all(|m| m.matches(&a.labels))
    }

    fn matches(&self, a: &PayloadAlert) -> bool {
        let on = match a.status {
            Status::Firing => On::Firing,
            Status::Resolved => On::Resolved,
        };
        on == self.cfg.on && self.matches_labels(a)
    }

    /// Resolves every action's target; the first non-notify target names the
    /// rule's target (else the alert itself).
    fn resolve(&self, alert: &Alert) -> Result<(String, Vec<Resolved>), String> {
        let mut targets = Vec::with_capacity(self.cfg.actions.len());
        for (i, a) in self.cfg.actions.iter().enumerate() {
            targets.push(
                a.resolve(alert)
                    .map_err(|e| format!("actions[{i}] ({}): {e}", a.name()))?,
            );
        }
        let key = targets
            .iter()
            .find(|t| !matches!(t, Resolved::Notify(_)))
            .map(Resolved::key)
            .unwrap_or_else(|| format!("alert:{}:{}", alert.alertname, alert.fingerprint));
        Ok((key, targets))
    }
}

/// Converts the payload's alert to what actions see.
pub fn to_alert(a: &PayloadAlert) -> Alert {
    Alert {
        alertname: a.alertname().to_string(),
        status: a.status.as_str().to_string(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        fingerprint: a.fingerprint.clone(),
        starts_at: a.starts_at.clone(),
    }
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// What the webhook handler reports back.
#[derive(Debug, serde::Serialize)]
pub struct Accepted {
    pub alerts: usize,
    /// Alerts not this host's (`[fleet]`): journaled, never acted on.
    pub foreign: usize,
    pub duplicates: usize,
    pub planned: usize,
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// A value naming a target failed its grammar: 422, nothing runs.
    #[error("refused: {0}")]
    Refused(String),
    /// Could not be journaled: 500 (Alertmanager retries).
    #[error("cannot record the alert: {0}")]
    Journal(#[from] JournalError),
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no pending action with id {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot record: {0}")]
    Journal(#[from] JournalError),
}

/// A rule that matched an alert: (rule index, target key, resolved targets).
type Hit = (usize, String, Vec<Resolved>);

/// Work to do after the webhook has been acknowledged.
#[derive(Debug)]
enum Job {
    Run {
        id: String,
        rule: usize,
        target: String,
        alert: Alert,
        targets: Vec<Resolved>,
        actions: Vec<ActionSpec>,
        dry_run: bool,
    },
    Notify {
        id: String,
        channels: Vec<String>,
        kind: &'static str,
        alert: Alert,
        title: String,
        message: String,
    },
}

/// Entries planned under the core lock, applied to the state as they are
/// planned (so later alerts of the same request see earlier decisions).
struct Batch<'a> {
    core: &'a mut Core,
    entries: Vec<Entry>,
    now: f64,
}

impl Batch<'_> {
    /// The id the next entry will get (`a<seq>`): action-plan/approval ids.
    fn next_id(&self) -> String {
        format!("a{}", self.core.next_seq + 1)
    }

    fn push(&mut self, event: Event) -> u64 {
        self.core.next_seq += 1;
        let e = Entry {
            seq: self.core.next_seq,
            ts: self.now,
            event,
        };
        self.core.state.apply(&e);
        self.entries.push(e);
        self.core.next_seq
    }
}

struct Core {
    state: State,
    /// Last sequence number handed out (never reused, even after a failed write).
    next_seq: u64,
}

/// The receiver: configuration, credentials, rules, state and self metrics.
pub struct Receiver {
    pub cfg: ReceiverConfig,
    pub auth: Auth,
    rules: Vec<Rule>,
    env: ActionEnv,
    core: Mutex<Core>,
    committer: Committer,
    semaphore: Arc<Semaphore>,
    target_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub metrics: Metrics,
    /// Who this host is (`[fleet]`): alerts naming another host are refused.
    pub identity: super::identity::Identity,
    /// Holds as (rule, target) for metrics without taking the async lock.
    holds_view: std::sync::Mutex<Vec<(String, String)>>,
    dirty: Notify,
    dirty_flag: AtomicBool,
    last_checkpoint: std::sync::Mutex<Option<Instant>>,
}

/// Checkpoints (the whole state) are written at most this often; the
/// journal replay covers what came after.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("rules", &self.rules.len()).finish()
    }
}

impl Receiver {
    /// Builds the receiver: compiles rules, loads credentials, opens the
    /// journal and rebuilds the safety state (checkpoint + journal replay).
    pub fn new(config: &Config) -> Result<Arc<Receiver>, ConfigError> {
        let rc = config.receiver.clone();
        let auth = Auth::load(&rc)?;
        let mut rules = Vec::new();
        for (i, r) in config.remediation.iter().enumerate() {
            rules.push(Rule::compile(r, &rc).map_err(|e| match e {
                ConfigError::Invalid { key, message } => {
                    ConfigError::invalid(format!("remediation[{i}].{key}"), message)
                }
                other => other,
            })?);
        }
        let key = |k: &str| format!("receiver.{k}");
        let journal =
            JournalWriter::open(&rc.journal_path).map_err(|e| ConfigError::invalid(key("journal_path"), e))?;
        let state = rebuild_state(&rc).map_err(|e| ConfigError::invalid(key("journal_path"), e))?;
        let committer =
            Committer::start(journal, state.last_seq).map_err(|e| ConfigError::invalid(key("journal_path"), e))?;
        let env = ActionEnv {
            dry_run: rc.dry_run,
            ..ActionEnv::from_config(config)
        };
        let holds = state.holds.iter().map(|(t, h)| (h.rule.clone(), t.clone())).collect();
        tracing::info!(
            rules = rules.len(),
            holds = state.holds.len(),
            pending = state.pending.len(),
            last_seq = state.last_seq,
            journal = %rc.journal_path.display(),
            "remediation receiver ready"
        );
        Ok(Arc::new(Receiver {
            semaphore: Arc::new(Semaphore::new(rc.max_concurrent_actions)),
            core: Mutex::new(Core {
                next_seq: state.last_seq,
                state,
            }),
            committer,
            cfg: rc,
            auth,
            rules,
            env,
            target_locks: Default::default(),
            metrics: Metrics::default(),
            identity: super::identity::Identity::new(config.fleet.as_ref()),
            holds_view: std::sync::Mutex::new(holds),
            dirty: Notify::new(),
            dirty_flag: AtomicBool::new(true),
            last_checkpoint: std::sync::Mutex::new(None),
        }))
    }

    fn rule_by_name(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.cfg.name == name)
    }

    /// Queues the batch (already applied to the in-memory state) for the
    /// journal, releases the core lock and waits until it is on disk (group
    /// commit: concurrent batches share one fsync). On failure the state is
    /// rebuilt from disk, so nothing of the batch counts.
    async fn commit(&self, core: tokio::sync::MutexGuard<'_, Core>, entries: Vec<Entry>) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ack = self.committer.submit(&entries);
        self.update_holds_view(&core.state);
        drop(core);
        let err = match ack.await {
            Ok(Ok(())) => {
                self.dirty_flag.store(true, Ordering::Release);
                self.dirty.notify_one();
                return Ok(());
            }
            Ok(Err(msg)) => msg,
            Err(_) => "journal writer thread is gone".to_string(),
        };
        tracing::error!(error = %err, "journal append failed; rebuilding state from disk");
        let mut core = self.core.lock().await;
        match rebuild_state(&self.cfg) {
            Ok(s) => {
                core.next_seq = core.next_seq.max(s.last_seq);
                core.state = s;
                self.update_holds_view(&core.state);
            }
            Err(e2) => tracing::error!(error = %e2, "rebuilding state failed"),
        }
        Err(JournalError::Io {
            path: self.cfg.journal_path.clone(),
            source: std::io::Error::other(err),
        })
    }

    fn update_holds_view(&self, state: &State) {
        *self.holds_view.lock().unwrap_or_else(|p| p.into_inner()) =
            state.holds.iter().map(|(t, h)| (h.rule.clone(), t.clone())).collect();
    }

    /// Journals and plans one webhook payload; actions run after return.
    pub async fn accept(self: &Arc<Self>, mut payload: Payload) -> Result<Accepted, AcceptError> {
        let received = payload.alerts.len();
        let foreign = self.refuse_foreign(&mut payload).await?;
        // Resolve targets before taking the lock: a refusal rejects the
        // whole request and nothing of it counts.
        let mut routed: Vec<(usize, Vec<Hit>)> = Vec::new();
        let mut refused = Vec::new();
        for (ai, a) in payload.alerts.iter().enumerate() {
            let alert = to_alert(a);
            let mut hits = Vec::new();
            for (ri, rule) in self.rules.iter().enumerate() {
                // Resolutions also route to firing rules, to release holds.
                if !rule.matches_labels(a) {
                    continue;
                }
                match rule.resolve(&alert) {
                    Ok((key, targets)) => hits.push((ri, key, targets)),
                    Err(e) if rule.matches(a) => refused.push(Event::Refused {
                        alertname: alert.alertname.clone(),
                        fingerprint: a.fingerprint.clone(),
                        rule: rule.cfg.name.clone(),
                        reason: e,
                    }),
                    Err(_) => {}
                }
            }
            routed.push((ai, hits));
        }
        let mut core = self.core.lock().await;
        let now = now();
        if !refused.is_empty() {
            let msg = refused
                .iter()
                .filter_map(|e| match e {
                    Event::Refused { rule, reason, .. } => Some(format!("rule {rule}: {reason}")),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("; ");
            let mut batch = Batch {
                core: &mut core,
                entries: Vec::new(),
                now,
            };
            for e in refused {
                batch.push(e);
            }
            let entries = std::mem::take(&mut batch.entries);
            self.commit(core, entries).await?;
            self.metrics.action("route", "refused");
            return Err(AcceptError::Refused(msg));
        }
        let mut jobs = Vec::new();
        let mut acc = Accepted {
            alerts: received,
            foreign,
            duplicates: 0,
            planned: 0,
            skipped: 0,
        };
        let mut skips: Vec<&'static str> = Vec::new();
        let mut batch = Batch {
            core: &mut core,
            entries: Vec::new(),
            now,
        };
        for (ai, hits) in routed {
            let a = &payload.alerts[ai];
            let key = a.dedup_key();
            // Pruning runs once a minute: the window itself is checked here.
            let window = self.cfg.dedup_window.as_secs_f64();
            let duplicate = (batch.core.state.dedup.get(&state::dedup_digest(&key))).is_some_and(|t| now - t < window);
            batch.push(Event::Alert {
                key,
                alertname: a.alertname().to_string(),
                status: a.status.as_str().to_string(),
                fingerprint: a.fingerprint.clone(),
                starts_at: a.starts_at.clone(),
                labels: a.labels.clone(),
                summary: a.annotations.get("summary").cloned(),
                receiver: payload.receiver.clone(),
                duplicate,
            });
            if duplicate {
                acc.duplicates += 1;
                skips.push(SkipReason::Duplicate.as_str());
                continue;
            }
            let alert = to_alert(a);
            if a.status == Status::Resolved {
                let mut release: Vec<String> = batch
                    .core
                    .state
                    .holds
                    .iter()
                    .filter(|(_, h)| h.fingerprint == a.fingerprint)
                    .map(|(t, _)| t.clone())
                    .collect();
                for (_, target, _) in &hits {
                    if batch.core.state.holds.contains_key(target) && !release.contains(target) {
                        release.push(target.clone());
                    }
                }
                for target in release {
                    batch.push(Event::HoldCleared {
                        target,
                        by: "resolved".into(),
                    });
                }
            }
            let hits: Vec<_> = hits
                .into_iter()
                .filter(|(ri, _, _)| self.rules[*ri].matches(a))
                .collect();
            if hits.is_empty() {
                skips.push(SkipReason::NoRule.as_str());
                continue;
            }
            for (ri, target, targets) in hits {
                let rule = &self.rules[ri];
                let descriptions: Vec<String> = targets
                    .iter()
                    .zip(&rule.cfg.actions)
                    .map(|(t, s)| format!("{} {}", s.name(), t))
                    .collect();
                let mode = if self.cfg.dry_run { Mode::DryRun } else { rule.cfg.mode };
                let id = batch.next_id();
                let decide = |decision, reason: Option<SkipReason>, with_alert: bool| Event::Decision {
                    id: id.clone(),
                    rule: rule.cfg.name.clone(),
                    target: target.clone(),
                    alertname: alert.alertname.clone(),
                    fingerprint: a.fingerprint.clone(),
                    mode: mode.as_str().to_string(),
                    decision,
                    reason,
                    actions: descriptions.clone(),
                    alert: with_alert.then(|| Box::new(a.clone())),
                };
                let state = &batch.core.state;
                let skip = if state.holds.contains_key(&target) {
                    Some(SkipReason::Hold)
                } else if mode != Mode::DryRun
                    && state
                        .cooldowns
                        .get(&state::cooldown_key(&rule.cfg.name, &target))
                        .is_some_and(|t| now - t < rule.cooldown.as_secs_f64())
                {
                    Some(SkipReason::Cooldown)
                } else if mode != Mode::DryRun
                    && state.attempts_within(&target, now, rule.budget_window.as_secs_f64()) >= rule.budget_attempts
                {
                    Some(SkipReason::Budget)
                } else {
                    None
                };
                if let Some(reason) = skip {
                    acc.skipped += 1;
                    skips.push(reason.as_str());
                    batch.push(decide(Decision::Skip, Some(reason), false));
                    if reason == SkipReason::Budget {
                        let attempts = batch
                            .core
                            .state
                            .attempts_within(&target, now, rule.budget_window.as_secs_f64());
                        let history: Vec<LastAction> = batch
                            .core
                            .state
                            .last_actions
                            .iter()
                            .filter(|l| l.target == target)
                            .cloned()
                            .collect();
                        batch.push(Event::Hold {
                            rule: rule.cfg.name.clone(),
                            target: target.clone(),
                            fingerprint: a.fingerprint.clone(),
                            alertname: alert.alertname.clone(),
                            attempts,
                        });
                        jobs.push(Job::Notify {
                            id: id.clone(),
                            channels: rule.escalate.clone(),
                            kind: "escalation",
                            alert: alert.clone(),
                            title: format!("remediation exhausted: {} on {target}", rule.cfg.name),
                            message: exhausted_message(rule, &target, &alert, attempts, &history),
                        });
                        if !rule.cfg.exhausted_actions.is_empty() {
                            match resolve_all(&rule.cfg.exhausted_actions, &alert) {
                                Ok(targets) => jobs.push(Job::Run {
                                    id,
                                    rule: ri,
                                    target: target.clone(),
                                    alert: alert.clone(),
                                    targets,
                                    actions: rule.cfg.exhausted_actions.clone(),
                                    dry_run: false,
                                }),
                                Err(e) => {
                                    batch.push(Event::Refused {
                                        alertname: alert.alertname.clone(),
                                        fingerprint: a.fingerprint.clone(),
                                        rule: rule.cfg.name.clone(),
                                        reason: format!("exhausted_{e}"),
                                    });
                                }
                            }
                        }
                    }
                    continue;
                }
                acc.planned += 1;
                let (decision, with_alert) = match mode {
                    Mode::Auto => (Decision::Act, false),
                    Mode::DryRun => (Decision::DryRun, false),
                    Mode::NotifyOnly => (Decision::PendingApproval, true),
                };
                batch.push(decide(decision, None, with_alert));
                match mode {
                    Mode::NotifyOnly => {
                        skips.push(SkipReason::NotifyOnly.as_str());
                        jobs.push(Job::Notify {
                            id: id.clone(),
                            channels: rule.cfg.notify.clone(),
                            kind: "approval",
                            alert: alert.clone(),
                            title: format!("approval needed: {} on {target}", rule.cfg.name),
                            message: approval_message(&alert, &rule.cfg.name, &descriptions, &id),
                        });
                    }
                    Mode::Auto | Mode::DryRun => jobs.push(Job::Run {
                        id,
                        rule: ri,
                        target: target.clone(),
                        alert: alert.clone(),
                        targets,
                        actions: rule.cfg.actions.clone(),
                        dry_run: mode == Mode::DryRun,
                    }),
                }
            }
        }
        let entries = std::mem::take(&mut batch.entries);
        self.commit(core, entries).await?;
        for a in &payload.alerts {
            self.metrics.alert(a.status.as_str());
        }
        for s in skips {
            self.metrics.skipped(s);
        }
        for job in jobs {
            let me = self.clone();
            tokio::spawn(async move { me.run_job(job).await });
        }
        Ok(acc)
    }

    /// Takes the alerts that are not this host's out of `payload` and
    /// journals each as `refused_foreign` (fsync'd before the reply, like
    /// everything else). Returns how many there were.
    async fn refuse_foreign(&self, payload: &mut Payload) -> Result<usize, AcceptError> {
        let mut refused = Vec::new();
        payload.alerts.retain(|a| match self.identity.refusal(&a.labels) {
            None => true,
            Some(reason) => {
                refused.push((reason, a.clone()));
                false
            }
        });
        if refused.is_empty() {
            return Ok(0);
        }
        let mut core = self.core.lock().await;
        let mut batch = Batch {
            core: &mut core,
            entries: Vec::new(),
            now: now(),
        };
        for (reason, a) in &refused {
            let names = self.identity.host_labels_of(&a.labels);
            tracing::info!(alertname = a.alertname(), reason, ?names, identity = %self.identity.name, "alert is not this host's; not acting");
            batch.push(Event::RefusedForeign {
                alertname: a.alertname().to_string(),
                status: a.status.as_str().to_string(),
                fingerprint: a.fingerprint.clone(),
                starts_at: a.starts_at.clone(),
                names,
                identity: self.identity.name.clone(),
                reason: reason.to_string(),
            });
        }
        let entries = std::mem::take(&mut batch.entries);
        self.commit(core, entries).await?;
        for (reason, a) in &refused {
            self.metrics.alert(a.status.as_str());
            self.metrics.skipped(reason);
        }
        Ok(refused.len())
    }

    /// Approves a pending (notify-only) plan and runs it.
    pub async fn approve(self: &Arc<Self>, id: &str, by: &str) -> Result<String, ControlError> {
        let mut core = self.core.lock().await;
        let now = now();
        let Some(p) = core.state.pending.get(id).cloned() else {
            return Err(ControlError::NotFound(id.to_string()));
        };
        if now - p.at > self.cfg.approval_ttl.as_secs_f64() {
            return Err(ControlError::NotFound(format!("{id} (expired)")));
        }
        let Some(ri) = self.rule_by_name(&p.rule) else {
            return Err(ControlError::Conflict(format!(
                "rule {:?} is no longer configured",
                p.rule
            )));
        };
        if core.state.holds.contains_key(&p.target) {
            return Err(ControlError::Conflict(format!(
                "target {} is held; clear the hold first",
                p.target
            )));
        }
        let rule = &self.rules[ri];
        let alert = to_alert(&p.alert);
        let (target, targets) = rule.resolve(&alert).map_err(ControlError::Conflict)?;
        let mut batch = Batch {
            core: &mut core,
            entries: Vec::new(),
            now,
        };
        batch.push(Event::Approved {
            id: id.to_string(),
            rule: p.rule.clone(),
            target: target.clone(),
            by: by.to_string(),
        });
        let entries = std::mem::take(&mut batch.entries);
        self.commit(core, entries).await?;
        let me = self.clone();
        let job = Job::Run {
            id: id.to_string(),
            rule: ri,
            target: target.clone(),
            alert,
            targets,
            actions: rule.cfg.actions.clone(),
            dry_run: self.cfg.dry_run,
        };
        tokio::spawn(async move { me.run_job(job).await });
        Ok(target)
    }

    /// Clears a hold (a person decided); the target's budget starts afresh.
    pub async fn clear_hold(&self, target: &str, by: &str) -> Result<(), ControlError> {
        let mut core = self.core.lock().await;
        if !core.state.holds.contains_key(target) {
            return Err(ControlError::NotFound(format!("hold on {target}")));
        }
        let now = now();
        let mut batch = Batch {
            core: &mut core,
            entries: Vec::new(),
            now,
        };
        batch.push(Event::HoldCleared {
            target: target.to_string(),
            by: by.to_string(),
        });
        let entries = std::mem::take(&mut batch.entries);
        self.commit(core, entries).await?;
        Ok(())
    }

    /// Journals entries produced after the acknowledgement (action results).
    async fn record(&self, events: Vec<Event>) {
        let mut core = self.core.lock().await;
        let now = now();
        let mut batch = Batch {
            core: &mut core,
            entries: Vec::new(),
            now,
        };
        for e in events {
            batch.push(e);
        }
        let entries = std::mem::take(&mut batch.entries);
        if let Err(e) = self.commit(core, entries).await {
            tracing::error!(error = %e, "cannot journal an action result");
        }
    }

    fn target_lock(&self, target: &str) -> Arc<Mutex<()>> {
        let mut locks = self.target_locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() > 1024 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(target.to_string()).or_default().clone()
    }

    async fn run_job(self: Arc<Self>, job: Job) {
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
                    let outcome = self.send(&ch, &alert, &title, &message).await;
                    self.record(vec![Event::Notified {
                        id: id.clone(),
                        channel: ch,
                        kind: kind.to_string(),
                        ok: outcome.0,
                        detail: outcome.1,
                    }])
                    .await;
                }
            }
            Job::Run {
                id,
                rule,
                target,
                alert,
                targets,
                actions,
                dry_run,
            } => {
                let lock = self.target_lock(&target);
                let _serial = lock.lock().await;
                let Ok(_permit) = self.semaphore.clone().acquire_owned().await else {
                    return;
                };
                let rule = &self.rules[rule];
                let mut env = self.env.clone();
                env.dry_run = env.dry_run || dry_run;
                let mut all_ok = true;
                let mut ran = Vec::new();
                for (i, (spec, t)) in actions.iter().zip(&targets).enumerate() {
                    let timeout = rule.action_timeout.max(spec.suggested_timeout());
                    let started = Instant::now();
                    let (result, detail) = match tokio::time::timeout(timeout, t.run(&alert, &env)).await {
                        Ok(o) => (o.result.as_str(), o.detail),
                        Err(_) => (
                            OutcomeResult::Failed.as_str(),
                            format!("timed out after {}", humantime::format_duration(timeout)),
                        ),
                    };
                    let took = started.elapsed().as_secs_f64();
                    self.metrics.action(&spec.name(), result);
                    self.metrics.duration(&spec.name(), took);
                    self.record(vec![Event::Action {
                        id: id.clone(),
                        rule: rule.cfg.name.clone(),
                        target: target.clone(),
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
                    for (spec, t) in actions.iter().zip(&targets) {
                        let v = t.verify(&env, rule.verify_timeout).await;
                        let (result, detail) = match v {
                            Verification::Verified => ("verified", String::new()),
                            Verification::NotHelped(why) => ("not_helped", why),
                            Verification::NotApplicable => continue,
                        };
                        self.metrics.action(&spec.name(), result);
                        self.record(vec![Event::Verify {
                            id: id.clone(),
                            rule: rule.cfg.name.clone(),
                            target: target.clone(),
                            result: result.to_string(),
                            detail: detail.clone(),
                        }])
                        .await;
                        verdict = format!("{result}{}", sep(&detail));
                        if result == "not_helped" {
                            break;
                        }
                    }
                }
                drop(_permit);
                if !rule.cfg.notify.is_empty() {
                    let title = format!(
                        "{} {} on {target}: {}",
                        rule.cfg.name,
                        if env.dry_run { "(dry run)" } else { "ran" },
                        if verdict.is_empty() {
                            if all_ok { "ok" } else { "failed" }
                        } else {
                            verdict.as_str()
                        }
                    );
                    let message = format!("{} ({})\n{}", alert.alertname, alert.status, ran.join("\n"));
                    for ch in &rule.cfg.notify {
                        let (ok, detail) = self.send(ch, &alert, &title, &message).await;
                        self.record(vec![Event::Notified {
                            id: id.clone(),
                            channel: ch.clone(),
                            kind: "outcome".into(),
                            ok,
                            detail,
                        }])
                        .await;
                    }
                }
            }
        }
    }

    /// Sends one notification through a configured channel (even in dry-run
    /// mode: it changes nothing).
    async fn send(&self, channel: &str, alert: &Alert, title: &str, message: &str) -> (bool, String) {
        let started = Instant::now();
        let sent = self
            .env
            .notify_client
            .send_to(&self.env.notify, channel, title, message, alert);
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

    /// The status document: holds, attempts per target, pending approvals,
    /// last actions.
    pub async fn status_json(&self) -> serde_json::Value {
        let core = self.core.lock().await;
        status_document(&self.cfg, &self.rules, &core.state)
    }

    /// Current holds as (rule, target).
    pub fn holds(&self) -> Vec<(String, String)> {
        self.holds_view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Background: writes the checkpoint and the status file when something
    /// changed (at most every 200 ms), prunes old state every minute, and
    /// writes both once more at shutdown.
    pub async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let mut prune = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => { self.persist(true).await; return; }
                _ = self.dirty.notified() => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    self.persist(false).await;
                    if self.dirty_flag.load(Ordering::Acquire) {
                        self.dirty.notify_one();
                    }
                }
                _ = prune.tick() => {
                    let mut core = self.core.lock().await;
                    let max_window = self
                        .rules
                        .iter()
                        .map(|r| r.budget_window.max(r.cooldown))
                        .chain([self.cfg.budget_window, self.cfg.cooldown])
                        .max()
                        .unwrap_or_default()
                        .as_secs_f64();
                    core.state.prune(now(), self.cfg.dedup_window.as_secs_f64(), max_window, self.cfg.approval_ttl.as_secs_f64());
                    drop(core);
                    self.persist(true).await;
                }
            }
        }
    }

    /// Writes the status file (small, every change, debounced) and, at most
    /// every 10 s or when `force`, the checkpoint (the whole state, cloned
    /// under the lock and serialized outside it). Both atomically.
    pub async fn persist(&self, force: bool) {
        if !self.dirty_flag.swap(false, Ordering::AcqRel) && !force {
            return;
        }
        let want_cp = force
            || self
                .last_checkpoint
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
        let (checkpoint, status) = {
            let mut core = self.core.lock().await;
            let status = status_document(&self.cfg, &self.rules, &core.state);
            // Checkpoint only a state whose every entry is on disk.
            let durable = self.committer.durable();
            let cp = if want_cp && core.state.last_seq == durable.seq {
                core.state.journal_offset = durable.len;
                Some(core.state.clone())
            } else {
                None
            };
            (cp, status)
        };
        if want_cp && checkpoint.is_none() {
            self.dirty_flag.store(true, Ordering::Release);
        }
        let (sp, tp) = (self.cfg.state_path.clone(), self.cfg.status_path.clone());
        let wrote_cp = checkpoint.is_some();
        let r = tokio::task::spawn_blocking(move || {
            let st = serde_json::to_vec_pretty(&status).expect("status serializes");
            state::write_atomic(&tp, &st).map_err(|e| format!("{}: {e}", tp.display()))?;
            if let Some(cp) = checkpoint {
                let bytes = serde_json::to_vec(&cp).expect("state serializes");
                state::write_atomic(&sp, &bytes).map_err(|e| format!("{}: {e}", sp.display()))?;
            }
            Ok::<(), String>(())
        })
        .await;
        match r {
            Ok(Err(e)) => {
                self.dirty_flag.store(true, Ordering::Release);
                tracing::warn!(error = %e, "cannot write the state/status file");
            }
            _ if wrote_cp => {
                *self.last_checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
            _ => {}
        }
    }
}

/// What a person is asked to approve: the alert as its rule describes it
/// (summary and description annotations, when present), what would run, and
/// how to approve.
fn approval_message(alert: &Alert, rule: &str, would_run: &[String], id: &str) -> String {
    let mut m = format!("{} ({}) matched rule {rule}.", alert.alertname, alert.status);
    for key in ["summary", "description"] {
        if let Some(text) = alert.annotations.get(key).filter(|t| !t.trim().is_empty()) {
            m.push('\n');
            m.push_str(text.trim());
        }
    }
    format!(
        "{m}\nWould run:\n{}\nApprove: POST /api/v1/actions/{id}/approve or `hostmedic approve {id}`",
        would_run.join("\n")
    )
}

fn sep(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", detail.lines().next().unwrap_or_default())
    }
}

fn resolve_all(specs: &[ActionSpec], alert: &Alert) -> Result<Vec<Resolved>, String> {
    specs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.resolve(alert)
                .map_err(|e| format!("actions[{i}] ({}): {e}", a.name()))
        })
        .collect()
}

fn exhausted_message(rule: &Rule, target: &str, alert: &Alert, attempts: u32, history: &[LastAction]) -> String {
    let mut m = format!(
        "{} is still firing for {target} after {attempts} remediation attempt(s) within {} (rule {}). \
         Remediation stopped; the target is held until the alert resolves or a person clears it \
         (`hostmedic clear-hold '{target}'`).\n",
        alert.alertname,
        humantime::format_duration(rule.budget_window),
        rule.cfg.name
    );
    if !history.is_empty() {
        m.push_str("History:\n");
        for h in history.iter().rev().take(10).rev() {
            m.push_str(&format!(
                "- {} {} {}{}\n",
                humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(h.ts.max(0.0))),
                h.action,
                h.result,
                sep(&h.detail)
            ));
        }
    }
    m
}

fn status_document(cfg: &ReceiverConfig, rules: &[Rule], s: &State) -> serde_json::Value {
    let now = now();
    let max_window = rules
        .iter()
        .map(|r| r.budget_window)
        .chain([cfg.budget_window])
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let budgets: BTreeMap<&String, serde_json::Value> = s
        .attempts
        .iter()
        .map(|(t, v)| {
            let recent: Vec<f64> = v.iter().copied().filter(|x| now - x < max_window).collect();
            (
                t,
                serde_json::json!({"attempts": recent.len(), "last_attempt": recent.last()}),
            )
        })
        .collect();
    serde_json::json!({
        "updated": now,
        "dry_run": cfg.dry_run,
        "journal_seq": s.last_seq,
        "holds": s.holds,
        "budgets": budgets,
        "cooldowns": s.cooldowns,
        "pending_approvals": s.pending.iter().map(|(id, p)| serde_json::json!({
            "id": id, "rule": p.rule, "target": p.target, "at": p.at,
            "alertname": p.alert.alertname(), "actions": p.actions,
        })).collect::<Vec<_>>(),
        "last_actions": s.last_actions,
    })
}

/// Loads the checkpoint and replays the journal after it. A checkpoint that
/// does not line up with the journal (journal replaced or cut) is dropped and
/// the whole journal replayed.
pub fn rebuild_state(cfg: &ReceiverConfig) -> Result<State, JournalError> {
    let mut state = State::load_checkpoint(&cfg.state_path);
    let (mut entries, mut warnings) = journal::read_from(&cfg.journal_path, state.journal_offset)?;
    let lines_up = state.last_seq == 0
        || entries.first().is_none_or(|e| e.seq == state.last_seq + 1)
            && std::fs::metadata(&cfg.journal_path).map(|m| m.len()).unwrap_or(0) >= state.journal_offset;
    if !lines_up || state.last_seq == 0 {
        state = State::default();
        (entries, warnings) = journal::read_from(&cfg.journal_path, 0)?;
    }
    for e in &entries {
        state.apply(e);
    }
    if warnings > 0 {
        tracing::warn!(skipped = warnings, "journal lines skipped while rebuilding state");
    }
    Ok(state)
}

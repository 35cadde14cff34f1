//! The remediation engine: the receiver's state and the orchestration of
//! one webhook request through its stages — fleet refusal, [`route`]
//! (targets), [`plan`] under the core lock ([`policy`] decisions), the
//! [`ledger`] commit (fsync before the reply), then [`run`] in the
//! background — plus the two control operations (approve, clear a hold).
//!
//! [`route`]: super::route
//! [`plan`]: super::plan
//! [`policy`]: super::policy
//! [`ledger`]: super::ledger
//! [`run`]: super::run

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::config::ReceiverConfig;
use super::heartbeat;
use super::identity::Identity;
use super::job::Job;
use super::journal::{Event, JournalError, PipelineEvent};
use super::ledger::Ledger;
use super::metrics::Metrics;
use super::payload::Payload;
use super::plan::{Accepted, plan};
use super::recover;
use super::route::{route, to_alert};
use super::run::Runner;
use super::settings::Settings;
use super::state::Acting;
use super::timeline::Timeline;
use crate::error::ConfigError;
use crate::metrics::MetricSet;
use crate::sync::lock;

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
    /// Nothing to approve or clear: 404.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot record: {0}")]
    Journal(#[from] JournalError),
}

/// Whether two `[receiver]` sections agree on one key.
type SameIn = fn(&ReceiverConfig, &ReceiverConfig) -> bool;

/// `[receiver]` keys fixed for the life of the process: the journal writer,
/// the checkpoint and status files and the action semaphore are opened from
/// them once. A reload that changes one is refused.
const FIXED_KEYS: &[(&str, SameIn)] = &[
    ("receiver.journal_path", |a, b| a.journal_path == b.journal_path),
    ("receiver.state_path", |a, b| a.state_path == b.state_path),
    ("receiver.status_path", |a, b| a.status_path == b.status_path),
    ("receiver.max_concurrent_actions", |a, b| {
        a.max_concurrent_actions == b.max_concurrent_actions
    }),
];

/// The receiver: its swappable [`Settings`], and what outlives a reload —
/// the ledger (journal writer, sequence numbers, budgets, holds, cooldowns,
/// de-dup memory, pending approvals), the run stage (action semaphore,
/// per-target locks) and self metrics.
pub struct Receiver {
    settings: ArcSwap<Settings>,
    /// The same ledger the runner journals into (the status document and
    /// the checkpoint read it).
    pub(super) ledger: Arc<Ledger>,
    run: Runner,
    pub metrics: Arc<Metrics>,
    pub(super) last_checkpoint: std::sync::Mutex<Option<Instant>>,
    /// The host summary of the last scrape, for the status document (the
    /// app stores it after each scrape).
    pub host: Arc<crate::hostsummary::LastScrape>,
    /// The plans the previous process left acting (a crash cut them short),
    /// taken from the rebuilt state before any request; see `recover`.
    interrupted: std::sync::Mutex<Vec<(String, Acting)>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("rules", &self.settings.load().rules.len())
            .finish()
    }
}

impl Receiver {
    /// Builds the receiver from its settings: opens the journal and
    /// rebuilds the safety state.
    pub fn new(settings: Settings) -> Result<Arc<Receiver>, ConfigError> {
        let cfg = &settings.cfg;
        let ledger = Arc::new(Ledger::open(cfg)?);
        let ledger_acting = ledger.acting();
        if let Some((holds, pending, last_seq)) = ledger.summary() {
            tracing::info!(
                rules = settings.rules.len(),
                holds,
                pending,
                last_seq,
                journal = %cfg.journal_path.display(),
                "remediation receiver ready"
            );
        }
        let metrics = Arc::new(Metrics::default());
        Ok(Arc::new(Receiver {
            run: Runner::new(ledger.clone(), metrics.clone(), cfg.max_concurrent_actions),
            ledger,
            settings: ArcSwap::from_pointee(settings),
            metrics,
            last_checkpoint: std::sync::Mutex::new(None),
            host: Default::default(),
            interrupted: std::sync::Mutex::new(ledger_acting),
        }))
    }

    /// The settings in force now (one snapshot; a reload swaps in another).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Swaps in the settings of a reloaded configuration. Refused, keeping
    /// the running ones, when a key that is fixed at start-up changed
    /// ([`FIXED_KEYS`]); the error names it.
    pub fn reload(&self, new: Settings) -> Result<(), ConfigError> {
        let old = self.settings.load();
        for (key, same) in FIXED_KEYS {
            if !same(&old.cfg, &new.cfg) {
                return Err(ConfigError::invalid(
                    *key,
                    "cannot change while hostmedic runs; restart it to apply",
                ));
            }
        }
        tracing::info!(rules = new.rules.len(), "receiver settings reloaded");
        self.settings.store(Arc::new(new));
        Ok(())
    }

    /// Journals and plans one webhook payload; actions run after return.
    pub async fn accept(&self, mut payload: Payload) -> Result<Accepted, AcceptError> {
        let s = self.settings();
        let received = payload.alerts.len();
        // Heartbeats are the pipeline's, not the host's: never routed.
        heartbeat::take(&self.run, &s, &mut payload).await?;
        let foreign = self.refuse_foreign(&s.identity, &mut payload).await?;
        // Targets are resolved before taking the lock: a refusal rejects the
        // whole request and nothing of it counts.
        let routed = route(&s.rules, &payload);
        if !routed.refused.is_empty() {
            let msg = routed.refusal_message();
            self.ledger
                .append(|b| routed.refused.into_iter().for_each(|e| b.push(e)))
                .await?;
            self.metrics.action("route", "refused");
            return Err(AcceptError::Refused(msg));
        }
        let mut p = self
            .ledger
            .append(|b| plan(b, &s.cfg, &s.rules, &payload, routed.hits))
            .await?;
        for a in &payload.alerts {
            self.metrics.alert(a.status.as_str());
        }
        for s in p.skips {
            self.metrics.skipped(s);
        }
        self.run.spawn(&s, p.jobs);
        p.accepted.alerts = received;
        p.accepted.foreign = foreign;
        Ok(p.accepted)
    }

    /// Takes the alerts that are not this host's out of `payload` and
    /// journals each as `refused_foreign` (fsync'd before the reply, like
    /// everything else). Returns how many there were.
    async fn refuse_foreign(&self, identity: &Identity, payload: &mut Payload) -> Result<usize, AcceptError> {
        let mut refused = Vec::new();
        payload.alerts.retain(|a| match identity.refusal(&a.labels) {
            None => true,
            Some(reason) => {
                refused.push((reason, a.clone()));
                false
            }
        });
        if refused.is_empty() {
            return Ok(0);
        }
        self.ledger
            .append(|b| {
                for (reason, a) in &refused {
                    let names = identity.host_labels_of(&a.labels);
                    tracing::info!(alertname = a.alertname(), %reason, ?names, identity = %identity.name, "alert is not this host's; not acting");
                    b.push(Event::RefusedForeign {
                        alertname: a.alertname().to_string(),
                        status: a.status,
                        fingerprint: a.fingerprint.clone(),
                        starts_at: a.starts_at.clone(),
                        names,
                        identity: identity.name.clone(),
                        reason: *reason,
                    });
                }
            })
            .await?;
        for (reason, a) in &refused {
            self.metrics.alert(a.status.as_str());
            self.metrics.skipped(reason.as_str());
        }
        Ok(refused.len())
    }

    /// Approves a pending (notify-only) plan and runs it.
    pub async fn approve(&self, id: &str, by: &str) -> Result<String, ControlError> {
        let s = self.settings();
        let (target, job) = self
            .ledger
            .append(|b| {
                if let Some(a) = b.state().approved.get(id) {
                    return Err(ControlError::Conflict(format!(
                        "action {id:?} was already approved by {} at {}",
                        a.by,
                        crate::time::display(a.at)
                    )));
                }
                let p = b
                    .state()
                    .pending
                    .get(id)
                    .cloned()
                    .ok_or_else(|| ControlError::NotFound(format!("no pending action with id {id:?}")))?;
                if b.now() - p.at > s.cfg.approval_ttl.as_secs_f64() {
                    return Err(ControlError::NotFound(format!(
                        "pending action {id:?} expired (receiver.approval_ttl {})",
                        humantime::format_duration(s.cfg.approval_ttl)
                    )));
                }
                let Some(ri) = s.rules.iter().position(|r| r.cfg.name == p.rule) else {
                    return Err(ControlError::Conflict(format!(
                        "rule {:?} is no longer configured",
                        p.rule
                    )));
                };
                if b.state().holds.contains_key(&p.target) {
                    return Err(ControlError::Conflict(format!(
                        "target {} is held; clear the hold first",
                        p.target
                    )));
                }
                let rule = &s.rules[ri];
                let alert = to_alert(&p.alert);
                let (target, targets) = rule.resolve(&alert).map_err(ControlError::Conflict)?;
                b.push(Event::Approved {
                    id: id.to_string(),
                    rule: p.rule.clone(),
                    target: target.clone(),
                    by: by.to_string(),
                });
                let job = Job::Run {
                    id: id.to_string(),
                    rule: ri,
                    target: target.clone(),
                    alert,
                    targets,
                    dry_run: s.cfg.dry_run,
                    timeline: Timeline::approved(b.now()),
                };
                Ok((target, job))
            })
            .await??;
        self.run.spawn(&s, vec![job]);
        Ok(target)
    }

    /// Clears a hold (a person decided); the target's budget starts afresh.
    pub async fn clear_hold(&self, target: &str, by: &str) -> Result<(), ControlError> {
        self.ledger
            .append(|b| {
                let holds = &b.state().holds;
                if !holds.contains_key(target) {
                    let held: Vec<&str> = holds.keys().map(String::as_str).collect();
                    return Err(ControlError::NotFound(if held.is_empty() {
                        format!("no hold on target {target:?}; no target is held")
                    } else {
                        format!("no hold on target {target:?}; held: {}", held.join(", "))
                    }));
                }
                b.push(Event::HoldCleared {
                    target: target.to_string(),
                    by: by.to_string(),
                });
                Ok(())
            })
            .await?
    }

    /// Background: the heartbeat's dead-man's switch ([`heartbeat::watch`])
    /// until `shutdown`, under the settings in force at each check.
    pub async fn watch_heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        heartbeat::watch(self.run.clone(), move || me.settings(), shutdown).await
    }

    /// One heartbeat check ([`heartbeat::check`]) counting the grace period
    /// from `started`; the event when the pipeline became silent.
    pub async fn check_heartbeat(&self, started: f64) -> Result<Option<PipelineEvent>, JournalError> {
        heartbeat::check(&self.run, &self.settings(), started).await
    }

    /// The pipeline's gauges ([`heartbeat::write_metrics`]).
    pub async fn write_pipeline_metrics(&self, set: &mut MetricSet) {
        heartbeat::write_metrics(&self.ledger, set).await
    }

    /// Accounts for the plans the previous process left acting
    /// ([`recover::recover_interrupted`]); once: they are taken.
    pub async fn recover_interrupted(self: Arc<Self>) {
        let plans = std::mem::take(&mut *lock(&self.interrupted));
        recover::recover_interrupted(&self.run, self.settings(), plans).await
    }
}

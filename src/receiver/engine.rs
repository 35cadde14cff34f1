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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore};

use super::auth::Auth;
use super::config::{ReceiverConfig, Rule};
use super::identity::Identity;
use super::journal::{Event, JournalError};
use super::ledger::Ledger;
use super::metrics::Metrics;
use super::payload::Payload;
use super::plan::{Accepted, plan};
use super::route::{route, to_alert};
use super::run::Job;
use crate::actions::ActionEnv;
use crate::error::ConfigError;

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

/// The receiver: configuration, credentials, rules, state and self metrics.
pub struct Receiver {
    pub cfg: ReceiverConfig,
    pub auth: Auth,
    pub(super) rules: Vec<Rule>,
    pub(super) env: ActionEnv,
    pub(super) ledger: Ledger,
    pub(super) semaphore: Arc<Semaphore>,
    pub(super) target_locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub metrics: Metrics,
    /// Who this host is (`[fleet]`): alerts naming another host are refused.
    pub identity: Identity,
    pub(super) last_checkpoint: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("rules", &self.rules.len()).finish()
    }
}

impl Receiver {
    /// Builds the receiver from `[receiver]`, the compiled rules
    /// ([`super::config::compile_rules`]), the actions' environment (its
    /// `dry_run` is `receiver.dry_run`) and this host's identity: loads
    /// credentials, opens the journal and rebuilds the safety state.
    pub fn new(
        cfg: ReceiverConfig,
        rules: Vec<Rule>,
        env: ActionEnv,
        identity: Identity,
    ) -> Result<Arc<Receiver>, ConfigError> {
        let auth = Auth::load(&cfg)?;
        let ledger = Ledger::open(&cfg)?;
        if let Some((holds, pending, last_seq)) = ledger.summary() {
            tracing::info!(
                rules = rules.len(),
                holds,
                pending,
                last_seq,
                journal = %cfg.journal_path.display(),
                "remediation receiver ready"
            );
        }
        Ok(Arc::new(Receiver {
            semaphore: Arc::new(Semaphore::new(cfg.max_concurrent_actions)),
            ledger,
            cfg,
            auth,
            rules,
            env,
            target_locks: Default::default(),
            metrics: Metrics::default(),
            identity,
            last_checkpoint: std::sync::Mutex::new(None),
        }))
    }

    /// Journals and plans one webhook payload; actions run after return.
    pub async fn accept(self: &Arc<Self>, mut payload: Payload) -> Result<Accepted, AcceptError> {
        let received = payload.alerts.len();
        let foreign = self.refuse_foreign(&mut payload).await?;
        // Targets are resolved before taking the lock: a refusal rejects the
        // whole request and nothing of it counts.
        let routed = route(&self.rules, &payload);
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
            .append(|b| plan(b, &self.cfg, &self.rules, &payload, routed.hits))
            .await?;
        for a in &payload.alerts {
            self.metrics.alert(a.status.as_str());
        }
        for s in p.skips {
            self.metrics.skipped(s);
        }
        self.spawn(p.jobs);
        p.accepted.alerts = received;
        p.accepted.foreign = foreign;
        Ok(p.accepted)
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
        self.ledger
            .append(|b| {
                for (reason, a) in &refused {
                    let names = self.identity.host_labels_of(&a.labels);
                    tracing::info!(alertname = a.alertname(), reason, ?names, identity = %self.identity.name, "alert is not this host's; not acting");
                    b.push(Event::RefusedForeign {
                        alertname: a.alertname().to_string(),
                        status: a.status.as_str().to_string(),
                        fingerprint: a.fingerprint.clone(),
                        starts_at: a.starts_at.clone(),
                        names,
                        identity: self.identity.name.clone(),
                        reason: reason.to_string(),
                    });
                }
            })
            .await?;
        for (reason, a) in &refused {
            self.metrics.alert(a.status.as_str());
            self.metrics.skipped(reason);
        }
        Ok(refused.len())
    }

    /// Approves a pending (notify-only) plan and runs it.
    pub async fn approve(self: &Arc<Self>, id: &str, by: &str) -> Result<String, ControlError> {
        let (target, job) = self
            .ledger
            .append(|b| {
                let p = b
                    .state()
                    .pending
                    .get(id)
                    .cloned()
                    .ok_or_else(|| ControlError::NotFound(id.to_string()))?;
                if b.now() - p.at > self.cfg.approval_ttl.as_secs_f64() {
                    return Err(ControlError::NotFound(format!("{id} (expired)")));
                }
                let Some(ri) = self.rules.iter().position(|r| r.cfg.name == p.rule) else {
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
                let rule = &self.rules[ri];
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
                    dry_run: self.cfg.dry_run,
                };
                Ok((target, job))
            })
            .await??;
        self.spawn(vec![job]);
        Ok(target)
    }

    /// Clears a hold (a person decided); the target's budget starts afresh.
    pub async fn clear_hold(&self, target: &str, by: &str) -> Result<(), ControlError> {
        self.ledger
            .append(|b| {
                if !b.state().holds.contains_key(target) {
                    return Err(ControlError::NotFound(format!("hold on {target}")));
                }
                b.push(Event::HoldCleared {
                    target: target.to_string(),
                    by: by.to_string(),
                });
                Ok(())
            })
            .await?
    }
}

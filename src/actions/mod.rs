//! Typed remediation actions (no shell anywhere): what a `[[remediation]]`
//! rule can ask for, how its target is taken from the alert and validated,
//! how it runs, and how its effect is verified. One file per action holds
//! all of that for its type ([`systemd`], [`docker`], [`kill`], [`exec`],
//! [`notify`], [`shed`]); this file only names them and delegates.
//!
//! The receiver (routing, safety policy, journal) drives this module:
//! 1. at config time, [`ActionSpec::validate`] (and
//!    [`ActionSpec::validate_refs`] against the configured notify channels);
//! 2. per alert, [`ActionSpec::resolve`] fills the templates from the alert
//!    and checks the result against the target grammar ([`target`]). The
//!    [`Resolved`] action carries its spec and its concrete target together;
//!    its [`Resolved::key`] is the budget / cooldown / serialization key;
//! 3. [`Resolved::run`] acts (or reports what it would do in dry-run mode)
//!    and [`Resolved::verify`] checks the effect within a deadline.
//!
//! Adding an action: a new file with its spec (`validate`, `resolve`) and
//! its `Resolved` (`Display` as the key, `run`, optionally `verify`), one
//! variant in [`ActionSpec`] and [`Resolved`], one line per match below.

#![forbid(unsafe_code)]

pub mod docker;
pub mod env;
pub mod exec;
pub mod kill;
pub mod notify;
pub mod outcome;
pub mod poll;
pub mod shed;
pub mod systemd;
pub mod target;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::error::ConfigError;
pub use crate::notify::{NotifyChannel, NtfyChannel, TelegramChannel, WebhookChannel};
pub use docker::{DockerAction, DockerOp};
pub use env::{ActionEnv, Alert, SpawnSink, Spawned};
pub use exec::ExecAction;
pub use kill::KillAction;
pub use notify::NotifyAction;
pub use outcome::{DETAIL_MAX, Outcome, OutcomeResult, Verification, truncate};
pub use shed::ShedLoadAction;
pub use systemd::{SystemdAction, SystemdOp};
pub use target::{Manager, TargetError};
pub use template::TemplateError;

/// One action in a `[[remediation]]` rule's `actions` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ActionSpec {
    Systemd(SystemdAction),
    Docker(DockerAction),
    Kill(KillAction),
    Exec(ExecAction),
    Notify(NotifyAction),
    ShedLoad(ShedLoadAction),
}

/// Why an action could not be resolved or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("{field}: {source}")]
    Template { field: String, source: TemplateError },
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("{0}")]
    Other(String),
}

/// The per-run bound of actions that do not say otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl ActionSpec {
    /// The action's type as written in config (`systemd`, `docker`, `kill`,
    /// `exec`, `notify`, `shed-load`), for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::Systemd(_) => "systemd",
            ActionSpec::Docker(_) => "docker",
            ActionSpec::Kill(_) => "kill",
            ActionSpec::Exec(_) => "exec",
            ActionSpec::Notify(_) => "notify",
            ActionSpec::ShedLoad(_) => "shed-load",
        }
    }

    /// `kind` plus operation, e.g. `systemd.restart`, `docker.restart-policy`.
    pub fn name(&self) -> String {
        match self {
            ActionSpec::Systemd(a) => a.name(),
            ActionSpec::Docker(a) => a.name(),
            other => other.kind().to_string(),
        }
    }

    /// True for actions that change the host (everything but `notify`).
    pub fn is_destructive(&self) -> bool {
        !matches!(self, ActionSpec::Notify(_))
    }

    /// A sensible upper bound for one run of this action (the receiver's
    /// per-action timeout should not be shorter).
    pub fn suggested_timeout(&self) -> Duration {
        match self {
            ActionSpec::Exec(a) => a.suggested_timeout(),
            ActionSpec::Kill(a) => a.suggested_timeout(),
            ActionSpec::Notify(a) => a.suggested_timeout(),
            ActionSpec::ShedLoad(a) => a.suggested_timeout(),
            ActionSpec::Systemd(_) | ActionSpec::Docker(_) => DEFAULT_TIMEOUT,
        }
    }

    /// Config-time checks that need no alert; errors name `key.<field>`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        match self {
            ActionSpec::Systemd(a) => a.validate(key),
            ActionSpec::Docker(a) => a.validate(key),
            ActionSpec::Kill(a) => a.validate(key),
            ActionSpec::Exec(a) => a.validate(key),
            ActionSpec::Notify(a) => a.validate(key),
            ActionSpec::ShedLoad(a) => a.validate(key),
        }
    }

    /// Config-time checks against other configuration: a `notify` action's
    /// channel must be configured.
    pub fn validate_refs(&self, key: &str, channels: &BTreeMap<String, NotifyChannel>) -> Result<(), ConfigError> {
        match self {
            ActionSpec::Notify(a) => a.validate_refs(key, channels),
            _ => Ok(()),
        }
    }

    /// Fills templates from `alert` and validates the result against the
    /// target grammar. Anything that does not fit is refused here, before
    /// anything runs.
    pub fn resolve(&self, alert: &Alert) -> Result<Resolved, ActionError> {
        Ok(match self {
            ActionSpec::Systemd(a) => Resolved::Systemd(a.resolve(alert)?),
            ActionSpec::Docker(a) => Resolved::Docker(a.resolve(alert)?),
            ActionSpec::Kill(a) => Resolved::Kill(a.resolve(alert)?),
            ActionSpec::Exec(a) => Resolved::Exec(a.resolve(alert)?),
            ActionSpec::Notify(a) => Resolved::Notify(a.resolve(alert)?),
            ActionSpec::ShedLoad(a) => Resolved::ShedLoad(a.resolve()?),
        })
    }
}

/// An action resolved against one alert: its spec together with the
/// validated target (templates filled, grammar checked). Built only by
/// [`ActionSpec::resolve`], so a spec can never meet another action's target.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Systemd(systemd::Resolved),
    Docker(docker::Resolved),
    Kill(kill::Resolved),
    Exec(exec::Resolved),
    Notify(notify::Resolved),
    ShedLoad(shed::Resolved),
}

impl Resolved {
    /// The spec it was resolved from.
    pub fn spec(&self) -> ActionSpec {
        match self {
            Resolved::Systemd(r) => ActionSpec::Systemd(r.spec.clone()),
            Resolved::Docker(r) => ActionSpec::Docker(r.spec.clone()),
            Resolved::Kill(r) => ActionSpec::Kill(r.spec.clone()),
            Resolved::Exec(r) => ActionSpec::Exec(r.spec.clone()),
            Resolved::Notify(r) => ActionSpec::Notify(r.spec.clone()),
            Resolved::ShedLoad(r) => ActionSpec::ShedLoad(r.spec.clone()),
        }
    }

    /// The budget / cooldown / serialization key, e.g.
    /// `systemd:system:worker.service`, `docker:web`, `pid:4242`.
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// The action's name, as [`ActionSpec::name`].
    pub fn name(&self) -> String {
        self.spec().name()
    }

    /// The action and its target for people (journal, notifications,
    /// `incidents`): `systemd.restart systemd:system:worker.service`,
    /// `exec /usr/bin/cleanup --old` (the target's kind is not repeated
    /// when it is the action's name), `shed-load`.
    pub fn describe(&self) -> String {
        let (name, target) = (self.name(), self.to_string());
        let kind = self.spec().kind();
        match target
            .strip_prefix(kind)
            .map(|rest| rest.strip_prefix(':').unwrap_or(rest))
        {
            Some("") => name,
            Some(rest) if name == kind => format!("{name} {rest}"),
            _ => format!("{name} {target}"),
        }
    }

    /// Runs the action. With `env.dry_run` nothing changes and the result
    /// is [`OutcomeResult::DryRun`] with what would have run.
    pub async fn run(&self, alert: &Alert, env: &ActionEnv) -> Outcome {
        let started = Instant::now();
        match self {
            Resolved::Systemd(r) => r.run(env, started).await,
            Resolved::Docker(r) => r.run(env, started).await,
            Resolved::Kill(r) => r.run(env, started).await,
            Resolved::Exec(r) => r.run(alert, env, started).await,
            Resolved::Notify(r) => r.run(alert, env, started).await,
            Resolved::ShedLoad(r) => r.run(env, started).await,
        }
    }

    /// The actions this one brings along, to run right after it: the
    /// restarts of the containers depending on a restarted container
    /// (`restart_dependents`). Empty for every other action. Read-only, so
    /// it is asked in dry runs too.
    pub async fn followers(&self, env: &ActionEnv) -> Result<Vec<Resolved>, String> {
        match self {
            Resolved::Docker(r) => Ok(r.dependents(env).await?.into_iter().map(Resolved::Docker).collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Checks, until `deadline` has passed, whether the action had its
    /// effect: unit active (inactive for stop, masked for mask, …), container
    /// running and healthy (or its restart policy changed), process gone.
    /// Not applicable to `exec`, `notify` and dry runs.
    pub async fn verify(&self, env: &ActionEnv, deadline: Duration) -> Verification {
        if env.dry_run {
            return Verification::NotApplicable;
        }
        let until = tokio::time::Instant::now() + deadline;
        match self {
            Resolved::Systemd(r) => r.verify(env, until).await,
            Resolved::Docker(r) => r.verify(env, until).await,
            Resolved::Kill(r) => r.verify(env, until).await,
            Resolved::ShedLoad(r) => r.verify(env, until).await,
            Resolved::Exec(_) | Resolved::Notify(_) => Verification::NotApplicable,
        }
    }
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolved::Systemd(r) => r.fmt(f),
            Resolved::Docker(r) => r.fmt(f),
            Resolved::Kill(r) => r.fmt(f),
            Resolved::Exec(r) => r.fmt(f),
            Resolved::Notify(r) => r.fmt(f),
            Resolved::ShedLoad(r) => r.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests;

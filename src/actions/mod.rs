//! Typed remediation actions (no shell anywhere): what a `[[remediation]]`
//! rule can ask for, how its target is taken from the alert and validated,
//! how it runs, and how its effect is verified. One file per action holds
//! all of that for its type ([`systemd`], [`docker`], [`kill`], [`exec`],
//! [`notify`], [`shed`], [`journal_vacuum`]) as one implementation of the [`Action`] trait; the
//! registry [`ACTIONS`] names them by their `type`.
//!
//! The receiver (routing, safety policy, journal) drives this module:
//! 1. reading the config, an action's table becomes an [`ActionSpec`] (its
//!    `type` looked up in [`ACTIONS`], the rest deserialized into that
//!    action's spec);
//! 2. at config time, once, [`ActionSpec::compile`] validates it (against
//!    the configured notify channels too) into a [`Compiled`] action, which
//!    the receiver's rule keeps;
//! 3. per alert, [`Compiled::resolve`] fills the templates from the alert
//!    and checks the result against the target grammar ([`target`]). The
//!    [`Resolved`] action carries its spec and its concrete target together;
//!    its [`Resolved::key`] is the budget / cooldown / serialization key;
//! 4. [`Resolved::run`] acts (or reports what it would do in dry-run mode)
//!    and [`Resolved::verify`] checks the effect within a deadline;
//!    [`Resolved::subjects`] names what evidence is taken about.
//!
//! Adding an action: a new file with its spec (a serde struct) implementing
//! [`Action`], and one line in the [`actions!`] table below.

#![forbid(unsafe_code)]

pub mod env;
pub mod outcome;
pub mod poll;
mod spec;
pub mod target;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::error::ConfigError;
pub use crate::notify::{NotifyChannel, NtfyChannel, TelegramChannel, WebhookChannel};
pub use docker::DockerOp;
pub use env::{ActionEnv, Alert, AlertStatus, SpawnSink, Spawned};
pub use outcome::{DETAIL_MAX, FollowersError, Outcome, OutcomeResult, Verification, truncate};
pub use spec::{ActionSpec, Compiled, Kind, Resolved};
pub use systemd::SystemdOp;
pub use target::{Manager, Subject, TargetError};
pub use template::TemplateError;

/// The registry: one line per action, `module: Spec`. Declares the module
/// (`src/actions/<module>.rs`), re-exports its spec and lists it in
/// [`ACTIONS`] under the spec's [`Action::TYPE`].
macro_rules! actions {
    ($($module:ident: $spec:ident,)*) => {
        $(pub mod $module; pub use $module::$spec;)*
        /// Every action, by its `type` in config, in this order in errors.
        pub const ACTIONS: &[Kind] = &[$(Kind::of::<$spec>(),)*];
        /// The `type` names of [`ACTIONS`] (for "expected one of").
        pub(crate) const TYPES: &[&str] = &[$(<$spec as Action>::TYPE,)*];
    };
}

actions! {
    systemd: SystemdAction,
    docker: DockerAction,
    kill: KillAction,
    exec: ExecAction,
    notify: NotifyAction,
    shed: ShedLoadAction,
    journal_vacuum: JournalVacuumAction,
    docker_prune: DockerPruneAction,
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
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What config-time checks may look at besides the action itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The `[notify.<name>]` channels.
    pub channels: &'a BTreeMap<String, NotifyChannel>,
}

/// No channels: what a test of an action other than `notify` needs.
static NO_CHANNELS: BTreeMap<String, NotifyChannel> = BTreeMap::new();

impl Default for Context<'static> {
    fn default() -> Self {
        Context { channels: &NO_CHANNELS }
    }
}

/// One action type. `Self` is its spec: the `[[remediation]]` action table
/// as written (without `type`), checked once at config time; its
/// [`Action::Target`] is what it acts on, resolved from one alert.
pub trait Action: fmt::Debug + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Its `type` in config and its metric label (`systemd`, `shed-load`).
    const TYPE: &'static str;

    /// What it acts on, from one alert (templates filled, grammar checked).
    /// `Display` is the budget / cooldown / serialization key, e.g.
    /// `systemd:system:worker.service`, `docker:web`, `pid:4242`.
    type Target: fmt::Display + fmt::Debug + PartialEq + Send + Sync + 'static;

    /// `TYPE` plus operation, e.g. `systemd.restart` (journal, metrics).
    fn name(&self) -> String {
        Self::TYPE.to_string()
    }

    /// True for actions that change the host; the first such action of a
    /// rule names the rule's target.
    fn is_destructive(&self) -> bool {
        true
    }

    /// A sensible upper bound for one run (the receiver's per-action
    /// timeout is never shorter).
    fn suggested_timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    /// Config-time checks that need no alert; errors name `key.<field>`.
    fn validate(&self, key: &str, ctx: &Context<'_>) -> Result<(), ConfigError>;

    /// Fills templates from `alert` and validates the result against the
    /// target grammar. Anything that does not fit is refused here, before
    /// anything runs.
    fn resolve(&self, alert: &Alert) -> Result<Self::Target, ActionError>;

    /// The action and its target for people (journal, notifications,
    /// `incidents`); by default as [`describe`] puts it.
    fn describe(&self, target: &Self::Target) -> String {
        describe(Self::TYPE, &self.name(), &target.to_string())
    }

    /// Runs the action on `target`. With `env.dry_run` nothing changes and
    /// the result is [`OutcomeResult::DryRun`] with what would have run.
    fn run(
        &self,
        target: &Self::Target,
        alert: &Alert,
        env: &ActionEnv,
        started: Instant,
    ) -> impl Future<Output = Outcome> + Send;

    /// Checks, until `until`, whether the action had its effect (never
    /// asked in dry runs). [`Verification::NotApplicable`] for an action
    /// whose effect cannot be seen.
    fn verify(
        &self,
        target: &Self::Target,
        env: &ActionEnv,
        until: tokio::time::Instant,
    ) -> impl Future<Output = Verification> + Send;

    /// The actions this one brings along, to run right after it (a
    /// restarted container's dependents). Read-only: asked in dry runs too.
    fn followers(
        &self,
        _target: &Self::Target,
        _env: &ActionEnv,
    ) -> impl Future<Output = Result<Vec<Resolved>, FollowersError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// What evidence is taken about before acting and at verification
    /// (the unit, container or process it acts on; none for a message).
    fn subjects(&self, target: &Self::Target) -> Vec<Subject>;
}

/// The action and its target for people: `systemd.restart
/// systemd:system:worker.service`, `exec /usr/bin/cleanup --old` (the
/// target's kind is not repeated when it is the action's name), `shed-load`.
pub fn describe(kind: &str, name: &str, target: &str) -> String {
    match target
        .strip_prefix(kind)
        .map(|rest| rest.strip_prefix(':').unwrap_or(rest))
    {
        Some("") => name.to_string(),
        Some(rest) if name == kind => format!("{name} {rest}"),
        _ => format!("{name} {target}"),
    }
}

#[cfg(test)]
mod tests;

//! The type-erased handles the receiver holds, one per stage of an action:
//! [`ActionSpec`] (a table of the config, typed by its `type`),
//! [`Compiled`] (checked once at config time, kept in the rule) and
//! [`Resolved`] (with its target from one alert). Each wraps one
//! implementation of [`Action`]; the registry [`ACTIONS`] is the only place
//! that names them all.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::Error as _;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    ACTIONS, Action, ActionEnv, ActionError, Alert, ConfigError, Context, FollowersError, Outcome, Subject, TYPES,
    Verification,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One entry of [`ACTIONS`]: an action's `type` and how its table is read.
pub struct Kind {
    /// Its `type` in config ([`Action::TYPE`]).
    pub name: &'static str,
    parse: fn(toml::Table) -> Result<ActionSpec, toml::de::Error>,
}

impl Kind {
    /// The entry of the action whose spec is `A`.
    pub const fn of<A: Action>() -> Kind {
        Kind {
            name: A::TYPE,
            parse: parse::<A>,
        }
    }
}

fn parse<A: Action>(table: toml::Table) -> Result<ActionSpec, toml::de::Error> {
    A::deserialize(toml::Value::Table(table)).map(ActionSpec::new)
}

/// What every spec can do without naming its type (blanket over [`Action`]).
trait Erased: fmt::Debug + Send + Sync {
    fn kind(&self) -> &'static str;
    fn name(&self) -> String;
    fn is_destructive(&self) -> bool;
    fn suggested_timeout(&self) -> Duration;
    fn validate(&self, key: &str, ctx: &Context<'_>) -> Result<(), ConfigError>;
    fn resolve(self: Arc<Self>, alert: &Alert) -> Result<Resolved, ActionError>;
    fn table(&self) -> Result<toml::Table, toml::ser::Error>;
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Erased) -> bool;
}

impl<A: Action> Erased for A {
    fn kind(&self) -> &'static str {
        A::TYPE
    }
    fn name(&self) -> String {
        Action::name(self)
    }
    fn is_destructive(&self) -> bool {
        Action::is_destructive(self)
    }
    fn suggested_timeout(&self) -> Duration {
        Action::suggested_timeout(self)
    }
    fn validate(&self, key: &str, ctx: &Context<'_>) -> Result<(), ConfigError> {
        Action::validate(self, key, ctx)
    }
    fn resolve(self: Arc<Self>, alert: &Alert) -> Result<Resolved, ActionError> {
        let target = Action::resolve(&*self, alert)?;
        Ok(Resolved(Arc::new(Bound { spec: self, target })))
    }
    fn table(&self) -> Result<toml::Table, toml::ser::Error> {
        toml::Table::try_from(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same(&self, other: &dyn Erased) -> bool {
        other.as_any().downcast_ref::<A>() == Some(self)
    }
}

/// One action of a rule as the config file has it: its `type` and its
/// table, deserialized into that action's spec. Not checked beyond its
/// types: [`ActionSpec::compile`] does that, once.
#[derive(Clone)]
pub struct ActionSpec(Arc<dyn Erased>);

impl ActionSpec {
    /// The spec `a` as a rule's action.
    pub fn new<A: Action>(a: A) -> ActionSpec {
        ActionSpec(Arc::new(a))
    }

    /// Its `type` (`systemd`, `shed-load`, …), for metric labels.
    pub fn kind(&self) -> &'static str {
        self.0.kind()
    }

    /// `kind` plus operation, e.g. `systemd.restart`.
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// True for actions that change the host (everything but `notify`).
    pub fn is_destructive(&self) -> bool {
        self.0.is_destructive()
    }

    /// The spec, when it is an `A`.
    pub fn get<A: Action>(&self) -> Option<&A> {
        self.0.as_any().downcast_ref()
    }

    /// The config-time checks (errors name `key.<field>`): the one way to a
    /// [`Compiled`] action, for `check-config`, start-up and reload alike.
    pub fn compile(&self, key: &str, ctx: &Context<'_>) -> Result<Compiled, ConfigError> {
        self.0.validate(key, ctx)?;
        Ok(Compiled(self.0.clone()))
    }
}

impl<A: Action> From<A> for ActionSpec {
    fn from(a: A) -> ActionSpec {
        ActionSpec::new(a)
    }
}

impl fmt::Debug for ActionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for ActionSpec {
    fn eq(&self, other: &ActionSpec) -> bool {
        self.0.same(&*other.0)
    }
}

/// `type` first, then the spec's keys (defaults filled in).
impl Serialize for ActionSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let table = self.0.table().map_err(serde::ser::Error::custom)?;
        let mut m = s.serialize_map(Some(table.len() + 1))?;
        m.serialize_entry("type", self.kind())?;
        for (k, v) in &table {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The table's `type` picks the entry of [`ACTIONS`] that reads the rest.
impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ActionSpec, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let name = match table.remove("type") {
            Some(toml::Value::String(s)) => s,
            Some(other) => return Err(D::Error::custom(format!("`type` must be a string, not {other}"))),
            None => return Err(D::Error::missing_field("type")),
        };
        let kind = ACTIONS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| D::Error::unknown_variant(&name, TYPES))?;
        (kind.parse)(table).map_err(|e| D::Error::custom(e.message()))
    }
}

/// An action checked at config time ([`ActionSpec::compile`]), as the
/// receiver's rule keeps it: resolved against each alert, never re-read.
#[derive(Clone)]
pub struct Compiled(Arc<dyn Erased>);

impl Compiled {
    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        self.0.kind()
    }

    /// As [`ActionSpec::name`].
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// True for actions that change the host (everything but `notify`).
    pub fn is_destructive(&self) -> bool {
        self.0.is_destructive()
    }

    /// The spec it was compiled from.
    pub fn spec(&self) -> ActionSpec {
        ActionSpec(self.0.clone())
    }

    /// Fills templates from `alert` and validates the result against the
    /// target grammar ([`Action::resolve`]).
    pub fn resolve(&self, alert: &Alert) -> Result<Resolved, ActionError> {
        self.0.clone().resolve(alert)
    }
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A spec with its target.
struct Bound<A: Action> {
    spec: Arc<A>,
    target: A::Target,
}

/// What every resolved action can do without naming its type.
trait ErasedBound: Send + Sync {
    fn spec(&self) -> &dyn Erased;
    fn target_any(&self) -> &dyn Any;
    fn key(&self) -> String;
    fn describe(&self) -> String;
    fn run<'a>(&'a self, alert: &'a Alert, env: &'a ActionEnv) -> BoxFuture<'a, Outcome>;
    fn verify<'a>(&'a self, env: &'a ActionEnv, until: tokio::time::Instant) -> BoxFuture<'a, Verification>;
    fn followers<'a>(&'a self, env: &'a ActionEnv) -> BoxFuture<'a, Result<Vec<Resolved>, FollowersError>>;
    fn subjects(&self) -> Vec<Subject>;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<A: Action> ErasedBound for Bound<A> {
    fn spec(&self) -> &dyn Erased {
        &*self.spec
    }
    fn target_any(&self) -> &dyn Any {
        &self.target
    }
    fn key(&self) -> String {
        self.target.to_string()
    }
    fn describe(&self) -> String {
        self.spec.describe(&self.target)
    }
    fn run<'a>(&'a self, alert: &'a Alert, env: &'a ActionEnv) -> BoxFuture<'a, Outcome> {
        Box::pin(self.spec.run(&self.target, alert, env, Instant::now()))
    }
    fn verify<'a>(&'a self, env: &'a ActionEnv, until: tokio::time::Instant) -> BoxFuture<'a, Verification> {
        Box::pin(self.spec.verify(&self.target, env, until))
    }
    fn followers<'a>(&'a self, env: &'a ActionEnv) -> BoxFuture<'a, Result<Vec<Resolved>, FollowersError>> {
        Box::pin(self.spec.followers(&self.target, env))
    }
    fn subjects(&self) -> Vec<Subject> {
        self.spec.subjects(&self.target)
    }
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("spec", &self.spec)
            .field("target", &self.target)
            .finish()
    }
}

/// An action resolved against one alert: its spec together with the
/// validated target. Built only by [`Compiled::resolve`] (and an action's
/// [`Action::followers`]), so a spec never meets another action's target.
/// Clones share the run's state (what a kill pinned).
#[derive(Clone)]
pub struct Resolved(Arc<dyn ErasedBound>);

impl Resolved {
    /// `spec` with a `target` it resolved (for [`Action::followers`]).
    pub fn new<A: Action>(spec: A, target: A::Target) -> Resolved {
        Resolved(Arc::new(Bound {
            spec: Arc::new(spec),
            target,
        }))
    }

    /// The budget / cooldown / serialization key, e.g.
    /// `systemd:system:worker.service`, `docker:web`, `pid:4242`.
    pub fn key(&self) -> String {
        self.0.key()
    }

    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        self.0.spec().kind()
    }

    /// The action's name, as [`ActionSpec::name`].
    pub fn name(&self) -> String {
        self.0.spec().name()
    }

    /// True for actions that change the host (everything but `notify`).
    pub fn is_destructive(&self) -> bool {
        self.0.spec().is_destructive()
    }

    /// As [`Action::suggested_timeout`].
    pub fn suggested_timeout(&self) -> Duration {
        self.0.spec().suggested_timeout()
    }

    /// The spec, when it is an `A`.
    pub fn spec<A: Action>(&self) -> Option<&A> {
        self.0.spec().as_any().downcast_ref()
    }

    /// The target, when the action is an `A`.
    pub fn target<A: Action>(&self) -> Option<&A::Target> {
        self.0.target_any().downcast_ref()
    }

    /// The action and its target for people ([`Action::describe`]).
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// Runs the action ([`Action::run`]).
    pub async fn run(&self, alert: &Alert, env: &ActionEnv) -> Outcome {
        self.0.run(alert, env).await
    }

    /// The actions this one brings along ([`Action::followers`]).
    pub async fn followers(&self, env: &ActionEnv) -> Result<Vec<Resolved>, FollowersError> {
        self.0.followers(env).await
    }

    /// Checks, until `deadline` has passed, whether the action had its
    /// effect ([`Action::verify`]); not applicable to dry runs.
    pub async fn verify(&self, env: &ActionEnv, deadline: Duration) -> Verification {
        if env.dry_run {
            return Verification::NotApplicable;
        }
        self.0.verify(env, tokio::time::Instant::now() + deadline).await
    }

    /// What evidence is taken about ([`Action::subjects`]).
    pub fn subjects(&self) -> Vec<Subject> {
        self.0.subjects()
    }
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}

/// The same spec and the same target.
impl PartialEq for Resolved {
    fn eq(&self, other: &Resolved) -> bool {
        self.0.spec().same(other.0.spec()) && self.key() == other.key()
    }
}

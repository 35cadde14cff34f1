//! Typed remediation actions (no shell anywhere): what a `[[remediation]]`
//! rule can ask for, how its target is taken from the alert and validated,
//! how it runs, and how its effect is verified.
//!
//! The receiver (routing, safety policy, journal) drives this module:
//! 1. at config time, [`ActionSpec::validate`] (and
//!    [`ActionSpec::validate_refs`] against the configured notify channels);
//! 2. per alert, [`ActionSpec::resolve_target`] fills the templates from the
//!    alert and checks the result against the target grammar. Its
//!    [`Target::key`] is the budget / cooldown / serialization key;
//! 3. [`run`] acts (or reports what it would do in dry-run mode) and
//!    [`verify`] checks the effect within a deadline.

pub mod docker;
pub mod exec;
pub mod kill;
pub mod notify;
pub mod shed;
pub mod systemd;
pub mod target;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::config::ConfigError;
pub use notify::{NotifyChannel, NtfyChannel, TelegramChannel, WebhookChannel};
pub use target::TargetError;
pub use template::TemplateError;

/// Most output kept in an [`Outcome::detail`].
pub const DETAIL_MAX: usize = 4096;

/// What an action sees of an alert (the receiver maps Alertmanager's payload
/// into it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alertname: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub fingerprint: String,
    /// Alertmanager's `startsAt`, as received.
    pub starts_at: String,
}

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

/// `type = "systemd"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdAction {
    pub op: SystemdOp,
    /// Unit name, templated (e.g. `"{{ labels.name }}"`).
    pub unit: String,
    /// `"system"` (default) or `"user:<name>"`.
    #[serde(default = "default_manager")]
    pub manager: String,
}

fn default_manager() -> String {
    "system".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemdOp {
    Restart,
    Start,
    Stop,
    Disable,
    Mask,
    Unmask,
    ResetFailed,
}

impl SystemdOp {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemdOp::Restart => "restart",
            SystemdOp::Start => "start",
            SystemdOp::Stop => "stop",
            SystemdOp::Disable => "disable",
            SystemdOp::Mask => "mask",
            SystemdOp::Unmask => "unmask",
            SystemdOp::ResetFailed => "reset-failed",
        }
    }
}

/// `type = "docker"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAction {
    pub op: DockerOp,
    /// Container name or id, templated.
    pub container: String,
    /// For `op = "restart-policy"`: `no`, `always`, `unless-stopped`,
    /// `on-failure` or `on-failure:N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerOp {
    Restart,
    Stop,
    Start,
    RestartPolicy,
}

impl DockerOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DockerOp::Restart => "restart",
            DockerOp::Stop => "stop",
            DockerOp::Start => "start",
            DockerOp::RestartPolicy => "restart-policy",
        }
    }
}

/// `type = "kill"`: TERM, then KILL after `grace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillAction {
    /// PID, templated; default `"{{ labels.pid }}"`.
    #[serde(default = "default_pid")]
    pub pid: String,
    /// Regex the process's command line (NUL-separated args joined by
    /// spaces) must match. Required.
    pub allow: String,
    /// Expected start time (Unix seconds), templated from a label; when set,
    /// a process whose real start time differs is never signalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Time between TERM and KILL.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
}

fn default_pid() -> String {
    "{{ labels.pid }}".to_string()
}

fn default_grace() -> Duration {
    Duration::from_secs(10)
}

/// `type = "exec"`: argv run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAction {
    /// `argv[0]` is an absolute path, fixed (not templated); the rest may be
    /// templated.
    pub argv: Vec<String>,
    #[serde(default = "default_exec_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_exec_timeout() -> Duration {
    Duration::from_secs(60)
}

/// `type = "notify"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyAction {
    /// Name of a `[notify.<name>]` channel.
    pub channel: String,
    /// Message template; default: alertname, status, summary and labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Title template; default `"{{ alertname }} ({{ status }})"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `type = "shed-load"`: stop a fixed list of non-essential units and
/// containers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShedLoadAction {
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    /// Manager of `units`: `"system"` (default) or `"user:<name>"`.
    #[serde(default = "default_manager")]
    pub manager: String,
}

/// Which systemd manager a unit belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    System,
    User(String),
}

impl Manager {
    /// Parses `"system"` or `"user:<name>"`.
    pub fn parse(s: &str) -> Result<Manager, TargetError> {
        if s == "system" {
            return Ok(Manager::System);
        }
        if let Some(user) = s.strip_prefix("user:") {
            target::validate_user_name(user)?;
            return Ok(Manager::User(user.to_string()));
        }
        Err(TargetError {
            what: "manager",
            value: s.chars().take(80).collect(),
            reason: "must be \"system\" or \"user:<name>\"".into(),
        })
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::System => f.write_str("system"),
            Manager::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// A resolved, validated target: templates filled from the alert and
/// checked against the target grammar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    Unit {
        manager: Manager,
        unit: String,
    },
    Container {
        container: String,
    },
    Process {
        pid: i32,
        start_time: Option<f64>,
    },
    Command {
        argv: Vec<String>,
    },
    Channel {
        channel: String,
        title: String,
        message: String,
    },
    ShedLoad {
        manager: Manager,
        units: Vec<String>,
        containers: Vec<String>,
    },
}

impl Target {
    /// The budget / cooldown / serialization key, e.g.
    /// `systemd:system:worker.service`, `docker:web`, `pid:4242`.
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unit { manager, unit } => write!(f, "systemd:{manager}:{unit}"),
            Target::Container { container } => write!(f, "docker:{container}"),
            Target::Process { pid, .. } => write!(f, "pid:{pid}"),
            Target::Command { argv } => write!(f, "exec:{}", argv.join(" ")),
            Target::Channel { channel, .. } => write!(f, "notify:{channel}"),
            Target::ShedLoad { .. } => f.write_str("shed-load"),
        }
    }
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

/// Everything needed to act.
#[derive(Debug, Clone)]
pub struct ActionEnv {
    /// D-Bus address of the system manager (`None`:
    /// `$DBUS_SYSTEM_BUS_ADDRESS`, else `unix:path=/run/dbus/system_bus_socket`).
    pub system_bus: Option<String>,
    /// Parent of the per-user runtime dirs: the user manager of `user:<name>`
    /// is reached at `<user_runtime_dir>/<uid>/bus`.
    pub user_runtime_dir: PathBuf,
    /// passwd file mapping user names to uids (for `user:<name>`).
    pub passwd_file: PathBuf,
    /// Deadline of each D-Bus call.
    pub systemd_timeout: Duration,
    /// Docker endpoint (`unix:///…` or `tcp://…`; `None`: default socket).
    pub docker_host: Option<String>,
    /// Deadline of each Docker engine request.
    pub docker_timeout: Duration,
    /// `[notify.<name>]` channels.
    pub notify: BTreeMap<String, NotifyChannel>,
    /// Root of procfs (for `kill`).
    pub procfs_root: PathBuf,
    /// Report what would run, change nothing.
    pub dry_run: bool,
}

impl Default for ActionEnv {
    fn default() -> Self {
        ActionEnv {
            system_bus: None,
            user_runtime_dir: PathBuf::from("/run/user"),
            passwd_file: PathBuf::from("/etc/passwd"),
            systemd_timeout: Duration::from_secs(10),
            docker_host: None,
            docker_timeout: Duration::from_secs(10),
            notify: BTreeMap::new(),
            procfs_root: PathBuf::from("/proc"),
            dry_run: false,
        }
    }
}

impl ActionEnv {
    /// The environment described by a validated configuration: buses from
    /// `[systemd]`, Docker engine from `[docker]`, procfs from `[global]`,
    /// channels from `[notify.*]`; `dry_run` off (the receiver sets it).
    pub fn from_config(cfg: &crate::config::Config) -> ActionEnv {
        ActionEnv {
            system_bus: Some(cfg.systemd.bus_address.clone()).filter(|a| !a.is_empty()),
            user_runtime_dir: cfg.systemd.user_runtime_dir.clone(),
            passwd_file: cfg.systemd.passwd_file.clone(),
            systemd_timeout: cfg.systemd.call_timeout.max(Duration::from_secs(10)),
            docker_host: Some(cfg.docker.host.clone()).filter(|h| !h.is_empty()),
            docker_timeout: cfg.docker.timeout.max(Duration::from_secs(5)),
            notify: cfg.notify.clone(),
            procfs_root: cfg.global.procfs_root.clone(),
            ..ActionEnv::default()
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeResult {
    Ok,
    Failed,
    /// Not attempted: a safety check said no (grammar, allow pattern, start
    /// time, unit not installed…).
    Refused,
    DryRun,
}

impl OutcomeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeResult::Ok => "ok",
            OutcomeResult::Failed => "failed",
            OutcomeResult::Refused => "refused",
            OutcomeResult::DryRun => "dry-run",
        }
    }
}

/// The result of [`run`]: secrets are never part of `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: OutcomeResult,
    /// Human-readable detail, truncated to [`DETAIL_MAX`] bytes.
    pub detail: String,
    #[serde(rename = "duration_seconds", with = "secs_f64")]
    pub duration: Duration,
}

impl Outcome {
    pub fn new(result: OutcomeResult, detail: impl Into<String>, started: Instant) -> Outcome {
        Outcome {
            result,
            detail: truncate(detail.into(), DETAIL_MAX),
            duration: started.elapsed(),
        }
    }

    /// The target's manager (D-Bus, Docker engine) could not be asked for the
    /// target's state: a failure, except in a dry run, which still reports
    /// what it would have run (a dry run must not depend on the bus being up).
    pub fn state_unknown(what: &str, err: impl std::fmt::Display, env: &ActionEnv, started: Instant) -> Outcome {
        if env.dry_run {
            Outcome::new(
                OutcomeResult::DryRun,
                format!("would run {what} (state unknown: {err})"),
                started,
            )
        } else {
            Outcome::new(OutcomeResult::Failed, format!("{what}: {err}"), started)
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verification", content = "reason", rename_all = "kebab-case")]
pub enum Verification {
    Verified,
    NotHelped(String),
    NotApplicable,
}

mod secs_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Truncates `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let marker = if max >= 64 { "…[truncated]" } else { "" };
    let mut cut = max - marker.len();
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(marker);
    s
}

fn render(field: &str, template: &str, alert: &Alert) -> Result<String, ActionError> {
    template::render(template, alert).map_err(|source| ActionError::Template {
        field: field.to_string(),
        source,
    })
}

fn check_template(key: &str, template: &str) -> Result<(), ConfigError> {
    template::check(template).map_err(|e| ConfigError::invalid(key, e))
}

/// A literal (untemplated) value is checked at config time; a templated one
/// only after rendering.
fn check_literal<T>(
    key: &str,
    value: &str,
    validate: impl Fn(&str) -> Result<T, TargetError>,
) -> Result<(), ConfigError> {
    check_template(key, value)?;
    if !template::has_placeholders(value) {
        validate(value).map_err(|e| ConfigError::invalid(key, e))?;
    }
    Ok(())
}

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
            ActionSpec::Systemd(a) => format!("systemd.{}", a.op.as_str()),
            ActionSpec::Docker(a) => format!("docker.{}", a.op.as_str()),
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
            ActionSpec::Exec(a) => a.timeout + Duration::from_secs(5),
            ActionSpec::Kill(a) => a.grace + Duration::from_secs(10),
            ActionSpec::Notify(_) => Duration::from_secs(120),
            ActionSpec::ShedLoad(a) => Duration::from_secs(90 * (a.units.len() + a.containers.len()).max(1) as u64),
            _ => Duration::from_secs(120),
        }
    }

    /// Config-time checks that need no alert; errors name `key.<field>`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        match self {
            ActionSpec::Systemd(a) => {
                Manager::parse(&a.manager).map_err(|e| ConfigError::invalid(format!("{key}.manager"), e))?;
                check_literal(&format!("{key}.unit"), &a.unit, target::validate_unit_name)
            }
            ActionSpec::Docker(a) => {
                check_literal(&format!("{key}.container"), &a.container, target::validate_container)?;
                match (a.op, &a.policy) {
                    (DockerOp::RestartPolicy, None) => Err(ConfigError::invalid(
                        format!("{key}.policy"),
                        "required for op = \"restart-policy\" (e.g. \"no\")",
                    )),
                    (DockerOp::RestartPolicy, Some(p)) => docker::parse_policy(p)
                        .map(|_| ())
                        .map_err(|e| ConfigError::invalid(format!("{key}.policy"), e)),
                    (_, Some(_)) => Err(ConfigError::invalid(
                        format!("{key}.policy"),
                        "only valid with op = \"restart-policy\"",
                    )),
                    (_, None) => Ok(()),
                }
            }
            ActionSpec::Kill(a) => {
                check_literal(&format!("{key}.pid"), &a.pid, target::validate_pid)?;
                if a.allow.trim().is_empty() {
                    return Err(ConfigError::invalid(format!("{key}.allow"), "must not be empty"));
                }
                crate::config::compile_regex(&format!("{key}.allow"), &a.allow)?;
                if let Some(st) = &a.start_time {
                    check_literal(&format!("{key}.start_time"), st, target::parse_start_time)?;
                }
                if a.grace > Duration::from_secs(3600) {
                    return Err(ConfigError::invalid(format!("{key}.grace"), "must be at most 1h"));
                }
                Ok(())
            }
            ActionSpec::Exec(a) => exec::validate(key, a),
            ActionSpec::Notify(a) => {
                if a.channel.is_empty() {
                    return Err(ConfigError::invalid(format!("{key}.channel"), "must not be empty"));
                }
                if let Some(m) = &a.message {
                    check_template(&format!("{key}.message"), m)?;
                }
                if let Some(t) = &a.title {
                    check_template(&format!("{key}.title"), t)?;
                }
                Ok(())
            }
            ActionSpec::ShedLoad(a) => {
                Manager::parse(&a.manager).map_err(|e| ConfigError::invalid(format!("{key}.manager"), e))?;
                if a.units.is_empty() && a.containers.is_empty() {
                    return Err(ConfigError::invalid(
                        key,
                        "shed-load needs at least one of units, containers",
                    ));
                }
                for (i, u) in a.units.iter().enumerate() {
                    target::validate_unit_name(u).map_err(|e| ConfigError::invalid(format!("{key}.units[{i}]"), e))?;
                }
                for (i, c) in a.containers.iter().enumerate() {
                    target::validate_container(c)
                        .map_err(|e| ConfigError::invalid(format!("{key}.containers[{i}]"), e))?;
                }
                Ok(())
            }
        }
    }

    /// Config-time checks against other configuration: a `notify` action's
    /// channel must be configured.
    pub fn validate_refs(&self, key: &str, channels: &BTreeMap<String, NotifyChannel>) -> Result<(), ConfigError> {
        if let ActionSpec::Notify(a) = self
            && !channels.contains_key(&a.channel)
        {
            let known: Vec<&str> = channels.keys().map(String::as_str).collect();
            return Err(ConfigError::invalid(
                format!("{key}.channel"),
                format!(
                    "no [notify.{}] channel configured (configured: {})",
                    a.channel,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Fills templates from `alert` and validates the result against the
    /// target grammar. Anything that does not fit is refused here, before
    /// anything runs.
    pub fn resolve_target(&self, alert: &Alert) -> Result<Target, ActionError> {
        match self {
            ActionSpec::Systemd(a) => {
                let manager = Manager::parse(&a.manager)?;
                let unit = render("unit", &a.unit, alert)?;
                target::validate_unit_name(&unit)?;
                Ok(Target::Unit { manager, unit })
            }
            ActionSpec::Docker(a) => {
                let container = render("container", &a.container, alert)?;
                target::validate_container(&container)?;
                Ok(Target::Container { container })
            }
            ActionSpec::Kill(a) => {
                let pid = target::validate_pid(&render("pid", &a.pid, alert)?)?;
                let start_time = match &a.start_time {
                    Some(t) => Some(target::parse_start_time(&render("start_time", t, alert)?)?),
                    None => None,
                };
                Ok(Target::Process { pid, start_time })
            }
            ActionSpec::Exec(a) => exec::resolve(a, alert),
            ActionSpec::Notify(a) => {
                // Lenient: a missing annotation must not suppress a message.
                let lenient = |field: &str, t: &str| {
                    template::render_lenient(t, alert).map_err(|source| ActionError::Template {
                        field: field.to_string(),
                        source,
                    })
                };
                let title = match &a.title {
                    Some(t) => lenient("title", t)?,
                    None => notify::default_title(alert),
                };
                let message = match &a.message {
                    Some(m) => lenient("message", m)?,
                    None => notify::default_message(alert),
                };
                Ok(Target::Channel {
                    channel: a.channel.clone(),
                    title,
                    message,
                })
            }
            ActionSpec::ShedLoad(a) => {
                let manager = Manager::parse(&a.manager)?;
                for u in &a.units {
                    target::validate_unit_name(u)?;
                }
                for c in &a.containers {
                    target::validate_container(c)?;
                }
                Ok(Target::ShedLoad {
                    manager,
                    units: a.units.clone(),
                    containers: a.containers.clone(),
                })
            }
        }
    }
}

/// Runs `spec` against `target` (from [`ActionSpec::resolve_target`]). With
/// `env.dry_run` nothing changes and the result is [`OutcomeResult::DryRun`]
/// with what would have run.
pub async fn run(spec: &ActionSpec, target: &Target, alert: &Alert, env: &ActionEnv) -> Outcome {
    let started = Instant::now();
    let mismatch = || {
        Outcome::new(
            OutcomeResult::Refused,
            format!("target {target} does not belong to a {} action", spec.kind()),
            started,
        )
    };
    match (spec, target) {
        (ActionSpec::Systemd(a), Target::Unit { manager, unit }) => {
            systemd::run(a.op, manager, unit, env, started).await
        }
        (ActionSpec::Docker(a), Target::Container { container }) => docker::run(a, container, env, started).await,
        (ActionSpec::Kill(a), Target::Process { pid, start_time }) => {
            kill::run(a, *pid, *start_time, env, started).await
        }
        (ActionSpec::Exec(a), Target::Command { argv }) => exec::run(a, argv, alert, env, started).await,
        (
            ActionSpec::Notify(_),
            Target::Channel {
                channel,
                title,
                message,
            },
        ) => notify::run(channel, title, message, alert, env, started).await,
        (
            ActionSpec::ShedLoad(_),
            Target::ShedLoad {
                manager,
                units,
                containers,
            },
        ) => shed::run(manager, units, containers, env, started).await,
        _ => mismatch(),
    }
}

/// Checks, until `deadline` has passed, whether the action had its effect:
/// unit active (inactive for stop, masked for mask, …), container running
/// and healthy (or its restart policy changed), process gone.
pub async fn verify(spec: &ActionSpec, target: &Target, env: &ActionEnv, deadline: Duration) -> Verification {
    if env.dry_run {
        return Verification::NotApplicable;
    }
    let until = tokio::time::Instant::now() + deadline;
    match (spec, target) {
        (ActionSpec::Systemd(a), Target::Unit { manager, unit }) => {
            systemd::verify(a.op, manager, unit, env, until).await
        }
        (ActionSpec::Docker(a), Target::Container { container }) => docker::verify(a, container, env, until).await,
        (ActionSpec::Kill(_), Target::Process { pid, start_time }) => kill::verify(*pid, *start_time, env, until).await,
        (
            ActionSpec::ShedLoad(_),
            Target::ShedLoad {
                manager,
                units,
                containers,
            },
        ) => shed::verify(manager, units, containers, env, until).await,
        _ => Verification::NotApplicable,
    }
}

#[cfg(test)]
mod tests;

//! `type = "systemd"`: restart, start, stop, disable, mask, unmask or
//! reset-failed a unit over D-Bus (system manager or a user manager), using
//! the shared helpers of [`crate::systemd`]. A unit systemd has no unit file
//! for (`not-found`, S3) is never started, stopped or restarted: the action
//! is refused with "not installed" so the rule can notify instead.
//!
//! Also the unit half of `shed-load` (`stop_quietly`, `stopped_state`).

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use zbus::Connection;

use super::target::{self, Manager, default_manager};
use super::template::{check_literal, render_field};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};
use crate::systemd::{self as sd, ActiveState, LoadState, ManagerTarget, UnitStatus};
use crate::users::Users;

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

/// A systemd action's unit: key `systemd:<manager>:<unit>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub manager: Manager,
    pub unit: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "systemd:{}:{}", self.manager, self.unit)
    }
}

/// Why a systemd action (or the evidence and `shed-load`, which share its
/// connection) could not do what it was asked on a manager.
#[derive(Debug, thiserror::Error)]
pub enum UnitActionError {
    /// A user manager's user is not in the passwd file.
    #[error(transparent)]
    Locate(sd::SystemdError),
    /// The manager's bus did not answer.
    #[error("{manager} manager: {source}")]
    Connect {
        manager: Manager,
        #[source]
        source: sd::SystemdError,
    },
    /// A call on a connected manager failed (its text names the call).
    #[error(transparent)]
    Call(#[from] sd::SystemdError),
    /// The unit's properties hold no `UnitFileState`.
    #[error("unit {0} has no UnitFileState property")]
    NoUnitFileState(String),
    /// The manager has no unit file for the unit.
    #[error("not installed (load state not-found) on the {0} manager")]
    NotInstalled(Manager),
}

/// Where `manager` lives, per `env` (the passwd file is read off the
/// runtime's threads).
pub async fn manager_target(manager: &Manager, env: &ActionEnv) -> Result<ManagerTarget, UnitActionError> {
    match manager {
        Manager::System => Ok(ManagerTarget::system(env.system_bus.as_deref())),
        Manager::User(name) => {
            let passwd = Users::read(&env.passwd_file).await;
            sd::configured_user_manager(name, &env.user_runtime_dir, &passwd).map_err(UnitActionError::Locate)
        }
    }
}

/// A connection to `manager` as `env` configures it (the actions' and the
/// evidence's one way there).
pub(crate) async fn connect(manager: &Manager, env: &ActionEnv) -> Result<Connection, UnitActionError> {
    let target = manager_target(manager, env).await?;
    sd::connect(&target, env.systemd_timeout)
        .await
        .map_err(|source| UnitActionError::Connect {
            manager: manager.clone(),
            source,
        })
}

fn describe(st: &UnitStatus) -> String {
    let mut s = format!("{} {}/{}", st.load_state, st.active_state, st.sub_state);
    if let Some(r) = &st.result {
        s.push_str(&format!(", result {r}"));
    }
    if let Some(n) = st.n_restarts {
        s.push_str(&format!(", NRestarts {n}"));
    }
    if let Some(c) = st.exec_main_status {
        s.push_str(&format!(", last exit status {c}"));
    }
    s
}

/// `UnitFileState` (`enabled`, `disabled`, `masked`, `static`, …).
async fn unit_file_state(conn: &Connection, unit: &str) -> Result<String, UnitActionError> {
    let path = sd::unit_path(conn, unit).await?;
    let props: HashMap<String, zbus::OwnedVariant> = sd::get_all(conn, &path, sd::proxies::UNIT_INTERFACE).await?;
    props
        .get("UnitFileState")
        .and_then(|v| <&str>::try_from(v).ok())
        .map(str::to_string)
        .ok_or_else(|| UnitActionError::NoUnitFileState(unit.to_string()))
}

fn changes_line(changes: &[sd::UnitFileChange]) -> String {
    if changes.is_empty() {
        return "no unit file changes".to_string();
    }
    changes
        .iter()
        .map(|c| {
            if c.destination.is_empty() {
                format!("{} {}", c.kind, c.file)
            } else {
                format!("{} {} → {}", c.kind, c.file, c.destination)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Performs `op` on an already checked unit; `Ok` carries what happened.
async fn perform(conn: &Connection, op: SystemdOp, unit: &str) -> Result<String, sd::SystemdError> {
    Ok(match op {
        SystemdOp::Restart => format!("restart job {}", sd::restart_unit(conn, unit).await?.as_str()),
        SystemdOp::Start => format!("start job {}", sd::start_unit(conn, unit).await?.as_str()),
        SystemdOp::Stop => format!("stop job {}", sd::stop_unit(conn, unit).await?.as_str()),
        SystemdOp::ResetFailed => match sd::reset_failed_unit(conn, unit).await {
            Ok(()) => "failed state and restart counter reset".to_string(),
            // Not loaded (garbage-collected): nothing is failed.
            Err(sd::SystemdError::NoSuchUnit(_)) => "unit not loaded: nothing to reset".to_string(),
            Err(err) => return Err(err),
        },
        SystemdOp::Disable | SystemdOp::Mask | SystemdOp::Unmask => {
            let names = [unit];
            let mut note = "";
            let changes = match op {
                SystemdOp::Disable => sd::disable_unit_files(conn, &names).await,
                SystemdOp::Mask => match sd::mask_unit_files(conn, &names).await {
                    // The unit file is the administrator's (/etc/systemd/system,
                    // which outranks every other unit directory but the
                    // control ones): a mask would have to replace it. Disable
                    // it instead, and say so.
                    Err(err) if err.dbus_error_name() == Some(sd::UNIT_EXISTS) => {
                        note = "; NOT masked: its unit file is the administrator's (/etc/systemd/system), which a \
                                mask would have to replace, so it was disabled instead (it no longer starts at boot \
                                or from its [Install] targets, but can still be started by hand or as a dependency)";
                        sd::disable_unit_files(conn, &names).await
                    }
                    other => other,
                },
                _ => sd::unmask_unit_files(conn, &names).await,
            }?;
            // Like systemctl: reload so the manager sees the new unit files.
            sd::reload(conn).await?;
            format!("{}; daemon reloaded{note}", changes_line(&changes))
        }
    })
}

impl Action for SystemdAction {
    const TYPE: &'static str = "systemd";
    type Target = Target;

    fn name(&self) -> String {
        format!("systemd.{}", self.op.as_str())
    }

    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
        Manager::parse(&self.manager).map_err(|e| ConfigError::invalid(format!("{key}.manager"), e))?;
        check_literal(&format!("{key}.unit"), &self.unit, target::validate_unit_name)
    }

    fn resolve(&self, alert: &Alert) -> Result<Target, ActionError> {
        let manager = Manager::parse(&self.manager)?;
        let unit = render_field("unit", &self.unit, alert)?;
        target::validate_unit_name(&unit)?;
        Ok(Target { manager, unit })
    }

    fn subjects(&self, t: &Target) -> Vec<Subject> {
        vec![Subject::Unit {
            manager: t.manager.clone(),
            unit: t.unit.clone(),
        }]
    }

    async fn run(&self, t: &Target, _: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let (op, manager, unit) = (self.op, &t.manager, t.unit.as_str());
        let what = format!("systemctl {}{} {unit}", user_flag(manager), op.as_str());
        let conn = match connect(manager, env).await {
            Ok(c) => c,
            Err(e) => return Outcome::state_unknown(&what, e, env, started),
        };
        let before = match sd::unit_status(&conn, unit).await {
            Ok(s) => s,
            Err(e) => return Outcome::state_unknown(&what, format_args!("reading unit state: {e}"), env, started),
        };
        // Masking or unmasking a unit without a unit file is fine; everything
        // else needs one (S3: restarting a not-found unit achieves nothing).
        if !before.is_installed() && !matches!(op, SystemdOp::Mask | SystemdOp::Unmask) {
            return Outcome::new(
                OutcomeResult::Refused,
                format!("{what}: unit {unit} is not installed (load state not-found) on the {manager} manager"),
                started,
            );
        }
        let before_line = describe(&before);
        if env.dry_run {
            return Outcome::would_run(&what, &before_line, started);
        }
        Outcome::acted(&what, perform(&conn, op, unit).await, &before_line, started)
    }

    /// Verified on the end state, whatever the state the action saw (a unit
    /// in `activating (auto-restart)` flips on its own): restart/start —
    /// active for [`super::poll::STABLE_FOR`] with no automatic restart in
    /// between; stop — inactive or failed for `STABLE_FOR`; mask —
    /// masked (an administrator's unit: disabled); unmask — no longer masked; disable — unit file not enabled;
    /// reset-failed — not failed.
    async fn verify(&self, t: &Target, env: &ActionEnv, until: tokio::time::Instant) -> Verification {
        let (op, manager, unit) = (self.op, &t.manager, t.unit.as_str());
        let conn = match connect(manager, env).await {
            Ok(c) => c,
            Err(e) => return Verification::NotHelped(e.to_string()),
        };
        let mut poll = super::poll::Poll::until(until);
        let mut up = super::poll::Stable::default();
        loop {
            let (ok, last) = match sd::unit_status(&conn, unit).await {
                Err(e) => (false, e.to_string()),
                Ok(st) => {
                    let ok = match op {
                        SystemdOp::Restart | SystemdOp::Start => {
                            up.look((st.active_state == ActiveState::Active).then_some(st.n_restarts))
                        }
                        // Down, and staying down: a stop that raced an
                        // automatic restart must not see the unit come back.
                        SystemdOp::Stop => {
                            up.look(st.active_state.is_down().then_some(st.n_restarts))
                        }
                        // An administrator's unit cannot be masked: the action
                        // disables it instead (see `perform`).
                        SystemdOp::Mask => {
                            st.load_state == LoadState::Masked
                                || unit_file_state(&conn, unit).await.is_ok_and(|s| s == "disabled")
                        }
                        SystemdOp::Unmask => st.load_state != LoadState::Masked,
                        SystemdOp::ResetFailed => st.active_state != ActiveState::Failed,
                        SystemdOp::Disable => match unit_file_state(&conn, unit).await {
                            Ok(s) => !s.starts_with("enabled"),
                            Err(_) => false,
                        },
                    };
                    let mut line = describe(&st);
                    if op == SystemdOp::Disable
                        && let Ok(s) = unit_file_state(&conn, unit).await
                    {
                        line.push_str(&format!(", unit file {s}"));
                    }
                    (ok, line)
                }
            };
            if ok {
                return Verification::Verified;
            }
            if !poll.next(up.due()).await {
                return Verification::NotHelped(format!("{unit} ({manager}): {last}"));
            }
        }
    }
}

/// Stops one unit for shed-load; `Ok` carries a short description.
pub(crate) async fn stop_quietly(manager: &Manager, unit: &str, env: &ActionEnv) -> Result<String, UnitActionError> {
    let conn = connect(manager, env).await?;
    let st = sd::unit_status(&conn, unit).await?;
    if !st.is_installed() {
        return Err(UnitActionError::NotInstalled(manager.clone()));
    }
    if st.active_state.is_down() {
        return Ok(format!("already {}", st.active_state));
    }
    let job = sd::stop_unit(&conn, unit).await?;
    Ok(format!("stop job {} (was {})", job.as_str(), st.active_state))
}

/// `None` when the unit is stopped (inactive, failed or not installed),
/// otherwise its active state.
pub(crate) async fn stopped_state(
    manager: &Manager,
    unit: &str,
    env: &ActionEnv,
) -> Result<Option<ActiveState>, UnitActionError> {
    let conn = connect(manager, env).await?;
    let st = sd::unit_status(&conn, unit).await?;
    Ok((st.is_installed() && !st.active_state.is_down()).then_some(st.active_state))
}

fn user_flag(manager: &Manager) -> String {
    match manager {
        Manager::System => String::new(),
        Manager::User(u) => format!("--user ({u}) "),
    }
}

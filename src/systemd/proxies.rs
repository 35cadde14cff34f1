//! zbus `#[proxy]` bindings for the parts of systemd's D-Bus API that
//! hostmedic reads (collector) and drives (remediation).
//!
//! Hand-written rather than taken from the `zbus_systemd` crate: we need four
//! interfaces and a few dozen members, `zbus_systemd` generates every systemd
//! interface (a large compile for a 2-core CI box) and pins its own zbus
//! major version, which would have to move in lock-step with ours (zbus 6).
//! The signatures below are those of systemd's `org.freedesktop.systemd1(5)`
//! man page and were checked against systemd 252 by the integration tests.
//!
//! Object paths are never built from unit names: they come from `ListUnits`,
//! `GetUnit` or `LoadUnit` (systemd escapes names in a way that is its own
//! business, e.g. `crashy.service` → `/org/freedesktop/systemd1/unit/crashy_2eservice`).
//!
//! Property caching is off on every proxy built by this module's users
//! (`CacheProperties::No`): a cached proxy costs a `GetAll` plus an `AddMatch`
//! at construction, which is exactly the cost the collector avoids.

use serde::Deserialize;
use zbus::{DeserializeDict, OwnedObjectPath, Type, proxy};

/// Well-known bus name of the service manager.
pub const DESTINATION: &str = "org.freedesktop.systemd1";
/// Object path of the manager object.
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
pub const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";
pub const TIMER_INTERFACE: &str = "org.freedesktop.systemd1.Timer";

/// One entry of `ListUnits` / `ListUnitsByNames` (D-Bus `(ssssssouso)`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Type)]
pub struct UnitEntry {
    pub name: String,
    pub description: String,
    pub load_state: super::LoadState,
    pub active_state: super::ActiveState,
    pub sub_state: String,
    /// Unit this one follows in state ("" when none).
    pub following: String,
    pub path: OwnedObjectPath,
    pub job_id: u32,
    pub job_type: String,
    pub job_path: OwnedObjectPath,
}

/// One change reported by the unit-file methods (D-Bus `(sss)`): type
/// (`symlink`, `unlink`, …), file name, destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Type)]
pub struct UnitFileChange {
    pub kind: String,
    pub file: String,
    pub destination: String,
}

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    /// Every unit currently loaded in the manager.
    fn list_units(&self) -> zbus::Result<Vec<UnitEntry>>;

    /// The named units, loading them when needed; a unit with no unit file
    /// comes back with load state `not-found` (systemd ≥ 230).
    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<UnitEntry>>;

    /// Object path of a loaded unit; `org.freedesktop.systemd1.NoSuchUnit` when not loaded.
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Object path of a unit, loading it first; never fails for a valid name
    /// (an absent unit file gives load state `not-found`).
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Queues a start job; `mode` is `replace`, `fail`, `isolate`, … Returns the job path.
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// Clears the failed state and the restart counter (`NRestarts`).
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    /// Returns (carries install info, changes).
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;

    fn disable_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Vec<UnitFileChange>>;

    fn mask_unit_files(&self, files: &[&str], runtime: bool, force: bool) -> zbus::Result<Vec<UnitFileChange>>;

    fn unmask_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Vec<UnitFileChange>>;

    /// `daemon-reload`.
    fn reload(&self) -> zbus::Result<()>;

    /// Asks systemd to emit unit change signals (`PropertiesChanged`) to the
    /// bus; it stops by itself when this connection closes.
    fn subscribe(&self) -> zbus::Result<()>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> zbus::Result<String>;

    /// `initializing`, `starting`, `running`, `degraded`, `maintenance`, `stopping`.
    #[zbus(property(emits_changed_signal = "false"))]
    fn system_state(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Unit {
    #[zbus(property(emits_changed_signal = "false"))]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property(emits_changed_signal = "false"))]
    fn sub_state(&self) -> zbus::Result<String>;
    /// Realtime µs of the last transition into `active` (0: never).
    #[zbus(property(emits_changed_signal = "false"))]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Service {
    /// Automatic restarts since the last start by hand or `reset-failed`.
    #[zbus(property(emits_changed_signal = "false"), name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    /// Exit status (or signal number) of the last main process.
    #[zbus(property(emits_changed_signal = "false"))]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    /// `success`, `exit-code`, `signal`, `timeout`, `start-limit-hit`, …
    #[zbus(property(emits_changed_signal = "false"))]
    fn result(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Timer",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Timer {
    /// The unit this timer triggers.
    #[zbus(property(emits_changed_signal = "false"))]
    fn unit(&self) -> zbus::Result<String>;
    /// Realtime µs of the last trigger (0: never).
    #[zbus(property(emits_changed_signal = "false"), name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> zbus::Result<u64>;
    /// Realtime µs of the next elapse (0 for purely monotonic timers).
    #[zbus(property(emits_changed_signal = "false"), name = "NextElapseUSecRealtime")]
    fn next_elapse_usec_realtime(&self) -> zbus::Result<u64>;
    /// CLOCK_MONOTONIC µs of the next elapse (0 when none).
    #[zbus(property(emits_changed_signal = "false"), name = "NextElapseUSecMonotonic")]
    fn next_elapse_usec_monotonic(&self) -> zbus::Result<u64>;
}

/// The subset of `org.freedesktop.systemd1.Unit` properties hostmedic uses,
/// decoded straight from a `GetAll` reply (other keys are skipped unparsed).
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "PascalCase")]
pub struct UnitProps {
    pub id: Option<String>,
    pub load_state: Option<super::LoadState>,
    pub active_state: Option<super::ActiveState>,
    pub sub_state: Option<String>,
    pub active_enter_timestamp: Option<u64>,
}

/// The subset of `org.freedesktop.systemd1.Service` properties hostmedic uses.
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zbus(signature = "a{sv}")]
pub struct ServiceProps {
    #[zbus(rename = "NRestarts")]
    pub n_restarts: Option<u32>,
    #[zbus(rename = "ExecMainStatus")]
    pub exec_main_status: Option<i32>,
    #[zbus(rename = "ExecMainCode")]
    pub exec_main_code: Option<i32>,
    #[zbus(rename = "Result")]
    pub result: Option<String>,
}

/// The subset of `org.freedesktop.systemd1.Timer` properties hostmedic uses.
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zbus(signature = "a{sv}")]
pub struct TimerProps {
    #[zbus(rename = "Unit")]
    pub unit: Option<String>,
    #[zbus(rename = "LastTriggerUSec")]
    pub last_trigger_usec: Option<u64>,
    #[zbus(rename = "NextElapseUSecRealtime")]
    pub next_elapse_usec_realtime: Option<u64>,
    #[zbus(rename = "NextElapseUSecMonotonic")]
    pub next_elapse_usec_monotonic: Option<u64>,
    #[zbus(rename = "Result")]
    pub result: Option<String>,
}

/// Every property a generic unit type (socket, mount, path, …) may carry
/// that hostmedic reads: they all expose `Result` on their own interface.
#[derive(Debug, Clone, Default, PartialEq, DeserializeDict, Type)]
#[zbus(signature = "a{sv}")]
pub struct ResultProps {
    #[zbus(rename = "Result")]
    pub result: Option<String>,
}

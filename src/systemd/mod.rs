//! Talking to systemd over D-Bus, shared by the `systemd` collector and the
//! remediation actions: where the buses are, connecting (and reconnecting)
//! with every call under a timeout, and small typed helpers
//! ([`unit_status`], [`restart_unit`], [`mask_unit_files`], …) so action code
//! never touches raw D-Bus.
//!
//! Managers:
//! - the system manager, on the system bus: the configured address, else
//!   `$DBUS_SYSTEM_BUS_ADDRESS`, else `unix:path=/run/dbus/system_bus_socket`;
//! - user managers (`systemd --user`), on each user's session bus at
//!   `<user_runtime_dir>/<uid>/bus`, labelled `user:<name>`. A session bus
//!   only admits its owner, so when hostmedic runs as root it connects that
//!   socket from a short-lived thread whose (per-thread) effective uid is the
//!   user's, then authenticates as that uid; the rest of the process keeps
//!   its credentials.
//!
//! Connections are cheap to share (`zbus::Connection` is an `Arc`); [`Bus`]
//! keeps one per manager, hands out clones and drops it after a transport
//! error or a timeout so the next call reconnects.
//!
//! Files: `targets.rs` (where the managers are), `connection.rs`
//! (connecting, as another uid when needed), `bus.rs` (the kept connection
//! and change watch), `proxies.rs` (D-Bus interfaces), this file (errors and
//! the unit helpers the actions use).

pub mod proxies;
pub mod state;

pub use state::{ActiveState, LoadState};

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zbus::Connection;
use zbus::proxy::CacheProperties;

pub use proxies::{ManagerProxy, ServiceProxy, TimerProxy, UnitEntry, UnitFileChange, UnitProxy};

mod bus;
mod connection;
mod targets;
pub use self::bus::*;
pub use self::connection::*;
pub use self::targets::*;

/// Default system bus socket when neither config nor environment name one.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// Default parent of the per-user runtime directories.
pub const DEFAULT_USER_RUNTIME_DIR: &str = "/run/user";

/// What went wrong talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// No bus at the address (socket missing or refusing connections).
    #[error("no D-Bus at {address}: {reason}")]
    NoBus { address: String, reason: String },
    /// The call did not complete within the timeout (a hung bus or manager).
    #[error("{op} timed out after {after:?}")]
    Timeout { op: String, after: Duration },
    /// systemd answered `NoSuchUnit` (for `GetUnit`: not loaded).
    #[error("no such unit: {0}")]
    NoSuchUnit(String),
    /// A user name from the configuration is not in the passwd file.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// zbus' error with its cause chain (an I/O error under it).
    #[error("{op}: {}", crate::error::chain(.source))]
    Dbus {
        op: String,
        #[source]
        source: zbus::Error,
    },
}

impl SystemdError {
    fn dbus(op: &str, source: zbus::Error) -> Self {
        if let zbus::Error::MethodError(name, _, _) = &source
            && name.as_str() == "org.freedesktop.systemd1.NoSuchUnit"
        {
            return SystemdError::NoSuchUnit(op.to_string());
        }
        SystemdError::Dbus {
            op: op.to_string(),
            source,
        }
    }

    /// The D-Bus error name of an error reply (e.g.
    /// `org.freedesktop.systemd1.UnitExists`), for callers that branch on it.
    pub fn dbus_error_name(&self) -> Option<&str> {
        match self {
            SystemdError::NoSuchUnit(_) => Some("org.freedesktop.systemd1.NoSuchUnit"),
            SystemdError::Dbus {
                source: zbus::Error::MethodError(name, _, _),
                ..
            } => Some(name.as_str()),
            _ => None,
        }
    }

    /// True when the bus refused the call because this connection had too
    /// many calls waiting for replies (`LimitsExceeded`: dbus-daemon's
    /// `max_replies_per_connection`, 128 on Debian's system bus).
    pub fn is_limits_exceeded(&self) -> bool {
        match self {
            // zbus maps the bus's own error names to `fdo::Error`.
            SystemdError::Dbus {
                source: zbus::Error::FDO(e),
                ..
            } => matches!(**e, zbus::fdo::Error::LimitsExceeded(_)),
            _ => self.dbus_error_name() == Some("org.freedesktop.DBus.Error.LimitsExceeded"),
        }
    }

    /// True when the error says the connection itself is unusable (as
    /// opposed to a well-formed error reply such as `NoSuchUnit`).
    pub fn is_transport(&self) -> bool {
        match self {
            SystemdError::NoBus { .. } | SystemdError::Timeout { .. } => true,
            SystemdError::NoSuchUnit(_) | SystemdError::UnknownUser(_) => false,
            SystemdError::Dbus { source, .. } => matches!(
                source,
                zbus::Error::InputOutput(_)
                    | zbus::Error::Connection(..)
                    | zbus::Error::Handshake(_)
                    | zbus::Error::Failure(_)
                    | zbus::Error::InvalidReply
            ),
        }
    }
}

pub type Result<T> = std::result::Result<T, SystemdError>;

/// Runs `fut` under `timeout`, naming `op` in the error.
pub async fn timed<T>(
    op: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SystemdError::dbus(op, e)),
        Err(_) => Err(SystemdError::Timeout {
            op: op.to_string(),
            after: timeout,
        }),
    }
}

/// A non-caching manager proxy on `conn`.
pub async fn manager(conn: &Connection) -> Result<ManagerProxy<'static>> {
    ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| SystemdError::dbus("manager proxy", e))
}

/// Method-call timeout used by the helpers below when the connection was not
/// made by [`connect`] (which bounds every call itself).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Object path of `name`: `GetUnit`, falling back to `LoadUnit` for a unit
/// that is not loaded (which then reports load state `not-found` when it has
/// no unit file).
pub async fn unit_path(conn: &Connection, name: &str) -> Result<zbus::OwnedObjectPath> {
    let m = manager(conn).await?;
    match timed("GetUnit", HELPER_TIMEOUT, m.get_unit(name)).await {
        Ok(p) => Ok(p),
        Err(SystemdError::NoSuchUnit(_)) => timed("LoadUnit", HELPER_TIMEOUT, m.load_unit(name)).await,
        Err(e) => Err(e),
    }
}

/// The state of one unit as remediation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    pub name: String,
    pub load_state: LoadState,
    pub active_state: ActiveState,
    pub sub_state: String,
    /// The type-specific `Result` (`success`, `exit-code`, …); `None` for
    /// types without one (targets, slices, devices).
    pub result: Option<String>,
    /// `NRestarts` (services only).
    pub n_restarts: Option<u32>,
    /// `ExecMainStatus`: exit code of the last main process (services only;
    /// `None` while a main process runs that has not exited yet).
    pub exec_main_status: Option<i32>,
    /// `ActiveEnterTimestamp`: when it last became active (Unix µs; `None`
    /// when it never did).
    pub active_enter_timestamp: Option<u64>,
}

impl UnitStatus {
    /// False when systemd has no unit file for it (`not-found`): such a unit
    /// can be neither started nor restarted.
    pub fn is_installed(&self) -> bool {
        self.load_state != LoadState::NotFound
    }
}

/// The type of a unit from its name (`crashy.service` → `service`).
pub fn unit_type(name: &str) -> &str {
    name.rsplit_once('.').map(|(_, t)| t).unwrap_or("")
}

/// D-Bus interface holding the type-specific properties of `unit_type`.
pub fn type_interface(unit_type: &str) -> Option<&'static str> {
    Some(match unit_type {
        "service" => "org.freedesktop.systemd1.Service",
        "timer" => "org.freedesktop.systemd1.Timer",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "automount" => "org.freedesktop.systemd1.Automount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "path" => "org.freedesktop.systemd1.Path",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// `GetAll(interface)` on `path`, decoded into `T` (one round trip).
pub async fn get_all<T>(conn: &Connection, path: &zbus::ObjectPath<'_>, interface: &str) -> Result<T>
where
    T: for<'d> serde::Deserialize<'d> + zbus::Type,
{
    let fut = async {
        let reply = conn
            .call_method(
                Some(proxies::DESTINATION),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &(interface,),
            )
            .await?;
        reply.body().deserialize::<T>()
    };
    timed("GetAll", HELPER_TIMEOUT, fut).await
}

/// Load, active and sub state, result, restart count and last exit status of
/// `name`. A unit without a unit file is reported with load state
/// `not-found`, not as an error.
pub async fn unit_status(conn: &Connection, name: &str) -> Result<UnitStatus> {
    let path = unit_path(conn, name).await?;
    let u: proxies::UnitProps = get_all(conn, &path, proxies::UNIT_INTERFACE).await?;
    let mut st = UnitStatus {
        name: name.to_string(),
        load_state: u.load_state.unwrap_or_default(),
        active_state: u.active_state.unwrap_or_default(),
        sub_state: u.sub_state.unwrap_or_default(),
        result: None,
        n_restarts: None,
        exec_main_status: None,
        active_enter_timestamp: u.active_enter_timestamp.filter(|t| *t > 0),
    };
    if st.load_state == LoadState::NotFound {
        return Ok(st);
    }
    match unit_type(name) {
        "service" => {
            let s: proxies::ServiceProps = get_all(conn, &path, proxies::SERVICE_INTERFACE).await?;
            st.result = s.result;
            st.n_restarts = s.n_restarts;
            // systemd zeroes ExecMainCode/Status when it starts the next main
            // process: code 0 means none has exited since, and the status 0
            // beside it is not an exit status.
            st.exec_main_status = s.exec_main_status.filter(|_| s.exec_main_code.is_some_and(|c| c != 0));
        }
        t => {
            if let Some(iface) = type_interface(t) {
                let r: proxies::ResultProps = get_all(conn, &path, iface).await?;
                st.result = r.result;
            }
        }
    }
    Ok(st)
}

/// Queues a start job (mode `replace`); returns the job's object path.
pub async fn start_unit(conn: &Connection, name: &str) -> Result<zbus::OwnedObjectPath> {
    let m = manager(conn).await?;
    timed("StartUnit", HELPER_TIMEOUT, m.start_unit(name, "replace")).await
}

/// Queues a stop job (mode `replace`); returns the job's object path.
pub async fn stop_unit(conn: &Connection, name: &str) -> Result<zbus::OwnedObjectPath> {
    let m = manager(conn).await?;
    timed("StopUnit", HELPER_TIMEOUT, m.stop_unit(name, "replace")).await
}

/// Queues a restart job (mode `replace`); returns the job's object path.
/// Check [`unit_status`] first: restarting a `not-found` unit fails.
pub async fn restart_unit(conn: &Connection, name: &str) -> Result<zbus::OwnedObjectPath> {
    let m = manager(conn).await?;
    timed("RestartUnit", HELPER_TIMEOUT, m.restart_unit(name, "replace")).await
}

/// `systemctl reset-failed <name>`: clears the failed state and `NRestarts`.
pub async fn reset_failed_unit(conn: &Connection, name: &str) -> Result<()> {
    let m = manager(conn).await?;
    timed("ResetFailedUnit", HELPER_TIMEOUT, m.reset_failed_unit(name)).await
}

/// `systemctl enable` (persistent) of the given unit files; returns the changes.
pub async fn enable_unit_files(conn: &Connection, names: &[&str]) -> Result<Vec<UnitFileChange>> {
    let m = manager(conn).await?;
    let (_, changes) = timed(
        "EnableUnitFiles",
        HELPER_TIMEOUT,
        m.enable_unit_files(names, false, false),
    )
    .await?;
    Ok(changes)
}

/// `systemctl disable` (persistent); returns the changes.
pub async fn disable_unit_files(conn: &Connection, names: &[&str]) -> Result<Vec<UnitFileChange>> {
    let m = manager(conn).await?;
    timed("DisableUnitFiles", HELPER_TIMEOUT, m.disable_unit_files(names, false)).await
}

/// `systemctl mask` (persistent, not forced); returns the changes.
///
/// Like `systemctl mask`, this is refused with
/// `org.freedesktop.systemd1.UnitExists` (see [`SystemdError::dbus_error_name`])
/// for a unit whose file lives in `/etc/systemd/system`: masking would have to
/// replace the administrator's file. Stop and disable such a unit instead.
/// (A runtime mask in /run would not help: /etc/systemd/system outranks it.)
pub async fn mask_unit_files(conn: &Connection, names: &[&str]) -> Result<Vec<UnitFileChange>> {
    let m = manager(conn).await?;
    timed("MaskUnitFiles", HELPER_TIMEOUT, m.mask_unit_files(names, false, false)).await
}

/// The D-Bus error systemd answers a mask of a unit whose file is in
/// `/etc/systemd/system`.
pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";

/// `systemctl unmask` (persistent); returns the changes.
pub async fn unmask_unit_files(conn: &Connection, names: &[&str]) -> Result<Vec<UnitFileChange>> {
    let m = manager(conn).await?;
    timed("UnmaskUnitFiles", HELPER_TIMEOUT, m.unmask_unit_files(names, false)).await
}

/// `systemctl daemon-reload`.
pub async fn reload(conn: &Connection) -> Result<()> {
    let m = manager(conn).await?;
    // A reload of a big unit set can take a while: allow 3× the helper timeout.
    timed("Reload", HELPER_TIMEOUT * 3, m.reload()).await
}

/// Polls [`unit_status`] every 100 ms until `pred` holds or `within` passes;
/// returns the last status seen. For actions that verify their effect.
pub async fn wait_for_status(
    conn: &Connection,
    name: &str,
    within: Duration,
    pred: impl Fn(&UnitStatus) -> bool,
) -> Result<UnitStatus> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let st = unit_status(conn, name).await?;
        if pred(&st) || tokio::time::Instant::now() >= deadline {
            return Ok(st);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::Users;

    #[test]
    fn system_address_prefers_config() {
        assert_eq!(system_bus_address(Some("unix:path=/x")), "unix:path=/x");
    }

    #[test]
    fn unix_path_of_address() {
        assert_eq!(unix_path("unix:path=/run/dbus/s"), Some("/run/dbus/s"));
        assert_eq!(unix_path("unix:guid=1,path=/a"), Some("/a"));
        assert_eq!(unix_path("unix:abstract=x"), None);
        assert_eq!(unix_path("tcp:host=h,port=1"), None);
    }

    #[test]
    fn passwd_and_discovery() {
        let p = Users::parse("root:x:0:0::/root:/bin/sh\nmedic:x:1000:1000::/home/medic:/bin/sh\nbad\n");
        assert_eq!(p.name(1000), Some("medic"));
        assert_eq!(p.uid("root"), Some(0));
        let dir = tempfile::tempdir().unwrap();
        for uid in ["1000", "1001", "junk"] {
            std::fs::create_dir_all(dir.path().join(uid)).unwrap();
        }
        // Only real sockets count.
        let _l1 = std::os::unix::net::UnixListener::bind(dir.path().join("1000/bus")).unwrap();
        let _l2 = std::os::unix::net::UnixListener::bind(dir.path().join("1001/bus")).unwrap();
        std::fs::write(dir.path().join("junk/bus"), "").unwrap();
        let found = discover_user_managers(dir.path(), &p);
        let labels: Vec<_> = found.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["user:medic", "user:1001"]);
        assert_eq!(
            configured_user_manager("medic", dir.path(), &p).unwrap().target,
            Target::UserSocket {
                path: dir.path().join("1000/bus"),
                uid: 1000
            }
        );
        assert!(matches!(
            configured_user_manager("nobody-here", dir.path(), &p),
            Err(SystemdError::UnknownUser(_))
        ));
    }

    #[tokio::test]
    async fn missing_socket_is_no_bus() {
        let t = ManagerTarget::system(Some("unix:path=/nonexistent/hostmedic/bus"));
        let err = connect(&t, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, SystemdError::NoBus { .. }), "{err}");
        assert!(err.is_transport());
    }
}

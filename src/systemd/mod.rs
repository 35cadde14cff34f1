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

pub mod proxies;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zbus::Connection;
use zbus::proxy::CacheProperties;

pub use proxies::{ManagerProxy, ServiceProxy, TimerProxy, UnitEntry, UnitFileChange, UnitProxy};

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
    #[error("{op}: {source}")]
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

/// The system bus address: `configured`, else `$DBUS_SYSTEM_BUS_ADDRESS`,
/// else [`DEFAULT_SYSTEM_BUS`].
pub fn system_bus_address(configured: Option<&str>) -> String {
    if let Some(a) = configured.filter(|a| !a.is_empty()) {
        return a.to_string();
    }
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(a) if !a.is_empty() => a,
        _ => DEFAULT_SYSTEM_BUS.to_string(),
    }
}

/// Where one manager lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A bus address (`unix:path=…`), as for the system bus.
    Address(String),
    /// A user's session bus socket; connected as `uid`.
    UserSocket { path: PathBuf, uid: u32 },
}

/// A manager to talk to: its label (`system` or `user:<name>`) and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerTarget {
    pub label: String,
    pub target: Target,
}

impl ManagerTarget {
    pub fn system(configured_address: Option<&str>) -> Self {
        ManagerTarget {
            label: "system".into(),
            target: Target::Address(system_bus_address(configured_address)),
        }
    }

    /// Human-readable address for errors.
    pub fn address(&self) -> String {
        match &self.target {
            Target::Address(a) => a.clone(),
            Target::UserSocket { path, .. } => format!("unix:path={}", path.display()),
        }
    }
}

/// uid → name (and back) from a passwd-format file.
#[derive(Debug, Clone, Default)]
pub struct Passwd {
    by_uid: BTreeMap<u32, String>,
}

impl Passwd {
    /// Reads `path`; a missing or unreadable file gives an empty table
    /// (users are then labelled by uid).
    pub fn load(path: &Path) -> Passwd {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Passwd::parse(&text)
    }

    pub fn parse(text: &str) -> Passwd {
        let mut by_uid = BTreeMap::new();
        for line in text.lines() {
            let mut f = line.split(':');
            let (Some(name), Some(_pw), Some(uid)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if let Ok(uid) = uid.parse::<u32>() {
                by_uid.entry(uid).or_insert_with(|| name.to_string());
            }
        }
        Passwd { by_uid }
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        self.by_uid.get(&uid).map(String::as_str)
    }

    pub fn uid(&self, name: &str) -> Option<u32> {
        self.by_uid.iter().find(|(_, n)| n.as_str() == name).map(|(u, _)| *u)
    }
}

/// Every `<runtime_dir>/<uid>/bus` socket, labelled `user:<name>` (or
/// `user:<uid>` when the uid is not in `passwd`), sorted by uid.
pub fn discover_user_managers(runtime_dir: &Path, passwd: &Passwd) -> Vec<ManagerTarget> {
    use std::os::unix::fs::FileTypeExt;
    let mut found: Vec<(u32, PathBuf)> = match std::fs::read_dir(runtime_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let uid: u32 = e.file_name().to_str()?.parse().ok()?;
                let bus = e.path().join("bus");
                let meta = std::fs::metadata(&bus).ok()?;
                meta.file_type().is_socket().then_some((uid, bus))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
        .into_iter()
        .map(|(uid, path)| user_target(uid, path, passwd))
        .collect()
}

/// The manager of the configured user `name` (its bus need not exist yet).
pub fn configured_user_manager(name: &str, runtime_dir: &Path, passwd: &Passwd) -> Result<ManagerTarget> {
    let uid = match name.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => passwd
            .uid(name)
            .ok_or_else(|| SystemdError::UnknownUser(name.to_string()))?,
    };
    Ok(user_target(uid, runtime_dir.join(uid.to_string()).join("bus"), passwd))
}

fn user_target(uid: u32, path: PathBuf, passwd: &Passwd) -> ManagerTarget {
    let name = passwd.name(uid).map(str::to_string).unwrap_or_else(|| uid.to_string());
    ManagerTarget {
        label: format!("user:{name}"),
        target: Target::UserSocket { path, uid },
    }
}

/// Connects to `target`; the whole handshake and every later method call on
/// the returned connection are bounded by `timeout`.
pub async fn connect(target: &ManagerTarget, timeout: Duration) -> Result<Connection> {
    let address = target.address();
    let no_bus = |reason: String| SystemdError::NoBus {
        address: address.clone(),
        reason,
    };
    let builder = match &target.target {
        Target::Address(a) => {
            // A missing socket is "no bus", not a failure worth a retry storm.
            if let Some(p) = unix_path(a)
                && !Path::new(p).exists()
            {
                return Err(no_bus("socket does not exist".into()));
            }
            zbus::connection::Builder::address(a.as_str())
        }
        Target::UserSocket { path, uid } => {
            let (path, uid) = (path.clone(), *uid);
            let stream = tokio::task::spawn_blocking(move || connect_as(&path, uid))
                .await
                .map_err(|e| no_bus(e.to_string()))?
                .map_err(|e| no_bus(e.to_string()))?;
            zbus::connection::Builder::unix_stream(stream).user_id(uid)
        }
    };
    let fut = builder.method_timeout(timeout).build();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(zbus::Error::InputOutput(e) | zbus::Error::Connection(e, _)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Err(no_bus(e.to_string()))
        }
        Ok(Err(e)) => Err(SystemdError::dbus(&format!("connect {address}"), e)),
        Err(_) => Err(SystemdError::Timeout {
            op: format!("connect {address}"),
            after: timeout,
        }),
    }
}

/// The socket path of a single `unix:path=` address.
fn unix_path(address: &str) -> Option<&str> {
    if address.contains(';') {
        return None;
    }
    let rest = address.strip_prefix("unix:")?;
    rest.split(',').find_map(|kv| kv.strip_prefix("path="))
}

/// Connects a Unix socket with the effective uid `uid` when we are root and
/// `uid` is someone else (a session bus admits only its owner).
///
/// Runs on its own short-lived thread: Linux credentials are per thread at
/// the system-call level (glibc's `setresuid` would change every thread, so
/// rustix's per-thread call is used), and the thread exits with the changed uid.
/// Path resolution happens as root (through an `O_PATH` directory handle),
/// only `connect(2)` itself runs as the user, so `/proc/<pid>/root/…`
/// paths keep working.
fn connect_as(path: &Path, uid: u32) -> std::io::Result<UnixStream> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 || uid == 0 {
        return UnixStream::connect(path);
    }
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file = path
        .file_name()
        .map(|f| f.to_owned())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no socket name"))?;
    let dirfd = std::fs::File::open(&dir)?;
    use std::os::fd::AsRawFd;
    let via = PathBuf::from(format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(file);
    std::thread::spawn(move || {
        use rustix::process::Uid;
        // setresuid(2) for the calling thread only; the thread ends right
        // after connecting.
        rustix::thread::set_thread_res_uid(None, Some(Uid::from_raw(uid)), None)?;
        let res = UnixStream::connect(&via);
        // Back to root (saved uid) before the thread exits.
        let _ = rustix::thread::set_thread_res_uid(None, Some(Uid::ROOT), None);
        drop(dirfd);
        res
    })
    .join()
    .map_err(|_| std::io::Error::other("connect thread panicked"))?
}

/// Change generations of unit objects, bumped by systemd's
/// `PropertiesChanged` signals (see [`Bus::with_change_watch`]).
#[derive(Debug, Default)]
pub struct Changes {
    gens: std::sync::Mutex<HashMap<String, u64>>,
    /// Exit status of the last main process that exited, per service
    /// object, from the `ExecMainCode`/`ExecMainStatus` the signals carry
    /// (systemd resets both to 0 when it starts the next main process).
    exits: std::sync::Mutex<HashMap<String, i32>>,
    /// Set when the signal stream ended (the connection is gone).
    closed: std::sync::atomic::AtomicBool,
}

impl Changes {
    /// Generation of the object at `path`: a value read at generation `g` is
    /// still current while `generation(path) == g`.
    pub fn generation(&self, path: &str) -> u64 {
        self.gens.lock().expect("gens lock").get(path).copied().unwrap_or(0)
    }

    fn bump(&self, path: &str) {
        *self
            .gens
            .lock()
            .expect("gens lock")
            .entry(path.to_string())
            .or_default() += 1;
    }

    /// Forgets objects for which `keep` is false (units that went away), so
    /// the table does not grow with transient units.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.gens.lock().expect("gens lock").retain(|p, _| keep(p));
        self.exits.lock().expect("exits lock").retain(|p, _| keep(p));
    }

    /// Exit status of the last main process of the service at `path` that
    /// a change signal showed exiting, if any did since the connection.
    pub fn last_exit(&self, path: &str) -> Option<i32> {
        self.exits.lock().expect("exits lock").get(path).copied()
    }

    /// Notes a main process exit from a `PropertiesChanged` signal of the
    /// Service interface (`code` 0: no exit, a main process runs or none ran).
    fn saw_exec_main(&self, path: &str, code: Option<i32>, status: Option<i32>) {
        if let (Some(code), Some(status)) = (code, status)
            && code != 0
        {
            self.exits.lock().expect("exits lock").insert(path.to_string(), status);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A live connection to one manager.
#[derive(Clone)]
pub struct Session {
    pub conn: Connection,
    /// Increases with every (re)connect: anything cached from an older epoch is stale.
    pub epoch: u64,
    /// Unit change tracking, when the bus was built with it.
    pub changes: Option<Arc<Changes>>,
}

struct Live {
    session: Session,
    watcher: Option<tokio::task::AbortHandle>,
}

/// One manager's connection, kept across calls and re-made after it breaks.
pub struct Bus {
    pub target: ManagerTarget,
    timeout: Duration,
    watch: bool,
    live: tokio::sync::Mutex<Option<Live>>,
    epoch: std::sync::atomic::AtomicU64,
    /// Cached `Version` of the manager behind the current connection.
    version: std::sync::Mutex<Option<String>>,
    /// Whether this manager was ever reached (a bus that goes away after
    /// that is a failure, not an absent source).
    ever_connected: std::sync::atomic::AtomicBool,
}

impl Bus {
    pub fn new(target: ManagerTarget, timeout: Duration) -> Self {
        Bus {
            target,
            timeout,
            watch: false,
            live: tokio::sync::Mutex::new(None),
            epoch: std::sync::atomic::AtomicU64::new(0),
            version: std::sync::Mutex::new(None),
            ever_connected: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Also track unit changes on every connection: subscribe to systemd's
    /// unit signals (`Manager.Subscribe` + a match on `PropertiesChanged`
    /// under `/org/freedesktop/systemd1/unit`) and count them per object in
    /// [`Session::changes`], so callers can skip re-reading units that did
    /// not change.
    pub fn with_change_watch(mut self) -> Self {
        self.watch = true;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn ever_connected(&self) -> bool {
        self.ever_connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current session, connecting first when there is none or when the
    /// change watch saw the connection end.
    pub async fn session(&self) -> Result<Session> {
        let mut guard = self.live.lock().await;
        if let Some(l) = guard.as_ref() {
            if !l.session.changes.as_ref().is_some_and(|c| c.is_closed()) {
                return Ok(l.session.clone());
            }
            if let Some(w) = &l.watcher {
                w.abort();
            }
            *guard = None;
        }
        let conn = connect(&self.target, self.timeout).await?;
        let (changes, watcher) = if self.watch {
            let (c, w) = watch_changes(&conn, self.timeout).await?;
            (Some(c), Some(w))
        } else {
            (None, None)
        };
        self.ever_connected.store(true, std::sync::atomic::Ordering::Relaxed);
        *self.version.lock().expect("version lock") = None;
        let epoch = self.epoch.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let session = Session { conn, epoch, changes };
        *guard = Some(Live {
            session: session.clone(),
            watcher,
        });
        Ok(session)
    }

    /// The current connection, connecting first when there is none.
    pub async fn connection(&self) -> Result<Connection> {
        Ok(self.session().await?.conn)
    }

    /// Drops the connection so the next call reconnects.
    pub async fn invalidate(&self) {
        if let Some(l) = self.live.lock().await.take()
            && let Some(w) = l.watcher
        {
            w.abort();
        }
        *self.version.lock().expect("version lock") = None;
    }

    /// Passes `res` through, dropping the connection first when `res` is a
    /// transport error or a timeout.
    pub async fn check<T>(&self, res: Result<T>) -> Result<T> {
        if let Err(e) = &res
            && e.is_transport()
        {
            self.invalidate().await;
        }
        res
    }

    /// A manager proxy on the current connection.
    pub async fn manager(&self) -> Result<ManagerProxy<'static>> {
        let conn = self.connection().await?;
        manager(&conn).await
    }

    /// The manager's `Version`, read once per connection.
    pub async fn version(&self) -> Result<String> {
        if let Some(v) = self.version.lock().expect("version lock").clone() {
            return Ok(v);
        }
        let m = self.manager().await?;
        let v = self.check(timed("Version", self.timeout, m.version()).await).await?;
        *self.version.lock().expect("version lock") = Some(v.clone());
        Ok(v)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Ok(mut g) = self.live.try_lock()
            && let Some(l) = g.take()
            && let Some(w) = l.watcher
        {
            w.abort();
        }
    }
}

/// Subscribes to unit change signals on `conn`; returns the generation
/// table and the task that feeds it.
async fn watch_changes(conn: &Connection, timeout: Duration) -> Result<(Arc<Changes>, tokio::task::AbortHandle)> {
    use futures::StreamExt;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .path_namespace("/org/freedesktop/systemd1/unit")
        .build()
        .map_err(|e| SystemdError::dbus("match rule", e))?;
    let stream = timed(
        "AddMatch",
        timeout,
        zbus::MessageStream::for_match_rule(rule, conn, std::num::NonZeroUsize::new(4096)),
    )
    .await?;
    let m = manager(conn).await?;
    timed("Subscribe", timeout, m.subscribe()).await?;
    let changes = Arc::new(Changes::default());
    let c = changes.clone();
    let task = tokio::spawn(async move {
        let mut stream = stream;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(msg) => {
                    let header = msg.header();
                    let Some(p) = header.path() else { continue };
                    c.bump(p.as_str());
                    // (interface, changed properties, invalidated names)
                    type Body = (String, HashMap<String, zbus::OwnedVariant>, Vec<String>);
                    if let Ok((iface, changed, _)) = msg.body().deserialize::<Body>()
                        && iface == proxies::SERVICE_INTERFACE
                    {
                        let int = |k: &str| changed.get(k).and_then(|v| i32::try_from(v.clone()).ok());
                        c.saw_exec_main(p.as_str(), int("ExecMainCode"), int("ExecMainStatus"));
                    }
                }
                Err(_) => break,
            }
        }
        c.closed.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok((changes, task.abort_handle()))
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
    /// `loaded`, `not-found`, `masked`, `error`, …
    pub load_state: String,
    /// `active`, `inactive`, `failed`, `activating`, `deactivating`, `reloading`.
    pub active_state: String,
    pub sub_state: String,
    /// The type-specific `Result` (`success`, `exit-code`, …); `None` for
    /// types without one (targets, slices, devices).
    pub result: Option<String>,
    /// `NRestarts` (services only).
    pub n_restarts: Option<u32>,
    /// `ExecMainStatus`: exit code of the last main process (services only).
    pub exec_main_status: Option<i32>,
}

impl UnitStatus {
    /// False when systemd has no unit file for it (`not-found`): such a unit
    /// can be neither started nor restarted.
    pub fn is_installed(&self) -> bool {
        self.load_state != "not-found"
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
    };
    if st.load_state == "not-found" {
        return Ok(st);
    }
    match unit_type(name) {
        "service" => {
            let s: proxies::ServiceProps = get_all(conn, &path, proxies::SERVICE_INTERFACE).await?;
            st.result = s.result;
            st.n_restarts = s.n_restarts;
            st.exec_main_status = s.exec_main_status;
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
        let p = Passwd::parse("root:x:0:0::/root:/bin/sh\nmedic:x:1000:1000::/home/medic:/bin/sh\nbad\n");
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

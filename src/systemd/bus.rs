//! [`Bus`]: one manager's connection kept across calls and re-made after it
//! breaks, with the optional unit-change watch ([`Changes`]).

use super::*;

/// Change generations of unit objects, bumped by systemd's
/// `PropertiesChanged` signals (see [`Bus::with_change_watch`]).
#[derive(Debug, Default)]
pub struct Changes {
    pub(super) gens: std::sync::Mutex<HashMap<String, u64>>,
    /// Exit status of the last main process that exited, per service
    /// object, from the `ExecMainCode`/`ExecMainStatus` the signals carry
    /// (systemd resets both to 0 when it starts the next main process).
    pub(super) exits: std::sync::Mutex<HashMap<String, i32>>,
    /// Set when the signal stream ended (the connection is gone).
    pub(super) closed: std::sync::atomic::AtomicBool,
}

impl Changes {
    /// Generation of the object at `path`: a value read at generation `g` is
    /// still current while `generation(path) == g`.
    pub fn generation(&self, path: &str) -> u64 {
        crate::sync::lock(&self.gens).get(path).copied().unwrap_or(0)
    }

    pub(super) fn bump(&self, path: &str) {
        *crate::sync::lock(&self.gens).entry(path.to_string()).or_default() += 1;
    }

    /// Forgets objects for which `keep` is false (units that went away), so
    /// the table does not grow with transient units.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        crate::sync::lock(&self.gens).retain(|p, _| keep(p));
        crate::sync::lock(&self.exits).retain(|p, _| keep(p));
    }

    /// Exit status of the last main process of the service at `path` that
    /// a change signal showed exiting, if any did since the connection.
    pub fn last_exit(&self, path: &str) -> Option<i32> {
        crate::sync::lock(&self.exits).get(path).copied()
    }

    /// Notes a main process exit from a `PropertiesChanged` signal of the
    /// Service interface (`code` 0: no exit, a main process runs or none ran).
    pub(super) fn saw_exec_main(&self, path: &str, code: Option<i32>, status: Option<i32>) {
        if let (Some(code), Some(status)) = (code, status)
            && code != 0
        {
            crate::sync::lock(&self.exits).insert(path.to_string(), status);
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

pub(super) struct Live {
    pub(super) session: Session,
    pub(super) watcher: Option<tokio::task::AbortHandle>,
}

/// One manager's connection, kept across calls and re-made after it breaks.
pub struct Bus {
    pub target: ManagerTarget,
    pub(super) timeout: Duration,
    pub(super) watch: bool,
    pub(super) live: tokio::sync::Mutex<Option<Live>>,
    pub(super) epoch: std::sync::atomic::AtomicU64,
    /// Cached `Version` of the manager behind the current connection.
    pub(super) version: std::sync::Mutex<Option<String>>,
    /// Whether this manager was ever reached (a bus that goes away after
    /// that is a failure, not an absent source).
    pub(super) ever_connected: std::sync::atomic::AtomicBool,
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
        *crate::sync::lock(&self.version) = None;
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
        *crate::sync::lock(&self.version) = None;
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
        if let Some(v) = crate::sync::lock(&self.version).clone() {
            return Ok(v);
        }
        let m = self.manager().await?;
        let v = self.check(timed("Version", self.timeout, m.version()).await).await?;
        *crate::sync::lock(&self.version) = Some(v.clone());
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
pub(super) async fn watch_changes(
    conn: &Connection,
    timeout: Duration,
) -> Result<(Arc<Changes>, tokio::task::AbortHandle)> {
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

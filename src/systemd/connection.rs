//! Connecting to a manager's bus under a timeout, as the bus owner's uid
//! when hostmedic runs as root and the bus is a user's session bus.

use super::*;

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
                .map_err(|e| no_bus(crate::error::chain(&e)))?
                .map_err(|e| no_bus(crate::error::chain(&e)))?;
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
            Err(no_bus(crate::error::chain(&*e)))
        }
        Ok(Err(e)) => Err(SystemdError::dbus(&format!("connect {address}"), e)),
        Err(_) => Err(SystemdError::Timeout {
            op: format!("connect {address}"),
            after: timeout,
        }),
    }
}

/// The socket path of a single `unix:path=` address.
pub(super) fn unix_path(address: &str) -> Option<&str> {
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
pub(super) fn connect_as(path: &Path, uid: u32) -> std::io::Result<UnixStream> {
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

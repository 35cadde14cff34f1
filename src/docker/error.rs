//! [`DockerError`], why talking to the engine failed, and which of its
//! answers are a race with the container's own state changes (worth the
//! same request again). Apart from the connection so the error and its
//! classification, which the actions' retries depend on, read as one.

use std::future::Future;
use std::time::Duration;

use bollard::errors::Error as BollardError;

/// Why talking to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The unix socket does not exist: no engine on this host (or it is stopped
    /// and removed its socket).
    #[error("no Docker engine socket at {0}")]
    SocketAbsent(String),
    /// The host string is not `unix://`, `tcp://` or `http://`.
    #[error("unsupported Docker host {0:?} (use unix://, tcp:// or http://)")]
    BadHost(String),
    /// The engine did not answer within the client's timeout.
    #[error("Docker engine at {host} did not answer {what} within {timeout:?}")]
    Timeout {
        host: String,
        what: String,
        timeout: Duration,
    },
    /// The container does not exist (HTTP 404).
    #[error("container {0} not found")]
    NotFound(String),
    /// A caller passed a value the engine would not accept.
    #[error("{0}")]
    Invalid(String),
    /// Any other engine or transport error, shown with bollard's whole
    /// cause chain (its hyper errors alone say only "client error
    /// (Connect)").
    #[error("Docker engine at {host}, {what}: {}", crate::error::chain(.source))]
    Engine {
        host: String,
        what: String,
        #[source]
        source: BollardError,
    },
}

/// What the engine answers when a container changed state on its own while
/// a request about it was being carried out (a restart loop exits, or is
/// restarted by the engine, between the engine's check and its runtime
/// call). Seen from Docker 20.10's `update`: "Cannot update container …:
/// cannot update a stopped container: unknown" and "… cannot update a
/// deleted process"; 409 conflicts ("… is restarting, wait until the
/// container is running") and a dependent's "cannot join network of a non
/// running container" (or runc's "namespace path: lstat /proc/…/ns/net: no
/// such file or directory") have the same cause.
const RACED_ANSWERS: &[&str] = &[
    // The daemon's wrapper of the runtime's answer to `update`, made after
    // the new configuration was saved (and rolled back on failure): with
    // only the restart policy changed, the runtime's resource update can
    // fail only because the task changed under it ("cannot update a stopped
    // container", "… a deleted process", "task … not found").
    "cannot update container",
    "cannot update a stopped container",
    "cannot update a deleted process",
    "is restarting",
    "is not running",
    "not running",
    "cannot join network of a non running container",
    // A `network_mode: container:` sharer started as its parent exits:
    // runc finds the parent's namespace gone.
    "namespace path: lstat /proc/",
    "no such process",
];

impl DockerError {
    /// True when no engine is there at all (socket missing), as opposed to an
    /// engine that exists but fails.
    pub fn is_absent(&self) -> bool {
        matches!(self, DockerError::SocketAbsent(_))
    }

    /// True for the engine's answers that a state change racing the request
    /// produced ([`RACED_ANSWERS`], any 409 conflict): the same request,
    /// made again once the state is read again, is expected to succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            DockerError::Engine {
                source: BollardError::DockerResponseServerError { status_code, message },
                ..
            } => {
                let m = message.to_ascii_lowercase();
                *status_code == 409 || (*status_code >= 500 && RACED_ANSWERS.iter().any(|r| m.contains(r)))
            }
            _ => false,
        }
    }
}

/// The error for `e`, returned by a request `what` to `host`.
pub(super) fn engine_err(host: &str, what: &str, e: BollardError) -> DockerError {
    match e {
        BollardError::SocketNotFoundError(p) => DockerError::SocketAbsent(p),
        BollardError::DockerResponseServerError { status_code: 404, .. } => DockerError::NotFound(what.to_string()),
        BollardError::RequestTimeoutError => DockerError::Timeout {
            host: host.to_string(),
            what: what.to_string(),
            timeout: Duration::ZERO,
        },
        source => DockerError::Engine {
            host: host.to_string(),
            what: what.to_string(),
            source,
        },
    }
}

/// Runs one engine request under `timeout`, mapping both kinds of failure.
pub(super) async fn deadline<T>(
    host: &str,
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, BollardError>>,
) -> Result<T, DockerError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(BollardError::RequestTimeoutError)) | Err(_) => Err(DockerError::Timeout {
            host: host.to_string(),
            what: what.to_string(),
            timeout,
        }),
        Ok(Err(e)) => Err(engine_err(host, what, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raced_answers_are_transient_and_others_are_not() {
        let answer = |status_code: u16, message: &str| DockerError::Engine {
            host: "unix:///x".into(),
            what: "update flap".into(),
            source: BollardError::DockerResponseServerError {
                status_code,
                message: message.into(),
            },
        };
        // Seen on Debian's docker.io 20.10 while a restart loop ran.
        for m in [
            "Cannot update container 64656e: cannot update a stopped container: unknown",
            "Cannot update container 64656e: cannot update a deleted process: unknown",
            "Cannot update container 64656e: task 64656e not found: not found",
            "Cannot restart container sharer: failed to create shim task: OCI runtime create failed: runc create \
             failed: unable to create new parent process: namespace path: lstat /proc/1012/ns/net: no such file",
        ] {
            assert!(answer(500, m).is_transient(), "{m}");
        }
        assert!(answer(409, "Container flap is restarting, wait until the container is running").is_transient());
        assert!(!answer(500, "Cannot restart container web: permission denied").is_transient());
        assert!(!answer(400, "invalid restart policy").is_transient());
        assert!(!DockerError::NotFound("flap".into()).is_transient());
    }
}

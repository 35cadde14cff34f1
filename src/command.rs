//! Running an external program safely, written once for the command probes
//! and the `exec` action: an argv (no shell), a given environment only,
//! stdin from /dev/null, its own process group, a timeout (or a
//! cancellation) that SIGKILLs the whole group, and stdout/stderr captured
//! up to a bound (the rest is read and dropped so a chatty program never
//! blocks on a full pipe), optionally as another user and group.
//!
//! A leaf: it knows nothing of probes or actions; callers turn an [`Output`]
//! into their own result and wording.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// How long to wait for a killed group's leader to be reaped. SIGKILL cannot
/// be ignored; the bound only covers a process stuck in uninterruptible I/O
/// (`kill_on_drop` and tokio reap it later).
const REAP_AFTER_KILL: Duration = Duration::from_secs(5);

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Command {
    /// `argv[0]` is the program (looked up in the given `PATH` when bare).
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory (`None`: the caller's).
    pub current_dir: Option<PathBuf>,
    /// The program and everything in its group is killed after this.
    pub timeout: Duration,
    /// Bytes of stdout kept; `None`: stdout goes to /dev/null.
    pub stdout_max: Option<usize>,
    /// Bytes of stderr kept.
    pub stderr_max: usize,
    /// After the program ended, how long to wait for the output pipes to
    /// close (a background process it left behind may hold them open).
    pub drain: Duration,
    /// Run as this uid/gid instead of hostmedic's own (`None`: inherit).
    pub run_as: Option<RunAs>,
}

/// The identity a child gets, through `CommandExt::{uid, gid}` (std does
/// the `setgid`/`setuid` between fork and exec; no `unsafe` here).
///
/// Supplementary groups: when `uid` is set and hostmedic is root, std calls
/// `setgroups(0)` first, so the child has **no** supplementary groups, only
/// the primary `gid`. They are cleared rather than set to the user's
/// `/etc/group` memberships because stable std cannot set a list
/// (`CommandExt::groups` is unstable; a `pre_exec` hook would need `unsafe`),
/// and a remediation command should hold exactly the group it was given.
/// With `gid` alone, the uid and its (empty, for a service) supplementary
/// groups stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The first bytes of a stream, and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub kept: Vec<u8>,
    pub total: usize,
}

impl Captured {
    /// True when more arrived than was kept.
    pub fn truncated(&self) -> bool {
        self.total > self.kept.len()
    }
}

/// How the program ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    /// Still running at the timeout: its process group was killed.
    TimedOut,
    /// The cancellation token fired first: its process group was killed.
    Cancelled,
    /// Waiting for it failed.
    WaitFailed(std::io::Error),
}

/// How a program ended, in the one spelling hostmedic uses everywhere:
/// `exit status 0`, `exit status 3`, `killed by signal 9 (SIGKILL)`.
pub fn describe_status(st: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => st.to_string(),
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    pub ended: Ended,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Kills the command's process group when dropped before being disarmed:
/// if the caller gives up (its own timeout cancels the future), nothing the
/// command started is left running.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = kill_group(pgid);
        }
    }
}

/// SIGKILLs process group `pgid` (a child run here is its own group's
/// leader, `process_group(0)`).
pub fn kill_group(pgid: u32) -> nix::Result<()> {
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
}

/// Reads all of `r`, keeping the first `max` bytes.
async fn capture(mut r: impl AsyncRead + Unpin, max: usize) -> Captured {
    let mut out = Captured::default();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.total += n;
                let room = max.saturating_sub(out.kept.len());
                out.kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    out
}

/// Waits at most `within` for a capture task; whatever did not arrive by
/// then is given up (the task is aborted).
async fn collect(task: Option<tokio::task::JoinHandle<Captured>>, within: Duration) -> Captured {
    let Some(task) = task else {
        return Captured::default();
    };
    let abort = task.abort_handle();
    match tokio::time::timeout(within, task).await {
        Ok(Ok(c)) => c,
        _ => {
            abort.abort();
            Captured::default()
        }
    }
}

impl Command {
    /// Runs the command to its end, its timeout or `cancel`. `Err` only when
    /// it could not be started (argv empty, program missing, not executable…).
    pub async fn run(&self, cancel: Option<&CancellationToken>) -> std::io::Result<Output> {
        self.run_observed(cancel, |_| {}).await
    }

    /// [`Command::run`], calling `started` with the child's pid (which is
    /// also its process group id) right after it was spawned, before
    /// waiting for it: a caller can record it while it runs.
    pub async fn run_observed(
        &self,
        cancel: Option<&CancellationToken>,
        started: impl FnOnce(u32),
    ) -> std::io::Result<Output> {
        let Some(program) = self.argv.first() else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&self.argv[1..])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(if self.stdout_max.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        if let Some(RunAs { uid, gid }) = self.run_as {
            if let Some(gid) = gid {
                cmd.gid(gid);
            }
            if let Some(uid) = uid {
                cmd.uid(uid);
            }
        }
        let mut child = cmd.spawn()?;
        let pgid = child.id();
        if let Some(pid) = pgid {
            started(pid);
        }
        let mut guard = GroupGuard(pgid);
        let stdout = match (child.stdout.take(), self.stdout_max) {
            (Some(s), Some(max)) => Some(tokio::spawn(capture(s, max))),
            _ => None,
        };
        let stderr = child.stderr.take().map(|s| tokio::spawn(capture(s, self.stderr_max)));
        let cancelled = async {
            match cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            st = child.wait() => match st {
                Ok(st) => Ended::Exited(st),
                Err(e) => Ended::WaitFailed(e),
            },
            _ = tokio::time::sleep(self.timeout) => Ended::TimedOut,
            _ = cancelled => Ended::Cancelled,
        };
        if matches!(ended, Ended::TimedOut | Ended::Cancelled) {
            if let Some(pgid) = pgid {
                let _ = kill_group(pgid);
            }
            let _ = tokio::time::timeout(REAP_AFTER_KILL, child.wait()).await;
        }
        // Ended (or killed above): background processes a successful command
        // left behind are its own business. No killpg after a normal exit:
        // the leader is reaped, so its pid (the group id) may already belong
        // to someone else.
        guard.0 = None;
        Ok(Output {
            ended,
            stdout: collect(stdout, self.drain).await,
            stderr: collect(stderr, self.drain).await,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_statuses_have_one_spelling() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_status(&ExitStatus::from_raw(0)), "exit status 0");
        assert_eq!(describe_status(&ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(
            describe_status(&ExitStatus::from_raw(9)),
            "killed by signal 9 (SIGKILL)"
        );
    }

    fn sh(script: &str, timeout: Duration) -> Command {
        Command {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            current_dir: None,
            timeout,
            stdout_max: Some(8),
            stderr_max: 4,
            drain: Duration::from_millis(500),
            run_as: None,
        }
    }

    #[tokio::test]
    async fn captures_bounded_output_and_the_exit_status() {
        let out = sh("echo 0123456789; echo oops >&2; exit 3", Duration::from_secs(5))
            .run(None)
            .await
            .unwrap();
        let Ended::Exited(st) = out.ended else {
            panic!("{:?}", out.ended)
        };
        assert_eq!(st.code(), Some(3));
        assert_eq!(out.stdout.kept, b"01234567");
        assert_eq!(out.stdout.total, 11);
        assert!(out.stdout.truncated());
        assert_eq!(out.stderr.kept, b"oops");
    }

    #[tokio::test]
    async fn timeout_and_cancel_kill_the_group() {
        let t0 = std::time::Instant::now();
        let out = sh("sleep 30 & sleep 30", Duration::from_millis(200))
            .run(None)
            .await
            .unwrap();
        assert!(matches!(out.ended, Ended::TimedOut), "{:?}", out.ended);
        assert!(t0.elapsed() < Duration::from_secs(5));
        let token = CancellationToken::new();
        let c = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.cancel();
        });
        let out = sh("sleep 30", Duration::from_secs(30)).run(Some(&token)).await.unwrap();
        assert!(matches!(out.ended, Ended::Cancelled), "{:?}", out.ended);
        let e = sh("", Duration::from_secs(1));
        let missing = Command {
            argv: vec!["/nonexistent/hostmedic-cmd".into()],
            ..e
        };
        assert!(missing.run(None).await.is_err());
    }
}

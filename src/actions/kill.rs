//! The `kill` action: TERM, grace, KILL, only for a process whose command
//! line matches the rule's `allow` pattern and never for a reused PID.
//!
//! Identity: the process is pinned with a pidfd (`pidfd_open`) *before* its
//! start time and command line are read from procfs, and every signal goes
//! through that pidfd (`pidfd_send_signal`). If the PID was reused before
//! the pidfd was opened, the start-time check sees the new process and
//! refuses; once the pidfd is open, a signal can only reach the process it
//! was opened for (after that process exits the kernel answers ESRCH). The
//! start time is still re-read immediately before each signal.
//!
//! Start time comes from the procfs leaf's
//! [`procfs::start_time_seconds`] (`btime + starttime / CLK_TCK`, Unix
//! seconds), compared with [`START_TIME_TOLERANCE`] because the kernel's
//! `btime` can move by a second.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use serde::{Deserialize, Serialize};

use super::target;
use super::template::{check_literal, render_field};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};
use crate::procfs::{self, ProcError};

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

/// A kill action's process: key `pid:<pid>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub pid: i32,
    /// The start time the alert names (Unix seconds), if any.
    pub start_time: Option<f64>,
    /// The start time of the process the run found on the PID.
    pub pinned: Pinned,
}

/// The start time (Unix seconds) of the process a run found on the PID,
/// shared by the clones of one resolved action: verification judges that
/// process, so a new process on the reused PID (a loop that forks and exits
/// reuses PIDs fast) is never taken for the one that was to go.
#[derive(Debug, Clone, Default)]
pub struct Pinned(std::sync::Arc<std::sync::OnceLock<f64>>);

impl Pinned {
    fn set(&self, start_time: f64) {
        let _ = self.0.set(start_time);
    }

    fn get(&self) -> Option<f64> {
        self.0.get().copied()
    }
}

/// Two resolved kills are the same action whatever their runs found.
impl PartialEq for Pinned {
    fn eq(&self, _: &Pinned) -> bool {
        true
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid:{}", self.pid)
    }
}

/// Largest accepted difference between an expected and a real start time
/// (the procfs leaf's one tolerance).
pub const START_TIME_TOLERANCE: f64 = procfs::START_TIME_TOLERANCE_SECONDS;

/// How long to wait for the process to disappear after KILL.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// What procfs says about a process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcInfo {
    pub state: char,
    /// Unix seconds (`btime + starttime / CLK_TCK`).
    pub start_time: f64,
    /// Arguments joined by spaces (`[comm]` for kernel threads).
    pub cmdline: String,
}

/// Reads a process's state, start time and command line. State and command
/// name come from the procfs leaf's
/// [`procfs::read_stat`], the start time from its
/// [`procfs::start_time_seconds`] (the one derivation of the value the
/// `hostmedic_process_top_start_time_seconds` metric exports).
pub fn proc_info(procfs: &Path, pid: i32) -> Result<ProcInfo, ProcError> {
    let stat = procfs::read_stat(procfs, pid)?;
    let start_time = procfs::start_time_seconds(procfs, pid)?;
    let (state, comm) = (stat.state, stat.comm);
    let mut cmdline = procfs::read_cmdline(procfs, pid);
    if cmdline.is_empty() {
        cmdline = format!("[{comm}]");
    }
    Ok(ProcInfo {
        state,
        start_time,
        cmdline,
    })
}

/// A command line as the action's messages (journal, notifications, logs)
/// show it: redacted, then cut to 200 characters.
fn shown(cmdline: &str) -> String {
    super::truncate(crate::redact::defaults().redact(cmdline), 200)
}

fn is_gone(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Why the process on a PID is not (or can no longer be shown to be) the
/// one the kill identified.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// Another process has the PID now.
    #[error("pid {pid} now has start time {now:.2} instead of {pinned:.2} (PID reused)")]
    Reused { pid: i32, now: f64, pinned: f64 },
    /// Its procfs entry could not be read (most often: it exited).
    #[error("pid {pid}: {source}")]
    Unreadable {
        pid: i32,
        #[source]
        source: ProcError,
    },
    /// The blocking-pool task reading procfs did not complete.
    #[error("reading pid {pid}: {source}")]
    Task {
        pid: i32,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// [`proc_info`] on the blocking pool (procfs reads are file I/O, kept off
/// the runtime's threads); `Err` carries the PID.
async fn read_proc_info(procfs: &Path, pid: i32) -> Result<ProcInfo, KillError> {
    let procfs = procfs.to_path_buf();
    tokio::task::spawn_blocking(move || proc_info(&procfs, pid))
        .await
        .map_err(|source| KillError::Task { pid, source })?
        .map_err(|source| KillError::Unreadable { pid, source })
}

/// Re-reads the process and checks it is still the one pinned: same start
/// time and still alive. `Err` carries the reason.
async fn recheck(procfs: &Path, pid: i32, start_time: f64) -> Result<(), KillError> {
    let info = read_proc_info(procfs, pid).await?;
    if (info.start_time - start_time).abs() > START_TIME_TOLERANCE {
        return Err(KillError::Reused {
            pid,
            now: info.start_time,
            pinned: start_time,
        });
    }
    Ok(())
}

/// How often [`wait_exit`] looks at the pidfd.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// True once the pidfd reports the process exited (a pidfd becomes, and
/// stays, readable then). A zero-timeout `poll(2)`: never blocks.
fn has_exited(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0) && !fds[0].revents().is_empty()
}

/// Waits until the pidfd reports the process exited, or `within` passes.
/// Looked at every [`EXIT_POLL`] (safe code only, unlike registering the
/// pidfd with the reactor, which tokio marks `unsafe`).
async fn wait_exit(fd: &OwnedFd, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        while !has_exited(fd) {
            tokio::time::sleep(EXIT_POLL).await;
        }
    })
    .await
    .is_ok()
}

impl Action for KillAction {
    const TYPE: &'static str = "kill";
    type Target = Target;

    fn suggested_timeout(&self) -> Duration {
        self.grace + Duration::from_secs(10)
    }

    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
        check_literal(&format!("{key}.pid"), &self.pid, target::validate_pid)?;
        if self.allow.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{key}.allow"), "must not be empty"));
        }
        crate::error::compile_regex(&format!("{key}.allow"), &self.allow)?;
        if let Some(st) = &self.start_time {
            check_literal(&format!("{key}.start_time"), st, target::parse_start_time)?;
        }
        if self.grace > Duration::from_secs(3600) {
            return Err(ConfigError::invalid(format!("{key}.grace"), "must be at most 1h"));
        }
        Ok(())
    }

    fn resolve(&self, alert: &Alert) -> Result<Target, ActionError> {
        let pid = target::validate_pid(&render_field("pid", &self.pid, alert)?)?;
        let start_time = match &self.start_time {
            Some(t) => Some(target::parse_start_time(&render_field("start_time", t, alert)?)?),
            None => None,
        };
        Ok(Target {
            pid,
            start_time,
            pinned: Pinned::default(),
        })
    }

    fn subjects(&self, t: &Target) -> Vec<Subject> {
        vec![Subject::Process(t.pid)]
    }

    // long because: one refusal or signal per step of the TERM, grace, KILL sequence, in order.
    async fn run(&self, t: &Target, _: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let (a, pid, expected_start) = (self, t.pid, t.start_time);
        let refuse = |d: String| Outcome::new(OutcomeResult::Refused, d, started);
        let gone = |d: String| {
            let what = if env.dry_run {
                "would signal nothing"
            } else {
                "nothing to signal"
            };
            let result = if env.dry_run {
                OutcomeResult::DryRun
            } else {
                OutcomeResult::Ok
            };
            Outcome::new(result, format!("kill: {d} before it was signalled: {what}"), started)
        };
        let allow = match regex::Regex::new(&a.allow) {
            Ok(r) => r,
            Err(e) => return refuse(format!("kill: invalid allow pattern: {e}")),
        };
        if pid <= 1 || pid as u32 == std::process::id() {
            return refuse(format!("kill: refusing to signal pid {pid}"));
        }
        // Pin the process first, then identify it.
        let pidfd = match Pid::from_raw(pid).map(|p| pidfd_open(p, PidfdFlags::empty())) {
            Some(Ok(fd)) => fd,
            // The process the alert named is gone: what the kill is for.
            Some(Err(rustix::io::Errno::SRCH)) => return gone(format!("no process with pid {pid}")),
            Some(Err(e)) => {
                return Outcome::new(OutcomeResult::Failed, format!("kill: pidfd_open({pid}): {e}"), started);
            }
            None => return refuse(format!("kill: invalid pid {pid}")),
        };
        let procfs = env.procfs_root.clone();
        let info = match read_proc_info(&procfs, pid).await {
            Ok(i) => i,
            // Exited between pidfd_open and the read: the pidfd says so.
            Err(_) if has_exited(&pidfd) => return gone(format!("pid {pid} exited")),
            Err(KillError::Unreadable { source, .. }) => {
                return refuse(format!("kill: cannot read pid {pid}: {source}"));
            }
            Err(e) => return refuse(format!("kill: {e}")),
        };
        if is_gone(info.state) {
            return gone(format!("pid {pid} has exited"));
        }
        if let Some(exp) = expected_start
            && (info.start_time - exp).abs() > START_TIME_TOLERANCE
        {
            return refuse(format!(
                "kill: pid {pid} started at {:.2}, the alert names a process started at {exp:.2}: PID reused, not signalled",
                info.start_time
            ));
        }
        if !allow.is_match(&info.cmdline) {
            return refuse(format!(
                "kill: pid {pid} command line {:?} does not match allow pattern {:?}",
                shown(&info.cmdline),
                a.allow
            ));
        }
        t.pinned.set(info.start_time);
        let who = format!("pid {pid} ({})", shown(&info.cmdline));
        if env.dry_run {
            return Outcome::new(
                OutcomeResult::DryRun,
                format!(
                    "would send TERM to {who}, then KILL after {}",
                    humantime::format_duration(a.grace)
                ),
                started,
            );
        }
        if let Err(why) = recheck(&procfs, pid, info.start_time).await {
            // Exited since it was identified: the pidfd says so.
            if has_exited(&pidfd) {
                return gone(format!("pid {pid} exited"));
            }
            return refuse(format!("kill: {why}; not signalled"));
        }
        match pidfd_send_signal(&pidfd, Signal::TERM) {
            Ok(()) => {}
            Err(rustix::io::Errno::SRCH) => {
                return Outcome::new(OutcomeResult::Ok, format!("{who} exited before TERM"), started);
            }
            Err(e) => return Outcome::new(OutcomeResult::Failed, format!("kill: TERM to {who}: {e}"), started),
        }
        let t0 = Instant::now();
        if wait_exit(&pidfd, a.grace).await {
            return Outcome::new(
                OutcomeResult::Ok,
                format!("TERM sent to {who}; exited after {:.2} s", t0.elapsed().as_secs_f64()),
                started,
            );
        }
        if let Err(why) = recheck(&procfs, pid, info.start_time).await {
            return Outcome::new(
                OutcomeResult::Ok,
                format!("TERM sent to {who}; {why}; KILL not sent"),
                started,
            );
        }
        match pidfd_send_signal(&pidfd, Signal::KILL) {
            Ok(()) => {}
            Err(rustix::io::Errno::SRCH) => {
                return Outcome::new(
                    OutcomeResult::Ok,
                    format!("TERM sent to {who}; exited at the deadline"),
                    started,
                );
            }
            Err(e) => return Outcome::new(OutcomeResult::Failed, format!("kill: KILL to {who}: {e}"), started),
        }
        if wait_exit(&pidfd, AFTER_KILL).await {
            Outcome::new(
                OutcomeResult::Ok,
                format!(
                    "TERM sent to {who}; still running after {}; KILL sent; exited",
                    humantime::format_duration(a.grace)
                ),
                started,
            )
        } else {
            Outcome::new(
                OutcomeResult::Failed,
                format!(
                    "TERM and KILL sent to {who}; still present after {} s",
                    AFTER_KILL.as_secs()
                ),
                started,
            )
        }
    }

    /// Verified when the process is gone (no such PID, a zombie, or a different
    /// process on the PID than the one the run found, or `start_time` names).
    async fn verify(&self, t: &Target, env: &ActionEnv, until: tokio::time::Instant) -> Verification {
        let (pid, start_time) = (t.pid, t.pinned.get().or(t.start_time));
        let mut poll = super::poll::Poll::until(until);
        loop {
            let last = match read_proc_info(&env.procfs_root, pid).await {
                // Unreadable: gone (a failed read task proves nothing).
                Err(KillError::Unreadable { .. }) => return Verification::Verified,
                Err(e) => return Verification::NotHelped(e.to_string()),
                Ok(i) if is_gone(i.state) => return Verification::Verified,
                Ok(i) if start_time.is_some_and(|s| (i.start_time - s).abs() > START_TIME_TOLERANCE) => {
                    return Verification::Verified;
                }
                Ok(i) => i,
            };
            if !poll.next(None).await {
                return Verification::NotHelped(format!("pid {pid} ({}) is still running", shown(&last.cmdline)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_info() {
        let me = proc_info(Path::new("/proc"), std::process::id() as i32).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            me.start_time <= now + START_TIME_TOLERANCE && me.start_time > now - 3600.0,
            "{me:?}"
        );
        assert!(!me.cmdline.is_empty());
        assert!(!is_gone(me.state));
    }

    #[test]
    fn messages_show_the_command_line_redacted() {
        let s = shown("worker --password=hunter2 --queue high");
        assert_eq!(s, "worker --password=[REDACTED] --queue high");
    }
}

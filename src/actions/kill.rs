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

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use tokio::io::unix::AsyncFd;

use super::{ActionEnv, KillAction, Outcome, OutcomeResult, Verification};
use crate::procfs::{self, ProcError};

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

fn is_gone(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Re-reads the process and checks it is still the one pinned: same start
/// time and still alive. `Err` carries the reason.
fn recheck(procfs: &Path, pid: i32, start_time: f64) -> Result<(), String> {
    match proc_info(procfs, pid) {
        Ok(info) if (info.start_time - start_time).abs() > START_TIME_TOLERANCE => Err(format!(
            "pid {pid} now has start time {:.2} instead of {start_time:.2} (PID reused)",
            info.start_time
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("pid {pid}: {e}")),
    }
}

/// Waits until the pidfd reports the process exited, or `within` passes.
async fn wait_exit(fd: &AsyncFd<OwnedFd>, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match fd.readable().await {
                Ok(mut g) => {
                    // A pidfd stays readable once the process has exited.
                    g.retain_ready();
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .is_ok()
}

pub(crate) async fn run(
    a: &KillAction,
    pid: i32,
    expected_start: Option<f64>,
    env: &ActionEnv,
    started: Instant,
) -> Outcome {
    let refuse = |d: String| Outcome::new(OutcomeResult::Refused, d, started);
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
        Some(Err(rustix::io::Errno::SRCH)) => return refuse(format!("kill: no process with pid {pid}")),
        Some(Err(e)) => return Outcome::new(OutcomeResult::Failed, format!("kill: pidfd_open({pid}): {e}"), started),
        None => return refuse(format!("kill: invalid pid {pid}")),
    };
    let procfs = env.procfs_root.clone();
    let info = match proc_info(&procfs, pid) {
        Ok(i) => i,
        Err(e) => return refuse(format!("kill: cannot read pid {pid}: {e}")),
    };
    if is_gone(info.state) {
        return refuse(format!("kill: pid {pid} has already exited"));
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
            super::truncate(info.cmdline.clone(), 200),
            a.allow
        ));
    }
    let who = format!("pid {pid} ({})", super::truncate(info.cmdline.clone(), 200));
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
    let raw = pidfd.as_raw_fd();
    // SAFETY: `pidfd` is an OwnedFd moved into the AsyncFd, so it stays
    // open and refers to the same file description for the AsyncFd's life.
    let afd = match unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) } {
        Ok(f) => f,
        Err(e) => {
            return Outcome::new(
                OutcomeResult::Failed,
                format!("kill: polling pidfd {raw}: {e}"),
                started,
            );
        }
    };
    if let Err(why) = recheck(&procfs, pid, info.start_time) {
        return refuse(format!("kill: {why}; not signalled"));
    }
    match pidfd_send_signal(afd.get_ref(), Signal::TERM) {
        Ok(()) => {}
        Err(rustix::io::Errno::SRCH) => {
            return Outcome::new(OutcomeResult::Ok, format!("{who} exited before TERM"), started);
        }
        Err(e) => return Outcome::new(OutcomeResult::Failed, format!("kill: TERM to {who}: {e}"), started),
    }
    let t0 = Instant::now();
    if wait_exit(&afd, a.grace).await {
        return Outcome::new(
            OutcomeResult::Ok,
            format!("TERM sent to {who}; exited after {:.2} s", t0.elapsed().as_secs_f64()),
            started,
        );
    }
    if let Err(why) = recheck(&procfs, pid, info.start_time) {
        return Outcome::new(
            OutcomeResult::Ok,
            format!("TERM sent to {who}; {why}; KILL not sent"),
            started,
        );
    }
    match pidfd_send_signal(afd.get_ref(), Signal::KILL) {
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
    if wait_exit(&afd, AFTER_KILL).await {
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
/// process on the PID than `start_time` names).
pub(crate) async fn verify(
    pid: i32,
    start_time: Option<f64>,
    env: &ActionEnv,
    until: tokio::time::Instant,
) -> Verification {
    loop {
        let last = match proc_info(&env.procfs_root, pid) {
            Err(_) => return Verification::Verified,
            Ok(i) if is_gone(i.state) => return Verification::Verified,
            Ok(i) if start_time.is_some_and(|s| (i.start_time - s).abs() > START_TIME_TOLERANCE) => {
                return Verification::Verified;
            }
            Ok(i) => i,
        };
        if tokio::time::Instant::now() >= until {
            return Verification::NotHelped(format!(
                "pid {pid} ({}) is still running",
                super::truncate(last.cmdline, 200)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
}

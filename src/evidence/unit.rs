//! Evidence about a systemd unit (system or user manager): its state,
//! `Result`, `ExecMainStatus`, `NRestarts` and `ActiveEnterTimestamp` over
//! the bus ([`crate::systemd`]), and its last journal lines.
//!
//! The journal is read by running `journalctl` as an argv through
//! [`crate::command`] (no shell, own process group, timeout, bounded
//! output): the program knows every journal file format and compression
//! systemd writes, where a crate reading the files would have to follow
//! them (the maintained `systemd` crate binds libsystemd, which a static
//! build does not have). Its source is configurable like every root:
//! `journal_root` (`--root`: the files under that root's `/var/log/journal`
//! and `/run/log/journal`) or `journal_directory` (`--directory`).
//!
//! A system unit is matched with `-u UNIT` (its processes' output and what
//! PID 1 says about it). A user unit is matched by fields, because
//! `journalctl --user-unit` adds the *caller's* uid to its match:
//! `_SYSTEMD_USER_UNIT=UNIT _UID=<uid>` (its processes) or
//! `USER_UNIT=UNIT _UID=<uid>` (its user manager about it).

use std::path::PathBuf;
use std::time::Duration;

use super::{Capture, Item};
use crate::actions::systemd::UnitActionError;
use crate::actions::{ActionEnv, Manager};
use crate::command::{Command, Ended};
use crate::systemd::{self as sd};
use crate::users::Users;

/// Most bytes of `journalctl` output read (the lines asked for, however long).
const OUTPUT_MAX: usize = 256 * 1024;

pub async fn capture(cap: &Capture, env: &ActionEnv, manager: &Manager, unit: &str) -> Item {
    let mut item = Item::new(format!("systemd:{manager}:{unit}"), "unit");
    let (state, journal) = tokio::join!(state(env, manager, unit), journal(cap, env, manager, unit));
    match state {
        Ok(st) => {
            item.fact("LoadState", &st.load_state);
            item.fact("ActiveState", format!("{} ({})", st.active_state, st.sub_state));
            if let Some(r) = &st.result {
                item.fact("Result", r);
            }
            if let Some(c) = st.exec_main_status {
                item.fact("ExecMainStatus", c);
            }
            if let Some(n) = st.n_restarts {
                item.fact("NRestarts", n);
            }
            if let Some(t) = st.active_enter_timestamp {
                item.fact("ActiveEnterTimestamp", crate::time::rfc3339_seconds(t as f64 / 1e6));
            }
        }
        Err(e) => item.errors.push(format!("unit state: {e}")),
    }
    match journal {
        Ok(lines) => item.section("journal", lines, true),
        Err(e) => item.errors.push(format!("journal: {e}")),
    }
    item.look_further = look_further(manager, unit);
    item
}

/// Why a unit's journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A user unit's user is not in the passwd file (its uid is the match).
    #[error("user {0} is not in the passwd file")]
    UnknownUser(String),
    /// `journalctl` could not be started.
    #[error("{}: {source}", .program.display())]
    Start {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `journalctl` failed (`status` as [`crate::command::describe_status`]
    /// spells it) and said `stderr`.
    #[error("journalctl {status}: {stderr}")]
    Failed { status: String, stderr: String },
    #[error("journalctl timed out")]
    TimedOut,
    #[error("journalctl cancelled")]
    Cancelled,
    #[error("journalctl: {0}")]
    Wait(#[source] std::io::Error),
}

async fn state(env: &ActionEnv, manager: &Manager, unit: &str) -> Result<sd::UnitStatus, UnitActionError> {
    let conn = crate::actions::systemd::connect(manager, env).await?;
    Ok(sd::unit_status(&conn, unit).await?)
}

/// The `journalctl` arguments after the program: source, match, count,
/// format.
pub fn journal_args(cap: &Capture, users: &Users, manager: &Manager, unit: &str) -> Result<Vec<String>, JournalError> {
    let mut argv = cap.journal_source.clone();
    match manager {
        Manager::System => argv.extend(["-u".to_string(), unit.to_string()]),
        Manager::User(name) => {
            let uid = match name.parse::<u32>() {
                Ok(uid) => uid,
                Err(_) => users.uid(name).ok_or_else(|| JournalError::UnknownUser(name.clone()))?,
            };
            argv.extend([
                format!("_SYSTEMD_USER_UNIT={unit}"),
                format!("_UID={uid}"),
                "+".to_string(),
                format!("USER_UNIT={unit}"),
                format!("_UID={uid}"),
            ]);
        }
    }
    argv.extend(
        [
            "-n",
            &cap.lines.to_string(),
            "-o",
            "short-iso",
            "--no-pager",
            "--quiet",
            "--no-hostname",
        ]
        .map(str::to_string),
    );
    Ok(argv)
}

async fn journal(cap: &Capture, env: &ActionEnv, manager: &Manager, unit: &str) -> Result<Vec<String>, JournalError> {
    let mut argv = vec![cap.journalctl.display().to_string()];
    let users = Users::read(&env.passwd_file).await;
    argv.extend(journal_args(cap, &users, manager, unit)?);
    let cmd = Command {
        argv,
        env: vec![("PATH".into(), crate::actions::exec::EXEC_PATH.into())],
        current_dir: Some("/".into()),
        timeout: cap.timeout,
        stdout_max: Some(OUTPUT_MAX),
        stderr_max: 1024,
        drain: Duration::from_millis(500),
        run_as: None,
    };
    let out = cmd.run(None).await.map_err(|source| JournalError::Start {
        program: cap.journalctl.clone(),
        source,
    })?;
    match out.ended {
        Ended::Exited(st) if st.success() => {}
        Ended::Exited(st) => {
            return Err(JournalError::Failed {
                status: crate::command::describe_status(&st),
                stderr: String::from_utf8_lossy(&out.stderr.kept).trim().to_string(),
            });
        }
        Ended::TimedOut => return Err(JournalError::TimedOut),
        Ended::Cancelled => return Err(JournalError::Cancelled),
        Ended::WaitFailed(e) => return Err(JournalError::Wait(e)),
    }
    Ok(String::from_utf8_lossy(&out.stdout.kept)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("-- "))
        .map(str::to_string)
        .collect())
}

/// The command an operator runs next (as the unit's user for a user unit).
pub fn look_further(manager: &Manager, unit: &str) -> String {
    match manager {
        Manager::System => format!("journalctl -u {unit} -n 50; systemctl status {unit}"),
        Manager::User(u) => format!("journalctl --user -u {unit} -n 50 (as {u}); systemctl --user status {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_argv_for_system_and_user_units() {
        let cap = super::super::EvidenceConfig {
            journal_root: "/proc/7/root".into(),
            lines: 5,
            ..Default::default()
        }
        .compile("e")
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "medic:x:1000:1000::/home/medic:/bin/sh\n").unwrap();
        let env = Users::load(&passwd);
        let sys = journal_args(&cap, &env, &Manager::System, "worker.service").unwrap();
        assert_eq!(
            sys.join(" "),
            "--root=/proc/7/root -u worker.service -n 5 -o short-iso --no-pager --quiet --no-hostname"
        );
        let user = journal_args(&cap, &env, &Manager::User("medic".into()), "bot.service").unwrap();
        assert_eq!(
            user[1..6].join(" "),
            "_SYSTEMD_USER_UNIT=bot.service _UID=1000 + USER_UNIT=bot.service _UID=1000"
        );
        let e = journal_args(&cap, &env, &Manager::User("nobody2".into()), "bot.service").unwrap_err();
        assert_eq!(e.to_string(), "user nobody2 is not in the passwd file");
    }
}

//! What an action sees: the [`Alert`] (mapped from Alertmanager's payload by
//! the receiver) and the [`ActionEnv`] (buses, engine, procfs, channels,
//! dry-run) it acts in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::notify::{self, NotifyChannel};

/// What an action sees of an alert (the receiver maps Alertmanager's payload
/// into it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alertname: String,
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub fingerprint: String,
    /// Alertmanager's `startsAt`, as received.
    pub starts_at: String,
}

/// Whether Alertmanager says the alert fires or has resolved (spelled
/// `firing` / `resolved` in the journal, templates and `exec`'s environment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    #[default]
    Firing,
    Resolved,
    /// The alert pipeline's heartbeat, told as an alert: no heartbeat came
    /// in time (never an Alertmanager status; no rule sees it).
    Silent,
    /// The heartbeat came back after `Silent`.
    Back,
}

impl AlertStatus {
    /// The one spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Silent => "silent",
            AlertStatus::Back => "back",
        }
    }
}

crate::spelled!(AlertStatus);

/// Everything needed to act.
#[derive(Debug, Clone)]
pub struct ActionEnv {
    /// D-Bus address of the system manager (`None`:
    /// `$DBUS_SYSTEM_BUS_ADDRESS`, else `unix:path=/run/dbus/system_bus_socket`).
    pub system_bus: Option<String>,
    /// Parent of the per-user runtime dirs: the user manager of `user:<name>`
    /// is reached at `<user_runtime_dir>/<uid>/bus`.
    pub user_runtime_dir: PathBuf,
    /// passwd file mapping user names to uids (for `user:<name>`).
    pub passwd_file: PathBuf,
    /// Deadline of each D-Bus call.
    pub systemd_timeout: Duration,
    /// Docker endpoint (`unix:///…` or `tcp://…`; `None`: default socket).
    pub docker_host: Option<String>,
    /// Deadline of each Docker engine request.
    pub docker_timeout: Duration,
    /// `[notify.<name>]` channels.
    pub notify: BTreeMap<String, NotifyChannel>,
    /// The HTTP client notifications go through (shared by clones).
    pub notify_client: notify::Client,
    /// passwd and group files for `exec` actions' `user` / `group`.
    pub exec_accounts: super::exec::Accounts,
    /// Root of procfs (for `kill`).
    pub procfs_root: PathBuf,
    /// Report what would run, change nothing.
    pub dry_run: bool,
    /// The incident's evidence as text (set by the receiver per run):
    /// `notify` actions append it to their message within the channel's
    /// limit. Empty outside a remediation.
    pub evidence: String,
    /// Where actions report the processes they start (`None`: nobody asks).
    pub spawned: Option<SpawnSink>,
}

/// Where hostmedic reads its own children: the `/proc` of its own pid
/// namespace (like `process_*` self metrics), whatever `procfs_root` says.
pub const OWN_PROCFS: &str = "/proc";

/// A process an action started, as it started: the leader of its own
/// process group, with its start time so a later reader can tell it from a
/// newer process that reuses the pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    pub pid: u32,
    pub pgid: u32,
    /// Its session (inherited from hostmedic).
    pub sid: u32,
    /// Clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
}

/// The sending side of the channel on which an action reports each process
/// it starts (the receiver journals them: a restart after a crash looks for
/// survivors).
#[derive(Debug, Clone)]
pub struct SpawnSink(tokio::sync::mpsc::UnboundedSender<Spawned>);

impl SpawnSink {
    /// A sink and the receiver of what is sent to it.
    pub fn channel() -> (SpawnSink, tokio::sync::mpsc::UnboundedReceiver<Spawned>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (SpawnSink(tx), rx)
    }

    /// Reports `pid`, reading its process group, session and start time
    /// now (while it is still our unreaped child, the pid cannot have been
    /// reused). Read from this process's own `/proc`, not `procfs_root`:
    /// the pid is one of our children, in our pid namespace, even when
    /// `procfs_root` is a host's procfs mounted into a container. Nothing is
    /// sent when procfs cannot tell.
    pub fn report(&self, pid: u32) {
        match crate::procfs::read_stat(std::path::Path::new(OWN_PROCFS), pid as i32) {
            Ok(st) => {
                let _ = self.0.send(Spawned {
                    pid,
                    pgid: st.pgrp as u32,
                    sid: st.session as u32,
                    start_ticks: st.start_ticks,
                });
            }
            Err(e) => {
                tracing::warn!(pid, error = %e, "cannot read a started process's start time; it is not journaled")
            }
        }
    }
}

impl Default for ActionEnv {
    fn default() -> Self {
        ActionEnv {
            system_bus: None,
            user_runtime_dir: PathBuf::from("/run/user"),
            passwd_file: PathBuf::from("/etc/passwd"),
            systemd_timeout: Duration::from_secs(10),
            docker_host: None,
            docker_timeout: Duration::from_secs(10),
            notify: BTreeMap::new(),
            notify_client: notify::Client::default(),
            exec_accounts: super::exec::Accounts::default(),
            procfs_root: PathBuf::from("/proc"),
            dry_run: false,
            evidence: String::new(),
            spawned: None,
        }
    }
}

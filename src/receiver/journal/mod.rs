//! The incident journal: append-only JSON lines, each write followed by
//! `fdatasync` before the webhook is acknowledged, so a `kill -9` loses
//! nothing that was acknowledged. A torn last line (a crash mid-write) is
//! skipped on read with a warning, and the next append starts a fresh line.
//!
//! Every entry is an [`Event`]; the safety state (holds, budgets, cooldowns,
//! de-dup, pending approvals) is a pure fold over them (see `state`), so the
//! journal is the source of truth and the state file only a checkpoint.
//! Secrets never enter an entry: alerts carry none, and actions are recorded
//! by their description, not their configuration.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::identity::Refusal;
use super::mode::{self, Mode};
use super::payload::{PayloadAlert, Status};
use crate::actions::OutcomeResult;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A group commit failed: each submitter of the group gets the one error.
    #[error("{0}")]
    Group(std::sync::Arc<JournalError>),
    #[error("the journal writer thread is gone")]
    WriterGone,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Unix time in seconds.
    pub ts: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// Why an alert/rule pair did not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Cooldown,
    Budget,
    Duplicate,
    Hold,
    NotifyOnly,
    NoRule,
    /// A `quiet` window of the rule covers the moment: recorded and notified.
    Quiet,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Cooldown => "cooldown",
            SkipReason::Budget => "budget",
            SkipReason::Duplicate => "duplicate",
            SkipReason::Hold => "hold",
            SkipReason::NotifyOnly => "notify_only",
            SkipReason::NoRule => "no_rule",
            SkipReason::Quiet => "quiet",
        }
    }
}

crate::spelled!(SkipReason);

/// What the engine decided for one (alert, rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Run the actions now (consumes one attempt of the target's budget).
    Act,
    /// Record what would run.
    DryRun,
    /// Wait for a person's approval.
    PendingApproval,
    /// Do nothing (see `reason`).
    Skip,
}

impl Decision {
    /// The journal's spelling (`act`, `dry_run`, `pending_approval`, `skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Act => "act",
            Decision::DryRun => "dry_run",
            Decision::PendingApproval => "pending_approval",
            Decision::Skip => "skip",
        }
    }
}

crate::spelled!(Decision);

/// One journal event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An alert as delivered (also when it is a duplicate).
    Alert {
        key: String,
        alertname: String,
        status: Status,
        fingerprint: String,
        starts_at: String,
        labels: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
        /// The `description` annotation (at most 4 KiB).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// The `runbook_url` annotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runbook_url: Option<String>,
        receiver: String,
        duplicate: bool,
        /// When the webhook request carrying it arrived (Unix seconds);
        /// `ts` is when it was planned. Absent in journals written before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<f64>,
    },
    /// A request that was rejected because a value naming a target failed
    /// its grammar; nothing of the request ran.
    Refused {
        alertname: String,
        fingerprint: String,
        rule: String,
        reason: String,
    },
    /// The routing/safety decision for one (alert, rule).
    Decision {
        /// Action-plan id (approval id for pending ones).
        id: String,
        rule: String,
        target: String,
        alertname: String,
        fingerprint: String,
        /// `auto`, `notify_only`, `dry_run` (old journals: `dry-run`,
        /// `notify-only`).
        #[serde(serialize_with = "mode::to_journal", deserialize_with = "mode::from_journal")]
        mode: Mode,
        decision: Decision,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<SkipReason>,
        /// Why, in words, for `quiet` (the window) and `cooldown` (how long,
        /// grown by backoff after failed attempts).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        /// What would run / runs, one description per action.
        actions: Vec<String>,
        /// The alert itself, kept for pending approvals (so an approval after
        /// a restart can still run) and for `act` decisions (so a restart
        /// after a crash can verify a plan it interrupted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert: Option<Box<PayloadAlert>>,
    },
    /// A person approved a pending plan.
    Approved {
        id: String,
        rule: String,
        target: String,
        by: String,
    },
    /// One action's outcome.
    Action {
        id: String,
        rule: String,
        target: String,
        index: usize,
        action: String,
        description: String,
        /// ok, failed, dry_run, refused, interrupted
        result: OutcomeResult,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        duration_seconds: f64,
    },
    /// An action started a process (an `exec` program, the leader of its
    /// own process group), journaled as it starts, so that the next start
    /// after a crash can find what survived (same pid, same start time).
    Spawned {
        id: String,
        index: usize,
        pid: u32,
        pgid: u32,
        /// Session id (hostmedic's own, which the program inherits).
        sid: u32,
        /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
        start_ticks: u64,
        /// `/proc/sys/kernel/random/boot_id`: after a reboot nothing survived.
        boot_id: String,
    },
    /// The effect check after acting.
    Verify {
        id: String,
        rule: String,
        target: String,
        /// verified, not_helped
        result: VerifyResult,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// The budget for `target` is spent: remediation stops and a person is told.
    Hold {
        rule: String,
        target: String,
        fingerprint: String,
        alertname: String,
        attempts: u32,
    },
    HoldCleared {
        target: String,
        by: String,
    },
    /// An alert that is not this host's (`[fleet]`, see `identity`): it names
    /// another host (`reason` foreign) or, outside single-host mode, no host
    /// (`reason` no_host). Never acted on; answered 2xx.
    RefusedForeign {
        alertname: String,
        status: Status,
        fingerprint: String,
        starts_at: String,
        /// The host labels the alert carries (empty: none).
        names: BTreeMap<String, String>,
        /// This host's identity.
        identity: String,
        reason: Refusal,
    },
    /// Evidence about the incident's subjects (`crate::evidence`), taken
    /// before acting (or with the approval request or escalation) and at
    /// verification; redacted and bounded before it is written.
    Evidence {
        /// The plan (decision) it belongs to.
        id: String,
        stage: crate::evidence::Stage,
        items: Vec<crate::evidence::Item>,
    },
    /// A notification was sent (or failed); never contains a secret.
    Notified {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        id: String,
        channel: String,
        kind: NotifyKind,
        ok: bool,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// The alert pipeline's heartbeat stopped (`silent`) or came back
    /// (`back`); see `heartbeat`.
    Pipeline(PipelineEvent),
}

/// What a notification told (the journal's `notified` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A notify-only plan waits for a person's approval.
    Approval,
    /// A target's budget is spent: remediation holds and a person is told.
    Escalation,
    /// How a remediation ended (its outcome and verification).
    Outcome,
    /// A quiet window kept a rule from acting.
    Quiet,
    /// The alert pipeline's heartbeat stopped.
    PipelineSilent,
    /// The alert pipeline's heartbeat came back.
    PipelineBack,
}

impl NotifyKind {
    /// The one spelling (journal, log, incident report).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Approval => "approval",
            NotifyKind::Escalation => "escalation",
            NotifyKind::Outcome => "outcome",
            NotifyKind::Quiet => "quiet",
            NotifyKind::PipelineSilent => "pipeline_silent",
            NotifyKind::PipelineBack => "pipeline_back",
        }
    }
}

crate::spelled!(NotifyKind);

/// What the effect check after acting found (the journal's `verify` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyResult {
    /// The alert's condition is gone.
    Verified,
    /// The condition is still there after the action.
    NotHelped,
}

impl VerifyResult {
    /// The one spelling (journal, metric label, API).
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyResult::Verified => "verified",
            VerifyResult::NotHelped => "not_helped",
        }
    }
}

crate::spelled!(VerifyResult);

/// A change of the pipeline's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineChange {
    /// No heartbeat within `max_silence`.
    Silent,
    /// A heartbeat after a silence.
    Back,
}

/// The journal's `pipeline` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEvent {
    pub state: PipelineChange,
    /// The heartbeat alert's name.
    pub alertname: String,
    /// When the silence began.
    pub silent_since: f64,
    /// The last heartbeat before the silence; none: none since the journal began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<f64>,
    /// What the channels were told.
    pub message: String,
}

/// The append side of the journal (one per process).
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    file: File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl JournalWriter {
    /// Opens (creating it 0600 and its directory 0700) for appending. When the last
    /// line is torn, a newline is written so the next entry starts clean.
    pub fn open(path: &Path) -> Result<JournalWriter, JournalError> {
        super::private::create_parent(path).map_err(io(path))?;
        let mut file = super::private::open_append(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1)).map_err(io(path))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last).map_err(io(path))?;
            if last[0] != b'\n' {
                tracing::warn!(path = %path.display(), "journal ends with a torn line (crash during a write); it will be skipped");
                file.write_all(b"\n").map_err(io(path))?;
                file.sync_data().map_err(io(path))?;
            }
        }
        Ok(JournalWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends entries as one write and syncs them to disk.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            serde_json::to_writer(&mut buf, e).expect("journal entries always serialize");
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(())
    }

    /// Writes several pre-serialized chunks with one write and one sync;
    /// on failure cuts the file back to where it was. Returns the new length.
    pub fn write_group<'a>(&mut self, chunks: impl Iterator<Item = &'a [u8]>) -> Result<u64, JournalError> {
        let before = self.len()?;
        let buf: Vec<u8> = chunks.flat_map(|c| c.iter().copied()).collect();
        let r = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .map_err(io(&self.path));
        if let Err(e) = r {
            let _ = self.truncate(before);
            return Err(e);
        }
        Ok(before + buf.len() as u64)
    }

    /// Cuts the journal back to `len` bytes (undoing a failed append).
    pub fn truncate(&mut self, len: u64) -> Result<(), JournalError> {
        self.file.set_len(len).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// Current length in bytes (the replay offset stored in checkpoints).
    pub fn len(&self) -> Result<u64, JournalError> {
        Ok(self.file.metadata().map_err(io(&self.path))?.len())
    }

    pub fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self.len()? == 0)
    }
}

/// What the committer reports after a successful group: the last durable
/// sequence number and the journal length that covers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    pub seq: u64,
    pub len: u64,
}

struct Submission {
    bytes: Vec<u8>,
    last_seq: u64,
    ack: tokio::sync::oneshot::Sender<Result<(), JournalError>>,
}

/// Group commit: one thread owns the [`JournalWriter`]; submissions queued
/// while a sync is running are written together and share the next
/// `fdatasync`. Submission order is write order. A failed group is cut back
/// from the file and every submitter in it gets the error.
pub struct Committer {
    tx: std::sync::mpsc::Sender<Submission>,
    durable: std::sync::Arc<std::sync::Mutex<Durable>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").field("durable", &self.durable()).finish()
    }
}

impl Committer {
    /// Starts the writer thread; `durable_seq` is the last seq already on disk.
    pub fn start(mut writer: JournalWriter, durable_seq: u64) -> Result<Committer, JournalError> {
        let durable = std::sync::Arc::new(std::sync::Mutex::new(Durable {
            seq: durable_seq,
            len: writer.len()?,
        }));
        let (tx, rx) = std::sync::mpsc::channel::<Submission>();
        let shared = durable.clone();
        std::thread::Builder::new()
            .name("hostmedic-journal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        group.push(more);
                    }
                    let result = writer.write_group(group.iter().map(|s| s.bytes.as_slice()));
                    match result {
                        Ok(len) => {
                            let seq = group.iter().map(|s| s.last_seq).max().unwrap_or(0);
                            *crate::sync::lock(&shared) = Durable { seq, len };
                            for s in group {
                                let _ = s.ack.send(Ok(()));
                            }
                        }
                        Err(e) => {
                            let e = std::sync::Arc::new(e);
                            for s in group {
                                let _ = s.ack.send(Err(JournalError::Group(e.clone())));
                            }
                        }
                    }
                }
            })
            .map_err(|source| JournalError::Io {
                path: PathBuf::from("<journal thread>"),
                source,
            })?;
        Ok(Committer { tx, durable })
    }

    /// Queues entries; the returned receiver resolves once they are on disk.
    pub fn submit(&self, entries: &[Entry]) -> tokio::sync::oneshot::Receiver<Result<(), JournalError>> {
        let mut bytes = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            serde_json::to_writer(&mut bytes, e).expect("journal entries always serialize");
            bytes.push(b'\n');
        }
        let (ack, rx) = tokio::sync::oneshot::channel();
        let last_seq = entries.last().map(|e| e.seq).unwrap_or(0);
        if let Err(std::sync::mpsc::SendError(s)) = self.tx.send(Submission { bytes, last_seq, ack }) {
            let _ = s.ack.send(Err(JournalError::WriterGone));
        }
        rx
    }

    /// The last durable seq and journal length.
    pub fn durable(&self) -> Durable {
        *crate::sync::lock(&self.durable)
    }
}

/// Reads entries from byte `offset` on. Unparseable lines are skipped with a
/// warning (a torn last line after a crash); `warnings` counts them.
pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<Entry>, usize), JournalError> {
    let mut entries = Vec::new();
    let warnings = replay_from(path, offset, |e| entries.push(e))?;
    Ok((entries, warnings))
}

/// Streams the entries from byte `offset` on to `each`, one at a time (a
/// restart replays up to a de-dup window of journal without holding it all
/// in memory). An offset past the end reads from the start. Unparseable
/// lines are skipped with a warning; returns how many.
pub fn replay_from(path: &Path, offset: u64, mut each: impl FnMut(Entry)) -> Result<usize, JournalError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path)(e)),
    };
    let len = file.metadata().map_err(io(path))?.len();
    let offset = if offset > len { 0 } else { offset };
    file.seek(SeekFrom::Start(offset)).map_err(io(path))?;
    let mut warnings = 0;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut lineno = 0usize;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io(path))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let complete = line.last() == Some(&b'\n');
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(text) {
            Ok(e) => each(e),
            Err(err) => {
                warnings += 1;
                if complete {
                    tracing::warn!(path = %path.display(), line = lineno, error = %err, "skipping an unreadable journal line");
                } else {
                    tracing::warn!(path = %path.display(), line = lineno, "skipping a torn last journal line (crash during a write)");
                }
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests;

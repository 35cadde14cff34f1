//! The journal stage: the one way events reach the incident journal. A
//! batch of events is planned under the core lock (each applied to the
//! in-memory state as it is planned, so later alerts of a request see the
//! earlier decisions), queued for the group-commit writer, and awaited until
//! it is on disk; a failed write rebuilds the state from disk, so nothing of
//! the batch counts. Also rebuilds the state at start (checkpoint + replay).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, MutexGuard, Notify};

use super::config::ReceiverConfig;
use super::journal::{self, Committer, Entry, Event, JournalError, JournalWriter};
use super::state::State;
use crate::error::ConfigError;
use crate::sync::lock;

/// The safety state and the sequence counter, behind the core lock.
pub struct Core {
    pub state: State,
    /// Last sequence number handed out (never reused, even after a failed write).
    pub next_seq: u64,
    /// (time, journal length) of past checkpoints, oldest first: the newest
    /// one at least a de-dup window old is where a replay must start to
    /// rebuild the de-dup memory ([`Core::dedup_offset`]).
    pub dedup_marks: VecDeque<(f64, u64)>,
}

impl Core {
    /// Records a checkpoint at `now` covering the journal up to `len` and
    /// returns the offset from which a replay sees every delivery of the
    /// last `window` seconds: the newest mark at least `window` old (the
    /// loaded checkpoint's own offset until one is).
    pub fn dedup_offset(&mut self, now: f64, len: u64, window: f64) -> u64 {
        if self.dedup_marks.is_empty() {
            self.dedup_marks.push_back((f64::NEG_INFINITY, self.state.dedup_offset));
        }
        self.dedup_marks.push_back((now, len));
        while self.dedup_marks.get(1).is_some_and(|m| now - m.0 >= window) {
            self.dedup_marks.pop_front();
        }
        self.dedup_marks[0].1
    }
}

/// Entries planned under the core lock, applied to the state as they are
/// planned.
pub struct Batch<'a> {
    core: &'a mut Core,
    entries: Vec<Entry>,
    now: f64,
}

impl Batch<'_> {
    /// The time every entry of the batch carries.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The state, with this batch's entries applied so far.
    pub fn state(&self) -> &State {
        &self.core.state
    }

    /// The id the next entry will get (`a<seq>`): action-plan/approval ids.
    pub fn next_id(&self) -> String {
        format!("a{}", self.core.next_seq + 1)
    }

    pub fn push(&mut self, event: Event) {
        self.core.next_seq += 1;
        let e = Entry {
            seq: self.core.next_seq,
            ts: self.now,
            event,
        };
        self.core.state.apply(&e);
        self.entries.push(e);
    }
}

/// The journal, its writer and the state folded from it.
pub struct Ledger {
    core: Mutex<Core>,
    committer: Committer,
    journal_path: PathBuf,
    state_path: PathBuf,
    /// Holds as (rule, target) for metrics without taking the async lock.
    holds_view: std::sync::Mutex<Vec<(String, String)>>,
    /// Set (and `dirty` notified) after each commit: the status file and
    /// checkpoint are behind.
    dirty: Notify,
    dirty_flag: AtomicBool,
}

impl Ledger {
    /// Opens the journal and rebuilds the state (checkpoint + journal replay).
    pub fn open(rc: &ReceiverConfig) -> Result<Ledger, ConfigError> {
        let key = |e: JournalError| ConfigError::invalid("receiver.journal_path", e);
        let writer = JournalWriter::open(&rc.journal_path).map_err(key)?;
        let state = rebuild(&rc.state_path, &rc.journal_path).map_err(key)?;
        let committer = Committer::start(writer, state.last_seq).map_err(key)?;
        let holds = holds_of(&state);
        Ok(Ledger {
            core: Mutex::new(Core {
                next_seq: state.last_seq,
                state,
                dedup_marks: VecDeque::new(),
            }),
            committer,
            journal_path: rc.journal_path.clone(),
            state_path: rc.state_path.clone(),
            holds_view: std::sync::Mutex::new(holds),
            dirty: Notify::new(),
            dirty_flag: AtomicBool::new(true),
        })
    }

    /// Plans a batch under the core lock (`plan` pushes events and returns
    /// what the caller needs), then commits it. `T` is returned only once
    /// the batch is on disk.
    pub async fn append<T>(&self, plan: impl FnOnce(&mut Batch<'_>) -> T) -> Result<T, JournalError> {
        let mut core = self.core.lock().await;
        let mut batch = Batch {
            core: &mut core,
            entries: Vec::new(),
            now: crate::time::now(),
        };
        let out = plan(&mut batch);
        let entries = batch.entries;
        self.commit(core, entries).await?;
        Ok(out)
    }

    /// Journals entries produced after the acknowledgement (action results);
    /// a failure is logged, there is nobody left to answer.
    pub async fn record(&self, events: Vec<Event>) {
        let r = self
            .append(|b| {
                for e in events {
                    b.push(e);
                }
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot journal an action result");
        }
    }

    /// Queues the entries (already applied to the in-memory state), releases
    /// the core lock and waits until they are on disk (group commit:
    /// concurrent batches share one fsync).
    async fn commit(&self, core: MutexGuard<'_, Core>, entries: Vec<Entry>) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ack = self.committer.submit(&entries);
        self.update_holds_view(&core.state);
        drop(core);
        let err = match ack.await {
            Ok(Ok(())) => {
                self.dirty_flag.store(true, Ordering::Release);
                self.dirty.notify_one();
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(_) => JournalError::WriterGone,
        };
        tracing::error!(error = %err, "journal append failed; rebuilding state from disk");
        let mut core = self.core.lock().await;
        match rebuild(&self.state_path, &self.journal_path) {
            Ok(s) => {
                core.next_seq = core.next_seq.max(s.last_seq);
                core.state = s;
                self.update_holds_view(&core.state);
            }
            Err(e2) => tracing::error!(error = %e2, "rebuilding state failed"),
        }
        Err(err)
    }

    /// The core lock, for reading the state (status) or pruning it.
    pub async fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().await
    }

    /// (holds, pending approvals, last sequence), when the state is not
    /// locked (at start it never is).
    pub fn summary(&self) -> Option<(usize, usize, u64)> {
        let core = self.core.try_lock().ok()?;
        Some((core.state.holds.len(), core.state.pending.len(), core.state.last_seq))
    }

    /// The plans acting in the state, when it is not locked (at start it
    /// never is: then they are what a crash interrupted).
    pub fn acting(&self) -> Vec<(String, super::state::Acting)> {
        self.core
            .try_lock()
            .map(|c| c.state.acting.iter().map(|(id, p)| (id.clone(), p.clone())).collect())
            .unwrap_or_default()
    }

    /// What the writer has made durable (sequence and journal length).
    pub fn durable(&self) -> journal::Durable {
        self.committer.durable()
    }

    fn update_holds_view(&self, state: &State) {
        *lock(&self.holds_view) = holds_of(state);
    }

    /// Current holds as (rule, target).
    pub fn holds(&self) -> Vec<(String, String)> {
        lock(&self.holds_view).clone()
    }

    /// Waits until a commit marks the state dirty.
    pub async fn changed(&self) {
        self.dirty.notified().await
    }

    /// Marks the state dirty again (a write is still owed) and wakes the
    /// waiter.
    pub fn mark_dirty(&self, wake: bool) {
        self.dirty_flag.store(true, Ordering::Release);
        if wake {
            self.dirty.notify_one();
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty_flag.load(Ordering::Acquire)
    }

    /// Clears the dirty mark; true when it was set.
    pub fn take_dirty(&self) -> bool {
        self.dirty_flag.swap(false, Ordering::AcqRel)
    }
}

fn holds_of(state: &State) -> Vec<(String, String)> {
    state.holds.iter().map(|(t, h)| (h.rule.clone(), t.clone())).collect()
}

/// Loads the checkpoint and replays the journal after it; the entries from
/// the checkpoint's `dedup_offset` up to what it covers only refill the
/// de-dup memory (which checkpoints leave out). A checkpoint that does not
/// line up with the journal (journal replaced or cut) is dropped and the
/// whole journal replayed.
pub fn rebuild(state_path: &std::path::Path, journal_path: &std::path::Path) -> Result<State, JournalError> {
    let mut state = State::load_checkpoint(state_path);
    let journal_len = std::fs::metadata(journal_path).map(|m| m.len()).unwrap_or(0);
    let covered = state.last_seq;
    // The first entry after the checkpoint must follow it without a gap.
    let mut lines_up = covered != 0 && journal_len >= state.journal_offset;
    let mut next = covered + 1;
    let from = state.dedup_offset.min(state.journal_offset);
    let mut warnings = 0;
    if lines_up {
        warnings = journal::replay_from(journal_path, from, |e| {
            if e.seq <= covered {
                state.remember(&e);
            } else if lines_up && e.seq == next {
                state.apply(&e);
                next += 1;
            } else {
                lines_up = false;
            }
        })?;
    }
    if !lines_up {
        state = State::default();
        warnings = journal::replay_from(journal_path, 0, |e| state.apply(&e))?;
    }
    if warnings > 0 {
        tracing::warn!(skipped = warnings, "journal lines skipped while rebuilding state");
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::state::dedup_digest;

    fn alert(seq: u64, key: &str) -> Entry {
        Entry {
            seq,
            ts: seq as f64,
            event: Event::Alert {
                key: key.into(),
                alertname: "A".into(),
                status: crate::receiver::payload::Status::Firing,
                fingerprint: key.into(),
                starts_at: "2026-01-01T00:00:00Z".into(),
                labels: Default::default(),
                summary: None,
                description: None,
                runbook_url: None,
                receiver: "r".into(),
                duplicate: false,
                received: None,
            },
        }
    }

    #[test]
    fn checkpoint_leaves_dedup_out_and_replay_from_its_offset_refills_it() {
        let dir = tempfile::tempdir().unwrap();
        let (jp, sp) = (dir.path().join("journal.jsonl"), dir.path().join("state.json"));
        let mut w = JournalWriter::open(&jp).unwrap();
        let mut state = State::default();
        let mut offsets = vec![];
        for (seq, key) in [(1, "old"), (2, "recent")] {
            w.append(&[alert(seq, key)]).unwrap();
            state.apply(&alert(seq, key));
            offsets.push(w.len().unwrap());
        }
        // Checkpoint after seq 2; the de-dup window starts after seq 1.
        state.journal_offset = offsets[1];
        state.dedup_offset = offsets[0];
        let cp = serde_json::to_string(&state.checkpoint()).unwrap();
        assert!(!cp.contains(&dedup_digest("recent").to_string()), "{cp}");
        std::fs::write(&sp, cp).unwrap();
        w.append(&[alert(3, "new")]).unwrap();
        let s = rebuild(&sp, &jp).unwrap();
        assert_eq!(s.last_seq, 3);
        let known = |k: &str| s.dedup.contains_key(&dedup_digest(k));
        assert!(!known("old") && known("recent") && known("new"));

        // A gap after the checkpoint: the whole journal is replayed.
        w.append(&[alert(9, "gap")]).unwrap();
        let mut cp = State::load_checkpoint(&sp);
        cp.last_seq = 1;
        std::fs::write(&sp, serde_json::to_string(&cp).unwrap()).unwrap();
        let s = rebuild(&sp, &jp).unwrap();
        assert_eq!(s.last_seq, 9);
        assert!(
            ["old", "recent", "new", "gap"]
                .iter()
                .all(|k| s.dedup.contains_key(&dedup_digest(k)))
        );
    }

    #[test]
    fn dedup_offset_is_the_newest_checkpoint_a_window_old() {
        let mut core = Core {
            state: State {
                dedup_offset: 7,
                ..State::default()
            },
            next_seq: 0,
            dedup_marks: VecDeque::new(),
        };
        // Until a checkpoint is a window old, the loaded offset stands.
        assert_eq!(core.dedup_offset(100.0, 500, 60.0), 7);
        assert_eq!(core.dedup_offset(150.0, 900, 60.0), 7);
        assert_eq!(core.dedup_offset(160.0, 1000, 60.0), 500);
        assert_eq!(core.dedup_offset(215.0, 1200, 60.0), 900);
        assert!(core.dedup_marks.len() <= 3, "{:?}", core.dedup_marks);
    }
}

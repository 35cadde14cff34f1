//! The safety state — de-dup window, attempts per target, cooldowns, holds,
//! pending approvals, last actions — as a pure fold over journal entries.
//! A checkpoint (state file, written atomically: temp file, fsync, rename)
//! records the journal offset it covers; at start the checkpoint is loaded
//! and the journal after that offset replayed, so budgets and holds survive
//! a restart or a `kill -9` even if the checkpoint is stale.
//!
//! The de-dup memory (one entry per alert delivered within
//! `receiver.dedup_window`, the one part that grows with the alert stream)
//! is not in the checkpoint: the checkpoint names the journal offset from
//! which a replay rebuilds it (`dedup_offset`), so a checkpoint costs the
//! same whatever the alert rate, and nothing per remembered alert is copied
//! or serialized every 10 s (see `docs/receiver.md`, "Memory").

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::journal::{Decision, Entry, Event, PipelineChange, PipelineEvent, VerifyResult};
use super::payload::PayloadAlert;
use crate::actions::OutcomeResult;

mod records;
pub use records::{Acting, Approval, AttemptOutcome, Child, Hold, LastAction, Pending, Streak};

/// How many recent action outcomes the status keeps.
const LAST_ACTIONS: usize = 50;

/// The folded state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Sequence number of the last entry applied.
    pub last_seq: u64,
    /// Journal byte offset this state covers (checkpoint only).
    pub journal_offset: u64,
    /// De-dup key digest ([`dedup_digest`]) → last time it was delivered:
    /// 16 bytes (plus one control byte) per remembered alert in one flat
    /// table, no allocation per entry. Never checkpointed: rebuilt by
    /// replaying the journal from `dedup_offset`.
    #[serde(skip)]
    pub dedup: HashMap<u64, f64>,
    /// Journal byte offset from which a replay sees every delivery of the
    /// last de-dup window (checkpoint only; 0: the whole journal).
    pub dedup_offset: u64,
    /// Target → times of attempts (an `act` decision or an approval).
    pub attempts: BTreeMap<String, Vec<f64>>,
    /// `rule|target` → time of the last attempt.
    pub cooldowns: BTreeMap<String, f64>,
    /// `rule|target` → its failure streak (grows the cooldown by backoff).
    pub streaks: BTreeMap<String, Streak>,
    pub holds: BTreeMap<String, Hold>,
    pub pending: BTreeMap<String, Pending>,
    /// Plan id → its approval (kept as long as a pending plan would be).
    pub approved: BTreeMap<String, Approval>,
    /// Plan id → the plan whose actions are running or waiting to run.
    pub acting: BTreeMap<String, Acting>,
    pub last_actions: VecDeque<LastAction>,
    /// The alert pipeline's heartbeat (`heartbeat`).
    pub pipeline: PipelineState,
    /// Alerts firing as the deliveries tell (`firing`).
    pub firing: super::firing::Firing,
}

/// What the pipeline's heartbeat looks like, in the state: the last
/// heartbeat (set on each delivery, kept by the checkpoint) and the start of
/// the current silence (from the journal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineState {
    /// Unix time of the last heartbeat delivery.
    pub last_heartbeat: Option<f64>,
    /// Set while the pipeline is silent: when the silence began (the last
    /// heartbeat, or hostmedic's start when none had come).
    pub silent_since: Option<f64>,
}

impl PipelineState {
    /// Folds a `pipeline` event journaled at `ts`.
    pub fn apply(&mut self, ts: f64, e: &PipelineEvent) {
        match e.state {
            PipelineChange::Silent => self.silent_since = Some(e.silent_since),
            PipelineChange::Back => {
                self.silent_since = None;
                self.last_heartbeat = Some(self.last_heartbeat.map_or(ts, |t| t.max(ts)));
            }
        }
    }
}

/// The de-dup identity of a journal `key` (fingerprint|startsAt|status): the
/// first 64 bits of its SHA-256. With the de-dup memory rebuilt from the
/// journal at start (never stored), it only has to be stable within one
/// process; 64 bits make a false duplicate among even a million remembered
/// alerts a chance of about 1 in 10^13 per delivery.
pub fn dedup_digest(key: &str) -> u64 {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(b)
}

pub fn cooldown_key(rule: &str, target: &str) -> String {
    format!("{rule}|{target}")
}

/// An action's or a verification's result, as the last actions keep it.
struct Finished<'a> {
    id: &'a str,
    rule: &'a str,
    target: &'a str,
    action: &'a str,
    result: &'a str,
    detail: &'a str,
}

impl State {
    /// Applies one entry (entries at or below `last_seq` are ignored, so a
    /// replay over a checkpoint is idempotent).
    pub fn apply(&mut self, e: &Entry) {
        if e.seq <= self.last_seq && self.last_seq != 0 {
            return;
        }
        self.last_seq = e.seq;
        self.firing.apply(e.ts, &e.event);
        match &e.event {
            Event::Alert { key, .. } => {
                self.dedup.insert(dedup_digest(key), e.ts);
            }
            Event::Decision { .. } => self.decided(e),
            Event::Approved { id, rule, target, by } => self.approved(e.ts, id, rule, target, by),
            Event::Spawned { .. } => self.spawned(e),
            Event::Action { .. } => self.acted(e),
            Event::Verify { .. } => self.verified(e),
            Event::Hold {
                rule,
                target,
                fingerprint,
                alertname,
                attempts,
            } => {
                let hold = Hold {
                    rule: rule.clone(),
                    since: e.ts,
                    fingerprint: fingerprint.clone(),
                    alertname: alertname.clone(),
                    attempts: *attempts,
                };
                self.holds.insert(target.clone(), hold);
            }
            Event::HoldCleared { target, .. } => self.hold_cleared(target),
            Event::Pipeline(p) => self.pipeline.apply(e.ts, p),
            Event::Refused { .. } | Event::RefusedForeign { .. } | Event::Notified { .. } | Event::Evidence { .. } => {}
        }
    }

    /// A decision: `act` spends an attempt and starts acting; a pending
    /// approval keeps its alert and actions for the approval.
    fn decided(&mut self, e: &Entry) {
        let Event::Decision {
            id,
            rule,
            target,
            decision,
            actions,
            alert,
            ..
        } = &e.event
        else {
            return;
        };
        match decision {
            Decision::Act => {
                self.attempt(id, rule, target, actions.len(), e.ts);
                self.start_acting(id, rule, target, e.ts, actions, alert.clone());
            }
            Decision::PendingApproval => {
                if let Some(alert) = alert {
                    let pending = Pending {
                        rule: rule.clone(),
                        target: target.clone(),
                        at: e.ts,
                        alert: (**alert).clone(),
                        actions: actions.clone(),
                    };
                    self.pending.insert(id.clone(), pending);
                }
            }
            Decision::DryRun | Decision::Skip => {}
        }
    }

    /// A process an action started joins its plan's children.
    fn spawned(&mut self, e: &Entry) {
        let Event::Spawned {
            id,
            index,
            pid,
            pgid,
            sid,
            start_ticks,
            boot_id,
        } = &e.event
        else {
            return;
        };
        if let Some(p) = self.acting.get_mut(id) {
            p.children.push(Child {
                index: *index,
                pid: *pid,
                pgid: *pgid,
                sid: *sid,
                start_ticks: *start_ticks,
                boot_id: boot_id.clone(),
            });
        }
    }

    /// One action's outcome: the plan acts on until every action or the
    /// first that is not ok has one; an ok last action helped, a failed one
    /// did not.
    fn acted(&mut self, e: &Entry) {
        let Event::Action {
            id,
            rule,
            target,
            index,
            action,
            result,
            detail,
            ..
        } = &e.event
        else {
            return;
        };
        if let Some(p) = self.acting.get_mut(id) {
            p.done += 1;
            // The plan stops at the first action that is not ok.
            if p.done >= p.actions.len() || !result.went_as_hoped() {
                self.acting.remove(id);
            }
        }
        let outcome = match result {
            OutcomeResult::Ok => {
                (*index + 1 >= self.streak_actions(rule, target, id)).then_some(AttemptOutcome::Helped)
            }
            OutcomeResult::DryRun => None,
            OutcomeResult::Failed | OutcomeResult::Refused | OutcomeResult::Interrupted => Some(AttemptOutcome::Failed),
        };
        let what = Finished {
            id,
            rule,
            target,
            action,
            result: result.as_str(),
            detail,
        };
        self.finished(e.ts, what, outcome);
    }

    /// The effect check: it decides whether the attempt helped.
    fn verified(&mut self, e: &Entry) {
        let Event::Verify {
            id,
            rule,
            target,
            result,
            detail,
        } = &e.event
        else {
            return;
        };
        let outcome = match result {
            VerifyResult::Verified => AttemptOutcome::Helped,
            VerifyResult::NotHelped => AttemptOutcome::Failed,
        };
        let what = Finished {
            id,
            rule,
            target,
            action: "verify",
            result: result.as_str(),
            detail,
        };
        self.finished(e.ts, what, Some(outcome));
    }

    /// A person approved plan `id`: it starts acting and spends an attempt.
    fn approved(&mut self, ts: f64, id: &str, rule: &str, target: &str, by: &str) {
        self.approved.insert(
            id.to_string(),
            Approval {
                by: by.to_string(),
                at: ts,
            },
        );
        let pending = self.pending.remove(id);
        let actions = pending.as_ref().map_or(0, |p| p.actions.len());
        if let Some(p) = pending {
            self.start_acting(id, rule, target, ts, &p.actions, Some(Box::new(p.alert)));
        }
        self.attempt(id, rule, target, actions, ts);
    }

    /// A person (or the resolution) starts `target` afresh.
    fn hold_cleared(&mut self, target: &str) {
        self.holds.remove(target);
        self.attempts.remove(target);
        let suffix = format!("|{target}");
        self.cooldowns.retain(|k, _| !k.ends_with(&suffix));
        self.streaks.retain(|k, _| !k.ends_with(&suffix));
    }

    /// An action's or a verification's result: it concludes the streak of
    /// its attempt (when `outcome` says how it went) and joins the last
    /// actions.
    fn finished(&mut self, ts: f64, what: Finished<'_>, outcome: Option<AttemptOutcome>) {
        if let Some(o) = outcome {
            self.conclude(what.rule, what.target, what.id, o);
        }
        self.push_last(LastAction {
            ts,
            id: what.id.to_string(),
            rule: what.rule.to_string(),
            target: what.target.to_string(),
            action: what.action.to_string(),
            result: what.result.to_string(),
            detail: what.detail.to_string(),
        });
    }

    /// Applies only what an entry the checkpoint already covers adds to the
    /// de-dup memory (which the checkpoint leaves out).
    pub fn remember(&mut self, e: &Entry) {
        if let Event::Alert { key, .. } = &e.event {
            self.dedup.insert(dedup_digest(key), e.ts);
        }
    }

    /// What a checkpoint writes: everything but the de-dup memory (cloning
    /// that would copy one table entry per remembered alert every 10 s).
    pub fn checkpoint(&self) -> State {
        State {
            last_seq: self.last_seq,
            journal_offset: self.journal_offset,
            dedup: HashMap::new(),
            dedup_offset: self.dedup_offset,
            attempts: self.attempts.clone(),
            cooldowns: self.cooldowns.clone(),
            streaks: self.streaks.clone(),
            holds: self.holds.clone(),
            pending: self.pending.clone(),
            approved: self.approved.clone(),
            acting: self.acting.clone(),
            last_actions: self.last_actions.clone(),
            pipeline: self.pipeline.clone(),
            firing: self.firing.clone(),
        }
    }

    fn start_acting(
        &mut self,
        id: &str,
        rule: &str,
        target: &str,
        ts: f64,
        actions: &[String],
        alert: Option<Box<PayloadAlert>>,
    ) {
        if actions.is_empty() {
            return;
        }
        self.acting.insert(
            id.to_string(),
            Acting {
                rule: rule.to_string(),
                target: target.to_string(),
                since: ts,
                actions: actions.to_vec(),
                done: 0,
                alert,
                children: Vec::new(),
            },
        );
    }

    /// A new attempt `id` of `actions` actions: it spends budget, starts the
    /// cooldown, and concludes the streak's previous attempt (one that ended
    /// without a failure counts as helped).
    fn attempt(&mut self, id: &str, rule: &str, target: &str, actions: usize, ts: f64) {
        self.attempts.entry(target.to_string()).or_default().push(ts);
        let key = cooldown_key(rule, target);
        let before = self.streaks.get(&key).map_or(0, |s| match s.outcome {
            AttemptOutcome::Failed => s.before + 1,
            AttemptOutcome::Helped | AttemptOutcome::Open => 0,
        });
        self.streaks.insert(
            key.clone(),
            Streak {
                before,
                id: id.to_string(),
                actions,
                outcome: AttemptOutcome::Open,
            },
        );
        self.cooldowns.insert(key, ts);
    }

    /// The number of actions of attempt `id` (`usize::MAX` when it is not
    /// the latest: no result of it concludes the streak).
    fn streak_actions(&self, rule: &str, target: &str, id: &str) -> usize {
        self.streaks
            .get(&cooldown_key(rule, target))
            .filter(|s| s.id == id)
            .map_or(usize::MAX, |s| s.actions)
    }

    /// Records a result of attempt `id`; a failure is final, results of
    /// anything but the latest attempt (exhausted actions, an older plan)
    /// are not the streak's.
    fn conclude(&mut self, rule: &str, target: &str, id: &str, outcome: AttemptOutcome) {
        if let Some(s) = self.streaks.get_mut(&cooldown_key(rule, target))
            && s.id == id
            && s.outcome != AttemptOutcome::Failed
        {
            s.outcome = outcome;
        }
    }

    fn push_last(&mut self, a: LastAction) {
        if self.last_actions.len() >= LAST_ACTIONS {
            self.last_actions.pop_front();
        }
        self.last_actions.push_back(a);
    }

    /// Attempts on `target` within `window` seconds before `now`.
    pub fn attempts_within(&self, target: &str, now: f64, window: f64) -> u32 {
        self.attempts
            .get(target)
            .map(|v| v.iter().filter(|&&t| now - t < window).count() as u32)
            .unwrap_or(0)
    }

    /// Forgets what no rule can need any more.
    pub fn prune(&mut self, now: f64, dedup_window: f64, max_window: f64, approval_ttl: f64) {
        self.dedup.retain(|_, t| now - *t < dedup_window);
        // A burst that has left the window gives its table back.
        if self.dedup.capacity() > 4 * self.dedup.len().max(1024) {
            self.dedup.shrink_to(2 * self.dedup.len());
        }
        for v in self.attempts.values_mut() {
            v.retain(|t| now - *t < max_window);
        }
        self.attempts.retain(|_, v| !v.is_empty());
        self.cooldowns.retain(|_, t| now - *t < max_window);
        let cooldowns = &self.cooldowns;
        self.streaks.retain(|k, _| cooldowns.contains_key(k));
        self.pending.retain(|_, p| now - p.at < approval_ttl);
        self.approved.retain(|_, a| now - a.at < approval_ttl);
    }

    /// Loads a checkpoint; a missing or unreadable one yields the empty state
    /// (the journal replay then rebuilds everything).
    pub fn load_checkpoint(path: &Path) -> State {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "state checkpoint unreadable; rebuilding from the journal");
                State::default()
            }),
            Err(_) => State::default(),
        }
    }
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync,
/// rename, fsync of the directory. The file is 0600, a directory it creates
/// 0700 ([`super::private`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    super::private::create_parent(path)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut f = super::private::create_new(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;

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

/// How many recent action outcomes the status keeps.
const LAST_ACTIONS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub rule: String,
    pub since: f64,
    pub fingerprint: String,
    pub alertname: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub rule: String,
    pub target: String,
    pub at: f64,
    pub alert: PayloadAlert,
    pub actions: Vec<String>,
}

/// Who approved a plan, and when: a second approval of it is told so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastAction {
    pub ts: f64,
    pub id: String,
    pub rule: String,
    pub target: String,
    pub action: String,
    pub result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// How the latest attempt on a (rule, target) went, as far as the journal
/// has told: backoff counts the failed ones (docs/receiver.md, "Backoff").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Running (or cut short by a crash): no result yet.
    Open,
    /// Every action `ok` and no verification `not_helped`.
    Helped,
    /// An action ended other than `ok` (failed, refused, timed out…) or a
    /// verification said `not_helped`.
    Failed,
}

/// The failure streak of one (rule, target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Streak {
    /// Consecutive failed attempts before the latest one.
    pub before: u32,
    /// The latest attempt's plan id, its number of actions and its outcome.
    pub id: String,
    pub actions: usize,
    pub outcome: AttemptOutcome,
}

impl Streak {
    /// Consecutive failed attempts now: the latest counts once it failed, a
    /// latest that helped resets the count, one still open keeps the count
    /// of those before it.
    pub fn failures(&self) -> u32 {
        match self.outcome {
            AttemptOutcome::Failed => self.before + 1,
            AttemptOutcome::Helped => 0,
            AttemptOutcome::Open => self.before,
        }
    }
}

/// A plan that is acting: an `act` decision or an approval whose actions
/// have not all journaled an outcome yet (they run in order and stop at the
/// first that is not ok). One that is still here at start was cut short by
/// a crash: the start journals it `interrupted` (see `recover`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acting {
    pub rule: String,
    pub target: String,
    /// When the decision (or approval) was journaled.
    pub since: f64,
    /// One description per action, as the decision listed them.
    pub actions: Vec<String>,
    /// How many actions have journaled an outcome.
    pub done: usize,
    /// The alert, to resolve the plan's targets again for its verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Box<PayloadAlert>>,
    /// Processes its actions started, as journaled (`spawned`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Child>,
}

/// A process an action of an acting plan started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub index: usize,
    pub pid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub start_ticks: u64,
    pub boot_id: String,
}

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
            Event::Decision {
                id,
                rule,
                target,
                decision,
                actions,
                alert,
                ..
            } => match decision {
                Decision::Act => {
                    self.attempt(id, rule, target, actions.len(), e.ts);
                    self.start_acting(id, rule, target, e.ts, actions, alert.clone());
                }
                Decision::PendingApproval => {
                    if let Some(alert) = alert {
                        self.pending.insert(
                            id.clone(),
                            Pending {
                                rule: rule.clone(),
                                target: target.clone(),
                                at: e.ts,
                                alert: (**alert).clone(),
                                actions: actions.clone(),
                            },
                        );
                    }
                }
                Decision::DryRun | Decision::Skip => {}
            },
            Event::Approved { id, rule, target, by } => {
                self.approved.insert(
                    id.clone(),
                    Approval {
                        by: by.clone(),
                        at: e.ts,
                    },
                );
                let pending = self.pending.remove(id);
                let actions = pending.as_ref().map_or(0, |p| p.actions.len());
                if let Some(p) = pending {
                    self.start_acting(id, rule, target, e.ts, &p.actions, Some(Box::new(p.alert)));
                }
                self.attempt(id, rule, target, actions, e.ts);
            }
            Event::Spawned {
                id,
                index,
                pid,
                pgid,
                sid,
                start_ticks,
                boot_id,
            } => {
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
            Event::Action { id, result, .. } => {
                if let Some(p) = self.acting.get_mut(id) {
                    p.done += 1;
                    // The plan stops at the first action that is not ok.
                    if p.done >= p.actions.len() || !result.went_as_hoped() {
                        self.acting.remove(id);
                    }
                }
                self.result(e)
            }
            Event::Verify { .. } => self.result(e),
            Event::Hold {
                rule,
                target,
                fingerprint,
                alertname,
                attempts,
            } => {
                self.holds.insert(
                    target.clone(),
                    Hold {
                        rule: rule.clone(),
                        since: e.ts,
                        fingerprint: fingerprint.clone(),
                        alertname: alertname.clone(),
                        attempts: *attempts,
                    },
                );
            }
            Event::HoldCleared { target, .. } => {
                self.holds.remove(target);
                // A person (or the resolution) starts the target afresh.
                self.attempts.remove(target);
                let suffix = format!("|{target}");
                self.cooldowns.retain(|k, _| !k.ends_with(&suffix));
                self.streaks.retain(|k, _| !k.ends_with(&suffix));
            }
            Event::Pipeline(p) => self.pipeline.apply(e.ts, p),
            Event::Refused { .. } | Event::RefusedForeign { .. } | Event::Notified { .. } | Event::Evidence { .. } => {}
        }
    }

    /// An action's or a verification's result: it concludes the streak of
    /// its attempt and joins the last actions.
    fn result(&mut self, e: &Entry) {
        let (id, rule, target, action, result, detail, outcome) = match &e.event {
            Event::Action {
                id,
                rule,
                target,
                index,
                action,
                result,
                detail,
                ..
            } => {
                let outcome = match result {
                    OutcomeResult::Ok => {
                        (*index + 1 >= self.streak_actions(rule, target, id)).then_some(AttemptOutcome::Helped)
                    }
                    OutcomeResult::DryRun => None,
                    OutcomeResult::Failed | OutcomeResult::Refused | OutcomeResult::Interrupted => {
                        Some(AttemptOutcome::Failed)
                    }
                };
                (id, rule, target, action.as_str(), result.as_str(), detail, outcome)
            }
            Event::Verify {
                id,
                rule,
                target,
                result,
                detail,
            } => {
                let outcome = match result {
                    VerifyResult::Verified => AttemptOutcome::Helped,
                    VerifyResult::NotHelped => AttemptOutcome::Failed,
                };
                (id, rule, target, "verify", result.as_str(), detail, Some(outcome))
            }
            _ => return,
        };
        if let Some(o) = outcome {
            self.conclude(rule, target, id, o);
        }
        self.push_last(LastAction {
            ts: e.ts,
            id: id.clone(),
            rule: rule.clone(),
            target: target.clone(),
            action: action.to_string(),
            result: result.to_string(),
            detail: detail.clone(),
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
mod tests {
    use super::*;
    use crate::receiver::journal::Decision;

    fn ev(state: PipelineChange, since: f64) -> PipelineEvent {
        PipelineEvent {
            state,
            alertname: "HostmedicWatchdog".into(),
            silent_since: since,
            last_heartbeat: None,
            message: String::new(),
        }
    }

    #[test]
    fn fold_silent_then_back() {
        let mut p = PipelineState {
            last_heartbeat: Some(100.0),
            silent_since: None,
        };
        p.apply(500.0, &ev(PipelineChange::Silent, 100.0));
        assert_eq!(p.silent_since, Some(100.0));
        p.apply(900.0, &ev(PipelineChange::Back, 100.0));
        assert_eq!(p.silent_since, None);
        assert_eq!(p.last_heartbeat, Some(900.0));
    }

    fn decision(seq: u64, ts: f64, target: &str) -> Entry {
        Entry {
            seq,
            ts,
            event: Event::Decision {
                id: format!("a{seq}"),
                rule: "r".into(),
                target: target.into(),
                alertname: "A".into(),
                fingerprint: "f".into(),
                mode: "auto".into(),
                decision: Decision::Act,
                reason: None,
                detail: String::new(),
                actions: vec!["exec x".into()],
                alert: None,
            },
        }
    }

    #[test]
    fn fold_counts_attempts_and_holds_and_is_idempotent() {
        let mut s = State::default();
        s.apply(&decision(1, 100.0, "t"));
        s.apply(&decision(2, 200.0, "t"));
        s.apply(&decision(2, 200.0, "t"));
        assert_eq!(s.attempts_within("t", 250.0, 3600.0), 2);
        assert_eq!(s.attempts_within("t", 250.0, 100.0), 1);
        assert_eq!(s.cooldowns[&cooldown_key("r", "t")], 200.0);
        s.apply(&Entry {
            seq: 3,
            ts: 300.0,
            event: Event::Hold {
                rule: "r".into(),
                target: "t".into(),
                fingerprint: "f".into(),
                alertname: "A".into(),
                attempts: 2,
            },
        });
        assert!(s.holds.contains_key("t"));
        s.apply(&Entry {
            seq: 4,
            ts: 400.0,
            event: Event::HoldCleared {
                target: "t".into(),
                by: "api".into(),
            },
        });
        assert!(s.holds.is_empty() && s.attempts.is_empty() && s.cooldowns.is_empty());
        s.prune(10_000.0, 10.0, 10.0, 10.0);
    }

    fn result(seq: u64, id: &str, event: &str, index: usize, result: &str) -> Entry {
        let (rule, target) = ("r".to_string(), "t".to_string());
        let event = match event {
            "action" => Event::Action {
                id: id.into(),
                rule,
                target,
                index,
                action: "exec".into(),
                description: "exec x".into(),
                result: serde_json::from_value(result.into()).expect("a journal spelling"),
                detail: String::new(),
                duration_seconds: 0.1,
            },
            _ => Event::Verify {
                id: id.into(),
                rule,
                target,
                result: serde_json::from_value(result.into()).expect("a journal spelling"),
                detail: String::new(),
            },
        };
        Entry {
            seq,
            ts: seq as f64,
            event,
        }
    }

    fn action(seq: u64, id: &str, index: usize, outcome: &str) -> Entry {
        result(seq, id, "action", index, outcome)
    }

    #[test]
    fn failure_streaks_count_failed_attempts_and_reset_on_help() {
        let mut s = State::default();
        let failures = |s: &State| s.streaks[&cooldown_key("r", "t")].failures();
        // a1 fails its action, a3's verification says not helped.
        s.apply(&decision(1, 1.0, "t"));
        assert_eq!(failures(&s), 0, "open, nothing failed before");
        s.apply(&result(2, "a1", "action", 0, "failed"));
        assert_eq!(failures(&s), 1);
        s.apply(&decision(3, 3.0, "t"));
        assert_eq!(failures(&s), 1, "running: keeps the level");
        s.apply(&result(4, "a3", "action", 0, "ok"));
        s.apply(&result(5, "a3", "verify", 0, "not_helped"));
        assert_eq!(failures(&s), 2);
        // Exhausted actions and older plans are not the streak's.
        s.apply(&result(6, "a1", "action", 0, "ok"));
        s.apply(&result(7, "a9", "verify", 0, "verified"));
        assert_eq!(failures(&s), 2);
        // A refusal counts as a failure; so does anything that is not ok.
        s.apply(&decision(8, 8.0, "t"));
        s.apply(&result(9, "a8", "action", 0, "refused"));
        assert_eq!(failures(&s), 3);
        // A helped attempt resets: its last action ok, then verified.
        s.apply(&decision(10, 10.0, "t"));
        s.apply(&result(11, "a10", "action", 0, "ok"));
        assert_eq!(failures(&s), 0);
        s.apply(&result(12, "a10", "verify", 0, "verified"));
        assert_eq!(failures(&s), 0);
        // …and the next failure starts from one; a later failure of the
        // same attempt does not count twice.
        s.apply(&decision(13, 13.0, "t"));
        s.apply(&result(14, "a13", "action", 0, "failed"));
        s.apply(&result(15, "a13", "verify", 0, "not_helped"));
        assert_eq!(failures(&s), 1);
        // A checkpoint round trip keeps the streak (restart, kill -9).
        let back: State = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back.streaks, s.streaks);
        // Pruned with its cooldown; cleared with a hold.
        let mut p = s.clone();
        p.prune(1000.0, 10.0, 100.0, 10.0);
        assert!(p.streaks.is_empty() && p.cooldowns.is_empty());
        s.apply(&Entry {
            seq: 16,
            ts: 16.0,
            event: Event::HoldCleared {
                target: "t".into(),
                by: "api".into(),
            },
        });
        assert!(s.streaks.is_empty());
    }

    #[test]
    fn a_plan_is_acting_until_every_action_or_the_first_failure_has_an_outcome() {
        let mut s = State::default();
        let mut d = decision(1, 1.0, "t");
        if let Event::Decision { actions, .. } = &mut d.event {
            *actions = vec!["exec a".into(), "exec b".into()];
        }
        s.apply(&d);
        assert_eq!(s.acting["a1"].actions.len(), 2);
        s.apply(&Entry {
            seq: 2,
            ts: 2.0,
            event: Event::Spawned {
                id: "a1".into(),
                index: 0,
                pid: 42,
                pgid: 42,
                sid: 1,
                start_ticks: 7,
                boot_id: "b".into(),
            },
        });
        s.apply(&action(3, "a1", 0, "ok"));
        assert_eq!(s.acting["a1"].done, 1);
        assert_eq!(s.acting["a1"].children[0].pid, 42);
        // What a checkpoint keeps, a restart finds.
        let cp: State = serde_json::from_str(&serde_json::to_string(&s.checkpoint()).unwrap()).unwrap();
        assert_eq!(cp.acting, s.acting);
        s.apply(&action(4, "a1", 1, "ok"));
        assert!(s.acting.is_empty());

        // Stopped by a failure, or by an interruption journaled at start.
        for (seq, result) in [(10, "failed"), (20, "interrupted")] {
            let mut d = decision(seq, 1.0, "t");
            if let Event::Decision { actions, .. } = &mut d.event {
                *actions = vec!["exec a".into(), "exec b".into()];
            }
            s.apply(&d);
            s.apply(&action(seq + 1, &format!("a{seq}"), 0, result));
            assert!(s.acting.is_empty(), "{result}");
        }
        // A plan without actions has nothing to interrupt.
        let mut d = decision(30, 1.0, "t");
        if let Event::Decision { actions, .. } = &mut d.event {
            actions.clear();
        }
        s.apply(&d);
        assert!(s.acting.is_empty());
        // An approval acts with the pending plan's actions and alert.
        s.pending.insert(
            "a40".into(),
            Pending {
                rule: "r".into(),
                target: "t".into(),
                at: 1.0,
                alert: serde_json::from_str(
                    r#"{"status":"firing","labels":{"alertname":"A"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}"#,
                )
                .unwrap(),
                actions: vec!["exec a".into()],
            },
        );
        s.apply(&Entry {
            seq: 41,
            ts: 41.0,
            event: Event::Approved {
                id: "a40".into(),
                rule: "r".into(),
                target: "t".into(),
                by: "cli".into(),
            },
        });
        assert!(s.acting["a40"].alert.is_some() && s.pending.is_empty());
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/state.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}

//! `hostmedic incidents`: the journal read as an operator's incident log.
//!
//! The entries are folded ([`build`], the fold itself in `fold.rs`) into
//! incidents — one per alert occurrence (fingerprint + `startsAt`), oldest
//! first — each with its severity, what happened (summary, description),
//! its deliveries, per rule plan the evidence, every action with its result
//! and the verification, the plan's timeline (where its seconds went, from
//! [`crate::receiver::timeline::from_journal`]), the notifications, holds,
//! the current state (still firing, resolved at, held, waiting for
//! approval) and the follow-up (the runbook link, the commands to look
//! further). [`markdown`] renders them; [`json`] prints the same
//! [`Incident`] list (schema in docs/receiver.md); `--open` keeps the
//! incidents not resolved ([`open_only`]); `--since` is read in `since.rs`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::journal::{self, Decision, Entry, NotifyKind, SkipReason};
use super::payload::Status;
use super::timeline;
use crate::actions::OutcomeResult;
use crate::evidence::{Item, Stage};

mod fold;
mod json;
mod markdown;
mod since;
#[cfg(test)]
mod test_journal;

pub use json::{PlanTimeline, json};
pub use markdown::{markdown, markdown_open};
pub use since::{load, parse_since};

/// `2026-12-07 09:30:00 UTC`: in `TZ` (else the system's zone), named.
fn time(ts: f64) -> String {
    crate::time::display(ts)
}

/// The time of day of [`time`] (`09:30:00`), under a heading naming the
/// day and the zone.
fn clock(ts: f64) -> String {
    let t = time(ts);
    t.get(11..19).unwrap_or(&t).to_string()
}

/// The zone of [`time`] (`UTC`, `CET`).
fn zone_of(ts: f64) -> String {
    let t = time(ts);
    t.get(20..).unwrap_or("").to_string()
}

/// Text from an alert (or the host) as inline code, on one line.
fn code(s: &str) -> String {
    format!("`{}`", esc(s).replace('`', "'"))
}

/// Text from an alert on one line (see [`crate::text`]).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::escape(s)
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut t: String = esc(first).chars().take(200).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t.replace('|', "\\|")
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Firing as far as the journal knows (no resolved delivery yet).
    Firing,
    /// A `resolved` delivery arrived (`resolved_at`).
    Resolved,
    /// Firing, and a target's budget is spent: remediation stopped until a
    /// person clears the hold.
    Held,
    /// Firing, a plan waits for `hostmedic approve <id>`.
    WaitingForApproval,
    /// Refused: not this host's, or a label failed its target grammar.
    Refused,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Firing => "still firing",
            State::Resolved => "resolved",
            State::Held => "held",
            State::WaitingForApproval => "waiting for approval",
            State::Refused => "refused",
        }
    }
}

/// One delivery of the alert.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub at: f64,
    pub status: Status,
    pub duplicate: bool,
}

/// One action's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub at: f64,
    pub action: String,
    pub description: String,
    pub result: OutcomeResult,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub duration_seconds: f64,
}

/// The effect check.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyResult {
    pub at: f64,
    pub result: journal::VerifyResult,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Evidence taken at one stage.
#[derive(Debug, Clone, Serialize)]
pub struct Captured {
    pub at: f64,
    pub stage: Stage,
    pub items: Vec<Item>,
}

/// A notification sent (or not).
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub at: f64,
    pub channel: String,
    pub kind: NotifyKind,
    pub ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One rule's plan for the incident (a journal decision and what followed).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: String,
    pub at: f64,
    pub rule: String,
    pub target: String,
    /// The journal's spelling (`auto`, `notify_only`, `dry_run`); empty
    /// when the decision is not among the entries read.
    pub mode: String,
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<SkipReason>,
    /// More about the decision (a skip's cooldown, backoff or window).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What runs (or would run), one description per action.
    pub planned: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    pub evidence: Vec<Captured>,
    pub actions: Vec<ActionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerifyResult>,
    /// Where the plan's seconds went (plans that ran an action; see
    /// [`PlanTimeline`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<PlanTimeline>,
    pub notifications: Vec<Notification>,
}

impl Plan {
    /// A plan `id` known only by what followed it (its decision not read
    /// yet, or before the window); the decision's fields are filled in
    /// when there is one.
    fn follow_ups_of(id: &str, at: f64) -> Plan {
        Plan {
            id: id.to_string(),
            at,
            rule: String::new(),
            target: String::new(),
            mode: String::new(),
            decision: Decision::Act,
            reason: None,
            detail: String::new(),
            planned: Vec::new(),
            approved_by: None,
            evidence: Vec::new(),
            actions: Vec::new(),
            verification: None,
            timeline: None,
            notifications: Vec::new(),
        }
    }
}

/// A hold being cleared.
#[derive(Debug, Clone, Serialize)]
pub struct Cleared {
    pub at: f64,
    /// Who cleared it (`resolved`: the alert's resolution).
    pub by: String,
}

/// A target put on hold during the incident.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub at: f64,
    pub rule: String,
    pub target: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared: Option<Cleared>,
}

/// One alert occurrence and everything the journal says about it.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub alertname: String,
    pub fingerprint: String,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// Journal time of the first entry about it.
    pub first_seen: f64,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<f64>,
    pub deliveries: Vec<Delivery>,
    pub plans: Vec<Plan>,
    pub holds: Vec<Held>,
    /// Why it was refused (foreign host, a label failing its grammar).
    pub refusals: Vec<String>,
    /// What else the journal says about it (the alert pipeline's silence
    /// and return).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Notifications that belong to no plan (the alert pipeline's own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
    /// What to do or look at next: the runbook, the evidence's commands,
    /// an approval or a hold to clear.
    pub follow_up: Vec<String>,
}

impl Incident {
    fn new(alertname: &str, fingerprint: &str, starts_at: &str, at: f64) -> Incident {
        Incident {
            alertname: alertname.to_string(),
            fingerprint: fingerprint.to_string(),
            starts_at: starts_at.to_string(),
            severity: None,
            labels: BTreeMap::new(),
            summary: None,
            description: None,
            runbook_url: None,
            first_seen: at,
            state: State::Firing,
            resolved_at: None,
            deliveries: Vec::new(),
            plans: Vec::new(),
            holds: Vec::new(),
            refusals: Vec::new(),
            notes: Vec::new(),
            notifications: Vec::new(),
            follow_up: Vec::new(),
        }
    }
}

/// Folds journal entries (oldest first) into incidents, oldest first, each
/// plan with its timeline; the follow-ups whose decision lies before the
/// window are returned apart.
pub fn build(entries: &[Entry]) -> (Vec<Incident>, Vec<&Entry>) {
    let mut f = fold::Fold::default();
    for e in entries {
        f.add(e);
    }
    let mut timelines = timeline::from_journal(entries);
    for inc in &mut f.incidents {
        for p in &mut inc.plans {
            p.timeline = timelines.remove(&p.id).map(PlanTimeline::from);
        }
        settle(inc);
    }
    (f.incidents, f.orphans)
}

/// Sets the state and the follow-up from what was folded in.
fn settle(inc: &mut Incident) {
    let waiting: Vec<&Plan> = inc
        .plans
        .iter()
        .filter(|p| p.decision == Decision::PendingApproval && p.approved_by.is_none())
        .collect();
    let held: Vec<&Held> = inc.holds.iter().filter(|h| h.cleared.is_none()).collect();
    inc.state = if inc.resolved_at.is_some() {
        State::Resolved
    } else if !waiting.is_empty() {
        State::WaitingForApproval
    } else if !held.is_empty() {
        State::Held
    } else if !inc.refusals.is_empty() && inc.plans.is_empty() {
        State::Refused
    } else {
        State::Firing
    };
    let mut next = Vec::new();
    if let Some(r) = &inc.runbook_url {
        next.push(format!("runbook: {r}"));
    }
    if inc.state != State::Resolved {
        for p in &waiting {
            next.push(format!(
                "approve: {}",
                crate::invocation::command(&format!("approve {}", p.id))
            ));
        }
        for h in &held {
            let target = crate::invocation::quote(&h.target);
            next.push(format!(
                "once fixed: {}",
                crate::invocation::command(&format!("clear-hold {target}"))
            ));
        }
    }
    for item in inc.plans.iter().flat_map(|p| &p.evidence).flat_map(|c| &c.items) {
        let cmd = format!("look further: {}", item.look_further);
        if !item.look_further.is_empty() && !next.contains(&cmd) {
            next.push(cmd);
        }
    }
    inc.follow_up = next;
}

/// Keeps the incidents not resolved (`--open`).
pub fn open_only(incidents: Vec<Incident>) -> Vec<Incident> {
    incidents.into_iter().filter(|i| i.state != State::Resolved).collect()
}

#[cfg(test)]
mod tests {
    use super::test_journal::{entry, journal};
    use super::*;
    use crate::receiver::journal::Event;

    #[test]
    fn incidents_read_like_an_operators_log() {
        let entries = journal();
        let (incidents, orphans) = build(&entries);
        assert!(orphans.is_empty());
        assert_eq!(incidents.len(), 2);
        let (a, b) = (&incidents[0], &incidents[1]);
        assert_eq!((a.state, a.resolved_at), (State::Resolved, Some(160.0)));
        assert_eq!(a.deliveries.iter().filter(|d| d.duplicate).count(), 1);
        assert_eq!(a.plans[0].verification.as_ref().unwrap().result, "verified");
        assert_eq!(b.state, State::WaitingForApproval);
        assert!(b.follow_up.contains(&"approve: hostmedic approve a2".to_string()));
        let md = markdown(&entries, "j", None, 0);
        // Times are in this process's zone (TZ), named.
        let resolved = format!(
            "HostmedicUnitCrashLooping — critical — **resolved at {}**",
            crate::time::display(160.0)
        );
        assert!(md.contains(&resolved), "lacks {resolved:?}:\n{md}");
        let heading = format!(
            "## 1970-01-01 (times in {})",
            crate::time::display(0.0).get(20..).unwrap()
        );
        assert!(md.contains(&heading), "lacks {heading:?}:\n{md}");
        for want in [
            "**What happened**: worker.service is crash-looping",
            "> It restarted 5 times in 2 minutes.",
            "evidence before acting:",
            "ModuleNotFoundError: No module named 'feeds'",
            "systemd.stop systemd:system:worker.service: **ok**",
            "verification: **verified**",
            "1 duplicate delivery(ies)",
            "`runbook: docs/runbooks.md#hostmedicunitcrashlooping`",
            "`look further: journalctl -u worker.service -n 50`",
            "**State**: waiting for approval",
        ] {
            assert!(md.contains(want), "lacks {want:?}:\n{md}");
        }
        let open = markdown_open(&entries, "j", None, 0);
        assert!(
            !open.contains("### 00:01:40 HostmedicUnitCrashLooping") && open.contains("Runaway"),
            "{open}"
        );
        let json = serde_json::to_value(open_only(build(&entries).0)).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 1);
        assert_eq!(json[0]["state"], "waiting_for_approval");
        let all = serde_json::to_value(build(&entries).0).unwrap();
        assert_eq!(all[0]["plans"][0]["evidence"][0]["stage"], "before");
        assert_eq!(
            all[0]["plans"][0]["evidence"][0]["items"][0]["facts"]["ExecMainStatus"],
            "3"
        );
        assert_eq!(all[0]["resolved_at"], 160.0);
    }

    #[test]
    fn a_pipeline_silence_is_an_incident_resolved_when_it_is_back() {
        use crate::receiver::journal::{PipelineChange, PipelineEvent};
        let ev = |state, message: &str| {
            Event::Pipeline(PipelineEvent {
                state,
                alertname: "HostmedicWatchdog".into(),
                silent_since: 50.0,
                last_heartbeat: Some(50.0),
                message: message.into(),
            })
        };
        let told = |kind| Event::Notified {
            id: String::new(),
            channel: "sink".into(),
            kind,
            ok: true,
            detail: String::new(),
        };
        let entries = vec![
            entry(
                1,
                400.0,
                ev(PipelineChange::Silent, "alert pipeline silent since 00:00:50: down?"),
            ),
            entry(2, 400.1, told(NotifyKind::PipelineSilent)),
            entry(3, 900.0, ev(PipelineChange::Back, "alert pipeline back")),
            entry(4, 900.1, told(NotifyKind::PipelineBack)),
            entry(
                5,
                2000.0,
                ev(PipelineChange::Silent, "alert pipeline silent since 00:33:00"),
            ),
        ];
        let (inc, orphans) = build(&entries);
        assert!(orphans.is_empty());
        assert_eq!(inc.len(), 2, "{inc:#?}");
        assert_eq!((inc[0].state, inc[0].resolved_at), (State::Resolved, Some(900.0)));
        assert_eq!(inc[0].notifications.len(), 2);
        assert_eq!(inc[1].state, State::Firing);
        let md = markdown(&entries, "j", None, 0);
        assert!(md.contains("**alert pipeline silent since 00:00:50: down?**"), "{md}");
        assert!(md.contains(" pipeline_silent notification to sink: sent"), "{md}");
        assert!(!md.contains("[]"), "{md}");
    }

    #[test]
    fn old_journal_lines_without_evidence_fields_still_read() {
        let line = r#"{"seq":1,"ts":1.0,"event":"alert","key":"k","alertname":"A","status":"firing","fingerprint":"f","starts_at":"s","labels":{},"receiver":"r","duplicate":false}"#;
        let e: Entry = serde_json::from_str(line).unwrap();
        let (inc, _) = build(std::slice::from_ref(&e));
        assert_eq!(inc[0].state, State::Firing);
        assert!(inc[0].description.is_none());
    }
}

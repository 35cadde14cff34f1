//! `hostmedic incidents`: the journal read as an operator's incident log.
//!
//! The entries are folded ([`build`]) into incidents — one per alert
//! occurrence (fingerprint + `startsAt`), oldest first — each with its
//! severity, what happened (summary, description), its deliveries, per rule
//! plan the evidence, every action with its result and the verification,
//! the notifications, holds, the current state (still firing, resolved at,
//! held, waiting for approval) and the follow-up (the runbook link, the
//! commands to look further). [`markdown`] renders them; `--format json`
//! prints the same [`Incident`] list (schema in docs/receiver.md); `--open`
//! keeps the incidents not resolved ([`open_only`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::journal::{self, Decision, Entry, Event, JournalError, SkipReason};
use crate::evidence::{Item, Stage};

/// Parses `--since`: a duration ago (`2h`, `30m`, `7d`) or an RFC 3339
/// timestamp. Returns Unix seconds.
pub fn parse_since(s: &str, now: f64) -> Result<f64, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_secs_f64());
    }
    crate::time::parse_rfc3339(s)
        .ok_or_else(|| format!("--since {s:?}: expected a duration (2h, 30m, 7d) or an RFC 3339 timestamp"))
}

fn time(ts: f64) -> String {
    humantime::format_rfc3339_seconds(crate::time::system_time(ts)).to_string()
}

fn clock(ts: f64) -> String {
    let t = time(ts);
    t.get(11..19).unwrap_or(&t).to_string()
}

/// Reads the journal entries at or after `since`.
pub fn load(path: &Path, since: Option<f64>) -> Result<(Vec<Entry>, usize), JournalError> {
    let (mut entries, warnings) = journal::read_from(path, 0)?;
    if let Some(since) = since {
        entries.retain(|e| e.ts >= since);
    }
    Ok((entries, warnings))
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut t: String = first.chars().take(200).collect();
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
    pub status: String,
    pub duplicate: bool,
}

/// One action's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResult {
    pub at: f64,
    pub action: String,
    pub description: String,
    pub result: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub duration_seconds: f64,
}

/// The effect check.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyResult {
    pub at: f64,
    pub result: String,
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
    pub kind: String,
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

/// The fold's bookkeeping: the incidents so far, the current occurrence of
/// each fingerprint and each plan's place.
#[derive(Default)]
struct Fold<'a> {
    incidents: Vec<Incident>,
    current: HashMap<String, usize>,
    plans: HashMap<String, (usize, usize)>,
    orphans: Vec<&'a Entry>,
    /// The alert pipeline's current silence (an incident of its own).
    pipeline: Option<usize>,
}

impl<'a> Fold<'a> {
    /// The incident of `fingerprint`: its occurrence starting at
    /// `starts_at` (`None`: whichever is current), created when new.
    fn incident(&mut self, alertname: &str, fingerprint: &str, starts_at: Option<&str>, at: f64) -> usize {
        match (self.current.get(fingerprint), starts_at) {
            (Some(&i), None) => return i,
            (Some(&i), Some(s)) if self.incidents[i].starts_at == s => return i,
            _ => {}
        }
        self.incidents
            .push(Incident::new(alertname, fingerprint, starts_at.unwrap_or(""), at));
        let i = self.incidents.len() - 1;
        self.current.insert(fingerprint.to_string(), i);
        i
    }

    fn add(&mut self, e: &'a Entry) {
        match &e.event {
            Event::Alert {
                alertname,
                status,
                fingerprint,
                starts_at,
                labels,
                summary,
                description,
                runbook_url,
                duplicate,
                ..
            } => {
                let i = self.incident(alertname, fingerprint, Some(starts_at), e.ts);
                let inc = &mut self.incidents[i];
                if !duplicate {
                    inc.labels = labels.clone();
                    inc.severity = labels.get("severity").cloned();
                    inc.summary = summary.clone().or(inc.summary.take());
                    inc.description = description.clone().or(inc.description.take());
                    inc.runbook_url = runbook_url.clone().or(inc.runbook_url.take());
                    if status == "resolved" && inc.resolved_at.is_none() {
                        inc.resolved_at = Some(e.ts);
                    }
                }
                inc.deliveries.push(Delivery {
                    at: e.ts,
                    status: status.clone(),
                    duplicate: *duplicate,
                });
            }
            Event::RefusedForeign {
                alertname,
                status,
                fingerprint,
                starts_at,
                names,
                identity,
                ..
            } => {
                let i = self.incident(alertname, fingerprint, Some(starts_at), e.ts);
                let names: Vec<String> = names.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let why = if names.is_empty() {
                    "names no host (not single-host mode)".to_string()
                } else {
                    format!("names another host ({})", code(&names.join(", ")))
                };
                self.incidents[i].refusals.push(format!(
                    "{} {status} refused: {why}; this host is {}",
                    clock(e.ts),
                    code(identity)
                ));
            }
            Event::Refused {
                alertname,
                fingerprint,
                rule,
                reason,
            } => {
                let i = self.incident(alertname, fingerprint, None, e.ts);
                self.incidents[i].refusals.push(format!(
                    "{} refused for rule {}: {}",
                    clock(e.ts),
                    code(rule),
                    one_line(reason)
                ));
            }
            Event::Decision {
                id,
                rule,
                target,
                alertname,
                fingerprint,
                mode,
                decision,
                reason,
                detail,
                actions,
                ..
            } => {
                let i = self.incident(alertname, fingerprint, None, e.ts);
                self.incidents[i].plans.push(Plan {
                    rule: rule.clone(),
                    target: target.clone(),
                    mode: mode.clone(),
                    decision: *decision,
                    reason: *reason,
                    detail: detail.clone(),
                    planned: actions.clone(),
                    ..Plan::follow_ups_of(id, e.ts)
                });
                self.plans.insert(id.clone(), (i, self.incidents[i].plans.len() - 1));
            }
            Event::Hold {
                rule,
                target,
                fingerprint,
                alertname,
                attempts,
            } => {
                let i = self.incident(alertname, fingerprint, None, e.ts);
                self.incidents[i].holds.push(Held {
                    at: e.ts,
                    rule: rule.clone(),
                    target: target.clone(),
                    attempts: *attempts,
                    cleared: None,
                });
            }
            Event::HoldCleared { target, by } => {
                for inc in self.incidents.iter_mut() {
                    for h in inc
                        .holds
                        .iter_mut()
                        .filter(|h| h.target == *target && h.cleared.is_none())
                    {
                        h.cleared = Some(Cleared {
                            at: e.ts,
                            by: by.clone(),
                        });
                    }
                }
            }
            Event::Pipeline(p) => self.pipeline(e, p),
            // A started process matters only when a crash interrupts its
            // plan: the `interrupted` outcome then names the survivors.
            Event::Spawned { .. } => {}
            // The pipeline's own notifications belong to no plan (no id).
            Event::Notified {
                id,
                channel,
                kind,
                ok,
                detail,
            } if id.is_empty() => {
                let i = match self.pipeline {
                    Some(i) => i,
                    None => {
                        self.incidents.push(Incident::new("alert pipeline", "", "", e.ts));
                        self.incidents.len() - 1
                    }
                };
                self.incidents[i].notifications.push(Notification {
                    at: e.ts,
                    channel: channel.clone(),
                    kind: kind.clone(),
                    ok: *ok,
                    detail: detail.clone(),
                });
            }
            Event::Action { id, .. }
            | Event::Verify { id, .. }
            | Event::Approved { id, .. }
            | Event::Evidence { id, .. }
            | Event::Notified { id, .. } => {
                let Some(&(i, p)) = self.plans.get(id.as_str()) else {
                    if !id.is_empty() {
                        self.orphans.push(e);
                    }
                    return;
                };
                follow(&mut self.incidents[i].plans[p], e);
            }
        }
    }
}

impl Fold<'_> {
    /// A silence of the alert pipeline is an incident: it opens with the
    /// `silent` event and is resolved by the `back` one.
    fn pipeline(&mut self, e: &Entry, p: &super::heartbeat::PipelineEvent) {
        use super::heartbeat::PipelineChange;
        // The last silence, unless it is over and a new one begins.
        let current = self
            .pipeline
            .filter(|&i| !(p.state == PipelineChange::Silent && self.incidents[i].resolved_at.is_some()));
        let i = match current {
            Some(i) => i,
            None => {
                let starts = crate::time::rfc3339_seconds(p.silent_since);
                let mut inc = Incident::new(&p.alertname, "", &starts, e.ts);
                inc.summary = Some(format!("alert pipeline silent (no {} heartbeat)", p.alertname));
                self.incidents.push(inc);
                self.incidents.len() - 1
            }
        };
        let inc = &mut self.incidents[i];
        inc.notes.push(format!("{} **{}**", clock(e.ts), one_line(&p.message)));
        if p.state == PipelineChange::Back {
            inc.resolved_at = Some(e.ts);
        }
        self.pipeline = Some(i);
    }
}

/// Adds a plan's follow-up event to it.
fn follow(plan: &mut Plan, e: &Entry) {
    match &e.event {
        Event::Action {
            action,
            description,
            result,
            detail,
            duration_seconds,
            ..
        } => plan.actions.push(ActionResult {
            at: e.ts,
            action: action.clone(),
            description: description.clone(),
            result: result.clone(),
            detail: detail.clone(),
            duration_seconds: *duration_seconds,
        }),
        Event::Verify { result, detail, .. } => {
            plan.verification = Some(VerifyResult {
                at: e.ts,
                result: result.clone(),
                detail: detail.clone(),
            })
        }
        Event::Approved { by, .. } => plan.approved_by = Some(by.clone()),
        Event::Evidence { stage, items, .. } => plan.evidence.push(Captured {
            at: e.ts,
            stage: *stage,
            items: items.clone(),
        }),
        Event::Notified {
            channel,
            kind,
            ok,
            detail,
            ..
        } => plan.notifications.push(Notification {
            at: e.ts,
            channel: channel.clone(),
            kind: kind.clone(),
            ok: *ok,
            detail: detail.clone(),
        }),
        _ => {}
    }
}

/// Folds journal entries (oldest first) into incidents, oldest first; the
/// follow-ups whose decision lies before the window are returned apart.
pub fn build(entries: &[Entry]) -> (Vec<Incident>, Vec<&Entry>) {
    let mut f = Fold::default();
    for e in entries {
        f.add(e);
    }
    for inc in &mut f.incidents {
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
            next.push(format!("approve: hostmedic approve {}", p.id));
        }
        for h in &held {
            next.push(format!("once fixed: hostmedic clear-hold {}", h.target));
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

/// Renders the journal's incidents as markdown, grouped by the day each
/// started; `open` keeps those not resolved.
pub fn markdown(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize) -> String {
    render(entries, source, since, warnings, false)
}

/// [`markdown`] of the incidents not resolved (`--open`).
pub fn markdown_open(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize) -> String {
    render(entries, source, since, warnings, true)
}

fn render(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize, open: bool) -> String {
    let (mut incidents, orphans) = build(entries);
    if open {
        incidents = open_only(incidents);
    }
    let mut out = String::new();
    let _ = writeln!(out, "# hostmedic incident log\n");
    let open_n = incidents.iter().filter(|i| i.state != State::Resolved).count();
    let _ = writeln!(
        out,
        "Journal `{source}`, {} entries{}: {} incident(s){}, {open_n} not resolved.{}\n",
        entries.len(),
        since.map(|s| format!(" since {}", time(s))).unwrap_or_default(),
        incidents.len(),
        if open { " shown (--open)" } else { "" },
        if warnings > 0 {
            format!(" {warnings} unreadable line(s) skipped (torn write after a crash).")
        } else {
            String::new()
        }
    );
    let mut day = String::new();
    for inc in &incidents {
        let t = time(inc.first_seen);
        if t.get(..10) != Some(day.as_str()) {
            day = t.get(..10).unwrap_or("").to_string();
            let _ = writeln!(out, "## {day}\n");
        }
        incident(&mut out, inc);
    }
    if !open && !orphans.is_empty() {
        let _ = writeln!(out, "## Follow-ups of decisions before the window\n");
        for p in orphan_plans(&orphans) {
            let _ = writeln!(out, "- [{}]", p.id);
            plan_lines(&mut out, &p);
        }
    }
    out
}

/// The follow-ups whose decision is not in the entries, gathered per plan
/// id (first seen first), each under a plan without a decision.
fn orphan_plans(orphans: &[&Entry]) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    for e in orphans {
        let Some(id) = plan_id(&e.event) else { continue };
        let i = match plans.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                plans.push(Plan::follow_ups_of(id, e.ts));
                plans.len() - 1
            }
        };
        follow(&mut plans[i], e);
    }
    plans
}

fn plan_id(e: &Event) -> Option<&str> {
    match e {
        Event::Action { id, .. }
        | Event::Verify { id, .. }
        | Event::Approved { id, .. }
        | Event::Evidence { id, .. }
        | Event::Notified { id, .. } => Some(id),
        _ => None,
    }
}

fn incident(out: &mut String, inc: &Incident) {
    let state = match (inc.state, inc.resolved_at) {
        (State::Resolved, Some(at)) => format!("resolved at {}", time(at)),
        (s, _) => s.as_str().to_string(),
    };
    let _ = writeln!(
        out,
        "### {} {} — {} — **{state}**\n",
        clock(inc.first_seen),
        inc.alertname,
        inc.severity.as_deref().unwrap_or("no severity"),
    );
    if let Some(s) = &inc.summary {
        let _ = writeln!(out, "**What happened**: {}\n", one_line(s));
    }
    if let Some(d) = &inc.description {
        for l in d.lines().filter(|l| !l.trim().is_empty()).take(12) {
            let _ = writeln!(out, "> {}", l.trim());
        }
        out.push('\n');
    }
    let labels: Vec<String> = inc
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut dups = 0;
    for d in &inc.deliveries {
        if d.duplicate {
            dups += 1;
            continue;
        }
        let _ = writeln!(
            out,
            "- {} **{}** {} {}{}",
            clock(d.at),
            inc.alertname,
            d.status,
            code(&labels.join(", ")),
            inc.summary
                .as_deref()
                .filter(|_| d.status == "firing")
                .map(|s| format!(" — {}", one_line(s)))
                .unwrap_or_default()
        );
    }
    if dups > 0 {
        let _ = writeln!(
            out,
            "- {dups} duplicate delivery(ies) (fingerprint {}), ignored",
            inc.fingerprint
        );
    }
    for r in &inc.refusals {
        let _ = writeln!(out, "- **{}** {r}", inc.alertname);
    }
    for n in &inc.notes {
        let _ = writeln!(out, "- {n}");
    }
    for n in &inc.notifications {
        let _ = writeln!(out, "- {}", notification_line(n));
    }
    for p in &inc.plans {
        plan(out, p);
    }
    for h in &inc.holds {
        let _ = writeln!(
            out,
            "- {} **remediation exhausted**: {} held after {} attempt(s) (rule {}, alert {}); escalated{}",
            clock(h.at),
            code(&h.target),
            h.attempts,
            code(&h.rule),
            inc.alertname,
            h.cleared
                .as_ref()
                .map(|c| format!("; hold cleared by {} at {}", c.by, clock(c.at)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "- **State**: {state}");
    if !inc.follow_up.is_empty() {
        let _ = writeln!(out, "- **Follow-up**:");
        for f in &inc.follow_up {
            let _ = writeln!(out, "  - {}", code(f));
        }
    }
    out.push('\n');
}

fn plan(out: &mut String, p: &Plan) {
    let what = match (p.decision, p.reason) {
        (Decision::Act, _) => format!("acting: {}", p.planned.join("; ")),
        (Decision::DryRun, _) => format!("dry run, would run: {}", p.planned.join("; ")),
        (Decision::PendingApproval, _) => format!(
            "waiting for approval (`hostmedic approve {}`): {}",
            p.id,
            p.planned.join("; ")
        ),
        (Decision::Skip, Some(r)) if !p.detail.is_empty() => {
            format!("skipped ({}: {})", r.as_str().replace('_', " "), p.detail)
        }
        (Decision::Skip, Some(r)) => format!("skipped ({})", r.as_str().replace('_', " ")),
        (Decision::Skip, None) => "skipped".into(),
    };
    let _ = writeln!(
        out,
        "- {} rule {} ({}) on {} [{}]: {}",
        clock(p.at),
        code(&p.rule),
        p.mode,
        code(&p.target),
        p.id,
        one_line(&what)
    );
    plan_lines(out, p);
}

/// What followed a plan's decision, one indented line (or block) each.
fn plan_lines(out: &mut String, p: &Plan) {
    if let Some(by) = &p.approved_by {
        let _ = writeln!(out, "  - approved by {by}");
    }
    for c in p.evidence.iter().filter(|c| c.stage == Stage::Before) {
        evidence(out, c);
    }
    for a in &p.actions {
        let _ = writeln!(
            out,
            "  - {} {}: **{}** ({:.2} s){}",
            clock(a.at),
            a.description,
            a.result,
            a.duration_seconds,
            sep_detail(&a.detail)
        );
    }
    if let Some(v) = &p.verification {
        let _ = writeln!(
            out,
            "  - {} verification: **{}**{}",
            clock(v.at),
            v.result.replace('_', " "),
            sep_detail(&v.detail)
        );
    }
    for c in p.evidence.iter().filter(|c| c.stage == Stage::Verification) {
        evidence(out, c);
    }
    for n in &p.notifications {
        let _ = writeln!(out, "  - {}", notification_line(n));
    }
}

fn notification_line(n: &Notification) -> String {
    format!(
        "{} {} notification to {}: {}{}",
        clock(n.at),
        n.kind,
        n.channel,
        if n.ok { "sent" } else { "FAILED" },
        if n.ok { String::new() } else { sep_detail(&n.detail) }
    )
}

fn sep_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" — {}", one_line(detail))
    }
}

fn evidence(out: &mut String, c: &Captured) {
    let _ = writeln!(out, "  - {} evidence {}:", clock(c.at), c.stage.heading());
    for item in &c.items {
        let facts: Vec<String> = item.facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "    - {} {}", code(&item.subject), facts.join(", "));
        for e in &item.errors {
            let _ = writeln!(out, "      - not read: {}", one_line(e));
        }
        for s in item.sections.iter().filter(|s| !s.lines.is_empty()) {
            let _ = writeln!(out, "      - {}:\n\n        ```text", s.title);
            for l in &s.lines {
                let _ = writeln!(out, "        {}", l.replace("```", "` ` `"));
            }
            let _ = writeln!(out, "        ```\n");
        }
        if item.truncated_bytes > 0 {
            let _ = writeln!(out, "      - ({} bytes cut to fit the limits)", item.truncated_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, ts: f64, event: Event) -> Entry {
        Entry { seq, ts, event }
    }

    fn alert(status: &str, fp: &str, alertname: &str, duplicate: bool) -> Event {
        Event::Alert {
            key: format!("{fp}-{status}"),
            alertname: alertname.into(),
            status: status.into(),
            fingerprint: fp.into(),
            starts_at: "2026-12-01T12:00:00Z".into(),
            labels: [("severity", "critical"), ("unit", "worker.service")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            summary: Some("worker.service is crash-looping".into()),
            description: Some("It restarted 5 times in 2 minutes.".into()),
            runbook_url: Some("docs/runbooks.md#hostmedicunitcrashlooping".into()),
            receiver: "hostmedic".into(),
            duplicate,
            received: None,
        }
    }

    fn decision(id: &str, fp: &str, decision: Decision) -> Event {
        Event::Decision {
            id: id.into(),
            rule: "unit-crash-loop".into(),
            target: "systemd:system:worker.service".into(),
            alertname: "HostmedicUnitCrashLooping".into(),
            fingerprint: fp.into(),
            mode: "auto".into(),
            decision,
            reason: None,
            detail: String::new(),
            actions: vec!["systemd.stop systemd:system:worker.service".into()],
            alert: None,
        }
    }

    fn journal() -> Vec<Entry> {
        let mut item = Item::new("systemd:system:worker.service", "unit");
        item.fact("ExecMainStatus", 3);
        item.section(
            "journal",
            vec!["2026-12-01T12:00:01+0000 run.sh[7]: ModuleNotFoundError: No module named 'feeds'".into()],
            true,
        );
        item.look_further = "journalctl -u worker.service -n 50".into();
        let fp = "f1";
        vec![
            entry(1, 100.0, alert("firing", fp, "HostmedicUnitCrashLooping", false)),
            entry(2, 100.0, decision("a1", fp, Decision::Act)),
            entry(
                3,
                100.1,
                Event::Evidence {
                    id: "a1".into(),
                    stage: Stage::Before,
                    items: vec![item],
                },
            ),
            entry(
                4,
                100.2,
                Event::Action {
                    id: "a1".into(),
                    rule: "unit-crash-loop".into(),
                    target: "systemd:system:worker.service".into(),
                    index: 0,
                    action: "systemd.stop".into(),
                    description: "systemd.stop systemd:system:worker.service".into(),
                    result: "ok".into(),
                    detail: String::new(),
                    duration_seconds: 0.1,
                },
            ),
            entry(
                5,
                101.0,
                Event::Verify {
                    id: "a1".into(),
                    rule: "unit-crash-loop".into(),
                    target: "systemd:system:worker.service".into(),
                    result: "verified".into(),
                    detail: String::new(),
                },
            ),
            entry(6, 102.0, alert("firing", fp, "HostmedicUnitCrashLooping", true)),
            entry(7, 160.0, alert("resolved", fp, "HostmedicUnitCrashLooping", false)),
            entry(8, 200.0, alert("firing", "f2", "Runaway", false)),
            entry(9, 200.0, decision("a2", "f2", Decision::PendingApproval)),
        ]
    }

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
        for want in [
            "HostmedicUnitCrashLooping — critical — **resolved at 1970-01-01T00:02:40Z**",
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
    fn follow_ups_of_a_decision_before_the_window_are_listed_apart() {
        let entries: Vec<Entry> = journal().into_iter().filter(|e| e.seq >= 3 && e.seq <= 5).collect();
        let (incidents, orphans) = build(&entries);
        assert!(incidents.is_empty());
        assert_eq!(orphans.len(), 3);
        let md = markdown(&entries, "j", Some(100.1), 0);
        let tail = md.split("## Follow-ups of decisions before the window").nth(1).unwrap();
        assert!(tail.contains("- [a1]"), "{md}");
        assert!(
            tail.contains("evidence before acting:") && tail.contains("ModuleNotFoundError"),
            "{md}"
        );
        assert!(tail.contains("verification: **verified**"), "{md}");
    }

    #[test]
    fn a_pipeline_silence_is_an_incident_resolved_when_it_is_back() {
        use crate::receiver::heartbeat::{PipelineChange, PipelineEvent};
        let ev = |state, message: &str| {
            Event::Pipeline(PipelineEvent {
                state,
                alertname: "Watchdog".into(),
                silent_since: 50.0,
                last_heartbeat: Some(50.0),
                message: message.into(),
            })
        };
        let told = |kind: &str| Event::Notified {
            id: String::new(),
            channel: "sink".into(),
            kind: kind.into(),
            ok: true,
            detail: String::new(),
        };
        let entries = vec![
            entry(
                1,
                400.0,
                ev(PipelineChange::Silent, "alert pipeline silent since 00:00:50: down?"),
            ),
            entry(2, 400.1, told("pipeline_silent")),
            entry(3, 900.0, ev(PipelineChange::Back, "alert pipeline back")),
            entry(4, 900.1, told("pipeline_back")),
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

    #[test]
    fn since_accepts_durations_and_timestamps() {
        assert_eq!(parse_since("1h", 7200.0).unwrap(), 3600.0);
        assert_eq!(parse_since("1970-01-01T00:01:00Z", 0.0).unwrap(), 60.0);
        assert!(parse_since("last tuesday", 0.0).is_err());
    }
}

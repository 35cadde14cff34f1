//! Evidence captured with every incident: when a rule acts, asks for
//! approval or escalates, the receiver records *why*, in the target's own
//! words, before acting and again at verification — a unit's last journal
//! lines and its Result/ExecMainStatus/NRestarts, a container's last log
//! lines, state and failing health-check output, a process's command line,
//! user, runtime, CPU and owner, an LFS repository's offending objects with
//! their paths, a watched path's size history, a journal directory's
//! disk use and largest files.
//!
//! One file per subject kind ([`unit`](mod@unit), [`container`], [`process`], [`lfs`],
//! [`path`], [`journal`]) reads it; this file decides what the subjects of an incident
//! are ([`subjects`]), captures them concurrently, each under
//! `receiver.evidence.timeout`, and bounds the result: every string is
//! redacted first ([`redact`]), then each item is cut to `max_item_bytes`
//! and the whole capture to `max_incident_bytes` (oldest log lines and
//! the least important list entries go first). A subject that cannot be
//! read is reported as such in its item (`errors`), never as a failure of
//! the remediation. [`render`] formats a capture as plain text for the
//! notification channels and `hostmedic incidents`.

pub mod config;
pub mod container;
pub mod journal;
pub mod lfs;
pub mod path;
pub mod process;
/// The redaction moved to the shared leaf [`crate::redact`] (the processes
/// collector and the kill action use it too); its old path stays.
pub use crate::redact;
pub mod unit;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use config::{Capture, EvidenceConfig};
pub use redact::Redactor;

use crate::actions::{ActionEnv, Alert, Manager, Resolved, target};
use crate::observed::Observed;

/// When a capture was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Before the actions ran (or with the approval request / escalation).
    Before,
    /// After the verification (or after the actions, when nothing verifies).
    Verification,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Before => "before",
            Stage::Verification => "verification",
        }
    }

    /// As a heading: "before acting", "at verification".
    pub fn heading(self) -> &'static str {
        match self {
            Stage::Before => "before acting",
            Stage::Verification => "at verification",
        }
    }
}

/// A titled list of lines (journal lines, container logs, health-check
/// output, objects over the limit, size history).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
    /// Log-like (newest last): trimming drops the oldest lines first;
    /// otherwise the list is most important first and its end is dropped.
    #[serde(skip)]
    pub newest_last: bool,
}

/// What was captured about one subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The subject as the journal names targets (`systemd:system:worker.service`,
    /// `docker:web`, `pid:4242`, `lfs:/srv/backup`, `path:app-wal`).
    pub subject: String,
    /// `unit`, `container`, `process`, `lfs`, `path` or `journal`.
    pub kind: String,
    /// Named facts (`ActiveState`, `ExecMainStatus`, `OOMKilled`, `user`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// What could not be read (the rest is what could).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The command an operator runs to look further.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub look_further: String,
    /// Bytes cut to fit the limits (0: complete).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated_bytes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Item {
    pub fn new(subject: impl Into<String>, kind: &str) -> Item {
        Item {
            subject: subject.into(),
            kind: kind.to_string(),
            ..Item::default()
        }
    }

    pub fn fact(&mut self, name: &str, value: impl ToString) {
        self.facts.insert(name.to_string(), value.to_string());
    }

    pub fn section(&mut self, title: &str, lines: Vec<String>, newest_last: bool) {
        self.sections.push(Section {
            title: title.to_string(),
            lines,
            newest_last,
        });
    }

    /// Bytes of text the item carries.
    pub fn size(&self) -> usize {
        self.facts.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + self
                .sections
                .iter()
                .map(|s| s.title.len() + s.lines.iter().map(|l| l.len() + 1).sum::<usize>())
                .sum::<usize>()
            + self.errors.iter().map(String::len).sum::<usize>()
            + self.look_further.len()
    }

    /// Redacts every string an item carries that comes from the subject.
    fn redact(&mut self, r: &Redactor) {
        for v in self.facts.values_mut() {
            *v = r.redact(v);
        }
        for s in &mut self.sections {
            for l in &mut s.lines {
                *l = r.redact(l);
            }
        }
        for e in &mut self.errors {
            *e = r.redact(e);
        }
    }

    /// Cuts the item to `max` bytes: each line to [`LINE_MAX`], then whole
    /// lines from the largest section (its oldest, or its last entries),
    /// and at last the facts' values. Records how much was cut.
    fn bound(&mut self, max: usize) {
        let before = self.size();
        for s in &mut self.sections {
            for l in &mut s.lines {
                cut(l, LINE_MAX);
            }
        }
        while self.size() > max {
            let Some(s) = self
                .sections
                .iter_mut()
                .filter(|s| !s.lines.is_empty())
                .max_by_key(|s| s.lines.iter().map(String::len).sum::<usize>())
            else {
                break;
            };
            if s.newest_last {
                s.lines.remove(0);
            } else {
                s.lines.pop();
            }
        }
        if self.size() > max {
            for v in self.facts.values_mut() {
                cut(v, 80);
            }
            for e in &mut self.errors {
                cut(e, 120);
            }
        }
        self.truncated_bytes += before.saturating_sub(self.size());
    }
}

/// Longest line kept in a section.
pub const LINE_MAX: usize = 400;

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

pub use crate::actions::Subject;

/// Most subjects one capture reads (a shed-load lists many).
pub const MAX_SUBJECTS: usize = 6;

/// The subjects of an incident: the targets of its actions (a unit, a
/// container, a process; a shed-load's units and containers), then what the
/// alert's labels name that the actions did not — `unit` (with `manager`),
/// `container`, `pid`, `repo` (an LFS repository), `watch` (a watched
/// path) — so notify-only rules get evidence too. Label values pass the
/// same target grammars as the actions' (a value that does not is ignored).
pub fn subjects(alert: &Alert, targets: &[Resolved]) -> Vec<Subject> {
    let mut out: Vec<Subject> = Vec::new();
    let mut add = |s: Subject| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for s in targets.iter().flat_map(Resolved::subjects) {
        add(s);
    }
    let l = &alert.labels;
    if let Some(u) = l.get("unit").filter(|u| target::validate_unit_name(u).is_ok()) {
        let manager = l
            .get("manager")
            .and_then(|m| Manager::parse(m).ok())
            .unwrap_or(Manager::System);
        add(Subject::Unit {
            manager,
            unit: u.clone(),
        });
    }
    if let Some(c) = l.get("container").filter(|c| target::validate_container(c).is_ok()) {
        add(Subject::Container(c.clone()));
    }
    if let Some(p) = l.get("pid").and_then(|p| target::validate_pid(p).ok()) {
        add(Subject::Process(p));
    }
    if let Some(r) = l.get("repo").filter(|r| r.starts_with('/')) {
        add(Subject::Lfs(r.clone()));
    }
    if let Some(w) = l.get("watch").filter(|w| !w.is_empty()) {
        add(Subject::Path(w.clone()));
    }
    out.truncate(MAX_SUBJECTS);
    out
}

impl Capture {
    /// Captures every subject concurrently (each under the configured
    /// timeout), redacts and bounds the items. Empty when evidence is off
    /// or there is nothing to capture. LFS and path subjects are read from
    /// what the collectors published to `observed`.
    pub async fn capture(&self, env: &ActionEnv, observed: &Observed, subjects: &[Subject]) -> Vec<Item> {
        if !self.enabled || subjects.is_empty() {
            return Vec::new();
        }
        let reads = subjects.iter().map(|s| async move {
            match tokio::time::timeout(self.timeout, self.read(env, observed, s)).await {
                Ok(item) => item,
                Err(_) => {
                    let mut item = Item::new(s.key(), kind(s));
                    item.errors.push(format!(
                        "not captured within {}",
                        humantime::format_duration(self.timeout)
                    ));
                    item
                }
            }
        });
        let mut items = futures::future::join_all(reads).await;
        self.finish(&mut items);
        items
    }

    async fn read(&self, env: &ActionEnv, observed: &Observed, s: &Subject) -> Item {
        match s {
            Subject::Unit { manager, unit } => unit::capture(self, env, manager, unit).await,
            Subject::Container(c) => container::capture(self, env, c).await,
            Subject::Process(p) => {
                // procfs reads block: off the runtime.
                let (env, pid) = (env.clone(), *p);
                tokio::task::spawn_blocking(move || process::capture(&env, pid))
                    .await
                    .unwrap_or_else(|e| {
                        let mut item = Item::new(s.key(), kind(s));
                        item.errors.push(format!("capture task: {e}"));
                        item
                    })
            }
            Subject::Lfs(r) => lfs::capture(observed, r),
            Subject::Path(w) => path::capture(observed, w),
            Subject::Journal(d) => journal::capture(d).await,
        }
    }

    /// Redaction first, then the per-item and per-incident bounds.
    pub fn finish(&self, items: &mut [Item]) {
        if items.is_empty() {
            return;
        }
        let share = (self.max_incident_bytes / items.len()).min(self.max_item_bytes);
        for item in items.iter_mut() {
            item.redact(&self.redactor);
            item.bound(share);
        }
    }
}

/// Keeps, in the log-like sections of `after`, only the lines not already
/// in the same subject's same section of `before` (a capture at
/// verification then shows what happened since acting, not the same lines
/// again); a section left empty goes.
pub fn only_new(before: &[Item], after: &mut [Item]) {
    for item in after.iter_mut() {
        let Some(old) = before.iter().find(|b| b.subject == item.subject) else {
            continue;
        };
        for s in item.sections.iter_mut().filter(|s| s.newest_last) {
            let Some(seen) = old.sections.iter().find(|o| o.title == s.title) else {
                continue;
            };
            s.lines.retain(|l| !seen.lines.contains(l));
            s.title = format!("{} (new since before acting)", s.title);
        }
        item.sections.retain(|s| !s.lines.is_empty());
    }
}

fn kind(s: &Subject) -> &'static str {
    match s {
        Subject::Unit { .. } => "unit",
        Subject::Container(_) => "container",
        Subject::Process(_) => "process",
        Subject::Lfs(_) => "lfs",
        Subject::Path(_) => "path",
        Subject::Journal(_) => "journal",
    }
}

/// Evidence bytes one notification carries: what fits the smallest
/// channel limit (Telegram's and ntfy's 4096) beside a headline of 1 KiB.
pub const NOTIFY_BUDGET: usize = 3072;

/// [`render`] within `budget` bytes: the items are cut as [`Item`]'s bounds
/// cut them (oldest log lines first, then the ends of lists), so the newest
/// lines survive — where cutting the text would drop them.
pub fn render_bounded(items: &[Item], stage: Stage, budget: usize) -> String {
    let mut share = budget / items.len().max(1);
    loop {
        let mut cut: Vec<Item> = items.to_vec();
        for item in &mut cut {
            item.bound(share);
        }
        let text = render(&cut, stage);
        if text.len() <= budget || share < 64 {
            return text;
        }
        share = share * 9 / 10;
    }
}

/// Plain text of a capture, for notifications and the incident log:
/// per item a header line with its facts, then its sections indented,
/// its errors and the command to look further.
pub fn render(items: &[Item], stage: Stage) -> String {
    let mut out = String::new();
    if items.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Evidence ({}):", stage.heading());
    for item in items {
        let facts: Vec<String> = item.facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "[{}] {}", item.subject, facts.join(", "));
        for s in &item.sections {
            if s.lines.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {}:", s.title);
            for l in &s.lines {
                let _ = writeln!(out, "    {l}");
            }
        }
        for e in &item.errors {
            let _ = writeln!(out, "  (not read: {e})");
        }
        if item.truncated_bytes > 0 {
            let _ = writeln!(out, "  ({} bytes cut to fit the limits)", item.truncated_bytes);
        }
        if !item.look_further.is_empty() {
            let _ = writeln!(out, "  look further: {}", item.look_further);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            alertname: "A".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Alert::default()
        }
    }

    #[test]
    fn subjects_from_targets_then_labels_valid_only() {
        let spec = crate::actions::ActionSpec::from(crate::actions::SystemdAction {
            op: crate::actions::SystemdOp::Restart,
            unit: "{{ labels.unit }}".into(),
            manager: "user:medic".into(),
        });
        let a = alert(&[
            ("unit", "bot.service"),
            ("manager", "user:medic"),
            ("container", "web"),
            ("pid", "1"),
            ("repo", "/srv/backup"),
            ("watch", "app-wal"),
        ]);
        let t = spec
            .compile("test.action", &crate::actions::Context::default())
            .expect("valid spec")
            .resolve(&a)
            .unwrap();
        let got: Vec<String> = subjects(&a, &[t]).iter().map(Subject::key).collect();
        assert_eq!(
            got,
            [
                "systemd:user:medic:bot.service",
                "docker:web",
                "lfs:/srv/backup",
                "path:app-wal"
            ]
        );
        let bad = alert(&[("unit", "x; rm -rf /"), ("container", "$(id)"), ("repo", "relative")]);
        assert!(subjects(&bad, &[]).is_empty());
    }

    #[test]
    fn verification_capture_keeps_only_new_log_lines() {
        let mut before = Item::new("docker:web", "container");
        before.section("logs", vec!["a".into(), "b".into()], true);
        before.section("objects", vec!["x".into()], false);
        let mut after = before.clone();
        after.sections[0].lines.push("c".into());
        let mut unchanged = Item::new("docker:web", "container");
        unchanged.section("logs", vec!["a".into()], true);
        let mut other = Item::new("pid:7", "process");
        other.section("logs", vec!["a".into()], true);
        let mut all = [after, other];
        only_new(&[before.clone()], &mut all);
        assert_eq!(all[0].sections[0].lines, ["c"]);
        assert_eq!(all[0].sections[0].title, "logs (new since before acting)");
        assert_eq!(all[0].sections[1].lines, ["x"], "lists are kept whole");
        assert_eq!(all[1].sections[0].lines, ["a"], "another subject is untouched");
        let mut same = [unchanged];
        only_new(&[before], &mut same);
        assert!(same[0].sections.is_empty());
    }

    #[test]
    fn notification_text_keeps_the_newest_lines_within_its_budget() {
        let mut item = Item::new("systemd:system:w.service", "unit");
        item.fact("ExecMainStatus", 3);
        item.section(
            "journal",
            (0..300).map(|i| format!("line {i:03} of the log")).collect(),
            true,
        );
        let text = render_bounded(&[item], Stage::Before, NOTIFY_BUDGET);
        assert!(text.len() <= NOTIFY_BUDGET, "{}", text.len());
        assert!(
            text.contains("line 299 of the log") && !text.contains("line 000"),
            "{text}"
        );
        assert!(text.contains("ExecMainStatus=3") && text.contains("bytes cut to fit"));
    }

    #[test]
    fn bounds_drop_oldest_log_lines_and_last_list_entries() {
        let mut item = Item::new("docker:web", "container");
        item.fact("State", "running");
        item.section("logs", (0..100).map(|i| format!("log line {i:03}")).collect(), true);
        item.section("objects", (0..100).map(|i| format!("object {i:03}")).collect(), false);
        item.bound(600);
        assert!(item.size() <= 600, "{}", item.size());
        let logs = &item.sections[0].lines;
        assert_eq!(logs.last().unwrap(), "log line 099", "newest kept");
        assert!(!logs.contains(&"log line 000".to_string()), "oldest dropped");
        let objs = &item.sections[1].lines;
        assert_eq!(objs[0], "object 000", "most important kept");
        assert!(item.truncated_bytes > 0);
        let mut long = "é".repeat(1000);
        cut(&mut long, 11);
        assert!(long.len() <= 11 && long.ends_with('…'));
    }

    #[test]
    fn incident_limit_is_shared_and_redaction_runs_first() {
        let cfg = EvidenceConfig {
            max_item_bytes: 1000,
            max_incident_bytes: 1000,
            ..EvidenceConfig::default()
        };
        let cap = cfg.compile("e").unwrap();
        let mut items: Vec<Item> = (0..2)
            .map(|n| {
                let mut i = Item::new(format!("pid:{}", n + 2), "process");
                i.section(
                    "log",
                    (0..200).map(|k| format!("{k} password=hunter2-{n}")).collect(),
                    true,
                );
                i
            })
            .collect();
        cap.finish(&mut items);
        let total: usize = items.iter().map(Item::size).sum();
        assert!(total <= 1000, "{total}");
        let text = render(&items, Stage::Before);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("password=[REDACTED]"), "{text}");
        assert!(text.starts_with("Evidence (before acting):"));
    }
}

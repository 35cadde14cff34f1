//! The landing page (`/`): plain HTML (no script, minimal CSS, refreshed
//! every [`REFRESH_SECONDS`] by the browser) that answers "is this host OK,
//! and what needs a person?" first. One function per section, in page
//! order: the verdict line ([`verdict`]: a silent alert pipeline, pending
//! approvals, holds, failed actions, failing collectors, each counted and
//! linked to its section, or "OK — nothing needs you"), the links, the
//! alert pipeline's heartbeat, the alerts firing with what hostmedic did
//! about each, pending approvals and holds (with the receiver on), the host
//! at a glance (the last collection's [`HostSummary`]; "not watched" where a
//! collector has no source or is off), grown cooldowns (backoff) and the
//! rules in a quiet window, and last the collectors' table. Everything with the
//! receiver is rendered from the same status document `/api/v1/status`
//! serves, so the page and the JSON cannot disagree. Times are absolute
//! (in the zone of `TZ`, named) with their age ("12 s ago"); every text is
//! HTML-escaped ([`html_escape`]).

use std::fmt::Write as _;
use std::time::Duration;

use crate::collector::CollectorStatus;
use crate::hostsummary::HostSummary;
use crate::receiver::journal::Decision;
use crate::receiver::status::{Firing, StatusDocument};

/// Escapes text for HTML element content and attribute values (control
/// characters first, as everywhere alert text is shown: [`crate::text`]).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::text::escape(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What replaces the receiver's sections for a request that the status API
/// would refuse (`Receiver::may_read_status`).
pub const DETAILS_HIDDEN: &str = "<p class=\"details-hidden\">details hidden: authenticate \
(the receiver's credentials, as for <a href=\"api/v1/status\">/api/v1/status</a>) to see the alert \
pipeline, firing alerts, holds and pending approvals</p>\n";

/// How often the browser reloads the page (`<meta http-equiv="refresh">`).
pub const REFRESH_SECONDS: u32 = 10;

/// Results of an action or verification that did not help: a person looks.
const FAILED: &[&str] = &["failed", "refused", "interrupted", "not_helped"];

/// The moment the page is rendered and the zone its times are shown in.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Unix seconds.
    pub now: f64,
    pub tz: jiff::tz::TimeZone,
}

impl Clock {
    /// Now, in the zone of `TZ` (else `/etc/localtime`, else UTC).
    pub fn system() -> Clock {
        Clock {
            now: crate::time::now(),
            tz: jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// `ts` as `2026-12-07 09:52:07 UTC`.
    fn time(&self, ts: f64) -> String {
        match jiff::Timestamp::from_millisecond((ts * 1000.0).round() as i64) {
            Ok(t) => t.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string(),
            Err(_) => crate::time::rfc3339_seconds(ts),
        }
    }

    /// How long ago `ts` was: `12 s ago`, `3 min ago`, `5 h ago`, `2 d ago`
    /// (`in 3 min` ahead of this clock).
    fn ago(&self, ts: f64) -> String {
        let d = self.now - ts;
        let a = d.abs().round() as u64;
        let span = match a {
            0..60 => format!("{a} s"),
            60..3600 => format!("{} min", a / 60),
            3600..172_800 => format!("{} h", a / 3600),
            _ => format!("{} d", a / 86_400),
        };
        if d < -1.0 {
            format!("in {span}")
        } else {
            format!("{span} ago")
        }
    }

    /// `ts` absolute with its age: `2026-12-07 09:52:07 UTC (12 s ago)`.
    fn at(&self, ts: f64) -> String {
        format!("{} ({})", self.time(ts), self.ago(ts))
    }

    /// [`Clock::at`] of an RFC 3339 text (Alertmanager's `startsAt`); the
    /// text as it came when it does not parse.
    fn at_text(&self, rfc3339: &str) -> String {
        crate::time::parse_rfc3339(rfc3339).map_or_else(|| rfc3339.to_string(), |t| self.at(t))
    }
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1u64 << 30) as f64)
}

fn percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
}

/// An `<h2>` with the id the verdict line links to.
fn heading(out: &mut String, id: &str, title: &str) {
    let _ = writeln!(out, "<h2 id=\"{id}\">{}</h2>", html_escape(title));
}

/// A table with a header row; `empty` replaces it when there are no rows.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", html_escape(empty));
        return;
    }
    out.push_str("<table>");
    if head.iter().any(|h| !h.is_empty()) {
        out.push_str("<tr>");
        for h in head {
            let _ = write!(out, "<th>{}</th>", html_escape(h));
        }
        out.push_str("</tr>");
    }
    out.push('\n');
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", html_escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn units(v: &[crate::hostsummary::Unit]) -> String {
    v.iter()
        .map(|u| format!("{} ({})", u.name, u.manager))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `collector`'s part of the summary tells nothing, or `None` when it
/// collected: an empty list then means "none", not "not looked at".
fn unwatched(h: &HostSummary, collector: &str) -> Option<&'static str> {
    let has = |v: &[String]| v.iter().any(|c| c == collector);
    if has(&h.watched) {
        None
    } else if has(&h.absent_sources) {
        Some("not watched (no source)")
    } else if has(&h.failing_sources) {
        Some("unknown (collector failing)")
    } else {
        Some("not watched (collector off)")
    }
}

/// The value of a fact `collector` provides: "none" when it watched and
/// found nothing, why not when it did not watch.
fn fact(h: &HostSummary, collector: &str, value: String) -> String {
    match unwatched(h, collector) {
        Some(why) => why.to_string(),
        None if value.is_empty() => "none".into(),
        None => value,
    }
}

/// Where the host summary comes from, or that it has not come yet.
fn host_origin(out: &mut String, c: &Clock, h: &HostSummary) {
    let from = if h.at_startup {
        "hostmedic's own collection at start (no scrape yet)"
    } else {
        "the last scrape"
    };
    let _ = writeln!(
        out,
        "<p class=\"muted\">From {} at {}.</p>",
        html_escape(from),
        html_escape(&c.at(h.scraped_at))
    );
}

/// The host section: load, memory, units, containers, what is not
/// watched, temperatures and disks.
pub fn host(out: &mut String, c: &Clock, h: Option<&HostSummary>) {
    heading(out, "host", "Host");
    let Some(h) = h else {
        out.push_str("<p>not collected yet (hostmedic collects once at start, then at each scrape)</p>\n");
        return;
    };
    host_origin(out, c, h);
    let mut facts: Vec<Vec<String>> = Vec::new();
    let load = h.load.as_ref().map(|l| {
        format!(
            "{:.2} / {:.2} / {:.2} over {} CPUs",
            l.load1_per_cpu, l.load5_per_cpu, l.load15_per_cpu, l.cpus
        )
    });
    facts.push(vec![
        "load per CPU (1m / 5m / 15m)".into(),
        fact(h, "host", load.unwrap_or_default()),
    ]);
    let mem = h.memory.as_ref().map(|m| {
        format!(
            "{} of {} ({})",
            gib(m.available_bytes),
            gib(m.total_bytes),
            percent(m.available_ratio)
        )
    });
    facts.push(vec![
        "memory available".into(),
        fact(h, "host", mem.unwrap_or_default()),
    ]);
    facts.push(vec!["failed units".into(), fact(h, "systemd", units(&h.failed_units))]);
    facts.push(vec![
        "unhealthy containers".into(),
        fact(h, "docker", h.unhealthy_containers.join(", ")),
    ]);
    facts.push(vec![
        "expected units missing".into(),
        fact(h, "systemd", units(&h.expected_units_missing)),
    ]);
    facts.push(vec![
        "expected units inactive".into(),
        fact(h, "systemd", units(&h.expected_units_inactive)),
    ]);
    if !h.absent_sources.is_empty() {
        facts.push(vec!["not watched (no source)".into(), h.absent_sources.join(", ")]);
    }
    if !h.failing_sources.is_empty() {
        facts.push(vec!["collectors failing".into(), h.failing_sources.join(", ")]);
    }
    table(out, &["", ""], &facts, "");
    temperatures(out, h);
    disks(out, h);
    for (list, n) in &h.omitted {
        let _ = writeln!(
            out,
            "<p>{n} more {} not shown.</p>",
            html_escape(&list.replace('_', " "))
        );
    }
}

fn temperatures(out: &mut String, h: &HostSummary) {
    out.push_str("<h3>Temperatures</h3>\n");
    if let Some(why) = unwatched(h, "hwmon") {
        let _ = writeln!(out, "<p>{}</p>", html_escape(why));
        return;
    }
    let thr = |v: Option<f64>| v.map(|c| format!("{c:.0} °C")).unwrap_or_else(|| "–".into());
    let rows: Vec<Vec<String>> = h
        .temperatures
        .iter()
        .map(|t| {
            let label = if t.label.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.label)
            };
            vec![
                format!("{}/{}{label}", t.chip, t.sensor),
                format!("{:.1} °C", t.celsius),
                thr(t.max_celsius),
                thr(t.crit_celsius),
                t.state.as_str().into(),
            ]
        })
        .collect();
    table(
        out,
        &["sensor", "now", "max", "crit", "state"],
        &rows,
        "no temperature sensors",
    );
}

fn disks(out: &mut String, h: &HostSummary) {
    out.push_str("<h3>Disks</h3>\n");
    if let Some(why) = unwatched(h, "host") {
        let _ = writeln!(out, "<p>{}</p>", html_escape(why));
        return;
    }
    let rows: Vec<Vec<String>> = h
        .filesystems
        .iter()
        .map(|f| {
            vec![
                f.mountpoint.clone(),
                format!("{} ({})", f.device, f.fstype),
                percent(f.used_ratio),
                format!("{} free of {}", gib(f.avail_bytes), gib(f.size_bytes)),
            ]
        })
        .collect();
    table(
        out,
        &["mount point", "device", "used", "space"],
        &rows,
        "no filesystems",
    );
}

/// An exec result's first line without the argv it starts with (the
/// target names it already): `["/bin/x"]: exit status 0` → `exit status 0`.
fn without_argv(line: &str) -> &str {
    if !line.starts_with("[\"") {
        return line;
    }
    line.find("\"]")
        .and_then(|i| line[i..].find(": ").map(|j| &line[i + j + 2..]))
        .unwrap_or(line)
}

/// The gist of an action's detail, at most 160 characters: its first line
/// and, when it carries the command's output (`stdout:` / `stderr:` blocks),
/// the first line of that output, which says more than "exit status 0".
fn short(detail: &str) -> String {
    let mut lines = detail.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = without_argv(lines.next().unwrap_or_default());
    let output = lines.find(|l| !(l.ends_with(':') && (l.starts_with("stdout") || l.starts_with("stderr"))));
    let line = match output {
        Some(o) => format!("{first}; {o}"),
        None => first.to_string(),
    };
    let mut t: String = line.chars().take(160).collect();
    if t.len() < line.len() {
        t.push('…');
    }
    t
}

/// Firing alerts whose plan's last result did not help.
fn failed_actions(st: &StatusDocument) -> usize {
    st.firing
        .iter()
        .filter(|a| {
            a.last_action
                .as_ref()
                .is_some_and(|l| FAILED.contains(&l.result.as_str()))
        })
        .count()
}

/// What needs a person, each `(anchor, text)`.
fn needs(c: &Clock, failing_collectors: usize, status: Option<&StatusDocument>) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if let Some(st) = status {
        let p = &st.pipeline;
        if p.silent && p.enabled {
            let since = p.silent_since.map(|t| format!(" since {}", c.at(t)));
            v.push((
                "pipeline",
                format!("alert pipeline SILENT{}", since.unwrap_or_default()),
            ));
        }
        let n = st.pending_approvals.len();
        if n > 0 {
            v.push(("approvals", plural(n, "pending approval", "pending approvals")));
        }
        let n = st.holds.len();
        if n > 0 {
            v.push((
                "holds",
                plural(n, "hold (remediation stopped)", "holds (remediation stopped)"),
            ));
        }
        let n = failed_actions(st);
        if n > 0 {
            v.push(("firing", plural(n, "failed action", "failed actions")));
        }
    }
    if failing_collectors > 0 {
        v.push((
            "collectors",
            plural(failing_collectors, "collector failing", "collectors failing"),
        ));
    }
    v
}

/// The verdict line, first on the page: what needs a person, each counted
/// and linked to its section, or that nothing does.
pub fn verdict(out: &mut String, c: &Clock, failing_collectors: usize, status: Option<&StatusDocument>) {
    let needs = needs(c, failing_collectors, status);
    if needs.is_empty() {
        let firing = status.map_or(0, |st| st.firing.len());
        let note = match (status, firing) {
            (None, _) => " (the receiver is off: no alerts are handled here)".to_string(),
            (Some(_), 0) => String::new(),
            (Some(_), 1) => " (1 alert firing, handled by hostmedic)".to_string(),
            (Some(_), n) => format!(" ({n} alerts firing, handled by hostmedic)"),
        };
        let _ = writeln!(
            out,
            "<p id=\"verdict\" class=\"verdict all-ok\"><strong>OK — nothing needs you</strong>{}</p>",
            html_escape(&note)
        );
        return;
    }
    let links: Vec<String> = needs
        .iter()
        .map(|(id, text)| format!("<a href=\"#{id}\">{}</a>", html_escape(text)))
        .collect();
    let _ = writeln!(
        out,
        "<p id=\"verdict\" class=\"verdict needs-you\"><strong>Needs you:</strong> {}</p>",
        links.join(" · ")
    );
}

/// The links under the verdict; the status API only with the receiver.
pub fn links(out: &mut String, receiver: bool) {
    out.push_str("<p class=\"links\"><a href=\"metrics\">metrics</a>");
    if receiver {
        out.push_str(" · <a href=\"api/v1/status\">status API (JSON)</a>");
    }
    let _ = writeln!(
        out,
        " · <a href=\"-/healthy\">health</a> · <a href=\"-/ready\">readiness</a> \
         <span class=\"muted\">(this page reloads every {REFRESH_SECONDS} s)</span></p>"
    );
}

/// The alert pipeline's heartbeat.
pub fn pipeline(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "pipeline", "Alert pipeline");
    let p = &st.pipeline;
    let last = p.last_heartbeat.map(|t| c.at(t)).unwrap_or_else(|| "none yet".into());
    let line = if !p.enabled {
        format!("dead-man's switch off; last {} heartbeat: {last}", p.alertname)
    } else if p.silent {
        format!(
            "SILENT since {}: no {} heartbeat; Prometheus or Alertmanager down?",
            p.silent_since.map(|t| c.at(t)).unwrap_or_default(),
            p.alertname
        )
    } else {
        format!("ok; last {} heartbeat: {last}", p.alertname)
    };
    let class = if p.silent { "failing" } else { "ok" };
    let _ = writeln!(out, "<p class=\"{class}\">{}</p>", html_escape(&line));
}

/// What hostmedic did about one firing alert: its last decision and the
/// last result of the plan it started.
fn did(c: &Clock, a: &Firing) -> String {
    let result = a.last_action.as_ref().map(|l| {
        let detail = short(&l.detail);
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        format!("{} {} ({}){detail}", l.action, l.result.replace('_', " "), c.ago(l.ts))
    });
    let Some(d) = &a.alert.decision else {
        return match a.alert.target {
            None => "nothing: no rule maps it".into(),
            Some(_) => "nothing yet".into(),
        };
    };
    let decided = c.ago(d.at);
    match d.decision {
        Decision::Act => result.unwrap_or_else(|| format!("acting (decided {decided}), no result yet")),
        Decision::DryRun => match result {
            Some(r) => format!("dry run, nothing ran: {r}"),
            None => format!("dry run, nothing ran (decided {decided})"),
        },
        Decision::PendingApproval => format!(
            "waiting for approval ({decided}): {}",
            crate::invocation::command(&format!("approve {}", crate::invocation::quote(&d.id)))
        ),
        Decision::Skip => {
            let why = d.reason.as_deref().unwrap_or_default().replace('_', " ");
            let last = result.map(|r| format!("; last result: {r}")).unwrap_or_default();
            format!("not acting: {why} ({decided}){last}")
        }
    }
}

/// The alerts firing, each with what hostmedic did about it.
pub fn firing(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "firing", "Alerts firing");
    let rows: Vec<Vec<String>> = st
        .firing
        .iter()
        .map(|a| {
            let f = &a.alert;
            vec![
                f.severity.clone(),
                f.name.clone(),
                c.at_text(&f.since),
                f.target.clone().unwrap_or_default(),
                f.summary.clone().unwrap_or_default(),
                did(c, a),
            ]
        })
        .collect();
    table(
        out,
        &["severity", "alert", "since", "target", "summary", "what hostmedic did"],
        &rows,
        "none",
    );
}

/// Pending approvals, each with the command that approves it.
pub fn approvals(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "approvals", "Pending approvals");
    let rows: Vec<Vec<String>> = st
        .pending_approvals
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.rule.clone(),
                a.target.clone(),
                a.alertname.clone(),
                c.at(a.at),
                crate::invocation::command(&format!("approve {}", crate::invocation::quote(&a.id))),
            ]
        })
        .collect();
    table(
        out,
        &["id", "rule", "target", "alert", "since", "approve with"],
        &rows,
        "none",
    );
}

/// Targets held after their budget ran out.
pub fn holds(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "holds", "Holds");
    let rows: Vec<Vec<String>> = st
        .holds
        .iter()
        .map(|(target, h)| {
            vec![
                target.clone(),
                h.rule.clone(),
                h.alertname.clone(),
                c.at(h.since),
                h.attempts.to_string(),
            ]
        })
        .collect();
    table(out, &["target", "rule", "alert", "since", "attempts"], &rows, "none");
}

/// Cooldowns grown by failed attempts.
pub fn backoff(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "backoff", "Grown cooldowns (backoff)");
    let rows: Vec<Vec<String>> = st
        .backoff
        .iter()
        .map(|(key, b)| {
            // The status document keys backoff by `rule|target`.
            let (rule, target) = key.split_once('|').unwrap_or((key.as_str(), ""));
            vec![
                target.to_string(),
                rule.to_string(),
                b.failures.to_string(),
                humantime::format_duration(Duration::from_secs(b.cooldown_seconds.round() as u64)).to_string(),
                c.at(b.until),
            ]
        })
        .collect();
    table(
        out,
        &["target", "rule", "failed attempts", "cooldown", "until"],
        &rows,
        "none",
    );
}

/// Rules a quiet window keeps from acting now.
pub fn quiet(out: &mut String, st: &StatusDocument) {
    heading(out, "quiet", "Quiet windows now");
    let rows: Vec<Vec<String>> = st
        .quiet
        .iter()
        .map(|q| vec![q.rule.clone(), q.window.clone(), q.timezone.clone().unwrap_or_default()])
        .collect();
    table(out, &["rule (not acting)", "window", "timezone"], &rows, "none");
}

/// The sections after the verdict and the links: what may need a person
/// (the receiver's pipeline, alerts, approvals, holds, when it runs), the
/// host, then the receiver's slower-moving state (backoff, quiet windows).
pub fn sections(c: &Clock, host_summary: Option<&HostSummary>, status: Option<&StatusDocument>) -> String {
    let mut out = String::new();
    if let Some(st) = status {
        pipeline(&mut out, c, st);
        firing(&mut out, c, st);
        approvals(&mut out, c, st);
        holds(&mut out, c, st);
    }
    host(&mut out, c, host_summary);
    if let Some(st) = status {
        backoff(&mut out, c, st);
        quiet(&mut out, st);
    }
    out
}

/// Collectors whose last collection failed with their source there.
fn failing(collectors: &[(&str, Option<CollectorStatus>)]) -> usize {
    collectors
        .iter()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| !s.success && s.source_present))
        .count()
}

/// The collectors' table: each one's last outcome.
pub fn collectors(out: &mut String, c: &Clock, collectors: &[(&str, Option<CollectorStatus>)]) {
    heading(out, "collectors", "Collectors");
    out.push_str("<table><tr><th>collector</th><th>status</th><th>detail</th><th>last collection</th></tr>\n");
    for (name, status) in collectors {
        let (state, detail) = match status {
            None => ("not collected yet", String::new()),
            Some(s) if s.success => ("ok", format!("{:.3} s", s.duration_seconds)),
            Some(s) if !s.source_present => ("source absent", s.error.clone().unwrap_or_default()),
            Some(s) => ("failing", s.error.clone().unwrap_or_default()),
        };
        let at = status.as_ref().map(|s| {
            let ts = s.at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            c.at(ts.as_secs_f64())
        });
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(name),
            state.replace(' ', "-"),
            state,
            html_escape(&detail),
            html_escape(&at.unwrap_or_default())
        );
    }
    out.push_str("</table>\n");
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;max-width:80em;color:#222}\
h1{font-size:1.4em;margin:0 0 .5em}h2{font-size:1.15em;margin:1.1em 0 .3em}p{margin:.3em 0}\
table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;vertical-align:top;border-bottom:1px solid #e4e4e4}\
.verdict{font-size:1.25em;padding:.6em 1em;margin:0 0 .6em;border-left:.4em solid}\
.needs-you{background:#fdeceb;border-color:#b00}.all-ok{background:#e8f6e8;border-color:#2a7a2a}\
.verdict a{color:#900}.ok{color:#2a7a2a}.failing{color:#b00}.source-absent{color:#888}.muted{color:#666}";

/// What the whole page is made of.
pub struct Page<'a> {
    pub clock: Clock,
    /// Each running collector (in scrape order) with its last outcome.
    pub collectors: Vec<(&'a str, Option<CollectorStatus>)>,
    /// The last collection's summary (none before the first).
    pub host: Option<&'a HostSummary>,
    /// The receiver's status document (none when the receiver is off, or
    /// hidden from this request).
    pub status: Option<&'a StatusDocument>,
    /// The receiver runs but this request may not read its status
    /// (`Receiver::may_read_status`): [`DETAILS_HIDDEN`] in place of its
    /// sections.
    pub details_hidden: bool,
}

/// The landing page: verdict first, then links, the receiver's sections,
/// the host, the collectors.
pub fn page(p: &Page<'_>) -> String {
    let c = &p.clock;
    let mut out = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\"><title>hostmedic</title>\n\
         <style>{STYLE}</style></head>\n<body>\n"
    );
    if p.details_hidden {
        // The verdict counts what the status API protects: not this request's.
        let _ = writeln!(
            out,
            "<p id=\"verdict\" class=\"verdict needs-you\"><strong>Details hidden:</strong> authenticate to see \
             what needs you (the alert pipeline, firing alerts, holds, approvals){}</p>",
            match failing(&p.collectors) {
                0 => String::new(),
                n => format!(" · <a href=\"#collectors\">{n} collector(s) failing</a>"),
            }
        );
    } else {
        verdict(&mut out, c, failing(&p.collectors), p.status);
    }
    let _ = writeln!(
        out,
        "<h1>hostmedic {}</h1>\n<p class=\"muted\">Prometheus exporter and Alertmanager webhook receiver \
         that heals this host. Shown at {}.</p>",
        env!("CARGO_PKG_VERSION"),
        html_escape(&c.time(c.now))
    );
    links(&mut out, p.status.is_some());
    if p.details_hidden {
        out.push_str(DETAILS_HIDDEN);
    }
    out.push_str(&sections(c, p.host, p.status));
    collectors(&mut out, c, &p.collectors);
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A clock at `now` in UTC.
    fn utc(now: f64) -> Clock {
        Clock {
            now,
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// A status document from its JSON (the keys `/api/v1/status` serves);
    /// the top-level keys `v` lacks are those of an empty document.
    fn doc(v: Value) -> StatusDocument {
        let mut d = serde_json::to_value(StatusDocument::default()).unwrap();
        for (k, v) in v.as_object().unwrap() {
            assert!(d.get(k).is_some(), "{k} is a key of the status document");
            d[k] = v.clone();
        }
        serde_json::from_value(d).unwrap()
    }

    fn quiet_status() -> Value {
        serde_json::json!({"pipeline": {"enabled": true, "alertname": "HostmedicWatchdog", "silent": false,
                                        "max_silence_seconds": 600.0, "last_heartbeat": null, "silent_since": null},
                           "firing": [], "holds": {}, "pending_approvals": [], "backoff": {}, "quiet": []})
    }

    fn page_of(host: Option<&HostSummary>, st: Option<&Value>) -> String {
        let st = st.map(|v| doc(v.clone()));
        page(&Page {
            clock: utc(3600.0),
            collectors: vec![],
            host,
            status: st.as_ref(),
            details_hidden: false,
        })
    }

    #[test]
    fn escapes_what_it_renders() {
        let st = serde_json::json!({
            "pipeline": {"enabled": true, "alertname": "HostmedicWatchdog", "silent": true, "silent_since": 0.0,
                         "max_silence_seconds": 600.0, "last_heartbeat": null},
            "firing": [{"name": "X<script>", "severity": "critical", "since": "t", "summary": "a & b",
                        "last_delivery": 1.0}],
            "holds": {}, "pending_approvals": [],
            "backoff": {"fix<b>|exec:/bin/x \"a&b\"": {"failures": 2, "cooldown_seconds": 1200.0, "until": 60.0}},
            "quiet": [{"rule": "nightly<i>", "window": "Mon-Fri 02:00-03:30", "timezone": "Europe/Berlin"}],
        });
        let html = sections(&utc(72.0), None, Some(&doc(st)));
        assert!(html.contains("not collected yet"));
        assert!(
            html.contains("SILENT since 1970-01-01 00:00:00 UTC (1 min ago)"),
            "{html}"
        );
        assert!(html.contains("X&lt;script&gt;") && html.contains("a &amp; b"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(
            html.contains(
                "<tr><td>exec:/bin/x &quot;a&amp;b&quot;</td><td>fix&lt;b&gt;</td><td>2</td><td>20m</td>\
                 <td>1970-01-01 00:01:00 UTC (12 s ago)</td></tr>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>nightly&lt;i&gt;</td><td>Mon-Fri 02:00-03:30</td><td>Europe/Berlin</td></tr>"),
            "{html}"
        );
        assert!(!html.contains("<b>") && !html.contains("<i>"));
    }

    #[test]
    fn no_backoff_and_no_quiet_window_say_none() {
        let html = sections(&utc(0.0), None, Some(&doc(quiet_status())));
        for h in [
            "<h2 id=\"backoff\">Grown cooldowns (backoff)</h2>\n<p>none</p>",
            "<h2 id=\"quiet\">Quiet windows now</h2>\n<p>none</p>",
        ] {
            assert!(html.contains(h), "{html}");
        }
    }

    #[test]
    fn ages_read_as_seconds_minutes_hours_days() {
        let c = utc(1_000_000.0);
        let ago = |d: f64| c.ago(1_000_000.0 - d);
        assert_eq!(
            [ago(12.0), ago(200.0), ago(7300.0), ago(3.0 * 86_400.0), ago(-180.0)],
            ["12 s ago", "3 min ago", "2 h ago", "3 d ago", "in 3 min"]
        );
        let berlin = Clock {
            now: 0.0,
            tz: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        };
        assert_eq!(berlin.time(0.0), "1970-01-01 01:00:00 CET", "the zone is named");
    }

    #[test]
    fn verdict_comes_first_and_counts_what_needs_a_person() {
        let mut st = quiet_status();
        let html = page_of(None, Some(&st));
        let body = html.split("<body>\n").nth(1).unwrap();
        assert!(
            body.starts_with("<p id=\"verdict\" class=\"verdict all-ok\"><strong>OK — nothing needs you</strong></p>"),
            "{body}"
        );
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(html.contains("<a href=\"api/v1/status\">status API (JSON)</a>"));
        assert!(!html.contains("<script"), "no script at all");

        st["pipeline"]["silent"] = true.into();
        st["pipeline"]["silent_since"] = 3000.0.into();
        st["pending_approvals"] = serde_json::json!([{"id": "p1", "rule": "r", "target": "t", "at": 3500.0,
                                                      "alertname": "Down", "actions": ["exec"]}]);
        let hold =
            serde_json::json!({"rule": "r", "since": 1.0, "attempts": 3, "fingerprint": "f", "alertname": "Down"});
        st["holds"] = serde_json::json!({"systemd:system:a.service": hold, "systemd:system:b.service": hold});
        st["firing"] = serde_json::json!([{"name": "Down", "severity": "critical", "since": "1970-01-01T00:50:00Z",
            "target": "t", "last_delivery": 3500.0,
            "decision": {"id": "a1", "rule": "r", "decision": "act", "at": 3400.0},
            "last_action": {"ts": 3588.0, "id": "a1", "rule": "r", "target": "t", "action": "systemd.restart",
                            "result": "failed", "detail": "unit <x> not found"}}]);
        let html = page_of(None, Some(&st));
        let body = html.split("<body>\n").nth(1).unwrap();
        let first = body.lines().next().unwrap();
        assert_eq!(
            first,
            "<p id=\"verdict\" class=\"verdict needs-you\"><strong>Needs you:</strong> \
             <a href=\"#pipeline\">alert pipeline SILENT since 1970-01-01 00:50:00 UTC (10 min ago)</a> · \
             <a href=\"#approvals\">1 pending approval</a> · \
             <a href=\"#holds\">2 holds (remediation stopped)</a> · \
             <a href=\"#firing\">1 failed action</a></p>"
        );
        for id in ["pipeline", "approvals", "holds", "firing"] {
            assert!(html.contains(&format!("<h2 id=\"{id}\">")), "anchor {id}");
        }
        assert!(
            html.contains(
                "<td>1970-01-01 00:50:00 UTC (10 min ago)</td><td>t</td><td></td>\
                 <td>systemd.restart failed (12 s ago): unit &lt;x&gt; not found</td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn an_action_detail_keeps_its_output() {
        assert_eq!(
            short("[\"/bin/sh\", \"-c\", \"a: b\"]: exit status 0\nstdout:\nrestarted worker\nmore\n"),
            "exit status 0; restarted worker"
        );
        assert_eq!(short("unit not found"), "unit not found");
        assert_eq!(short(&"x".repeat(300)).chars().count(), 161);
    }

    #[test]
    fn what_hostmedic_did_per_decision() {
        let c = utc(100.0);
        // A firing alert from its JSON, with the keys every one has.
        let a = |v: Value| {
            let mut f = serde_json::json!({"name": "A", "since": "t", "last_delivery": 1.0});
            for (k, v) in v.as_object().unwrap() {
                f[k] = v.clone();
            }
            did(&c, &serde_json::from_value(f).unwrap())
        };
        let last = |ts: f64, action: &str, result: &str, detail: &str| {
            serde_json::json!({"ts": ts, "id": "x", "rule": "r", "target": "t", "action": action,
                               "result": result, "detail": detail})
        };
        assert_eq!(a(serde_json::json!({})), "nothing: no rule maps it");
        assert_eq!(
            a(serde_json::json!({"target": "t",
                "decision": {"id": "p9", "rule": "r", "decision": "pending_approval", "at": 40.0}})),
            "waiting for approval (1 min ago): hostmedic approve p9"
        );
        assert_eq!(
            a(serde_json::json!({"target": "t",
                "decision": {"id": "d1", "rule": "r", "decision": "dry_run", "at": 90.0},
                "last_action": last(95.0, "exec", "dry_run", "would run [\"/x\"]")})),
            "dry run, nothing ran: exec dry run (5 s ago): would run [\"/x\"]"
        );
        assert_eq!(
            a(serde_json::json!({"target": "t",
                "decision": {"id": "s1", "rule": "r", "decision": "skip", "reason": "cooldown", "at": 97.0},
                "last_action": last(50.0, "verify", "verified", "")})),
            "not acting: cooldown (3 s ago); last result: verify verified (50 s ago)"
        );
        assert_eq!(
            a(serde_json::json!({"target": "t", "decision": {"id": "a", "rule": "r", "decision": "act", "at": 99.0}})),
            "acting (decided 1 s ago), no result yet"
        );
    }

    #[test]
    fn facts_of_a_collector_that_did_not_watch_say_so_not_none() {
        let h = HostSummary {
            watched: vec!["host".into()],
            absent_sources: vec!["docker".into(), "hwmon".into()],
            at_startup: true,
            ..Default::default()
        };
        let html = page_of(Some(&h), None);
        for want in [
            "<tr><td>failed units</td><td>not watched (collector off)</td></tr>",
            "<tr><td>unhealthy containers</td><td>not watched (no source)</td></tr>",
            "<tr><td>not watched (no source)</td><td>docker, hwmon</td></tr>",
            "<h3>Temperatures</h3>\n<p>not watched (no source)</p>",
            "hostmedic&#39;s own collection at start (no scrape yet)",
            "OK — nothing needs you</strong> (the receiver is off: no alerts are handled here)",
        ] {
            assert!(html.contains(want), "lacks {want:?}:\n{html}");
        }
        assert!(!html.contains("api/v1/status"), "no status API without the receiver");
        let watched = HostSummary {
            watched: vec!["host".into(), "systemd".into(), "docker".into()],
            ..Default::default()
        };
        let html = page_of(Some(&watched), None);
        assert!(html.contains("<tr><td>failed units</td><td>none</td></tr>"), "{html}");
        assert!(
            html.contains("<h3>Temperatures</h3>\n<p>not watched (collector off)</p>"),
            "{html}"
        );
    }
}

//! The host section: load, memory, failed and missing units, unhealthy
//! containers, temperatures and disks from the last collection's
//! [`HostSummary`], each fact saying "not watched" (and why) where its
//! collector has no source or is off, rather than "none".

use std::fmt::Write as _;

use super::Clock;
use super::html::{heading, html_escape, table};
use crate::hostsummary::HostSummary;

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1u64 << 30) as f64)
}

fn percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
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

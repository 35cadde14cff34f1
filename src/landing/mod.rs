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
//!
//! One file per part: `clock.rs` (times), `html.rs` (escaping, headings,
//! tables), `verdict.rs`, `receiver.rs` (the receiver's sections),
//! `host.rs`, `collectors.rs`; this file puts the page together.

use std::fmt::Write as _;

use crate::collector::CollectorStatus;
use crate::hostsummary::HostSummary;
use crate::receiver::status::StatusDocument;

mod clock;
mod collectors;
mod host;
mod html;
mod receiver;
mod verdict;

pub use clock::Clock;
pub use collectors::collectors;
pub use host::host;
pub use html::html_escape;
pub use receiver::{approvals, backoff, firing, holds, pipeline, quiet};
pub use verdict::{links, verdict};

/// What replaces the receiver's sections for a request that the status API
/// would refuse (`Receiver::may_read_status`).
pub const DETAILS_HIDDEN: &str = "<p class=\"details-hidden\">details hidden: authenticate \
(the receiver's credentials, as for <a href=\"api/v1/status\">/api/v1/status</a>) to see the alert \
pipeline, firing alerts, holds and pending approvals</p>\n";

/// How often the browser reloads the page (`<meta http-equiv="refresh">`).
pub const REFRESH_SECONDS: u32 = 10;

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
            match collectors::failing(&p.collectors) {
                0 => String::new(),
                n => format!(" · <a href=\"#collectors\">{n} collector(s) failing</a>"),
            }
        );
    } else {
        verdict(&mut out, c, collectors::failing(&p.collectors), p.status);
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
mod tests;

//! The verdict line, first on the page (what needs a person, each counted
//! and linked to its section, or "OK — nothing needs you"), and the links
//! under it.

use std::fmt::Write as _;

use super::html::html_escape;
use super::{Clock, REFRESH_SECONDS};
use crate::receiver::status::StatusDocument;

/// Results of an action or verification that did not help: a person looks.
const FAILED: &[&str] = &["failed", "refused", "interrupted", "not_helped"];

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

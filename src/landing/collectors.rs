//! The collectors' table (each one's last outcome) and the count of those
//! failing with their source there, which the verdict line reports.

use std::fmt::Write as _;

use super::Clock;
use super::html::{heading, html_escape};
use crate::collector::CollectorStatus;

/// Collectors whose last collection failed with their source there.
pub(super) fn failing(collectors: &[(&str, Option<CollectorStatus>)]) -> usize {
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

//! The page's HTML building blocks: escaping ([`html_escape`]), the section
//! heading the verdict links to, and the table every section renders its
//! rows with. Apart from the sections so no section writes markup of its
//! own around unescaped text.

use std::fmt::Write as _;

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

/// An `<h2>` with the id the verdict line links to.
pub(super) fn heading(out: &mut String, id: &str, title: &str) {
    let _ = writeln!(out, "<h2 id=\"{id}\">{}</h2>", html_escape(title));
}

/// A table with a header row; `empty` replaces it when there are no rows.
pub(super) fn table(out: &mut String, head: &[&str], rows: &[Vec<String>], empty: &str) {
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

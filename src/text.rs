//! The one escaping of text that comes from an alert (label values, the
//! alert name, targets rendered from labels, annotations) wherever hostmedic
//! renders it for a person: `hostmedic incidents` markdown, notifications,
//! the landing page, the log. A label value is untrusted one-line text: a
//! newline in it must not start a forged line (`# forged` heading, a fake
//! `Approve:` line), a carriage return or an ANSI escape must not rewrite
//! what a terminal shows, and a bidi override must not reorder it. So every
//! such character is shown as an escape instead (`\n`, `\r`, `\t`,
//! `\u{1b}`); printable text, non-ASCII letters included, is unchanged.
//! A shared leaf: it imports nothing of the crate.

use std::borrow::Cow;

/// Whether `c` must not reach a reader raw: control characters (C0, DEL,
/// C1), the Unicode line and paragraph separators and the bidirectional
/// formatting characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` on one line: every control, separator or bidi character escaped.
/// Borrowed (no copy) when there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Multi-line text whose line breaks are meant (an annotation's
/// description, an action's output): each line through [`escape`], joined
/// by `\n` again, so only the newlines survive (a `\r\n` ends a line too).
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let lines: Vec<Cow<str>> = s
        .split('\n')
        .map(|l| escape(l.strip_suffix('\r').unwrap_or(l)))
        .collect();
    Cow::Owned(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_escapes_and_nothing_else_changes() {
        assert_eq!(escape("worker.service"), "worker.service");
        assert!(matches!(escape("plain é ü 日本"), Cow::Borrowed(_)));
        assert_eq!(escape("a\n# forged"), "a\\n# forged");
        assert_eq!(escape("a\r\nb\tc"), "a\\r\\nb\\tc");
        assert_eq!(escape("red \u{1b}[31m"), "red \\u{1b}[31m");
        assert_eq!(escape("x\u{7f}\u{85}y"), "x\\u{7f}\\u{85}y");
        assert_eq!(escape("l\u{2028}s"), "l\\u{2028}s");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert!(!escape("a\nb\rc\u{0}d\u{2029}").chars().any(is_unsafe));
    }

    #[test]
    fn meant_line_breaks_survive_and_the_rest_is_escaped() {
        assert_eq!(escape_lines("one\ntwo"), "one\ntwo");
        assert_eq!(escape_lines("one\r\ntwo\u{1b}[2J"), "one\ntwo\\u{1b}[2J");
        assert_eq!(escape_lines("a\rb"), "a\\rb");
    }
}

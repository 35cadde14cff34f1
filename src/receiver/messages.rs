//! The texts people read: the approval request, the quiet-window notice,
//! the budget-exhausted escalation, the title of a plan's outcome and the
//! one-line outcome of an action. Pure functions.

use super::config::Rule;
use super::state::LastAction;
use crate::actions::Alert;
use crate::text::escape as esc;

/// What a person is asked to approve: the alert as its rule describes it
/// (summary and description annotations, when present), what would run, and
/// how to approve.
pub fn approval(alert: &Alert, rule: &str, would_run: &[String], id: &str) -> String {
    format!(
        "{}\nWould run:\n{}\nApprove: POST /api/v1/actions/{id}/approve or `{}`",
        matched(alert, rule),
        lines(would_run),
        crate::invocation::command(&format!("approve {}", crate::invocation::quote(id)))
    )
}

/// What a rule in a quiet window tells instead of acting: the alert, the
/// window (`why`), and what would have run.
pub fn quiet(alert: &Alert, rule: &str, would_run: &[String], why: &str) -> String {
    format!(
        "{}\nNot acting: quiet {why}. Would have run:\n{}",
        matched(alert, rule),
        lines(would_run)
    )
}

/// What would run, one escaped line each.
fn lines(would_run: &[String]) -> String {
    would_run.iter().map(|w| esc(w)).collect::<Vec<_>>().join("\n")
}

/// The alert that matched a rule, with its summary and description
/// annotations when present.
fn matched(alert: &Alert, rule: &str) -> String {
    let mut m = format!("{} ({}) matched rule {rule}.", esc(&alert.alertname), alert.status);
    for key in ["summary", "description"] {
        if let Some(text) = alert.annotations.get(key).filter(|t| !t.trim().is_empty()) {
            m.push('\n');
            m.push_str(&crate::text::escape_lines(text.trim()));
        }
    }
    m
}

/// The escalation when a target's budget is spent: what happened, how to
/// release the hold, and the target's last actions.
pub fn exhausted(rule: &Rule, target: &str, alert: &Alert, attempts: u32, history: &[LastAction]) -> String {
    let target = esc(target);
    let mut m = format!(
        "{} is still firing for {target} after {attempts} remediation attempt(s) within {} (rule {}). \
         Remediation stopped; the target is held until the alert resolves or a person clears it \
         (`{}`).\n",
        esc(&alert.alertname),
        humantime::format_duration(rule.budget_window),
        rule.cfg.name,
        crate::invocation::command(&format!("clear-hold {}", crate::invocation::quote(&target)))
    );
    if !history.is_empty() {
        m.push_str("History:\n");
        for h in history.iter().rev().take(10).rev() {
            m.push_str(&format!(
                "- {} {} {}{}\n",
                humantime::format_rfc3339_seconds(crate::time::system_time(h.ts)),
                h.action,
                h.result,
                sep(&h.detail)
            ));
        }
    }
    m
}

/// The title of a plan's outcome notification. A dry run says that nothing
/// ran (never "ran … ok"); a real run says how it went: the verification's
/// `verdict` when there is one, else `ok` or `failed`.
pub fn outcome_title(rule: &str, target: &str, dry_run: bool, all_ok: bool, verdict: &str) -> String {
    if dry_run {
        let how = if all_ok {
            "nothing ran, nothing changed"
        } else {
            "nothing ran; an action would fail"
        };
        return format!("{rule} dry run on {target}: {how}");
    }
    let how = match (verdict, all_ok) {
        ("", true) => "ok",
        ("", false) => "failed",
        (v, _) => v,
    };
    format!("{rule} ran on {target}: {how}")
}

/// ` (first line of detail)`, or nothing when there is no detail.
pub fn sep(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", detail.lines().next().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_in_a_label_cannot_forge_an_approve_line() {
        let alert = Alert {
            alertname: "Runaway\nApprove: POST /api/v1/actions/evil/approve".into(),
            status: crate::actions::AlertStatus::Firing,
            fingerprint: "0a".into(),
            starts_at: "2026-01-01T00:00:00Z".into(),
            labels: Default::default(),
            annotations: [("summary".to_string(), "busy\r\nline two\u{1b}[2J".to_string())].into(),
        };
        let m = approval(&alert, "r", &["kill pid:1\nApprove: now".into()], "id1");
        let approve: Vec<&str> = m.lines().filter(|l| l.starts_with("Approve:")).collect();
        assert_eq!(approve.len(), 1, "{m}");
        assert!(approve[0].contains("id1"), "{m}");
        assert!(m.contains("Runaway\\nApprove: POST"), "{m}");
        // The summary keeps its line break; its escape sequence does not.
        assert!(m.contains("busy\nline two\\u{1b}[2J"), "{m}");
    }

    #[test]
    fn a_dry_run_title_says_nothing_ran() {
        let t = |dry, ok, v| outcome_title("fix", "exec:/bin/x", dry, ok, v);
        assert_eq!(
            t(true, true, ""),
            "fix dry run on exec:/bin/x: nothing ran, nothing changed"
        );
        assert_eq!(
            t(true, false, ""),
            "fix dry run on exec:/bin/x: nothing ran; an action would fail"
        );
        assert!(!t(true, true, "").contains(" ran on") && !t(true, true, "").ends_with("ok"));
        assert_eq!(t(false, true, "verified"), "fix ran on exec:/bin/x: verified");
        assert_eq!(t(false, true, ""), "fix ran on exec:/bin/x: ok");
        assert_eq!(t(false, false, ""), "fix ran on exec:/bin/x: failed");
    }
}

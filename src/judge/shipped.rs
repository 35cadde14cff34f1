//! The shipped alert rules (`alerting-rules/hostmedic.rules.yml`, compiled
//! in) as a remediation rule sees them: for each alert name, the labels its
//! alerts carry when the expression says (`sum by (a, b) (…)`,
//! `label_replace`, `vector(1)`, a comparison with a number, plus the rule's
//! own `labels:`), and its annotations. Read conservatively: an expression
//! that keeps the labels of the series it selects carries labels no one can
//! list here, and is `None` (nothing is ever warned about it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::Deserialize;

/// The shipped rule file.
pub const RULES: &str = include_str!("../../alerting-rules/hostmedic.rules.yml");

/// What the alerts of one shipped alert name carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// Every label, when the expression tells; `None`: the series' labels.
    pub labels: Option<BTreeSet<String>>,
    pub annotations: BTreeSet<String>,
}

#[derive(Deserialize)]
struct File {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<RuleYaml>,
}

#[derive(Deserialize)]
struct RuleYaml {
    alert: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The shipped alerts by name (parsed once).
pub fn shipped() -> &'static BTreeMap<String, Shipped> {
    static SHIPPED: LazyLock<BTreeMap<String, Shipped>> = LazyLock::new(|| parse(RULES).unwrap_or_default());
    &SHIPPED
}

/// The alerts of a Prometheus rule file by name; an alert name defined
/// twice with different label sets is `None` (unknown).
pub fn parse(yaml: &str) -> Result<BTreeMap<String, Shipped>, serde_yaml_ng::Error> {
    let file: File = serde_yaml_ng::from_str(yaml)?;
    let mut out: BTreeMap<String, Shipped> = BTreeMap::new();
    for rule in file.groups.into_iter().flat_map(|g| g.rules) {
        let Some(alert) = rule.alert else { continue };
        let labels = expr_labels(&rule.expr).map(|mut l| {
            l.extend(rule.labels.keys().cloned());
            l.insert("alertname".to_string());
            l
        });
        let this = Shipped {
            labels,
            annotations: rule.annotations.keys().cloned().collect(),
        };
        match out.get_mut(&alert) {
            Some(prev) => {
                prev.labels = prev.labels.take().zip(this.labels).map(|(a, b)| &a | &b);
                prev.annotations.extend(this.annotations);
            }
            None => {
                out.insert(alert, this);
            }
        }
    }
    Ok(out)
}

const AGGREGATIONS: &[&str] = &["sum", "min", "max", "avg", "count", "group", "stddev", "stdvar"];

/// The labels of `expr`'s result, for the few forms whose labels the text
/// names; `None` for anything else.
fn expr_labels(expr: &str) -> Option<BTreeSet<String>> {
    let e = strip_parens(expr.trim());
    if is_number(e)
        || e.replace(' ', "")
            .strip_prefix("vector(")
            .is_some_and(|r| is_number(r.trim_end_matches(')')))
    {
        return Some(BTreeSet::new());
    }
    if let Some((left, right)) = split_comparison(e) {
        return match (is_number(left), is_number(right)) {
            (false, true) => expr_labels(left),
            (true, false) => expr_labels(right),
            _ => None,
        };
    }
    if let Some(args) = call(e, "label_replace") {
        let [inner, dst, ..] = args.as_slice() else { return None };
        let mut l = expr_labels(inner)?;
        l.insert(dst.trim().trim_matches('"').to_string());
        return Some(l);
    }
    aggregation_labels(e)
}

/// `AGG by (a, b) (…)`, `AGG (…) by (a, b)`, `AGG (…)`.
fn aggregation_labels(e: &str) -> Option<BTreeSet<String>> {
    let op = AGGREGATIONS.iter().find(|op| {
        e.strip_prefix(**op)
            .is_some_and(|r| r.trim_start().starts_with('(') || r.trim_start().starts_with("by"))
    })?;
    let rest = e[op.len()..].trim_start();
    // `by (…)` at the start of `t`: the names and the bytes of `t` used.
    let by = |t: &str| -> Option<(BTreeSet<String>, usize)> {
        let s = t.strip_prefix("by")?.trim_start();
        let close = matching_paren(s)?;
        let names = s[1..close].split(',').map(str::trim).filter(|n| !n.is_empty());
        Some((names.map(str::to_string).collect(), t.len() - s[close + 1..].len()))
    };
    let (labels, after_by) = match by(rest) {
        Some((l, used)) => (Some(l), rest[used..].trim_start()),
        None => (None, rest),
    };
    let close = matching_paren(after_by)?;
    let tail = after_by[close + 1..].trim();
    match (labels, tail) {
        (Some(l), "") => Some(l),
        (None, "") => Some(BTreeSet::new()),
        (None, t) => by(t).filter(|(_, used)| *used == t.len()).map(|(l, _)| l),
        (Some(_), _) => None,
    }
}

fn is_number(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && s.parse::<f64>().is_ok()
}

/// `s` without parentheses around all of it.
fn strip_parens(mut s: &str) -> &str {
    while s.starts_with('(') && matching_paren(s) == Some(s.len() - 1) {
        s = s[1..s.len() - 1].trim();
    }
    s
}

/// The index of the `)` closing the `(` at the start of `s`.
fn matching_paren(s: &str) -> Option<usize> {
    if !s.starts_with('(') {
        return None;
    }
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The two sides of the one top-level comparison of `e` (no `on`,
/// `ignoring`, `and`, `or`, `unless` anywhere at the top: those are `None`).
fn split_comparison(e: &str) -> Option<(&str, &str)> {
    let top = top_level(e);
    if ["and", "or", "unless", "on", "ignoring", "group_left", "group_right"]
        .iter()
        .any(|w| {
            top.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|t| t == *w)
        })
    {
        return None;
    }
    let at = ["==", "!=", ">=", "<=", ">", "<"]
        .iter()
        .find_map(|op| top.find(op).map(|i| (i, op.len())))?;
    let right = e[at.0 + at.1..].trim();
    let right = right.strip_prefix("bool").map_or(right, str::trim_start);
    Some((e[..at.0].trim(), right))
}

/// `e` with everything inside parentheses and quotes blanked (same byte
/// length, so offsets into it are offsets into `e`).
fn top_level(e: &str) -> String {
    let mut depth = 0usize;
    let mut quoted = false;
    let bytes: Vec<u8> = e
        .bytes()
        .map(|c| {
            let keep = depth == 0 && !quoted;
            match c {
                b'"' => quoted = !quoted,
                b'(' if !quoted => depth += 1,
                b')' if !quoted => depth = depth.saturating_sub(1),
                _ => {}
            }
            if keep && c != b'(' && c != b'"' { c } else { b' ' }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The top-level arguments of `name(…)` when `e` is exactly that call.
fn call<'a>(e: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let rest = e.strip_prefix(name)?.trim_start();
    let close = matching_paren(rest)?;
    if close != rest.len() - 1 {
        return None;
    }
    let inner = &rest[1..close];
    let top = top_level(inner);
    let mut args = Vec::new();
    let mut start = 0;
    for (i, c) in top.char_indices() {
        if c == ',' {
            args.push(inner[start..i].trim());
            start = i + 1;
        }
    }
    args.push(inner[start..].trim());
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn only_expressions_that_name_their_labels_are_known() {
        assert_eq!(expr_labels("vector(1)"), set(&[]));
        assert_eq!(
            expr_labels("sum by (instance, job) (rate(x[5m])) > 3"),
            set(&["instance", "job"])
        );
        assert_eq!(expr_labels("max(x) by (unit)"), set(&["unit"]));
        assert_eq!(expr_labels("count(up == 0)"), set(&[]));
        assert_eq!(
            expr_labels("label_replace(sum by (name) (x), \"unit\", \"$1\", \"name\", \"(.+)\")"),
            set(&["name", "unit"])
        );
        // Selectors keep the labels of their series: unknown.
        for keeps in [
            "x == 1",
            "label_replace(x{state=\"failed\"} == 1, \"unit\", \"$1\", \"name\", \"(.+)\")",
            "topk by (instance) (1, x)",
            "sum without (pid) (x)",
            "sum by (a) (x) and on (a) y",
            "rate(x[5m]) > 0",
        ] {
            assert_eq!(expr_labels(keeps), None, "{keeps}");
        }
    }

    #[test]
    fn the_shipped_rules_parse_and_the_heartbeat_is_known() {
        let s = shipped();
        assert!(s.len() > 20, "{}", s.len());
        let watchdog = &s["HostmedicWatchdog"];
        assert_eq!(watchdog.labels, set(&["alertname", "severity"]));
        assert!(watchdog.annotations.contains("summary"));
        assert_eq!(s["HostmedicUnitFailed"].labels, None);
        assert!(s["HostmedicRunawayProcess"].annotations.contains("process_start_time"));
    }
}

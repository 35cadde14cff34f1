//! `[[remediation]]`: one rule's schema, its label matchers and its
//! compilation against `[receiver]` (the defaults it inherits), the one
//! call both validation and start-up make.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Channels, Errors, ReceiverConfig, check_channel, positive};
use crate::error::ConfigError;
use crate::receiver::{payload, quiet};

/// When a rule fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum On {
    #[default]
    Firing,
    Resolved,
}

pub use crate::receiver::mode::Mode;

/// One `[[remediation]]` rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name (journal, metrics, holds).
    pub name: String,
    /// The alert's `alertname` label must equal this.
    pub alertname: String,
    /// Extra label matchers in Alertmanager syntax: `label="v"`, `label!="v"`,
    /// `label=~"re"`, `label!~"re"` (regexes are anchored).
    #[serde(default)]
    pub matchers: Vec<String>,
    #[serde(default)]
    pub on: On,
    #[serde(default)]
    pub mode: Mode,
    /// Actions run in order; the first one with a target names the rule's target.
    pub actions: Vec<crate::actions::ActionSpec>,
    /// Run once when the budget is spent and the target is put on hold
    /// (e.g. stop + mask a crash-looping unit), after which a person decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exhausted_actions: Vec<crate::actions::ActionSpec>,
    /// Overrides `receiver.cooldown`.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Duration>,
    /// Cooldown growth per consecutive failed attempt on (rule, target):
    /// the cooldown after `n` failures is `cooldown × backoff_factor^n`,
    /// at most `backoff_max` (docs/receiver.md, "Backoff").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_factor: Option<f64>,
    /// Ceiling of the grown cooldown (default 24h).
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub backoff_max: Option<Duration>,
    /// Remediation windows in which the rule records and notifies instead
    /// of acting, e.g. `["Mon-Fri 02:00-03:30", "Sun 00:00-06:00"]`
    /// (syntax in `receiver::quiet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet: Vec<String>,
    /// The time zone `quiet` is read in: `local` (default), `UTC` or an
    /// IANA name such as `Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Overrides `receiver.budget_attempts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_attempts: Option<u32>,
    /// Overrides `receiver.budget_window`.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub budget_window: Option<Duration>,
    /// Channels told when this rule's budget for a target is spent.
    #[serde(default)]
    pub escalate: Vec<String>,
    /// Channels told about each decision and outcome (notify-only rules tell
    /// them the approval id).
    #[serde(default)]
    pub notify: Vec<String>,
    /// Check the effect after acting.
    #[serde(default = "yes")]
    pub verify: bool,
    /// Overrides `receiver.action_timeout`.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub action_timeout: Option<Duration>,
    /// Overrides `receiver.verify_timeout`.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub verify_timeout: Option<Duration>,
}

fn yes() -> bool {
    true
}

/// A compiled label matcher.
/// What is wrong with a label matcher (the matcher as written first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("{0:?}: expected name=\"value\" (operators = != =~ !~)")]
    Shape(String),
    #[error("{0:?} is not a valid label name")]
    LabelName(String),
    #[error("{0:?}: expected one of the operators = != =~ !~ after the label name")]
    Operator(String),
    #[error("{matcher:?}: bad quoted value: {why}")]
    Quoted { matcher: String, why: String },
    #[error("{0:?}: unbalanced quotes")]
    Quotes(String),
    /// The regex's own syntax error, pointing into what was written.
    #[error("{0}")]
    RegexSyntax(String),
    #[error("invalid regex {pattern:?}: {why}")]
    Regex { pattern: String, why: String },
}

#[derive(Debug, Clone)]
pub enum Matcher {
    Equal(String, String),
    NotEqual(String, String),
    Regex(String, regex::Regex),
    NotRegex(String, regex::Regex),
}

impl Matcher {
    /// Parses `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"`
    /// (value quoted with `"`, or bare).
    pub fn parse(s: &str) -> Result<Matcher, MatcherError> {
        let s = s.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| MatcherError::Shape(s.to_string()))?;
        let name = &s[..name_end];
        if !payload::valid_label_name(name) {
            return Err(MatcherError::LabelName(name.to_string()));
        }
        let rest = s[name_end..].trim_start();
        let (op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
            .ok_or_else(|| MatcherError::Operator(s.to_string()))?;
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            serde_json::from_str::<String>(value).map_err(|e| MatcherError::Quoted {
                matcher: s.to_string(),
                why: e.to_string(),
            })?
        } else if value.contains('"') {
            return Err(MatcherError::Quotes(s.to_string()));
        } else {
            value.to_string()
        };
        // The pattern must be a regex on its own (errors point into what
        // the user wrote); only the anchored form is compiled.
        let re = |v: &str| match crate::error::regex_syntax_error(v) {
            Some(why) => Err(MatcherError::RegexSyntax(why)),
            None => regex::Regex::new(&format!("^(?:{v})$")).map_err(|e| MatcherError::Regex {
                pattern: v.to_string(),
                why: e.to_string(),
            }),
        };
        Ok(match op {
            "=" => Matcher::Equal(name.into(), value),
            "!=" => Matcher::NotEqual(name.into(), value),
            "=~" => Matcher::Regex(name.into(), re(&value)?),
            _ => Matcher::NotRegex(name.into(), re(&value)?),
        })
    }

    /// A missing label matches as the empty string (Alertmanager semantics).
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let get = |n: &str| labels.get(n).map(String::as_str).unwrap_or("");
        match self {
            Matcher::Equal(n, v) => get(n) == v,
            Matcher::NotEqual(n, v) => get(n) != v,
            Matcher::Regex(n, r) => r.is_match(get(n)),
            Matcher::NotRegex(n, r) => !r.is_match(get(n)),
        }
    }
}

/// A rule as it runs: its configuration, its parsed matchers, and every
/// `[receiver]` default already applied. Built only by [`compile_rules`],
/// which is also what validation runs, so what is checked is what runs.
#[derive(Debug)]
pub struct Rule {
    pub cfg: RuleConfig,
    pub matchers: Vec<Matcher>,
    /// `cfg.actions` and `cfg.exhausted_actions`, compiled once.
    pub actions: Vec<crate::actions::Compiled>,
    pub exhausted_actions: Vec<crate::actions::Compiled>,
    pub cooldown: Duration,
    pub budget_attempts: u32,
    pub budget_window: Duration,
    pub action_timeout: Duration,
    pub verify_timeout: Duration,
    /// The rule's `escalate` channels, then `receiver.escalate`'s (no repeats).
    pub escalate: Vec<String>,
    /// `backoff_factor` (1: no growth) and the ceiling of the grown cooldown.
    pub backoff_factor: f64,
    pub backoff_max: Duration,
    /// `quiet` and `timezone`, parsed; `None` without windows.
    pub quiet: Option<quiet::QuietWindows>,
}

impl Rule {
    /// Who hears that a quiet window kept the rule from acting: its
    /// `notify` channels, else its escalation channels.
    pub fn quiet_channels(&self) -> &[String] {
        if self.cfg.notify.is_empty() {
            &self.escalate
        } else {
            &self.cfg.notify
        }
    }

    /// The longest a cooldown of this rule can last (its backoff ceiling
    /// when it grows): the state keeps attempts at least this long.
    pub fn longest_cooldown(&self) -> Duration {
        if self.backoff_factor > 1.0 {
            self.backoff_max.max(self.cooldown)
        } else {
            self.cooldown
        }
    }
}

/// Ceiling of a grown cooldown when `backoff_max` is not set.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(24 * 3600);

/// Validates and compiles the `[[remediation]]` list against `[receiver]`
/// (its defaults: `cooldown`, budgets, timeouts, `escalate`), the one this
/// configuration runs with; every error names its key
/// (`remediation[2].matchers[0]`). Every rule is checked, and every key of
/// each: all the errors come back, in file order ([`ConfigError::Many`]).
pub fn compile_rules(rules: &[RuleConfig], rc: &ReceiverConfig, channels: &Channels) -> Result<Vec<Rule>, ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    let mut compiled = Vec::with_capacity(rules.len());
    let mut errors = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let key = format!("remediation[{i}]");
        if !names.insert(r.name.as_str()) {
            errors.push(ConfigError::invalid(
                format!("{key}.name"),
                format!("duplicate rule name {:?}", r.name),
            ));
        }
        match compile_rule(&key, r, rc, channels) {
            Ok(rule) => compiled.push(rule),
            Err(e) => errors.extend(e),
        }
    }
    ConfigError::from_list(errors)?;
    Ok(compiled)
}

/// The keys of one rule that need no `[receiver]` default: name, alertname,
/// actions, budget, durations and channels.
fn check_rule_keys(key: &str, r: &RuleConfig, channels: &Channels, errs: &mut Errors) {
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errs.0.push(ConfigError::invalid(
            format!("{key}.name"),
            "must be non-empty: letters, digits, - _ .",
        ));
    }
    if r.alertname.is_empty() {
        errs.0
            .push(ConfigError::invalid(format!("{key}.alertname"), "must not be empty"));
    }
    if r.actions.is_empty() {
        errs.0.push(ConfigError::invalid(
            format!("{key}.actions"),
            "at least one action is needed",
        ));
    }
    if r.budget_attempts == Some(0) {
        errs.0.push(ConfigError::invalid(
            format!("{key}.budget_attempts"),
            "must be at least 1",
        ));
    }
    for (k, d) in [
        ("budget_window", r.budget_window),
        ("action_timeout", r.action_timeout),
        ("verify_timeout", r.verify_timeout),
    ] {
        if let Some(d) = d {
            errs.keep(positive(&format!("{key}.{k}"), d));
        }
    }
    for (list, names) in [("escalate", &r.escalate), ("notify", &r.notify)] {
        for (j, c) in names.iter().enumerate() {
            errs.keep(check_channel(&format!("{key}.{list}[{j}]"), c, channels));
        }
    }
}

/// Compiles a list of a rule's actions (`list`: `actions` or
/// `exhausted_actions`), once: the rule keeps what this returns.
fn compile_actions(
    key: &str,
    list: &str,
    specs: &[crate::actions::ActionSpec],
    channels: &Channels,
    errs: &mut Errors,
) -> Vec<crate::actions::Compiled> {
    let ctx = crate::actions::Context { channels };
    specs
        .iter()
        .enumerate()
        .filter_map(|(j, a)| errs.keep(a.compile(&format!("{key}.{list}[{j}]"), &ctx)))
        .collect()
}

fn compile_rule(key: &str, r: &RuleConfig, rc: &ReceiverConfig, channels: &Channels) -> Result<Rule, Vec<ConfigError>> {
    let mut errs = Errors::default();
    let matchers: Vec<Matcher> = r
        .matchers
        .iter()
        .enumerate()
        .filter_map(|(j, m)| {
            errs.keep(Matcher::parse(m).map_err(|e| ConfigError::invalid(format!("{key}.matchers[{j}]"), e)))
        })
        .collect();
    check_rule_keys(key, r, channels, &mut errs);
    let actions = compile_actions(key, "actions", &r.actions, channels, &mut errs);
    let exhausted_actions = compile_actions(key, "exhausted_actions", &r.exhausted_actions, channels, &mut errs);
    let cooldown = r.cooldown.unwrap_or(rc.cooldown);
    let backoff = errs.keep(compile_backoff(key, r, cooldown));
    let quiet = errs.keep(compile_quiet(key, r));
    let (Some((backoff_factor, backoff_max)), Some(quiet), true) = (backoff, quiet, errs.0.is_empty()) else {
        return Err(errs.0);
    };
    let mut escalate = r.escalate.clone();
    for c in &rc.escalate {
        if !escalate.contains(c) {
            escalate.push(c.clone());
        }
    }
    Ok(Rule {
        cfg: r.clone(),
        matchers,
        actions,
        exhausted_actions,
        cooldown,
        budget_attempts: r.budget_attempts.unwrap_or(rc.budget_attempts),
        budget_window: r.budget_window.unwrap_or(rc.budget_window),
        action_timeout: r.action_timeout.unwrap_or(rc.action_timeout),
        verify_timeout: r.verify_timeout.unwrap_or(rc.verify_timeout),
        escalate,
        backoff_factor,
        backoff_max,
        quiet,
    })
}

/// `backoff_factor` ≥ 1 (finite) on a rule with a cooldown; `backoff_max`
/// only with a factor, and not below the cooldown.
fn compile_backoff(key: &str, r: &RuleConfig, cooldown: Duration) -> Result<(f64, Duration), ConfigError> {
    let Some(f) = r.backoff_factor else {
        if r.backoff_max.is_some() {
            return Err(ConfigError::invalid(
                format!("{key}.backoff_max"),
                "has no effect without backoff_factor",
            ));
        }
        return Ok((1.0, DEFAULT_BACKOFF_MAX));
    };
    if !f.is_finite() || !(1.0..=100.0).contains(&f) {
        return Err(ConfigError::invalid(
            format!("{key}.backoff_factor"),
            format!("{f} is not between 1 and 100"),
        ));
    }
    if f > 1.0 && cooldown.is_zero() {
        return Err(ConfigError::invalid(
            format!("{key}.backoff_factor"),
            "grows the cooldown, but the rule's cooldown is 0s: set `cooldown`",
        ));
    }
    let max = r.backoff_max.unwrap_or(DEFAULT_BACKOFF_MAX.max(cooldown));
    if max < cooldown {
        return Err(ConfigError::invalid(
            format!("{key}.backoff_max"),
            format!(
                "{} is below the rule's cooldown of {}",
                humantime::format_duration(max),
                humantime::format_duration(cooldown)
            ),
        ));
    }
    Ok((f, max))
}

/// `quiet` entries and their `timezone`; the error names the entry.
fn compile_quiet(key: &str, r: &RuleConfig) -> Result<Option<quiet::QuietWindows>, ConfigError> {
    if r.quiet.is_empty() {
        if r.timezone.is_some() {
            return Err(ConfigError::invalid(
                format!("{key}.timezone"),
                "only applies to `quiet` windows, and the rule has none",
            ));
        }
        return Ok(None);
    }
    let tz = r.timezone.as_deref().unwrap_or("local");
    quiet::QuietWindows::parse(&r.quiet, tz)
        .map(Some)
        .map_err(|(place, e)| match place {
            quiet::QuietPlace::Entry(i) => {
                ConfigError::invalid(format!("{key}.quiet[{i}]"), format!("{:?}: {e}", r.quiet[i]))
            }
            quiet::QuietPlace::TimeZone => ConfigError::invalid(format!("{key}.timezone"), e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn compile(extra: &str) -> Result<Rule, String> {
        let cfg: RuleConfig = toml::from_str(&format!(
            "name = \"r\"\nalertname = \"A\"\n{extra}\nactions = [{{ type = \"exec\", argv = [\"/usr/bin/true\"] }}]"
        ))
        .map_err(|e| e.to_string())?;
        compile_rules(&[cfg], &ReceiverConfig::default(), &Default::default())
            .map(|mut v| v.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn quiet_windows_and_backoff_are_validated_naming_the_key() {
        let r = compile("quiet = [\"Mon-Fri 02:00-03:30\"]\ntimezone = \"Europe/Berlin\"").unwrap();
        assert_eq!(r.quiet.unwrap().windows.len(), 1);
        let r = compile("cooldown = \"1m\"\nbackoff_factor = 2.0").unwrap();
        assert_eq!((r.backoff_factor, r.backoff_max), (2.0, DEFAULT_BACKOFF_MAX));
        assert_eq!(r.longest_cooldown(), DEFAULT_BACKOFF_MAX);
        for (extra, key, why) in [
            (
                "quiet = [\"Mon 02:00-03:00\", \"Mo 02:00-03:00\"]",
                "remediation[0].quiet[1]",
                "unknown day",
            ),
            ("quiet = [\"02:00\"]", "remediation[0].quiet[0]", "\"02:00\""),
            (
                "quiet = [\"02:00-03:00\"]\ntimezone = \"Mars/Base\"",
                "remediation[0].timezone",
                "unknown time zone",
            ),
            ("timezone = \"UTC\"", "remediation[0].timezone", "no"),
            (
                "backoff_factor = 0.5",
                "remediation[0].backoff_factor",
                "between 1 and 100",
            ),
            (
                "backoff_factor = nan",
                "remediation[0].backoff_factor",
                "between 1 and 100",
            ),
            (
                "cooldown = \"0s\"\nbackoff_factor = 2.0",
                "remediation[0].backoff_factor",
                "cooldown is 0s",
            ),
            (
                "backoff_max = \"1h\"",
                "remediation[0].backoff_max",
                "without backoff_factor",
            ),
            (
                "cooldown = \"2h\"\nbackoff_factor = 2.0\nbackoff_max = \"1h\"",
                "remediation[0].backoff_max",
                "below the rule's cooldown",
            ),
        ] {
            let e = compile(extra).unwrap_err();
            assert!(e.contains(key) && e.contains(why), "{extra}: {e}");
        }
    }

    #[test]
    fn matchers_parse_and_match() {
        let l: BTreeMap<String, String> = [("unit".to_string(), "crashy.service".to_string())].into();
        assert!(Matcher::parse(r#"unit="crashy.service""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"unit != "other""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"unit=~"crashy\\..*""#).unwrap().matches(&l));
        assert!(!Matcher::parse(r#"unit=~"crashy""#).unwrap().matches(&l), "anchored");
        assert!(Matcher::parse(r#"env!~"prod""#).unwrap().matches(&l));
        assert!(
            Matcher::parse(r#"env="""#).unwrap().matches(&l),
            "missing label is empty"
        );
        assert!(Matcher::parse("unit=crashy.service").unwrap().matches(&l));
        for bad in ["", "unit", "9x=\"a\"", "unit=~\"(\"", "unit==\"a", "unit=\"a"] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
    }
}

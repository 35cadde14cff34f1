//! `[receiver]` and `[[remediation]]`: the webhook endpoint, its
//! authentication, the engine's limits and the routing rules, with their
//! validation (every error names its key, e.g. `remediation[2].matchers[0]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[receiver]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Serve the webhook endpoint and run remediation.
    pub enabled: bool,
    /// Path Alertmanager posts to.
    pub path: String,
    /// File holding the bearer token Alertmanager sends (`authorization.credentials`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding the bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// Basic-auth user name (with `basic_auth_password_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth_password_file: Option<PathBuf>,
    /// Users of the web config's `basic_auth_users` (`--web.config.file`)
    /// whose basic auth, once the web layer verified it, the receiver takes
    /// as its own authentication. Unset: every web user; `[]`: none (the
    /// receiver's own credentials must match). See docs/security.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_users: Option<Vec<String>>,
    /// Explicitly allow serving the receiver without authentication on a
    /// non-loopback address (refused otherwise).
    pub allow_unauthenticated_non_loopback: bool,
    /// Let anyone read the receiver's state (alerts, targets, holds,
    /// approval ids) without credentials: `/api/v1/status` and the landing
    /// page's receiver sections alike (`Receiver::may_read_status`). Off:
    /// both need the credentials the webhook needs (when it has any).
    pub status_public: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most alerts accepted in one request (more → 413).
    pub max_alerts_per_request: usize,
    /// Append-only incident journal (JSON lines).
    pub journal_path: PathBuf,
    /// Snapshot of the safety state (holds, budgets, cooldowns, de-dup, pending approvals).
    pub state_path: PathBuf,
    /// Human/machine-readable status (holds, budgets, last actions), written atomically.
    pub status_path: PathBuf,
    /// Global dry-run: record what would run, never act.
    pub dry_run: bool,
    /// Actions running at once, over all targets.
    pub max_concurrent_actions: usize,
    /// Default per-action timeout.
    #[serde(with = "humantime_serde")]
    pub action_timeout: Duration,
    /// Default deadline for verifying an action's effect.
    #[serde(with = "humantime_serde")]
    pub verify_timeout: Duration,
    /// How long after its last delivery an alert (fingerprint + startsAt +
    /// status) is still a duplicate. Shorter than Alertmanager's
    /// `repeat_interval` (default 4h), so a still-firing alert that
    /// Alertmanager repeats counts as a new occurrence (cooldown and budget
    /// still apply); far longer than HA gossip delays and retries.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// Pending approvals expire after this.
    #[serde(with = "humantime_serde")]
    pub approval_ttl: Duration,
    /// Default cooldown per (rule, target).
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// Default attempt budget per target: `budget_attempts` within `budget_window`.
    pub budget_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub budget_window: Duration,
    /// Notification channels told when any rule's budget is exhausted (in
    /// addition to the rule's own `escalate`).
    pub escalate: Vec<String>,
    /// Where `exec` actions' `user` names are looked up (at each run).
    pub passwd_file: PathBuf,
    /// Where `exec` actions' `group` names are looked up (at each run).
    pub group_file: PathBuf,
    /// `[receiver.evidence]`: what is captured about a target with every
    /// incident (see `crate::evidence`).
    pub evidence: crate::evidence::EvidenceConfig,
    /// `[receiver.heartbeat]`: the alert pipeline's dead-man's switch.
    pub heartbeat: super::heartbeat::HeartbeatConfig,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            enabled: false,
            path: "/api/v1/alerts".into(),
            bearer_token_file: None,
            bearer_token_env: None,
            basic_auth_username: None,
            basic_auth_password_file: None,
            web_users: None,
            allow_unauthenticated_non_loopback: false,
            status_public: false,
            max_body_bytes: 1 << 20,
            max_alerts_per_request: 1000,
            journal_path: PathBuf::from("/var/lib/hostmedic/journal.jsonl"),
            state_path: PathBuf::from("/var/lib/hostmedic/state.json"),
            status_path: PathBuf::from("/var/lib/hostmedic/status.json"),
            dry_run: false,
            max_concurrent_actions: 4,
            action_timeout: Duration::from_secs(60),
            verify_timeout: Duration::from_secs(30),
            dedup_window: Duration::from_secs(3600),
            approval_ttl: Duration::from_secs(24 * 3600),
            cooldown: Duration::from_secs(300),
            budget_attempts: 3,
            budget_window: Duration::from_secs(3600),
            escalate: Vec::new(),
            passwd_file: PathBuf::from("/etc/passwd"),
            group_file: PathBuf::from("/etc/group"),
            evidence: crate::evidence::EvidenceConfig::default(),
            heartbeat: Default::default(),
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum On {
    #[default]
    Firing,
    Resolved,
}

/// What a rule does with a match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Act at once.
    #[default]
    Auto,
    /// Journal + notify; act only when a person approves.
    NotifyOnly,
    /// Journal what would run.
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::NotifyOnly => "notify-only",
            Mode::DryRun => "dry-run",
        }
    }
}

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
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let s = s.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("{s:?}: expected name=\"value\" (operators = != =~ !~)"))?;
        let name = &s[..name_end];
        if !super::payload::valid_label_name(name) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        let rest = s[name_end..].trim_start();
        let (op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
            .ok_or_else(|| format!("{s:?}: expected one of the operators = != =~ !~ after the label name"))?;
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            serde_json::from_str::<String>(value).map_err(|e| format!("{s:?}: bad quoted value: {e}"))?
        } else if value.contains('"') {
            return Err(format!("{s:?}: unbalanced quotes"));
        } else {
            value.to_string()
        };
        // The pattern must be a regex on its own (errors point into what
        // the user wrote); only the anchored form is compiled.
        let re = |v: &str| match crate::error::regex_syntax_error(v) {
            Some(why) => Err(why),
            None => regex::Regex::new(&format!("^(?:{v})$")).map_err(|e| format!("invalid regex {v:?}: {e}")),
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

pub(super) fn positive(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be greater than 0"));
    }
    Ok(())
}

impl ReceiverConfig {
    /// True when a user the web layer verified counts as authenticated
    /// here (`receiver.web_users`).
    pub fn accepts_web_user(&self, user: &str) -> bool {
        self.web_users.as_ref().is_none_or(|l| l.iter().any(|u| u == user))
    }

    /// Checks `receiver.web_users` against the web config's users: each
    /// must be one of them (a typo would silently lock Alertmanager out).
    pub fn check_web_users(&self, web_users: &[String]) -> Result<(), ConfigError> {
        for (i, u) in self.web_users.iter().flatten().enumerate() {
            if !web_users.contains(u) {
                return Err(ConfigError::invalid(
                    format!("receiver.web_users[{i}]"),
                    format!("{u:?} is not a user of the web config's basic_auth_users"),
                ));
            }
        }
        Ok(())
    }

    /// Validates `[receiver]` against the known notification channels.
    pub fn validate(&self, channels: &Channels) -> Result<(), ConfigError> {
        let mut errs = Errors::default();
        if !self.path.starts_with('/') || self.path.contains(char::is_whitespace) {
            errs.0.push(ConfigError::invalid(
                "receiver.path",
                "must start with `/` and contain no spaces",
            ));
        }
        if crate::receiver::RESERVED_PATHS.contains(&self.path.as_str()) || self.path.starts_with("/api/v1/holds/") {
            errs.0.push(ConfigError::invalid(
                "receiver.path",
                "collides with a built-in endpoint",
            ));
        }
        errs.keep(self.evidence.compile("receiver.evidence"));
        if self.max_body_bytes < 1024 {
            errs.0
                .push(ConfigError::invalid("receiver.max_body_bytes", "must be at least 1024"));
        }
        if self.max_alerts_per_request == 0 {
            errs.0.push(ConfigError::invalid(
                "receiver.max_alerts_per_request",
                "must be at least 1",
            ));
        }
        if self.max_concurrent_actions == 0 {
            errs.0.push(ConfigError::invalid(
                "receiver.max_concurrent_actions",
                "must be at least 1",
            ));
        }
        if self.budget_attempts == 0 {
            errs.0
                .push(ConfigError::invalid("receiver.budget_attempts", "must be at least 1"));
        }
        errs.keep(positive("receiver.action_timeout", self.action_timeout));
        errs.keep(positive("receiver.verify_timeout", self.verify_timeout));
        errs.keep(positive("receiver.budget_window", self.budget_window));
        errs.keep(positive("receiver.dedup_window", self.dedup_window));
        errs.keep(positive("receiver.approval_ttl", self.approval_ttl));
        if let Some(name) = &self.bearer_token_env
            && (name.is_empty() || name.contains('='))
        {
            errs.0.push(ConfigError::invalid(
                "receiver.bearer_token_env",
                "must name an environment variable",
            ));
        }
        if self.basic_auth_username.is_some() != self.basic_auth_password_file.is_some() {
            errs.0.push(ConfigError::invalid(
                "receiver.basic_auth_username",
                "basic_auth_username and basic_auth_password_file go together",
            ));
        }
        if let Some(u) = &self.basic_auth_username
            && (u.is_empty() || u.contains(':'))
        {
            errs.0.push(ConfigError::invalid(
                "receiver.basic_auth_username",
                "must be non-empty without `:`",
            ));
        }
        if self.enabled {
            // Secrets must be readable at start, not at the first alert.
            errs.keep(super::auth::Auth::load(self));
        }
        for (i, c) in self.escalate.iter().enumerate() {
            errs.keep(check_channel(&format!("receiver.escalate[{i}]"), c, channels));
        }
        errs.keep(self.heartbeat.validate(channels));
        ConfigError::from_list(errs.0)
    }
}

/// The configured `[notify.<name>]` channels.
pub type Channels = crate::notify::Channels;

pub(super) fn check_channel(key: &str, name: &str, channels: &Channels) -> Result<(), ConfigError> {
    if channels.contains_key(name) {
        Ok(())
    } else {
        let known: Vec<&str> = channels.keys().map(String::as_str).collect();
        Err(ConfigError::invalid(
            key,
            format!(
                "no [notify.{name}] channel configured (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ))
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
    pub quiet: Option<super::quiet::QuietWindows>,
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

/// Collects the errors of independent checks.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    /// The value of `r`, keeping its error.
    fn keep<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }
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
fn compile_quiet(key: &str, r: &RuleConfig) -> Result<Option<super::quiet::QuietWindows>, ConfigError> {
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
    super::quiet::QuietWindows::parse(&r.quiet, tz)
        .map(Some)
        .map_err(|(i, e)| match i {
            Some(i) => ConfigError::invalid(format!("{key}.quiet[{i}]"), format!("{:?}: {e}", r.quiet[i])),
            None => ConfigError::invalid(format!("{key}.timezone"), e),
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

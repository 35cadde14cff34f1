//! `[receiver]` and `[[remediation]]`: the webhook endpoint, its
//! authentication, the engine's limits and the routing rules, with their
//! validation (every error names its key, e.g. `remediation[2].matchers[0]`):
//! `[receiver]` here, the rules in `rule`, `[receiver.heartbeat]` in
//! `heartbeat`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::receiver::auth::{self, Auth};

mod heartbeat;
mod rule;

pub use heartbeat::{DEFAULT_ALERTNAME, HeartbeatConfig};
pub use rule::{DEFAULT_BACKOFF_MAX, Matcher, Mode, On, Rule, RuleConfig, compile_rules};

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
    pub heartbeat: HeartbeatConfig,
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

pub(crate) fn positive(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be greater than 0"));
    }
    Ok(())
}

/// The status document's path.
pub const STATUS_PATH: &str = "/api/v1/status";
/// Paths the receiver's own path must not take.
pub const RESERVED_PATHS: &[&str] = &["/", "/metrics", "/-/healthy", "/-/ready", "/-/reload", STATUS_PATH];

impl ReceiverConfig {
    /// Where the credentials are read from.
    pub fn credentials(&self) -> auth::Sources<'_> {
        auth::Sources {
            bearer_token_file: self.bearer_token_file.as_deref(),
            bearer_token_env: self.bearer_token_env.as_deref(),
            basic_auth_username: self.basic_auth_username.as_deref(),
            basic_auth_password_file: self.basic_auth_password_file.as_deref(),
        }
    }

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
        if RESERVED_PATHS.contains(&self.path.as_str()) || self.path.starts_with("/api/v1/holds/") {
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
            errs.keep(Auth::load(self.credentials()));
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

pub(crate) fn check_channel(key: &str, name: &str, channels: &Channels) -> Result<(), ConfigError> {
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

/// Collects the errors of independent checks.
#[derive(Default)]
struct Errors(pub(super) Vec<ConfigError>);

impl Errors {
    /// The value of `r`, keeping its error.
    pub(super) fn keep<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }
}

/// Refuses to serve the receiver on a non-loopback address without
/// authentication unless `receiver.allow_unauthenticated_non_loopback`.
/// `web_users`: the web config's basic-auth users; one the receiver accepts
/// (`receiver.web_users`) is authentication too.
pub fn check_listen(cfg: &ReceiverConfig, addr: SocketAddr, web_users: &[String]) -> Result<(), ConfigError> {
    cfg.check_web_users(web_users)?;
    if !cfg.enabled || addr.ip().is_loopback() || cfg.allow_unauthenticated_non_loopback {
        return Ok(());
    }
    if web_users.iter().any(|u| cfg.accepts_web_user(u)) {
        return Ok(());
    }
    if Auth::load(cfg.credentials())?.required() {
        return Ok(());
    }
    Err(ConfigError::invalid(
        "receiver.allow_unauthenticated_non_loopback",
        format!(
            "refusing to serve the remediation webhook on non-loopback {addr} without authentication: \
             set receiver.bearer_token_file/bearer_token_env or basic auth, basic_auth_users in --web.config.file, or set \
             receiver.allow_unauthenticated_non_loopback = true"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_without_auth_is_refused() {
        let cfg = ReceiverConfig {
            enabled: true,
            ..Default::default()
        };
        let e = check_listen(&cfg, "0.0.0.0:9877".parse().unwrap(), &[]).unwrap_err();
        assert!(
            e.to_string().contains("receiver.allow_unauthenticated_non_loopback"),
            "{e}"
        );
        check_listen(&cfg, "127.0.0.1:9877".parse().unwrap(), &[]).unwrap();
        check_listen(&cfg, "[::1]:9877".parse().unwrap(), &[]).unwrap();
        // A web user the receiver accepts is authentication.
        check_listen(&cfg, "0.0.0.0:9877".parse().unwrap(), &["am".into()]).unwrap();
        let only_other = ReceiverConfig {
            web_users: Some(vec!["am".into()]),
            ..cfg.clone()
        };
        let e = check_listen(&only_other, "0.0.0.0:9877".parse().unwrap(), &["prom".into()]).unwrap_err();
        assert!(e.to_string().contains("receiver.web_users[0]"), "{e}");
        let none = ReceiverConfig {
            web_users: Some(vec![]),
            ..cfg.clone()
        };
        check_listen(&none, "0.0.0.0:9877".parse().unwrap(), &["am".into()]).unwrap_err();
        let open = ReceiverConfig {
            allow_unauthenticated_non_loopback: true,
            ..cfg
        };
        check_listen(&open, "0.0.0.0:9877".parse().unwrap(), &[]).unwrap();
    }
}

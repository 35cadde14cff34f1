//! `type = "notify"`: send a message through a configured `[notify.<name>]`
//! channel ([`crate::notify`] delivers it). The title and message are
//! rendered leniently so a missing annotation never suppresses a message.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::template::{check_template, render_field_lenient};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};
use crate::notify::{self, NotifyChannel};

/// `type = "notify"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyAction {
    /// Name of a `[notify.<name>]` channel.
    pub channel: String,
    /// Message template; default: alertname, status, summary and labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Title template; default `"{{ alertname }} ({{ status }})"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl NotifyAction {
    /// The channel must be configured.
    fn check_channel(
        &self,
        key: &str,
        channels: &BTreeMap<String, NotifyChannel>,
    ) -> Result<(), ConfigError> {
        if channels.contains_key(&self.channel) {
            return Ok(());
        }
        let known: Vec<&str> = channels.keys().map(String::as_str).collect();
        Err(ConfigError::invalid(
            format!("{key}.channel"),
            format!(
                "no [notify.{}] channel configured (configured: {})",
                self.channel,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ))
    }
}

/// A notify action's channel with its rendered title and message: key
/// `notify:<channel>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub channel: String,
    pub title: String,
    pub message: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "notify:{}", self.channel)
    }
}

impl Action for NotifyAction {
    const TYPE: &'static str = "notify";
    type Target = Target;

    /// A message changes nothing on the host.
    fn is_destructive(&self) -> bool {
        false
    }

    fn suggested_timeout(&self) -> Duration {
        notify::SEND_TIMEOUT
    }

    fn resolve(&self, alert: &Alert) -> Result<Target, ActionError> {
        let title = match &self.title {
            Some(t) => render_field_lenient("title", t, alert)?,
            None => default_title(alert),
        };
        let message = match &self.message {
            Some(m) => render_field_lenient("message", m, alert)?,
            None => default_message(alert),
        };
        Ok(Target {
            channel: self.channel.clone(),
            title,
            message,
        })
    }
    fn validate(&self, key: &str, ctx: &Context<'_>) -> Result<(), ConfigError> {
        if self.channel.is_empty() {
            return Err(ConfigError::invalid(format!("{key}.channel"), "must not be empty"));
        }
        if let Some(m) = &self.message {
            check_template(&format!("{key}.message"), m)?;
        }
        if let Some(t) = &self.title {
            check_template(&format!("{key}.title"), t)?;
        }
        self.check_channel(key, ctx.channels)
    }


    /// A delivered message is all there is to it.
    async fn verify(&self, _: &Target, _: &ActionEnv, _: tokio::time::Instant) -> Verification {
        Verification::NotApplicable
    }

    /// A message names nothing to look at.
    fn subjects(&self, _: &Target) -> Vec<Subject> {
        Vec::new()
    }

    async fn run(&self, t: &Target, alert: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let channel = &t.channel;
        let ch = match notify::channel(&env.notify, channel) {
            Ok(ch) => ch,
            Err(e) => return Outcome::new(OutcomeResult::Failed, e.to_string(), started),
        };
        if env.dry_run {
            return Outcome::new(
                OutcomeResult::DryRun,
                format!("would notify {channel} ({}): {}", ch.kind(), t.title),
                started,
            );
        }
        match env
            .notify_client
            .send_to_with_evidence(&env.notify, channel, &t.title, &t.message, &env.evidence, alert)
            .await
        {
            Ok(d) => Outcome::new(OutcomeResult::Ok, d, started),
            Err(e) => Outcome::new(OutcomeResult::Failed, e.to_string(), started),
        }
    }
}

/// Default title: `"<alertname> (<status>)"`.
pub fn default_title(alert: &Alert) -> String {
    format!("{} ({})", crate::text::escape(&alert.alertname), alert.status)
}

/// Default message: summary/description annotations and the labels.
pub fn default_message(alert: &Alert) -> String {
    let mut m = String::new();
    for k in ["summary", "description"] {
        if let Some(v) = alert.annotations.get(k) {
            m.push_str(&crate::text::escape_lines(v));
            m.push('\n');
        }
    }
    let labels: Vec<String> = alert
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::text::escape(v)))
        .collect();
    m.push_str(&labels.join(", "));
    m
}

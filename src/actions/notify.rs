//! Notifications: ntfy, Telegram and generic JSON webhooks, with retries and
//! backoff; secrets (tokens) are never logged, journaled or returned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ActionEnv, Alert, ConfigError, Outcome, OutcomeResult};

/// `[notify.<name>]`: one configured channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum NotifyChannel {
    Ntfy(NtfyChannel),
    Telegram(TelegramChannel),
    Webhook(WebhookChannel),
}

/// `kind = "ntfy"`: JSON publish to an ntfy server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyChannel {
    /// Server base URL, e.g. `https://ntfy.sh`.
    pub server: String,
    pub topic: String,
    /// 1 (min) ..= 5 (max); default 3.
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default)]
    pub tags: Vec<String>,
    /// File holding an access token (sent as `Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// `kind = "telegram"`: Bot API sendMessage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramChannel {
    #[serde(default = "default_telegram_api")]
    pub api_base: String,
    pub bot_token_file: PathBuf,
    /// Numeric chat id or `@channelusername`.
    pub chat_id: ChatId,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// A Telegram chat id: a number or `@username`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Name(String),
}

/// `kind = "webhook"`: POST of a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_priority() -> u8 {
    3
}
fn default_retries() -> u32 {
    3
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_telegram_api() -> String {
    "https://api.telegram.org".to_string()
}

impl NotifyChannel {
    /// Config-time checks for `[notify.<name>]` (`key` = `notify.<name>`).
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let _ = key;
        Ok(())
    }
}

/// Validates every `[notify.<name>]` channel.
pub fn validate_channels(channels: &BTreeMap<String, NotifyChannel>) -> Result<(), ConfigError> {
    for (name, ch) in channels {
        ch.validate(&format!("notify.{name}"))?;
    }
    Ok(())
}

/// Default title: `"<alertname> (<status>)"`.
pub fn default_title(alert: &Alert) -> String {
    format!("{} ({})", alert.alertname, alert.status)
}

/// Default message: summary/description annotations and the labels.
pub fn default_message(alert: &Alert) -> String {
    let mut m = String::new();
    for k in ["summary", "description"] {
        if let Some(v) = alert.annotations.get(k) {
            m.push_str(v);
            m.push('\n');
        }
    }
    let labels: Vec<String> = alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    m.push_str(&labels.join(", "));
    m
}

pub(crate) async fn run(
    channel: &str,
    _title: &str,
    _message: &str,
    _alert: &Alert,
    _env: &ActionEnv,
    started: Instant,
) -> Outcome {
    Outcome::new(
        OutcomeResult::Refused,
        format!("notify {channel}: not wired yet on this commit"),
        started,
    )
}

//! Notification channels (`[notify.<name>]`): ntfy, Telegram and generic
//! JSON webhooks. Their configuration, its validation, and delivery with
//! retries and backoff through one shared HTTP client. Secrets (tokens) are
//! never logged, journaled or returned.
//!
//! Used by the `notify` action and by the receiver's own messages
//! (escalation, approval requests, outcomes). A leaf: it knows nothing of
//! actions or the receiver; the alert a webhook carries is any `Serialize`.
//! One file per channel kind ([`ntfy`], [`telegram`], [`webhook`]) builds
//! that kind's request; this file holds what they share.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Declares a channel's config struct with the delivery policy every channel
/// shares appended (`retries`, `backoff`, `timeout`: written once, here) and
/// `policy()` returning it. Plain fields rather than a `#[serde(flatten)]`
/// struct: flatten would drop the list of valid keys from the
/// "unknown field" error a typo gets.
macro_rules! channel {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Extra attempts after a failed one (connection error, timeout,
            /// 429, 5xx); default 3.
            #[serde(default = "super::default_retries")]
            pub retries: u32,
            /// Wait before the first retry, doubled each time (capped at 30 s).
            #[serde(default = "super::default_backoff", with = "humantime_serde")]
            pub backoff: Duration,
            /// Per-request timeout.
            #[serde(default = "super::default_timeout", with = "humantime_serde")]
            pub timeout: Duration,
        }

        impl $name {
            /// (retries, backoff, timeout).
            pub(super) fn policy(&self) -> (u32, Duration, Duration) {
                (self.retries, self.backoff, self.timeout)
            }
        }
    };
}

mod error;
pub mod ntfy;
pub mod telegram;
pub mod webhook;

pub use error::{NotifyError, UrlError};
pub use ntfy::NtfyChannel;
pub use telegram::{ChatId, TelegramChannel};
pub use webhook::WebhookChannel;

/// Upper bound for one delivery, retries and backoff included (the callers'
/// own timeout around [`Client::send_to`]).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// `[notify.<name>]`: one configured channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum NotifyChannel {
    Ntfy(NtfyChannel),
    Telegram(TelegramChannel),
    Webhook(WebhookChannel),
}

/// The configured channels by name.
pub type Channels = BTreeMap<String, NotifyChannel>;

fn default_retries() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl NotifyChannel {
    /// Config-time checks for `[notify.<name>]` (`key` = `notify.<name>`):
    /// URLs parse and are http(s), token files exist and are readable (their
    /// content is never shown), header names and values are valid.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        match self {
            NotifyChannel::Ntfy(c) => c.validate(key)?,
            NotifyChannel::Telegram(c) => c.validate(key)?,
            NotifyChannel::Webhook(c) => c.validate(key)?,
        }
        let (retries, _, timeout) = self.policy();
        if retries > 10 {
            return Err(ConfigError::invalid(format!("{key}.retries"), "must be at most 10"));
        }
        if timeout.is_zero() {
            return Err(ConfigError::invalid(format!("{key}.timeout"), "must be greater than 0"));
        }
        Ok(())
    }

    /// The channel's (retries, backoff, timeout).
    fn policy(&self) -> (u32, Duration, Duration) {
        match self {
            NotifyChannel::Ntfy(c) => c.policy(),
            NotifyChannel::Telegram(c) => c.policy(),
            NotifyChannel::Webhook(c) => c.policy(),
        }
    }

    /// `ntfy`, `telegram` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyChannel::Ntfy(_) => "ntfy",
            NotifyChannel::Telegram(_) => "telegram",
            NotifyChannel::Webhook(_) => "webhook",
        }
    }

    /// Builds the request; `evidence` is appended to the message within
    /// the channel's limit ([`compose`]: evidence is cut first).
    fn prepare(
        &self,
        title: &str,
        message: &str,
        evidence: &str,
        alert: &serde_json::Value,
    ) -> Result<Prepared, NotifyError> {
        // Whoever composed the text, no control character reaches a person
        // raw (`crate::text`): the title on one line, message and evidence
        // with their line breaks.
        let (title, message) = (&*crate::text::escape(title), &*crate::text::escape_lines(message));
        let evidence = &*crate::text::escape_lines(evidence);
        match self {
            NotifyChannel::Ntfy(c) => c.prepare(title, &compose(message, evidence, NTFY_MESSAGE_MAX, Measure::Bytes)),
            NotifyChannel::Telegram(c) => {
                // Telegram has no title: the text is the title line, then the message.
                let head = if title.is_empty() {
                    message.to_string()
                } else {
                    format!("{title}\n{message}")
                };
                c.prepare(&compose(&head, evidence, TELEGRAM_TEXT_MAX, Measure::Utf16))
            }
            NotifyChannel::Webhook(c) => c.prepare(
                title,
                &compose(message, evidence, WEBHOOK_MESSAGE_MAX, Measure::Bytes),
                alert,
            ),
        }
    }
}

/// Validates every `[notify.<name>]` channel.
pub fn validate_channels(channels: &Channels) -> Result<(), ConfigError> {
    for (name, ch) in channels {
        ch.validate(&format!("notify.{name}"))?;
    }
    Ok(())
}

/// The channel called `name`; `Err` says none is configured.
pub fn channel<'a>(channels: &'a Channels, name: &str) -> Result<&'a NotifyChannel, NotifyError> {
    channels
        .get(name)
        .ok_or_else(|| NotifyError::UnknownChannel(name.to_string()))
}

fn check_url(key: &str, url: &str) -> Result<reqwest::Url, ConfigError> {
    let u = reqwest::Url::parse(url).map_err(|e| ConfigError::invalid(key, format!("invalid URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(key, "must be an http:// or https:// URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not contain credentials; use a token file",
        ));
    }
    Ok(u)
}

fn check_secret_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    match read_secret(path) {
        Ok(_) => Ok(()),
        Err(e) => Err(ConfigError::invalid(key, e)),
    }
}

/// Reads a token file (trimmed). Errors name the file, never its content.
pub fn read_secret(path: &Path) -> Result<String, NotifyError> {
    let text = std::fs::read_to_string(path).map_err(|source| NotifyError::SecretUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let t = text.trim();
    if t.is_empty() {
        return Err(NotifyError::SecretEmpty(path.to_path_buf()));
    }
    if t.contains(['\n', '\r', '\0']) {
        return Err(NotifyError::SecretNotOneLine(path.to_path_buf()));
    }
    Ok(t.to_string())
}

/// Replaces every occurrence of each secret in `text` with `[REDACTED]`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s, "[REDACTED]");
        }
    }
    out
}

/// A prepared request: where it goes and what it carries. Secrets live only
/// here and in `secrets` (for redaction).
struct Prepared {
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    body: serde_json::Value,
    secrets: Vec<String>,
    /// What to show instead of `url` (the Telegram URL contains the token).
    shown: String,
}

impl Prepared {
    /// A request shown by its URL.
    fn new(
        url: reqwest::Url,
        headers: reqwest::header::HeaderMap,
        body: serde_json::Value,
        secrets: Vec<String>,
    ) -> Prepared {
        Prepared {
            shown: url.to_string(),
            url,
            headers,
            body,
            secrets,
        }
    }
}

/// Reads the token in `file` (if any) into an `Authorization: Bearer`
/// header, remembering it as a secret.
fn add_bearer(
    file: Option<&Path>,
    headers: &mut reqwest::header::HeaderMap,
    secrets: &mut Vec<String>,
) -> Result<(), NotifyError> {
    let Some(f) = file else { return Ok(()) };
    let token = read_secret(f)?;
    let mut v =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| NotifyError::TokenHeader)?;
    v.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, v);
    secrets.push(token);
    Ok(())
}

/// How a channel measures its message limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// UTF-8 bytes (ntfy, webhooks).
    Bytes,
    /// UTF-16 code units, as Telegram counts its 4096 "characters".
    Utf16,
}

impl Measure {
    pub fn len(self, s: &str) -> usize {
        match self {
            Measure::Bytes => s.len(),
            Measure::Utf16 => s.encode_utf16().count(),
        }
    }
}

/// ntfy's default message limit (`message-size-limit`, 4 KiB; a longer
/// message becomes an attachment).
pub const NTFY_MESSAGE_MAX: usize = 4096;
/// Telegram's limit on a message's text (title line included).
pub const TELEGRAM_TEXT_MAX: usize = 4096;
/// hostmedic's cap on a webhook's `message` (the receiving end is unknown;
/// 64 KiB stays under every common request limit).
pub const WEBHOOK_MESSAGE_MAX: usize = 64 * 1024;

/// What is appended when evidence was cut to fit a channel.
const EVIDENCE_CUT: &str = "… (evidence cut to fit the channel; `hostmedic incidents` has all of it)";

/// `head`, then a blank line and `evidence`, within `max` (as `measure`
/// counts). Evidence is cut first, at a line boundary, and says so; the
/// head is only cut when it alone is longer than `max`.
pub fn compose(head: &str, evidence: &str, max: usize, measure: Measure) -> String {
    let evidence = evidence.trim_end();
    let full = if evidence.is_empty() {
        head.to_string()
    } else {
        format!("{head}\n\n{evidence}")
    };
    if measure.len(&full) <= max {
        return full;
    }
    let head_len = measure.len(head);
    if head_len >= max {
        return truncate_measured(head, max, measure);
    }
    let room = max - head_len;
    let overhead = measure.len("\n\n") + measure.len(EVIDENCE_CUT) + 1;
    if room <= overhead {
        return head.to_string();
    }
    let mut budget = room - overhead;
    let mut kept = String::new();
    for line in evidence.lines() {
        let n = measure.len(line) + 1;
        if n > budget {
            // One more, cut line when there is room for a useful part of it.
            if budget > 40 {
                kept.push_str(&truncate_measured(line, budget - 1, measure));
                kept.push('\n');
            }
            break;
        }
        budget -= n;
        kept.push_str(line);
        kept.push('\n');
    }
    format!("{head}\n\n{kept}{EVIDENCE_CUT}")
}

/// `s` cut to at most `max` (as `measure` counts), ending in `…` when cut.
fn truncate_measured(s: &str, max: usize, measure: Measure) -> String {
    if measure.len(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    let ell = measure.len("…");
    for c in s.chars() {
        let n = match measure {
            Measure::Bytes => c.len_utf8(),
            Measure::Utf16 => c.len_utf16(),
        };
        if used + n + ell > max {
            break;
        }
        used += n;
        out.push(c);
    }
    out.push('…');
    out
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Whether a response status is worth retrying.
fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 408
}

/// The HTTP client every notification goes through: built once, on first
/// use, and shared by clones (connections are pooled). Each request gets
/// its channel's timeout.
#[derive(Debug, Clone, Default)]
pub struct Client(Arc<OnceLock<Result<reqwest::Client, Arc<reqwest::Error>>>>);

impl Client {
    fn http(&self) -> Result<&reqwest::Client, NotifyError> {
        self.0
            .get_or_init(|| {
                crate::install_crypto_provider();
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("hostmedic/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| Arc::new(e.without_url()))
            })
            .as_ref()
            .map_err(|e| NotifyError::HttpClient(Arc::clone(e)))
    }

    /// Sends one notification with retries; returns a detail string either
    /// way (secrets redacted).
    pub async fn send(
        &self,
        ch: &NotifyChannel,
        title: &str,
        message: &str,
        alert: &impl Serialize,
    ) -> Result<String, NotifyError> {
        self.send_with_evidence(ch, title, message, "", alert).await
    }

    /// As [`Client::send`], with `evidence` appended to the message within
    /// the channel's length limit (evidence is cut first, never the message).
    pub async fn send_with_evidence(
        &self,
        ch: &NotifyChannel,
        title: &str,
        message: &str,
        evidence: &str,
        alert: &impl Serialize,
    ) -> Result<String, NotifyError> {
        let alert = serde_json::to_value(alert)?;
        let p = ch.prepare(title, message, evidence, &alert)?;
        let secrets: Vec<&str> = p.secrets.iter().map(String::as_str).collect();
        let (retries, backoff, timeout) = ch.policy();
        let client = self.http()?;
        let mut wait = backoff;
        let mut last = String::new();
        for attempt in 0..=retries {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            let res = client
                .post(p.url.clone())
                .timeout(timeout)
                .headers(p.headers.clone())
                .json(&p.body)
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    return Ok(format!(
                        "{} {}: HTTP {} (attempt {})",
                        ch.kind(),
                        p.shown,
                        r.status().as_u16(),
                        attempt + 1
                    ));
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    last = redact(
                        &format!("HTTP {}: {}", status.as_u16(), truncate_chars(body.trim(), 300)),
                        &secrets,
                    );
                    if !retryable(status) {
                        break;
                    }
                }
                // The whole cause ("Connection refused", "invalid peer
                // certificate: …"), not reqwest's "error sending request".
                Err(e) => last = redact(&crate::error::chain(&e.without_url()), &secrets),
            }
            tracing::warn!(kind = ch.kind(), url = %p.shown, attempt = attempt + 1, error = %last, "notification failed");
        }
        Err(NotifyError::Undelivered {
            kind: ch.kind(),
            shown: p.shown,
            last,
            attempts: retries + 1,
        })
    }

    /// Sends through the channel called `name`; both the `Ok` and the `Err`
    /// detail name the channel.
    pub async fn send_to(
        &self,
        channels: &Channels,
        name: &str,
        title: &str,
        message: &str,
        alert: &impl Serialize,
    ) -> Result<String, NotifyError> {
        self.send_to_with_evidence(channels, name, title, message, "", alert)
            .await
    }

    /// As [`Client::send_to`], with evidence ([`Client::send_with_evidence`]).
    pub async fn send_to_with_evidence(
        &self,
        channels: &Channels,
        name: &str,
        title: &str,
        message: &str,
        evidence: &str,
        alert: &impl Serialize,
    ) -> Result<String, NotifyError> {
        let ch = channel(channels, name)?;
        match self.send_with_evidence(ch, title, message, evidence, alert).await {
            Ok(d) => Ok(format!("notified {name}: {d}")),
            Err(e) => Err(NotifyError::Channel {
                channel: name.to_string(),
                source: Box::new(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests;

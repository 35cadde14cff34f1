//! Notifications: ntfy, Telegram and generic JSON webhooks, with retries and
//! backoff; secrets (tokens) are never logged, journaled or returned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// Declares a channel's config struct with the delivery policy every channel
/// shares appended (`retries`, `backoff`, `timeout`: written once, here) and
/// `policy()` returning it. Plain fields rather than a `#[serde(flatten)]`
/// struct: flatten would drop the list of valid keys from the
/// "unknown field" error a typo gets.
macro_rules! channel {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Extra attempts after a failed one (connection error, timeout,
            /// 429, 5xx); default 3.
            #[serde(default = "default_retries")]
            pub retries: u32,
            /// Wait before the first retry, doubled each time (capped at 30 s).
            #[serde(default = "default_backoff", with = "humantime_serde")]
            pub backoff: Duration,
            /// Per-request timeout.
            #[serde(default = "default_timeout", with = "humantime_serde")]
            pub timeout: Duration,
        }

        impl $name {
            /// (retries, backoff, timeout).
            fn policy(&self) -> (u32, Duration, Duration) {
                (self.retries, self.backoff, self.timeout)
            }
        }
    };
}

channel! {
    /// `kind = "ntfy"`: JSON publish to an ntfy server.
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
    }
}

channel! {
    /// `kind = "telegram"`: Bot API sendMessage.
    pub struct TelegramChannel {
        #[serde(default = "default_telegram_api")]
        pub api_base: String,
        pub bot_token_file: PathBuf,
        /// Numeric chat id or `@channelusername`.
        pub chat_id: ChatId,
    }
}

/// A Telegram chat id: a number or `@username`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Name(String),
}

channel! {
    /// `kind = "webhook"`: POST of a JSON document.
    pub struct WebhookChannel {
        pub url: String,
        #[serde(default)]
        pub headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bearer_token_file: Option<PathBuf>,
    }
}

fn default_priority() -> u8 {
    3
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_telegram_api() -> String {
    "https://api.telegram.org".to_string()
}

impl NotifyChannel {
    /// Config-time checks for `[notify.<name>]` (`key` = `notify.<name>`):
    /// URLs parse and are http(s), token files exist and are readable (their
    /// content is never shown), header names and values are valid.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let (retries, _, timeout) = match self {
            NotifyChannel::Ntfy(c) => {
                check_url(&format!("{key}.server"), &c.server)?;
                let topic_ok = !c.topic.is_empty()
                    && c.topic.len() <= 64
                    && c.topic
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
                if !topic_ok {
                    return Err(ConfigError::invalid(
                        format!("{key}.topic"),
                        "must be 1..=64 characters of A-Z a-z 0-9 _ -",
                    ));
                }
                if !(1..=5).contains(&c.priority) {
                    return Err(ConfigError::invalid(format!("{key}.priority"), "must be 1..=5"));
                }
                if let Some(f) = &c.token_file {
                    check_secret_file(&format!("{key}.token_file"), f)?;
                }
                c.policy()
            }
            NotifyChannel::Telegram(c) => {
                check_url(&format!("{key}.api_base"), &c.api_base)?;
                check_secret_file(&format!("{key}.bot_token_file"), &c.bot_token_file)?;
                if let ChatId::Name(n) = &c.chat_id
                    && (n.is_empty() || n.chars().any(char::is_whitespace))
                {
                    return Err(ConfigError::invalid(
                        format!("{key}.chat_id"),
                        "must be a number or @channelname",
                    ));
                }
                c.policy()
            }
            NotifyChannel::Webhook(c) => {
                check_url(&format!("{key}.url"), &c.url)?;
                for (name, value) in &c.headers {
                    let hk = format!("{key}.headers.{name}");
                    reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| ConfigError::invalid(&hk, "invalid header name"))?;
                    // The value is not echoed: it may be a secret.
                    reqwest::header::HeaderValue::from_str(value)
                        .map_err(|_| ConfigError::invalid(&hk, "invalid header value"))?;
                }
                if let Some(f) = &c.bearer_token_file {
                    check_secret_file(&format!("{key}.bearer_token_file"), f)?;
                }
                c.policy()
            }
        };
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
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    if t.contains(['\n', '\r', '\0']) {
        return Err(format!("{}: must hold a single line", path.display()));
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

/// Reads the token in `file` (if any) into an `Authorization: Bearer`
/// header, remembering it as a secret.
fn add_bearer(
    file: Option<&Path>,
    headers: &mut reqwest::header::HeaderMap,
    secrets: &mut Vec<String>,
) -> Result<(), String> {
    let Some(f) = file else { return Ok(()) };
    let token = read_secret(f)?;
    let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "token is not a valid header value")?;
    v.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, v);
    secrets.push(token);
    Ok(())
}

fn prepare(ch: &NotifyChannel, title: &str, message: &str, alert: &Alert) -> Result<Prepared, String> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    let mut secrets = Vec::new();
    let (url, shown, body) = match ch {
        NotifyChannel::Ntfy(c) => {
            add_bearer(c.token_file.as_deref(), &mut headers, &mut secrets)?;
            let url = reqwest::Url::parse(&c.server).map_err(|e| format!("server URL: {e}"))?;
            let body = serde_json::json!({
                "topic": c.topic,
                "title": truncate_chars(title, 256),
                "message": truncate_chars(message, 4000),
                "priority": c.priority,
                "tags": c.tags,
            });
            let shown = url.to_string();
            (url, shown, body)
        }
        NotifyChannel::Telegram(c) => {
            let token = read_secret(&c.bot_token_file)?;
            let base = c.api_base.trim_end_matches('/');
            let url = reqwest::Url::parse(&format!("{base}/bot{token}/sendMessage"))
                .map_err(|_| "api_base with the bot token does not form a valid URL".to_string())?;
            secrets.push(token);
            let chat_id = match &c.chat_id {
                ChatId::Id(n) => serde_json::json!(n),
                ChatId::Name(s) => serde_json::json!(s),
            };
            let text = if title.is_empty() {
                message.to_string()
            } else {
                format!("{title}\n{message}")
            };
            let body = serde_json::json!({
                "chat_id": chat_id,
                "text": truncate_chars(&text, 4096),
                "disable_web_page_preview": true,
            });
            (url, format!("{base}/bot[REDACTED]/sendMessage"), body)
        }
        NotifyChannel::Webhook(c) => {
            for (k, v) in &c.headers {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("header {k}: invalid name"))?;
                let mut value = HeaderValue::from_str(v).map_err(|_| format!("header {k}: invalid value"))?;
                value.set_sensitive(true);
                headers.insert(name, value);
                if v.len() >= 8 {
                    secrets.push(v.clone());
                }
            }
            add_bearer(c.bearer_token_file.as_deref(), &mut headers, &mut secrets)?;
            let url = reqwest::Url::parse(&c.url).map_err(|e| format!("URL: {e}"))?;
            let body = serde_json::json!({
                "source": "hostmedic",
                "title": title,
                "message": message,
                "alert": alert,
            });
            let shown = url.to_string();
            (url, shown, body)
        }
    };
    Ok(Prepared {
        url,
        headers,
        body,
        secrets,
        shown,
    })
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

/// Sends one notification with retries; returns a detail string either way
/// (secrets redacted).
pub async fn send(ch: &NotifyChannel, title: &str, message: &str, alert: &Alert) -> Result<String, String> {
    let p = prepare(ch, title, message, alert)?;
    let secrets: Vec<&str> = p.secrets.iter().map(String::as_str).collect();
    let (retries, backoff, timeout) = ch.policy();
    crate::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hostmedic/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("http client: {}", e.without_url()))?;
    let mut wait = backoff;
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
        let res = client
            .post(p.url.clone())
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
            Err(e) => last = redact(&e.without_url().to_string(), &secrets),
        }
        tracing::warn!(kind = ch.kind(), url = %p.shown, attempt = attempt + 1, error = %last, "notification failed");
    }
    Err(format!(
        "{} {}: {last} (after {} attempt(s))",
        ch.kind(),
        p.shown,
        retries + 1
    ))
}

pub(crate) async fn run(
    channel: &str,
    title: &str,
    message: &str,
    alert: &Alert,
    env: &ActionEnv,
    started: Instant,
) -> Outcome {
    let Some(ch) = env.notify.get(channel) else {
        return Outcome::new(
            OutcomeResult::Failed,
            format!("notify: no [notify.{channel}] channel configured"),
            started,
        );
    };
    if env.dry_run {
        return Outcome::new(
            OutcomeResult::DryRun,
            format!("would notify {channel} ({}): {title}", ch.kind()),
            started,
        );
    }
    match send(ch, title, message, alert).await {
        Ok(d) => Outcome::new(OutcomeResult::Ok, format!("notified {channel}: {d}"), started),
        Err(d) => Outcome::new(OutcomeResult::Failed, format!("notify {channel}: {d}"), started),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets() {
        assert_eq!(
            redact("GET /bot123:abc/x failed 123:abc", &["123:abc"]),
            "GET /bot[REDACTED]/x failed [REDACTED]"
        );
        assert_eq!(redact("short ab", &["ab"]), "short ab");
    }

    #[test]
    fn channels_round_trip_through_the_effective_config() {
        let d = tempfile::tempdir().unwrap();
        let tok = d.path().join("t");
        std::fs::write(&tok, "secret-token\n").unwrap();
        let text = format!(
            "[notify.tg]\nkind = \"telegram\"\nbot_token_file = \"{0}\"\nchat_id = -42\n\
             [notify.n]\nkind = \"ntfy\"\nserver = \"https://ntfy.example\"\ntopic = \"t\"\ntags = [\"a\"]\n\
             [notify.w]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\n[notify.w.headers]\nX-A = \"b\"\n",
            tok.display()
        );
        let cfg = crate::config::Config::parse(&text, "t").unwrap();
        let NotifyChannel::Telegram(tg) = &cfg.notify["tg"] else {
            panic!()
        };
        assert_eq!(tg.chat_id, ChatId::Id(-42));
        assert_eq!(tg.api_base, "https://api.telegram.org");
        let rendered = cfg.to_toml();
        assert!(!rendered.contains("secret-token"));
        let back = crate::config::Config::parse(&rendered, "rendered").unwrap();
        assert_eq!(back.notify, cfg.notify);
    }

    #[test]
    fn every_kind_has_the_delivery_policy_and_typos_list_the_keys() {
        let parse = |text: &str| toml::from_str::<BTreeMap<String, NotifyChannel>>(text);
        let chans = parse(
            "[n]\nkind = \"ntfy\"\nserver = \"https://ntfy.example\"\ntopic = \"t\"\n\
             [t]\nkind = \"telegram\"\nbot_token_file = \"/t\"\nchat_id = 1\nretries = 5\n\
             [w]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nbackoff = \"250ms\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        let s = Duration::from_secs;
        assert_eq!(chans["n"].policy(), (3, s(1), s(10)));
        assert_eq!(chans["t"].policy(), (5, s(1), s(10)));
        assert_eq!(chans["w"].policy(), (3, Duration::from_millis(250), s(2)));
        let e = parse("[w]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nretires = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `retires`") && e.contains("`retries`"), "{e}");
    }

    #[test]
    fn secret_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("t");
        std::fs::write(&f, "  tok-123\n").unwrap();
        assert_eq!(read_secret(&f).unwrap(), "tok-123");
        std::fs::write(&f, "a\nb\n").unwrap();
        let e = read_secret(&f).unwrap_err();
        assert!(e.contains("single line"), "{e}");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_secret(&f).unwrap_err().contains("empty"));
        assert!(read_secret(&d.path().join("missing")).is_err());
    }
}

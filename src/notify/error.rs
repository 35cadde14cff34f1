//! Why a notification was not sent: [`NotifyError`], one variant per thing
//! that can fail (the channel's name, its token file, its URL or headers,
//! the HTTP client, the delivery itself), each naming what it is about. The
//! texts are the ones a journal's `notified` event, an outcome's detail and
//! the service log show. No variant carries a secret: a token file is named
//! by its path, a failed delivery's last answer is already redacted, and the
//! Telegram URL is the shown one.

use std::path::PathBuf;
use std::sync::Arc;

/// What `reqwest::Url::parse` fails with (the `url` crate's `ParseError`,
/// named through reqwest, which re-exports only the `Url` type).
pub type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// Why a notification could not be prepared or delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No `[notify.<name>]` channel has this name.
    #[error("notify: no [notify.{0}] channel configured")]
    UnknownChannel(String),
    /// A token file could not be read.
    #[error("{}: {source}", .path.display())]
    SecretUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A token file holds nothing but white space.
    #[error("{}: empty", .0.display())]
    SecretEmpty(PathBuf),
    /// A token file holds more than one line.
    #[error("{}: must hold a single line", .0.display())]
    SecretNotOneLine(PathBuf),
    /// `Bearer <token>` is not a valid HTTP header value.
    #[error("token is not a valid header value")]
    TokenHeader,
    /// A configured webhook header has an invalid name or value (`part`);
    /// the value is never shown, it may be a secret.
    #[error("header {name}: invalid {part}")]
    Header { name: String, part: &'static str },
    /// A configured URL does not parse (`what`: which one).
    #[error("{what}: {source}")]
    Url {
        what: &'static str,
        #[source]
        source: UrlError,
    },
    /// The Telegram API base and the bot token do not form a URL (neither is
    /// shown: the URL holds the token).
    #[error("api_base with the bot token does not form a valid URL")]
    TelegramUrl,
    /// The alert could not be turned into the JSON a webhook carries.
    #[error("alert: {0}")]
    Alert(#[from] serde_json::Error),
    /// The shared HTTP client could not be built (shared by every later
    /// send, hence the `Arc`).
    #[error("http client: {}", crate::error::chain(&**.0))]
    HttpClient(Arc<reqwest::Error>),
    /// Every attempt failed; `last` is the last attempt's cause with the
    /// channel's secrets redacted, `shown` the channel's URL as it may be
    /// shown.
    #[error("{kind} {shown}: {last} (after {attempts} attempt(s))")]
    Undelivered {
        kind: &'static str,
        shown: String,
        last: String,
        attempts: u32,
    },
    /// A send through the channel called `channel` failed.
    #[error("notify {channel}: {source}")]
    Channel {
        channel: String,
        #[source]
        source: Box<NotifyError>,
    },
}

//! `kind = "telegram"`: the Bot API's sendMessage. The bot token is part of
//! the URL, so the URL shown in details and logs is redacted.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{NotifyError, Prepared, check_secret_file, check_url, read_secret};
use crate::error::ConfigError;

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

fn default_telegram_api() -> String {
    "https://api.telegram.org".to_string()
}

impl TelegramChannel {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_url(&format!("{key}.api_base"), &self.api_base)?;
        check_secret_file(&format!("{key}.bot_token_file"), &self.bot_token_file)?;
        if let ChatId::Name(n) = &self.chat_id
            && (n.is_empty() || n.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::invalid(
                format!("{key}.chat_id"),
                "must be a number or @channelname",
            ));
        }
        Ok(())
    }

    /// `text` is the whole message, title line included, already within
    /// [`super::TELEGRAM_TEXT_MAX`].
    pub(super) fn prepare(&self, text: &str) -> Result<Prepared, NotifyError> {
        let token = read_secret(&self.bot_token_file)?;
        let base = self.api_base.trim_end_matches('/');
        let url =
            reqwest::Url::parse(&format!("{base}/bot{token}/sendMessage")).map_err(|_| NotifyError::TelegramUrl)?;
        let chat_id = match &self.chat_id {
            ChatId::Id(n) => serde_json::json!(n),
            ChatId::Name(s) => serde_json::json!(s),
        };
        let body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
            "disable_web_page_preview": true,
        });
        Ok(Prepared {
            url,
            headers: reqwest::header::HeaderMap::new(),
            body,
            secrets: vec![token],
            shown: format!("{base}/bot[REDACTED]/sendMessage"),
        })
    }
}

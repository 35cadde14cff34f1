//! `kind = "ntfy"`: a JSON publish to an ntfy server.

use std::path::PathBuf;
use std::time::Duration;

use super::{NotifyError, Prepared, add_bearer, check_secret_file, check_url, truncate_chars};
use crate::error::ConfigError;

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

fn default_priority() -> u8 {
    3
}

impl NtfyChannel {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_url(&format!("{key}.server"), &self.server)?;
        let topic_ok = !self.topic.is_empty()
            && self.topic.len() <= 64
            && self
                .topic
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
        if !topic_ok {
            return Err(ConfigError::invalid(
                format!("{key}.topic"),
                "must be 1..=64 characters of A-Z a-z 0-9 _ -",
            ));
        }
        if !(1..=5).contains(&self.priority) {
            return Err(ConfigError::invalid(format!("{key}.priority"), "must be 1..=5"));
        }
        if let Some(f) = &self.token_file {
            check_secret_file(&format!("{key}.token_file"), f)?;
        }
        Ok(())
    }

    pub(super) fn prepare(&self, title: &str, message: &str) -> Result<Prepared, NotifyError> {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut secrets = Vec::new();
        add_bearer(self.token_file.as_deref(), &mut headers, &mut secrets)?;
        let url = reqwest::Url::parse(&self.server).map_err(|source| NotifyError::Url {
            what: "server URL",
            source,
        })?;
        let body = serde_json::json!({
            "topic": self.topic,
            "title": truncate_chars(title, 256),
            "message": message,
            "priority": self.priority,
            "tags": self.tags,
        });
        Ok(Prepared::new(url, headers, body, secrets))
    }
}

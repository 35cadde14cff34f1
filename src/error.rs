//! The configuration error type and the regex helper every config section
//! uses. A leaf: it imports nothing of the crate, so the sections (collectors,
//! actions, receiver) can name their errors without importing `config`, and
//! `config` can import the sections without a circle.

use std::path::PathBuf;

/// A configuration error that names the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// Compiles a regex from config, naming the key on error.
pub fn compile_regex(key: &str, pattern: &str) -> Result<regex::Regex, ConfigError> {
    regex::Regex::new(pattern).map_err(|e| ConfigError::invalid(key, format!("invalid regex: {e}")))
}

/// `e` and every cause under it, joined by ": " (a cause whose text the
/// level above already ends with is left out): reqwest's "error sending
/// request for url (…)" alone tells an operator nothing, its causes say
/// "Connection refused" or "certificate verify failed".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

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

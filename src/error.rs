//! The configuration error type and the regex helper every config section
//! uses, and [`chain`], the one way an error from a library (reqwest, hyper,
//! bollard, zbus, io) becomes text. A leaf: it imports nothing of the crate,
//! so the sections (collectors, actions, receiver) can name their errors
//! without importing `config`, and `config` can import the sections without a
//! circle.

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

/// An error and every cause under it (`source()`), joined with ": ", for a
/// detail, a log line or a label.
///
/// reqwest's and hyper's errors show only their own level
/// (`error sending request for url (…)`, `client error (Connect)`); what an
/// operator needs ("Connection refused", "invalid peer certificate:
/// UnknownIssuer") is further down. A cause whose text is already in what
/// was written is skipped: many errors put their source into their own
/// message (`#[error("…: {source}")]`) and still return it from `source()`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Level {
        what: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    }

    fn level(what: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Level {
        Level {
            what,
            source: Some(Box::new(source)),
        }
    }

    #[test]
    fn joins_every_cause() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = level("error sending request", level("client error (Connect)", io));
        assert_eq!(
            chain(&e),
            "error sending request: client error (Connect): connection refused"
        );
    }

    #[test]
    fn skips_a_cause_already_in_the_message() {
        #[derive(Debug, thiserror::Error)]
        #[error("engine: {source}")]
        struct Repeats {
            source: Level,
        }
        let inner = level("hyper: client error", std::io::Error::other("broken pipe"));
        let e = Repeats { source: inner };
        assert_eq!(chain(&e), "engine: hyper: client error: broken pipe");
        // Without a source: just the message.
        assert_eq!(chain(&std::io::Error::other("plain")), "plain");
    }
}

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
    /// The judge's findings (`crate::judge`), one a line, with file and line.
    #[error("{0}")]
    Report(String),
    /// Several independent errors, each naming its key, in file order.
    #[error("{}", list(.0))]
    Many(Vec<ConfigError>),
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

impl ConfigError {
    /// One error for a list: `Ok` when empty, the error itself when alone.
    pub fn from_list(mut errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Many(errors)),
        }
    }

    /// The errors this one stands for (itself, or each of [`ConfigError::Many`]).
    pub fn into_list(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Many(list) => list.into_iter().flat_map(ConfigError::into_list).collect(),
            e => vec![e],
        }
    }
}

/// Why `pattern` is not a regex, pointing at what the user wrote: the
/// pattern, the character where it goes wrong and that part of it
/// (`invalid regex "ab(c": unclosed group at character 3 ("(")`). `None`
/// when the syntax is fine (a size limit can still refuse it).
pub fn regex_syntax_error(pattern: &str) -> Option<String> {
    let e = regex_syntax::Parser::new().parse(pattern).err()?;
    let (kind, span) = match &e {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), *e.span()),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), *e.span()),
        other => return Some(format!("invalid regex {pattern:?}: {other}")),
    };
    let at = pattern.get(span.start.offset..span.end.offset).unwrap_or_default();
    let at = if at.is_empty() {
        "at the end".to_string()
    } else {
        format!("({at:?})")
    };
    Some(format!(
        "invalid regex {pattern:?}: {kind} at character {} {at}",
        span.start.column
    ))
}

/// Compiles a regex from config, naming the key on error (a syntax error
/// points into the pattern as written, [`regex_syntax_error`]).
pub fn compile_regex(key: &str, pattern: &str) -> Result<regex::Regex, ConfigError> {
    if let Some(why) = regex_syntax_error(pattern) {
        return Err(ConfigError::invalid(key, why));
    }
    regex::Regex::new(pattern).map_err(|e| ConfigError::invalid(key, format!("invalid regex {pattern:?}: {e}")))
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
mod chain_tests {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_errors_point_at_the_pattern_as_written() {
        let e = regex_syntax_error("ab(c").unwrap();
        assert_eq!(e, "invalid regex \"ab(c\": unclosed group at character 3 (\"(\")");
        let e = regex_syntax_error("x{2,1}").unwrap();
        assert!(
            e.starts_with("invalid regex \"x{2,1}\": ") && e.contains("character 2"),
            "{e}"
        );
        assert!(regex_syntax_error("a|b").is_none());
        let e = compile_regex("k", "a)").unwrap_err().to_string();
        assert!(
            e.contains("config key `k`") && e.contains("\"a)\"") && e.contains("character 2"),
            "{e}"
        );
    }
}

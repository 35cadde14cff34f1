//! The window of the journal that `hostmedic incidents` reads: `--since`
//! parsed once (a duration ago or an RFC 3339 timestamp) and the entries at
//! or after it.

use std::path::Path;

use crate::receiver::journal::{self, Entry, JournalError};

/// Parses `--since`: a duration ago (`2h`, `30m`, `7d`) or an RFC 3339
/// timestamp. Returns Unix seconds.
pub fn parse_since(s: &str, now: f64) -> Result<f64, SinceError> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_secs_f64());
    }
    crate::time::parse_rfc3339(s).ok_or_else(|| SinceError(s.to_string()))
}

/// A `--since` that is neither a duration nor a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--since {0:?}: expected a duration (2h, 30m, 7d) or an RFC 3339 timestamp")]
pub struct SinceError(pub String);

/// Reads the journal entries at or after `since`.
pub fn load(path: &Path, since: Option<f64>) -> Result<(Vec<Entry>, usize), JournalError> {
    let (mut entries, warnings) = journal::read_from(path, 0)?;
    if let Some(since) = since {
        entries.retain(|e| e.ts >= since);
    }
    Ok((entries, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_timestamps() {
        assert_eq!(parse_since("1h", 7200.0).unwrap(), 3600.0);
        assert_eq!(parse_since("1970-01-01T00:01:00Z", 0.0).unwrap(), 60.0);
        assert!(parse_since("last tuesday", 0.0).is_err());
    }
}

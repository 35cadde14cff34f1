//! What a rule does with a match (`mode` of `[[remediation]]`). A leaf: the
//! configuration reads it, the policy decides by it and the journal records
//! it with each decision.
//!
//! Two spellings, each in its own place: the configuration file says
//! `dry-run` and `notify-only` (the documented TOML values); the journal
//! says `dry_run` and `notify_only`, like every other value it holds (the
//! `decision` beside it is `dry_run` too). Journals written before the
//! journal spelling was unified said `dry-run`; both are read.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a rule does with a match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Act at once.
    #[default]
    Auto,
    /// Journal + notify; act only when a person approves.
    NotifyOnly,
    /// Journal what would run.
    DryRun,
}

impl Mode {
    /// The configuration's spelling (`auto`, `notify-only`, `dry-run`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::NotifyOnly => "notify-only",
            Mode::DryRun => "dry-run",
        }
    }

    /// The journal's (and the incident report's) spelling (`auto`,
    /// `notify_only`, `dry_run`).
    pub fn journal_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::NotifyOnly => "notify_only",
            Mode::DryRun => "dry_run",
        }
    }

    fn from_either(s: &str) -> Option<Mode> {
        [Mode::Auto, Mode::NotifyOnly, Mode::DryRun]
            .into_iter()
            .find(|m| m.as_str() == s || m.journal_str() == s)
    }
}

crate::spelled!(Mode);

/// Writes a journal's `mode` (`#[serde(serialize_with)]`).
pub fn to_journal<S: Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.journal_str())
}

/// Reads a journal's `mode` in either spelling (`#[serde(deserialize_with)]`).
pub fn from_journal<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
    let s = String::deserialize(d)?;
    Mode::from_either(&s).ok_or_else(|| {
        serde::de::Error::unknown_variant(&s, &["auto", "notify_only", "dry_run", "notify-only", "dry-run"])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Line {
        #[serde(serialize_with = "to_journal", deserialize_with = "from_journal")]
        mode: Mode,
    }

    #[test]
    fn the_journal_writes_snake_case_and_reads_both() {
        for (mode, journal) in [
            (Mode::Auto, "auto"),
            (Mode::NotifyOnly, "notify_only"),
            (Mode::DryRun, "dry_run"),
        ] {
            let line = serde_json::to_string(&Line { mode }).unwrap();
            assert_eq!(line, format!(r#"{{"mode":"{journal}"}}"#));
            let back: Line = serde_json::from_str(&line).unwrap();
            assert_eq!(back.mode, mode);
            let old: Line = serde_json::from_str(&format!(r#"{{"mode":"{}"}}"#, mode.as_str())).unwrap();
            assert_eq!(old.mode, mode, "the spelling of journals written before");
        }
        let err = serde_json::from_str::<Line>(r#"{"mode":"sometimes"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `sometimes`"), "{err}");
    }

    #[test]
    fn the_configuration_keeps_its_kebab_case() {
        #[derive(Deserialize)]
        struct Rule {
            mode: Mode,
        }
        let r: Rule = toml::from_str(r#"mode = "notify-only""#).unwrap();
        assert_eq!(r.mode, Mode::NotifyOnly);
        assert!(toml::from_str::<Rule>(r#"mode = "notify_only""#).is_err());
        assert_eq!(Mode::DryRun.to_string(), "dry-run");
    }
}

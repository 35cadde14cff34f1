//! `[receiver.evidence]`: how much evidence is kept, where the journal is
//! read from, and the extra redaction patterns, validated once into the
//! [`Capture`] that runs.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::redact::Redactor;
use crate::error::ConfigError;

/// `[receiver.evidence]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Capture evidence at all.
    pub enabled: bool,
    /// Journal lines per unit and log lines per container.
    pub lines: usize,
    /// Most bytes one subject's evidence keeps.
    pub max_item_bytes: usize,
    /// Most bytes one capture (all subjects of an incident at one stage) keeps.
    pub max_incident_bytes: usize,
    /// Deadline of each subject's capture.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The `journalctl` program (Debian: package `systemd`).
    pub journalctl: PathBuf,
    /// Read the journal files below this root (`journalctl --root`: its
    /// `/var/log/journal` and `/run/log/journal`); empty: this host's.
    pub journal_root: PathBuf,
    /// Read the journal files in this directory (`journalctl --directory`);
    /// exclusive with `journal_root`.
    pub journal_directory: PathBuf,
    /// Extra redaction patterns (regexes), applied after the defaults. A
    /// pattern with a group named `secret` replaces only that group.
    pub redact: Vec<String>,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            enabled: true,
            lines: 20,
            max_item_bytes: 2048,
            max_incident_bytes: 6144,
            timeout: Duration::from_secs(3),
            journalctl: PathBuf::from("/usr/bin/journalctl"),
            journal_root: PathBuf::new(),
            journal_directory: PathBuf::new(),
            redact: Vec::new(),
        }
    }
}

/// Largest `lines` accepted.
pub const MAX_LINES: usize = 500;

/// The validated `[receiver.evidence]`, ready to capture.
#[derive(Debug, Clone)]
pub struct Capture {
    pub enabled: bool,
    pub lines: usize,
    pub max_item_bytes: usize,
    pub max_incident_bytes: usize,
    pub timeout: Duration,
    pub journalctl: PathBuf,
    /// `--root=…` / `--directory=…`, or nothing.
    pub journal_source: Vec<String>,
    pub redactor: Redactor,
}

impl Default for Capture {
    fn default() -> Self {
        EvidenceConfig::default()
            .compile("receiver.evidence")
            .expect("the default evidence configuration is valid")
    }
}

impl EvidenceConfig {
    /// Validates (`key` = `receiver.evidence`) and builds what runs.
    pub fn compile(&self, key: &str) -> Result<Capture, ConfigError> {
        let k = |f: &str| format!("{key}.{f}");
        if self.lines == 0 || self.lines > MAX_LINES {
            return Err(ConfigError::invalid(k("lines"), format!("must be 1..={MAX_LINES}")));
        }
        if self.max_item_bytes < 256 {
            return Err(ConfigError::invalid(k("max_item_bytes"), "must be at least 256"));
        }
        if self.max_incident_bytes < self.max_item_bytes {
            return Err(ConfigError::invalid(
                k("max_incident_bytes"),
                "must be at least max_item_bytes",
            ));
        }
        if self.max_incident_bytes > 1 << 20 {
            return Err(ConfigError::invalid(k("max_incident_bytes"), "must be at most 1MiB"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(k("timeout"), "must be greater than 0"));
        }
        if !self.journalctl.is_absolute() {
            return Err(ConfigError::invalid(k("journalctl"), "must be an absolute path"));
        }
        let root = !self.journal_root.as_os_str().is_empty();
        let dir = !self.journal_directory.as_os_str().is_empty();
        let journal_source = match (root, dir) {
            (true, true) => {
                return Err(ConfigError::invalid(
                    k("journal_directory"),
                    "set either journal_root or journal_directory, not both",
                ));
            }
            (true, false) => vec![format!("--root={}", absolute(&k("journal_root"), &self.journal_root)?)],
            (false, true) => vec![format!(
                "--directory={}",
                absolute(&k("journal_directory"), &self.journal_directory)?
            )],
            (false, false) => Vec::new(),
        };
        let redactor = Redactor::new(&k("redact"), &self.redact)?;
        Ok(Capture {
            enabled: self.enabled,
            lines: self.lines,
            max_item_bytes: self.max_item_bytes,
            max_incident_bytes: self.max_incident_bytes,
            timeout: self.timeout,
            journalctl: self.journalctl.clone(),
            journal_source,
            redactor,
        })
    }
}

fn absolute(key: &str, p: &std::path::Path) -> Result<String, ConfigError> {
    if !p.is_absolute() {
        return Err(ConfigError::invalid(key, "must be an absolute path"));
    }
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| ConfigError::invalid(key, "must be valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let bad = |c: EvidenceConfig, want: &str| {
            let e = c.compile("receiver.evidence").unwrap_err().to_string();
            assert!(e.contains(want), "{e} (want {want})");
        };
        bad(
            EvidenceConfig {
                lines: 0,
                ..Default::default()
            },
            "receiver.evidence.lines",
        );
        bad(
            EvidenceConfig {
                max_incident_bytes: 300,
                ..Default::default()
            },
            "receiver.evidence.max_incident_bytes",
        );
        bad(
            EvidenceConfig {
                journal_root: "/a".into(),
                journal_directory: "/b".into(),
                ..Default::default()
            },
            "receiver.evidence.journal_directory",
        );
        bad(
            EvidenceConfig {
                journal_root: "rel".into(),
                ..Default::default()
            },
            "receiver.evidence.journal_root",
        );
        bad(
            EvidenceConfig {
                redact: vec!["(".into()],
                ..Default::default()
            },
            "receiver.evidence.redact[0]",
        );
        let c = EvidenceConfig {
            journal_root: "/proc/42/root".into(),
            ..Default::default()
        }
        .compile("k")
        .unwrap();
        assert_eq!(c.journal_source, ["--root=/proc/42/root"]);
    }

    #[test]
    fn parses_from_toml_and_refuses_unknown_keys() {
        let c: EvidenceConfig = toml::from_str("lines = 5\nredact = ['x(?P<secret>\\d+)']\n").unwrap();
        assert_eq!(c.lines, 5);
        assert!(toml::from_str::<EvidenceConfig>("line = 5\n").is_err());
    }
}

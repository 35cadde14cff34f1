//! The collectors, one file (or folder) each. Which of them run, and the one
//! function per collector that checks its section by building it, is the
//! registry [`crate::config::COLLECTORS`]: `config` imports the collectors,
//! never the other way round.

pub mod disk_usage;
pub mod docker;
pub mod filesystems;
pub mod git_lfs;
pub mod host;
pub mod hwmon;
pub mod logfile;
pub mod paths;
pub mod pressure;
pub mod probes;
pub mod processes;
pub mod systemd;

/// A collector section whose only key is `enabled` (default `true`): the
/// `[hwmon]` and `[pressure]` sections, whose sources are fixed files under
/// the global roots.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switch {
    pub enabled: bool,
}

impl Default for Switch {
    fn default() -> Self {
        Switch { enabled: true }
    }
}

impl Switch {
    /// Nothing to check beyond the types.
    pub fn validate(&self, _key: &str) -> Result<(), crate::error::ConfigError> {
        Ok(())
    }
}

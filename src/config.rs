//! The configuration file: its schema, the embedded default, and the one place
//! where it is validated (every error names the offending key).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::collectors;

/// The default configuration compiled into the binary. It works on any host:
/// every source is auto-detected and one that is absent is reported as such.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

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

/// Top-level configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub web: WebConfig,
    pub global: GlobalConfig,
    pub host: collectors::host::Config,
    pub hwmon: collectors::hwmon::Config,
    pub processes: collectors::processes::Config,
    pub logfile: collectors::logfile::Config,
    pub probes: collectors::probes::Config,
    pub docker: collectors::docker::Config,
    /// `[notify.<name>]`: notification channels used by `notify` actions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub notify: BTreeMap<String, crate::notify::NotifyChannel>,
    /// `[receiver]`: the Alertmanager webhook and the remediation engine.
    pub receiver: crate::receiver::config::ReceiverConfig,
    /// `[[remediation]]`: routing rules (alert → actions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remediation: Vec<crate::receiver::config::RuleConfig>,
    pub systemd: collectors::systemd::Config,
    pub git_lfs: collectors::git_lfs::Config,
    pub paths: collectors::paths::Config,
    /// `[fleet]`: this host's identity; absent means single-host mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::receiver::identity::FleetConfig>,
}

/// `[web]`: the HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Address to listen on; overridden by `--web.listen-address`.
    pub listen_address: SocketAddr,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: "127.0.0.1:9877".parse().expect("valid default address"),
        }
    }
}

/// `[global]`: roots and limits shared by all collectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    /// Root of sysfs (hwmon, thermal zones). Point it at a fake tree in tests.
    pub sysfs_root: PathBuf,
    /// Root of procfs.
    pub procfs_root: PathBuf,
    /// Per-collector timeout within one scrape.
    #[serde(with = "humantime_serde")]
    pub collector_timeout: Duration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            sysfs_root: PathBuf::from("/sys"),
            procfs_root: PathBuf::from("/proc"),
            collector_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::parse(DEFAULT_CONFIG, "<embedded default>"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Config::parse(&text, &p.display().to_string())
            }
        }
    }

    /// Checks everything that types alone cannot. The single place where
    /// configuration is validated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.global.collector_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "global.collector_timeout",
                "must be greater than 0",
            ));
        }
        self.host.validate("host")?;
        self.hwmon.validate("hwmon")?;
        self.processes.validate("processes")?;
        self.logfile.validate("logfile")?;
        self.probes.validate("probes")?;
        self.docker.validate("docker")?;
        crate::notify::validate_channels(&self.notify)?;
        self.receiver.validate(&self.notify)?;
        crate::receiver::config::validate_rules(&self.remediation, &self.notify)?;
        self.systemd.validate("systemd", self.global.collector_timeout)?;
        self.git_lfs.validate("git_lfs")?;
        self.paths.validate("paths")?;
        if let Some(f) = &self.fleet {
            f.validate("fleet")?;
        }
        Ok(())
    }

    /// The effective configuration as TOML (for `check-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Compiles a regex from config, naming the key on error.
pub fn compile_regex(key: &str, pattern: &str) -> Result<regex::Regex, ConfigError> {
    regex::Regex::new(pattern).map_err(|e| ConfigError::invalid(key, format!("invalid regex: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let cfg = Config::load(None).expect("default config");
        assert_eq!(cfg.web.listen_address.to_string(), "127.0.0.1:9877");
        // The rendered effective config parses back.
        Config::parse(&cfg.to_toml(), "rendered").expect("round trip");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[web]\nlisten_adress = \"1.2.3.4:1\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("listen_adress"), "{err}");
    }

    #[test]
    fn bad_duration_is_named() {
        let err = Config::parse("[global]\ncollector_timeout = \"soon\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("collector_timeout"), "{err}");
        let err = Config::parse("[global]\ncollector_timeout = \"0s\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("global.collector_timeout"), "{err}");
    }
}

//! The configuration file: its schema, the embedded default, and the one place
//! where it is validated (every error names the offending key).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::actions;
use crate::collectors;

/// The default configuration compiled into the binary. It works on any host:
/// every source is auto-detected and one that is absent is reported as such.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

pub use crate::collector::GlobalConfig;
pub use crate::error::{ConfigError, compile_regex};

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
    pub notify: BTreeMap<String, actions::NotifyChannel>,
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
        actions::notify::validate_channels(&self.notify)?;
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

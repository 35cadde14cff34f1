//! The configuration file: its schema, the embedded default, and the one place
//! where it is validated (every error names the offending key).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::collector::{Built, Collector};
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
    pub filesystems: collectors::filesystems::Config,
    pub disk_usage: collectors::disk_usage::Config,
    pub hwmon: collectors::hwmon::Config,
    pub pressure: collectors::pressure::Config,
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
    /// configuration is validated; every collector section is checked by
    /// building the collector that would run from it (enabled or not), the
    /// rules by compiling them against this `[receiver]`. Every section and
    /// rule is checked: several errors come back as [`ConfigError::Many`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.global.collector_timeout.is_zero() {
            errors.push(ConfigError::invalid(
                "global.collector_timeout",
                "must be greater than 0",
            ));
        }
        // Built only to be checked: they publish nothing, so a board of their own.
        let observed = crate::observed::Observed::default();
        for c in COLLECTORS {
            errors.extend((c.build)(self, &observed).err());
        }
        errors.extend(crate::notify::validate_channels(&self.notify).err());
        errors.extend(self.receiver.validate(&self.notify).err());
        errors.extend(crate::receiver::config::compile_rules(&self.remediation, &self.receiver, &self.notify).err());
        if let Some(f) = &self.fleet {
            errors.extend(f.validate("fleet").err());
        }
        ConfigError::from_list(errors.into_iter().flat_map(ConfigError::into_list).collect())
    }

    /// Builds the collectors the configuration asks for, in registry order,
    /// each with the fingerprint of its section and `[global]` (what a
    /// collector is built from), by which a reload tells whether it changed.
    /// Sources are not probed here: a collector whose source is absent
    /// reports `hostmedic_collector_source_present 0` at scrape time, so a
    /// host that gains Docker later needs no restart. The collectors that
    /// feed the receiver's evidence publish to `observed`.
    pub fn build_collectors(&self, observed: &crate::observed::Observed) -> Result<Vec<Built>, ConfigError> {
        let tree = serde_json::to_value(self).map_err(|e| ConfigError::invalid("<config>", e))?;
        COLLECTORS
            .iter()
            .filter(|c| (c.wanted)(self))
            .map(|c| {
                Ok(Built {
                    collector: (c.build)(self, observed)?,
                    fingerprint: format!("{}\n{}", tree["global"], tree[c.section]),
                })
            })
            .collect()
    }

    /// The environment the remediation actions run in: buses from
    /// `[systemd]`, Docker engine from `[docker]`, procfs from `[global]`,
    /// channels from `[notify.*]`; `dry_run` off (the receiver sets it).
    pub fn action_env(&self) -> crate::actions::ActionEnv {
        crate::actions::ActionEnv {
            system_bus: Some(self.systemd.bus_address.clone()).filter(|a| !a.is_empty()),
            user_runtime_dir: self.systemd.user_runtime_dir.clone(),
            passwd_file: self.systemd.passwd_file.clone(),
            systemd_timeout: self.systemd.call_timeout.max(std::time::Duration::from_secs(10)),
            docker_host: Some(self.docker.host.clone()).filter(|h| !h.is_empty()),
            docker_timeout: self.docker.timeout.max(std::time::Duration::from_secs(5)),
            notify: self.notify.clone(),
            procfs_root: self.global.procfs_root.clone(),
            exec_accounts: crate::actions::exec::Accounts {
                passwd_file: self.receiver.passwd_file.clone(),
                group_file: self.receiver.group_file.clone(),
            },
            ..crate::actions::ActionEnv::default()
        }
    }

    /// The effective configuration as TOML (for `check-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// How a [`Registration`] builds its collector.
type BuildFn = fn(&Config, &crate::observed::Observed) -> Result<Arc<dyn Collector>, ConfigError>;

/// One collector in the registry [`COLLECTORS`].
pub struct Registration {
    /// The `collector` label.
    pub name: &'static str,
    /// Its section of the configuration file.
    pub section: &'static str,
    /// Whether the configuration asks for it (enabled, and something to
    /// watch: a collector with nothing to follow or probe would only export
    /// always-empty series).
    wanted: fn(&Config) -> bool,
    /// Checks the section by building the collector that will run from it;
    /// what it observes for the receiver's evidence goes to the handle.
    build: BuildFn,
}

/// Every collector, in scrape and validation order. Adding a collector is one
/// entry here, its section field in [`Config`], and its file.
pub const COLLECTORS: &[Registration] = &[
    Registration {
        name: "host",
        section: "host",
        wanted: |c| c.host.enabled,
        build: |c, _| Ok(Arc::new(collectors::host::HostCollector::new(&c.host)?)),
    },
    Registration {
        name: "filesystems",
        section: "filesystems",
        wanted: |c| c.filesystems.enabled,
        build: |c, _| {
            Ok(Arc::new(collectors::filesystems::FilesystemsCollector::new(
                &c.filesystems,
                &c.global.procfs_root,
                c.global.collector_timeout,
            )?))
        },
    },
    Registration {
        name: "disk_usage",
        section: "disk_usage",
        wanted: |c| c.disk_usage.enabled,
        build: |c, _| {
            Ok(Arc::new(collectors::disk_usage::DiskUsageCollector::new(
                &c.disk_usage,
                &c.global.procfs_root,
            )?))
        },
    },
    Registration {
        name: "hwmon",
        section: "hwmon",
        wanted: |c| c.hwmon.enabled,
        build: |c, _| {
            c.hwmon.validate("hwmon")?;
            Ok(Arc::new(collectors::hwmon::HwmonCollector::new(&c.global.sysfs_root)))
        },
    },
    Registration {
        name: "pressure",
        section: "pressure",
        wanted: |c| c.pressure.enabled,
        build: |c, _| {
            Ok(Arc::new(collectors::pressure::PressureCollector::new(
                &c.global.procfs_root,
            )))
        },
    },
    Registration {
        name: "processes",
        section: "processes",
        wanted: |c| c.processes.enabled,
        build: |c, _| {
            // The `cmdline` label is redacted like the incident evidence.
            let redactor = crate::redact::Redactor::new("receiver.evidence.redact", &c.receiver.evidence.redact)?;
            Ok(Arc::new(collectors::processes::ProcessesCollector::with_redactor(
                &c.processes,
                &c.global.procfs_root,
                &c.systemd.passwd_file,
                redactor,
            )?))
        },
    },
    Registration {
        name: "logfile",
        section: "logfile",
        wanted: |c| c.logfile.enabled && !c.logfile.watch.is_empty(),
        build: |c, _| Ok(Arc::new(collectors::logfile::LogfileCollector::new(&c.logfile)?)),
    },
    Registration {
        name: "probes",
        section: "probes",
        wanted: |c| c.probes.enabled && !(c.probes.http.is_empty() && c.probes.command.is_empty()),
        build: |c, _| Ok(Arc::new(collectors::probes::ProbesCollector::new(&c.probes)?)),
    },
    Registration {
        name: "docker",
        section: "docker",
        wanted: |c| c.docker.enabled,
        build: |c, _| {
            Ok(Arc::new(collectors::docker::DockerCollector::new(
                &c.docker, &c.global,
            )?))
        },
    },
    Registration {
        name: "systemd",
        section: "systemd",
        wanted: |c| c.systemd.enabled,
        build: |c, _| {
            c.systemd.check_limits("systemd", c.global.collector_timeout)?;
            Ok(Arc::new(collectors::systemd::SystemdCollector::new(
                &c.systemd,
                &c.global.sysfs_root,
            )?))
        },
    },
    Registration {
        name: "git_lfs",
        section: "git_lfs",
        wanted: |c| c.git_lfs.enabled && !(c.git_lfs.repos.is_empty() && c.git_lfs.search_roots.is_empty()),
        build: |c, observed| {
            c.git_lfs.validate("git_lfs")?;
            Ok(Arc::new(collectors::git_lfs::GitLfsCollector::new(
                &c.git_lfs, observed,
            )))
        },
    },
    Registration {
        name: "paths",
        section: "paths",
        wanted: |c| c.paths.enabled && !c.paths.watch.is_empty(),
        build: |c, observed| {
            c.paths.validate("paths")?;
            Ok(Arc::new(collectors::paths::PathsCollector::new(&c.paths, observed)))
        },
    },
];

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
    fn registry_names_are_the_collector_labels() {
        let mut cfg = Config::load(None).expect("default config");
        cfg.logfile.watch.clear();
        for c in COLLECTORS {
            // Built whatever the section says: validation builds them all.
            let built = (c.build)(&cfg, &crate::observed::Observed::default()).expect(c.name);
            assert_eq!(built.name(), c.name);
            assert!(cfg.to_toml().contains(&format!("[{}]", c.section)), "{}", c.section);
        }
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

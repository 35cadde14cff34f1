//! The `[processes]` section and its one check-and-compile step
//! ([`Config::build`]), used by both validation and the collector.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, compile_regex};

/// `[processes]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// How many processes the top-CPU series list (0 disables them).
    pub top_k: usize,
    /// How often the background sampler records every process's CPU ticks.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
    /// Whether the top-K series carry a `cmdline` label (the command line,
    /// redacted, then cut to `cmdline_max_chars`). Off by default: argv may
    /// hold secrets, and whatever is a label lands in Prometheus' TSDB, in
    /// Grafana and in alert notifications; `comm` names the process.
    pub cmdline_label: bool,
    /// The `cmdline` label is cut to this many characters.
    pub cmdline_max_chars: usize,
    /// `[[processes.watch]]` entries.
    pub watch: Vec<Watch>,
    /// The cgroup (a path as `/proc/<pid>/cgroup` shows it) of the systemd
    /// whose units the `unit`/`manager` owner labels name: `/` for this
    /// host's systemd; a machine's or container's cgroup (e.g.
    /// `/lxc.payload.web`) to name the units of the systemd inside it.
    /// Processes outside it get no unit label.
    pub owner_cgroup_root: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            top_k: 5,
            sample_interval: Duration::from_secs(5),
            cmdline_label: false,
            cmdline_max_chars: 80,
            watch: Vec::new(),
            owner_cgroup_root: "/".into(),
        }
    }
}

/// `[[processes.watch]]`: processes whose comm and/or cmdline match.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// The `watch` label.
    pub name: String,
    /// Regex on the command name (`/proc/<pid>/comm`, at most 15 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Regex on the full command line, arguments joined by single spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// Expected minimum count (exported as `hostmedic_process_watch_min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Expected maximum count (exported as `hostmedic_process_watch_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

pub const MAX_TOP_K: usize = 100;

/// A watch with its regexes compiled: what the collector runs with.
pub(super) struct CompiledWatch {
    pub(super) cfg: Watch,
    pub(super) comm: Option<regex::Regex>,
    pub(super) cmdline: Option<regex::Regex>,
}

impl Config {
    /// Checks the section by building what the collector runs with.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.build(key).map(drop)
    }

    /// The watches compiled, after every check of the section.
    pub(super) fn build(&self, key: &str) -> Result<Vec<CompiledWatch>, ConfigError> {
        if self.top_k > MAX_TOP_K {
            return Err(ConfigError::invalid(
                format!("{key}.top_k"),
                format!("must be at most {MAX_TOP_K} (each listed process is a label set)"),
            ));
        }
        if self.sample_interval < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                format!("{key}.sample_interval"),
                "must be at least 100ms",
            ));
        }
        if self.cmdline_max_chars < 8 {
            return Err(ConfigError::invalid(
                format!("{key}.cmdline_max_chars"),
                "must be at least 8",
            ));
        }
        if !self.owner_cgroup_root.starts_with('/') {
            return Err(ConfigError::invalid(
                format!("{key}.owner_cgroup_root"),
                format!(
                    "must be an absolute cgroup path (\"/\" or e.g. \"/lxc.payload.web\"), got {:?}",
                    self.owner_cgroup_root
                ),
            ));
        }
        let mut names = HashSet::new();
        let mut watches = Vec::with_capacity(self.watch.len());
        for (i, w) in self.watch.iter().enumerate() {
            let k = format!("{key}.watch[{i}]");
            if w.name.trim().is_empty() {
                return Err(ConfigError::invalid(format!("{k}.name"), "must not be empty"));
            }
            if !names.insert(w.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{k}.name"),
                    format!("duplicate watch name {:?}", w.name),
                ));
            }
            if w.comm.is_none() && w.cmdline.is_none() {
                return Err(ConfigError::invalid(
                    k,
                    "needs `comm` or `cmdline` (a regex); both means both must match",
                ));
            }
            let comm = w
                .comm
                .as_deref()
                .map(|r| compile_regex(&format!("{k}.comm"), r))
                .transpose()?;
            let cmdline = w
                .cmdline
                .as_deref()
                .map(|r| compile_regex(&format!("{k}.cmdline"), r))
                .transpose()?;
            if let (Some(min), Some(max)) = (w.min, w.max)
                && min > max
            {
                return Err(ConfigError::invalid(
                    format!("{k}.min"),
                    format!("min ({min}) is greater than max ({max})"),
                ));
            }
            watches.push(CompiledWatch {
                cfg: w.clone(),
                comm,
                cmdline,
            });
        }
        Ok(watches)
    }
}

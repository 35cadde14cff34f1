//! The `[systemd]` section, its checks and the unit filters built from it.

use super::*;

/// The default exclude filter: per-device, per-mount and cgroup bookkeeping
/// units are numerous and never what an alert is about.
pub const DEFAULT_EXCLUDE: &str = r".+\.(device|mount|automount|scope|slice)";

/// Active states exported one-hot by `hostmedic_systemd_unit_state`.
pub const ACTIVE_STATES: [ActiveState; 6] = [
    ActiveState::Active,
    ActiveState::Activating,
    ActiveState::Deactivating,
    ActiveState::Inactive,
    ActiveState::Failed,
    ActiveState::Reloading,
];

/// `unit_state_series`: which `hostmedic_systemd_unit_state` series a unit
/// gets. `All` (the default): one per state of [`ACTIVE_STATES`], 1 for the
/// current one and 0 for the five others, so `{state="active"} == 0` finds a
/// unit that is not active. `Current`: only the series of the current state
/// (value 1), a sixth of the series; a state change ends one series and
/// starts another (docs/systemd.md lists what that changes for queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitStateSeries {
    #[default]
    All,
    Current,
}

/// `user_managers`: `"auto"` (every `<user_runtime_dir>/<uid>/bus`),
/// `"none"`, or a list of user names (or uids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserManagers {
    Mode(String),
    Users(Vec<String>),
}

/// `[systemd]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Collect the system manager.
    pub system: bool,
    /// System bus address; empty: `$DBUS_SYSTEM_BUS_ADDRESS`, else
    /// `unix:path=/run/dbus/system_bus_socket`.
    pub bus_address: String,
    /// `"auto"`, `"none"` or a list of users.
    pub user_managers: UserManagers,
    /// Parent of the per-user runtime directories (`<dir>/<uid>/bus`).
    pub user_runtime_dir: PathBuf,
    /// Where uids are turned into names for `manager="user:<name>"`.
    pub passwd_file: PathBuf,
    /// Units whose name matches `include` and not `exclude` are exported.
    pub include: String,
    pub exclude: String,
    /// Units that must exist and be active: `"api.service"` (system manager)
    /// or `"user:<name>/<unit>"` (a user manager). Always exported, even
    /// when filtered out or unknown to systemd.
    pub expect: Vec<String>,
    /// Bound on every D-Bus call (and on connecting). Must be below
    /// `global.collector_timeout` so a hung bus is detected and dropped.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Units read at once per manager (each read is 1–6 pipelined `Get`s).
    pub max_concurrency: usize,
    /// Longest time a unit's cached properties are trusted without a change
    /// signal; `0s`: no cache, every unit of interest is read every scrape.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// `"all"` (one-hot, 6 series per unit) or `"current"` (1 per unit).
    pub unit_state_series: UnitStateSeries,
    /// Unit types whose cgroup resources (CPU, memory, tasks, I/O, pressure)
    /// are exported, of the units the filters keep: any of
    /// [`RESOURCE_UNIT_TYPES`]; `[]` turns resource reading off.
    pub resources: Vec<String>,
    /// Also read each `resources` unit's `{cpu,memory,io}.pressure` files
    /// and export its 6 `hostmedic_systemd_unit_pressure_stalled_seconds`
    /// series. Off by default: three more files and six more series per
    /// unit, the largest part of the resources' cost (BENCHMARKS.md,
    /// "Per-unit resources"); the host's pressure is always exported by the
    /// `pressure` collector.
    pub resource_pressure: bool,
    /// The cgroup v2 directory that the managers' `ControlGroup` paths are
    /// relative to (their cgroup namespace's root, seen from hostmedic).
    /// Empty: `<global.sysfs_root>/fs/cgroup`, or its `unified` subdirectory
    /// on a hybrid (v1 + v2) host. Set it when systemd runs in another
    /// cgroup namespace than hostmedic (a container's or machine's systemd:
    /// its cgroup directory on this host).
    pub cgroup_root: PathBuf,
}

/// Unit types that own a cgroup, for `systemd.resources`.
pub const RESOURCE_UNIT_TYPES: [&str; 6] = ["service", "scope", "slice", "socket", "mount", "swap"];

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            system: true,
            bus_address: String::new(),
            user_managers: UserManagers::Mode("auto".into()),
            user_runtime_dir: PathBuf::from(systemd::DEFAULT_USER_RUNTIME_DIR),
            passwd_file: PathBuf::from("/etc/passwd"),
            include: ".+".into(),
            exclude: DEFAULT_EXCLUDE.into(),
            expect: Vec::new(),
            call_timeout: Duration::from_secs(2),
            max_concurrency: 32,
            refresh_interval: Duration::from_secs(300),
            unit_state_series: UnitStateSeries::All,
            resources: vec!["service".into()],
            resource_pressure: false,
            cgroup_root: PathBuf::new(),
        }
    }
}

impl Config {
    /// Validates the section; `collector_timeout` is `global.collector_timeout`.
    /// Checks by building the filters the collector runs with (anchored, as
    /// they match), then the numeric limits.
    pub fn validate(&self, key: &str, collector_timeout: Duration) -> Result<(), ConfigError> {
        self.filters(key)?;
        self.check_limits(key, collector_timeout)
    }

    /// The checks [`SystemdCollector::new`] cannot make: it does not know
    /// `global.collector_timeout`.
    pub fn check_limits(&self, key: &str, collector_timeout: Duration) -> Result<(), ConfigError> {
        if self.call_timeout.is_zero() {
            return Err(ConfigError::invalid(
                format!("{key}.call_timeout"),
                "must be greater than 0",
            ));
        }
        if self.enabled && self.call_timeout >= collector_timeout {
            return Err(ConfigError::invalid(
                format!("{key}.call_timeout"),
                format!(
                    "must be below global.collector_timeout ({}) so a hung bus is detected",
                    humantime::format_duration(collector_timeout)
                ),
            ));
        }
        if self.max_concurrency == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.max_concurrency"),
                "must be at least 1",
            ));
        }
        if let Some(bad) = self
            .resources
            .iter()
            .find(|t| !RESOURCE_UNIT_TYPES.contains(&t.as_str()))
        {
            return Err(ConfigError::invalid(
                format!("{key}.resources"),
                format!(
                    "unknown unit type {bad:?}: expected some of {}",
                    RESOURCE_UNIT_TYPES.join(", ")
                ),
            ));
        }
        match &self.user_managers {
            UserManagers::Mode(m) if m == "auto" || m == "none" => {}
            UserManagers::Mode(m) => {
                return Err(ConfigError::invalid(
                    format!("{key}.user_managers"),
                    format!("expected \"auto\", \"none\" or a list of users, got {m:?}"),
                ));
            }
            UserManagers::Users(u) => {
                if let Some(bad) = u.iter().find(|u| u.is_empty() || u.contains('/')) {
                    return Err(ConfigError::invalid(
                        format!("{key}.user_managers"),
                        format!("invalid user name {bad:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The unit filters, anchored (a unit name matches as a whole), and the
    /// expected units per manager label: what the collector runs with.
    pub(super) fn filters(&self, key: &str) -> Result<Filters, ConfigError> {
        // The user's pattern must be a regex on its own (so `a)|(b` cannot
        // escape the anchoring group); only the anchored form is compiled.
        let anchored = |name: &str, re: &str| {
            let key = format!("{key}.{name}");
            if let Some(why) = crate::error::regex_syntax_error(re) {
                return Err(ConfigError::invalid(&key, why));
            }
            compile_regex(&key, &format!("^(?:{re})$"))
        };
        let mut expect: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in &self.expect {
            let (m, u) = parse_expect(e).map_err(|m| ConfigError::invalid(format!("{key}.expect"), m))?;
            let list = expect.entry(m).or_default();
            if !list.contains(&u) {
                list.push(u);
            }
        }
        Ok(Filters {
            include: anchored("include", &self.include)?,
            exclude: anchored("exclude", &self.exclude)?,
            expect,
        })
    }
}

/// See [`Config::filters`].
pub(super) struct Filters {
    pub(super) include: regex::Regex,
    pub(super) exclude: regex::Regex,
    pub(super) expect: BTreeMap<String, Vec<String>>,
}

/// Why an `expect` entry is not `<unit>` or `user:<name>/<unit>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectError {
    #[error("{0:?}: expected \"user:<name>/<unit>\"")]
    UserForm(String),
    #[error("{0:?}: not a unit name with a type suffix (e.g. api.service)")]
    UnitName(String),
}

/// Splits an `expect` entry into (manager label, unit name).
pub(super) fn parse_expect(entry: &str) -> Result<(String, String), ExpectError> {
    let (manager, unit) = match entry.strip_prefix("user:") {
        Some(rest) => match rest.split_once('/') {
            Some((user, unit)) if !user.is_empty() => (format!("user:{user}"), unit),
            _ => return Err(ExpectError::UserForm(entry.to_string())),
        },
        None => ("system".to_string(), entry),
    };
    if unit.is_empty() || unit.contains('/') || !unit.contains('.') {
        return Err(ExpectError::UnitName(entry.to_string()));
    }
    Ok((manager, unit.to_string()))
}

//! What the engine says about a container, as hostmedic keeps it: the
//! [`State`] and [`Health`] enums (printed only at the edge), one inspect's
//! [`ContainerStatus`], a list entry ([`Listed`]), health-check probes and
//! the engine's timestamps ([`parse_time`]). Plain data built from
//! bollard's models, apart from the connection that fetches them.

use std::collections::HashMap;
use std::time::SystemTime;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

/// One health-check probe as the engine recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    /// When it started (RFC 3339, as the engine wrote it).
    pub start: String,
    pub exit_code: i64,
    /// Its output (the engine keeps at most 4 KiB).
    pub output: String,
}

/// One container as the engine lists it: enough to find who depends on whom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    pub id: String,
    /// Its own name, without the leading slash ([`own_name`]).
    pub name: String,
    pub running: bool,
    /// `HostConfig.NetworkMode`: `bridge`, `host`, `none`, a network's name,
    /// or `container:<id or name>` for one that shares another's network.
    pub network_mode: String,
    pub labels: HashMap<String, String>,
}

/// A container's own name among the names the list gives: a linked
/// container also carries names like `/other/alias`; its own is the one
/// with a single slash. Without the slash.
pub fn own_name(names: &[String]) -> &str {
    names
        .iter()
        .find(|n| n.matches('/').count() == 1)
        .or(names.first())
        .map(|n| n.trim_start_matches('/'))
        .unwrap_or_default()
}

/// A container's state as the engine's typed answer has it (bollard's
/// `ContainerStateStatusEnum`; `stopping`, only in newer engines, reads
/// `running`), kept as an enum until it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Dead,
    Removing,
}

impl State {
    /// The engine's spelling (metric label, messages).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Paused => "paused",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Removing => "removing",
        }
    }

    /// Not running and not about to: created, exited or dead.
    pub fn is_stopped(self) -> bool {
        matches!(self, State::Exited | State::Created | State::Dead)
    }
}

/// A container's health (bollard's `HealthStatusEnum`); `None` means the
/// container has no health check (distinct from `Unhealthy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    Starting,
    None,
}

impl Health {
    /// The engine's spelling (metric label, messages).
    pub const fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Starting => "starting",
            Health::None => "none",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Container states, in the order of the one-hot `state` label.
pub const STATES: [&str; 7] = [
    State::Created.as_str(),
    State::Running.as_str(),
    State::Restarting.as_str(),
    State::Paused.as_str(),
    State::Exited.as_str(),
    State::Dead.as_str(),
    State::Removing.as_str(),
];
/// Health values, in the order of the one-hot `health` label.
pub const HEALTHS: [&str; 4] = [
    Health::Healthy.as_str(),
    Health::Unhealthy.as_str(),
    Health::Starting.as_str(),
    Health::None.as_str(),
];

/// What hostmedic needs to know about one container, from one inspect.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Image as the container was created with (e.g. `busybox:latest`).
    pub image: String,
    pub state: State,
    pub health: Health,
    /// Consecutive failed health checks; `None` without a health check.
    pub failing_streak: Option<i64>,
    pub restart_count: i64,
    pub oom_killed: bool,
    pub exit_code: i64,
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub restart_policy: String,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// The memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Host PID of the container's main process while it runs.
    pub pid: Option<i64>,
    pub labels: HashMap<String, String>,
    /// The json-file log on the engine's host (`LogPath`); `None` with
    /// another logging driver.
    pub log_path: Option<std::path::PathBuf>,
}

impl ContainerStatus {
    pub fn from_inspect(r: ContainerInspectResponse) -> ContainerStatus {
        let st = r.state.unwrap_or_default();
        let state = match st.status {
            Some(ContainerStateStatusEnum::CREATED) => State::Created,
            Some(ContainerStateStatusEnum::RUNNING) | Some(ContainerStateStatusEnum::STOPPING) => State::Running,
            Some(ContainerStateStatusEnum::PAUSED) => State::Paused,
            Some(ContainerStateStatusEnum::RESTARTING) => State::Restarting,
            Some(ContainerStateStatusEnum::REMOVING) => State::Removing,
            Some(ContainerStateStatusEnum::EXITED) => State::Exited,
            Some(ContainerStateStatusEnum::DEAD) => State::Dead,
            Some(ContainerStateStatusEnum::EMPTY) | None => {
                if st.running == Some(true) {
                    State::Running
                } else {
                    State::Created
                }
            }
        };
        let (health, failing_streak) = match &st.health {
            Some(h) => {
                let s = match h.status {
                    Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
                    Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
                    Some(HealthStatusEnum::STARTING) => Health::Starting,
                    Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) | None => Health::None,
                };
                (s, (s != Health::None).then(|| h.failing_streak.unwrap_or(0)))
            }
            None => (Health::None, None),
        };
        let host = r.host_config.unwrap_or_default();
        let restart_policy = host
            .restart_policy
            .and_then(|p| p.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "no".to_string());
        let config = r.config.unwrap_or_default();
        ContainerStatus {
            id: r.id.unwrap_or_default(),
            name: r.name.unwrap_or_default().trim_start_matches('/').to_string(),
            image: config.image.or(r.image).unwrap_or_default(),
            state,
            health,
            failing_streak,
            restart_count: r.restart_count.unwrap_or(0),
            oom_killed: st.oom_killed.unwrap_or(false),
            exit_code: st.exit_code.unwrap_or(0),
            restart_policy,
            started_at: st.started_at.as_deref().and_then(parse_time),
            finished_at: st.finished_at.as_deref().and_then(parse_time),
            memory_limit: host.memory.filter(|m| *m > 0).map(|m| m as u64),
            pid: st.pid.filter(|p| *p > 0),
            labels: config.labels.unwrap_or_default(),
            log_path: r.log_path.filter(|p| !p.is_empty()).map(std::path::PathBuf::from),
        }
    }

    /// Value of a label, empty when absent.
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }
}

/// Parses the engine's RFC 3339 timestamps; the zero time
/// `0001-01-01T00:00:00Z` ("never") gives `None`.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    if s.starts_with("0001-") {
        return None;
    }
    crate::time::parse_rfc3339(s)
        .filter(|t| *t > 0.0)
        .map(crate::time::system_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL};

    #[test]
    fn engine_timestamps_parse_and_zero_time_is_none() {
        let t = parse_time("2026-11-22T07:40:14.825378218Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((secs - 1_795_333_214.825_378).abs() < 1e-3, "{secs}");
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn inspect_without_health_is_none_and_zero_times_are_absent() {
        let json = r#"{"Id":"abc","Name":"/web","RestartCount":3,
            "State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137,
                     "StartedAt":"2026-11-22T07:40:14.825378218Z","FinishedAt":"0001-01-01T00:00:00Z"},
            "HostConfig":{"Memory":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}},
            "Config":{"Image":"busybox","Labels":{"com.docker.compose.project":"p"}}}"#;
        let r: ContainerInspectResponse = serde_json::from_str(json).unwrap();
        let s = ContainerStatus::from_inspect(r);
        assert_eq!(
            (s.name.as_str(), s.state, s.health),
            ("web", State::Exited, Health::None)
        );
        assert_eq!((s.restart_count, s.oom_killed, s.exit_code), (3, true, 137));
        assert_eq!(s.restart_policy, "no");
        assert_eq!(s.failing_streak, None);
        assert_eq!(s.memory_limit, None);
        assert!(s.started_at.is_some() && s.finished_at.is_none());
        assert_eq!(s.label(COMPOSE_PROJECT_LABEL), "p");
        assert_eq!(s.label(COMPOSE_SERVICE_LABEL), "");
    }
}

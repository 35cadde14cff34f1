//! `[receiver.heartbeat]`: the alert pipeline's dead-man's switch, as
//! configured (the switch itself is `receiver::heartbeat`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Channels, check_channel, positive};
use crate::error::ConfigError;

/// The alert name of the shipped heartbeat rule.
pub const DEFAULT_ALERTNAME: &str = "HostmedicWatchdog";

/// `[receiver.heartbeat]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Watch for silence. Off: heartbeat deliveries are still recognised
    /// (and never remediated), but silence is not reported.
    pub enabled: bool,
    /// The `alertname` of the heartbeat alert.
    pub alertname: String,
    /// Longest time without a heartbeat before the pipeline counts as
    /// silent; longer than the heartbeat route's `repeat_interval` plus its
    /// `group_interval`. Also the grace period after a start.
    #[serde(with = "humantime_serde")]
    pub max_silence: Duration,
    /// How often the silence is checked.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Channels told; unset: every configured `[notify.*]` channel, `[]`:
    /// none (journal, log and metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            enabled: true,
            alertname: DEFAULT_ALERTNAME.into(),
            max_silence: Duration::from_secs(300),
            check_interval: Duration::from_secs(30),
            notify: None,
        }
    }
}

impl HeartbeatConfig {
    /// Checks the section against the configured channels; errors name the
    /// key (`receiver.heartbeat.notify[1]`).
    pub fn validate(&self, channels: &Channels) -> Result<(), ConfigError> {
        const KEY: &str = "receiver.heartbeat";
        if self.alertname.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{KEY}.alertname"), "must not be empty"));
        }
        positive(&format!("{KEY}.max_silence"), self.max_silence)?;
        positive(&format!("{KEY}.check_interval"), self.check_interval)?;
        if self.check_interval > self.max_silence {
            return Err(ConfigError::invalid(
                format!("{KEY}.check_interval"),
                "must not be longer than max_silence",
            ));
        }
        for (i, c) in self.notify.iter().flatten().enumerate() {
            check_channel(&format!("{KEY}.notify[{i}]"), c, channels)?;
        }
        Ok(())
    }

    /// The channels to tell: `notify`, or every configured channel.
    pub fn channels(&self, configured: &Channels) -> Vec<String> {
        match &self.notify {
            Some(list) => list.clone(),
            None => configured.keys().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let channels = Channels::default();
        let mut c = HeartbeatConfig::default();
        assert!(c.validate(&channels).is_ok());
        c.check_interval = Duration::from_secs(600);
        let e = c.validate(&channels).unwrap_err().to_string();
        assert!(e.contains("receiver.heartbeat.check_interval"), "{e}");
        c = HeartbeatConfig {
            notify: Some(vec!["nope".into()]),
            ..Default::default()
        };
        let e = c.validate(&channels).unwrap_err().to_string();
        assert!(e.contains("receiver.heartbeat.notify[0]"), "{e}");
        c = HeartbeatConfig {
            max_silence: Duration::ZERO,
            ..Default::default()
        };
        assert!(c.validate(&channels).unwrap_err().to_string().contains("max_silence"));
    }

    #[test]
    fn the_heartbeat_is_hostmedics_own_name() {
        // `Watchdog` is what other rule sets call theirs: not ours by default.
        assert_eq!(HeartbeatConfig::default().alertname, "HostmedicWatchdog");
        assert_eq!(DEFAULT_ALERTNAME, "HostmedicWatchdog");
    }
}

//! The dead-man's switch for the alert pipeline. On a small host Prometheus,
//! Alertmanager and the failing services share one box, so the pipeline that
//! brings alerts to hostmedic dies exactly when healing is needed. The shipped
//! always-firing `HostmedicWatchdog` rule (once `Watchdog`, a name other rule
//! sets use for their own heartbeat), routed to hostmedic with a short
//! `repeat_interval`, is a heartbeat: while it keeps arriving, the pipeline
//! works. When none arrives within `receiver.heartbeat.max_silence`, hostmedic
//! tells its notification channels itself ("alert pipeline silent since …"),
//! journals it, and says so again when the heartbeat returns.
//!
//! Heartbeat deliveries are taken out of the webhook payload before routing:
//! they are never remediated and never journaled one by one; only the changes
//! (`pipeline` events, `silent` and `back`) are. The last heartbeat's time
//! lives in the state (checkpoint), the silence in the journal, so both
//! survive a restart. After a start the switch waits `max_silence` for the
//! first heartbeat (the grace period) before it calls the pipeline silent.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Receiver;
use super::config::{check_channel, positive};
use super::engine::Settings;
use super::journal::Event;
use super::payload::{Payload, Status};
use crate::actions::{Alert, AlertStatus};
use crate::error::ConfigError;
use crate::metrics::MetricSet;
use crate::notify::Channels;

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

/// What the pipeline's heartbeat looks like, in the state: the last
/// heartbeat (set on each delivery, kept by the checkpoint) and the start of
/// the current silence (from the journal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineState {
    /// Unix time of the last heartbeat delivery.
    pub last_heartbeat: Option<f64>,
    /// Set while the pipeline is silent: when the silence began (the last
    /// heartbeat, or hostmedic's start when none had come).
    pub silent_since: Option<f64>,
}

/// A change of the pipeline's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineChange {
    /// No heartbeat within `max_silence`.
    Silent,
    /// A heartbeat after a silence.
    Back,
}

/// The journal's `pipeline` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEvent {
    pub state: PipelineChange,
    /// The heartbeat alert's name.
    pub alertname: String,
    /// When the silence began.
    pub silent_since: f64,
    /// The last heartbeat before the silence; none: none since the journal began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<f64>,
    /// What the channels were told.
    pub message: String,
}

impl PipelineState {
    /// Folds a `pipeline` event journaled at `ts`.
    pub fn apply(&mut self, ts: f64, e: &PipelineEvent) {
        match e.state {
            PipelineChange::Silent => self.silent_since = Some(e.silent_since),
            PipelineChange::Back => {
                self.silent_since = None;
                self.last_heartbeat = Some(self.last_heartbeat.map_or(ts, |t| t.max(ts)));
            }
        }
    }
}

fn rfc3339(ts: f64) -> String {
    humantime::format_rfc3339_seconds(crate::time::system_time(ts)).to_string()
}

fn took(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0).round() as u64)).to_string()
}

/// The silence message (the operator reads it on the phone).
/// `refused`: webhook requests refused 401 since the silence began (how
/// many, the last one's time): then the pipeline is up and its deliveries
/// carry the wrong credentials, so the message says that instead of
/// blaming Prometheus.
fn silent_message(
    cfg: &HeartbeatConfig,
    host: &str,
    (since, last): (f64, Option<f64>),
    now: f64,
    refused: Option<(usize, f64)>,
) -> String {
    let seen = match last {
        Some(t) => format!("the last {} heartbeat came at {}", cfg.alertname, rfc3339(t)),
        None => format!("no {} heartbeat has come since hostmedic started", cfg.alertname),
    };
    let why = match refused {
        Some((n, at)) => format!(
            "{n} webhook request(s) were refused 401 since then (the last at {}): Alertmanager is delivering \
             with the wrong token (its credentials_file must hold receiver.bearer_token_file's token)",
            rfc3339(at)
        ),
        None => "Prometheus or Alertmanager down?".to_string(),
    };
    format!(
        "alert pipeline silent since {} on {host} ({} without a heartbeat; {seen}): {why}. \
         Until it is back no alert reaches hostmedic and nothing is remediated.",
        rfc3339(since),
        took(now - since),
    )
}

/// The recovery message.
fn back_message(cfg: &HeartbeatConfig, host: &str, since: f64, now: f64) -> String {
    format!(
        "alert pipeline back after {} on {host}: the {} heartbeat arrived again (silent since {}).",
        took(now - since),
        cfg.alertname,
        rfc3339(since)
    )
}

impl Receiver {
    /// Takes the heartbeat deliveries out of `payload` (they are never
    /// routed); a firing one records the heartbeat, and after a silence
    /// journals and announces that the pipeline is back. Returns how many
    /// were taken.
    pub(super) async fn take_heartbeats(
        self: &Arc<Self>,
        s: &Arc<Settings>,
        payload: &mut Payload,
    ) -> Result<usize, super::journal::JournalError> {
        let name = s.cfg.heartbeat.alertname.as_str();
        let (mut firing, mut resolved) = (0, 0);
        payload.alerts.retain(|a| {
            if a.alertname() != name {
                return true;
            }
            match a.status {
                Status::Firing => firing += 1,
                Status::Resolved => resolved += 1,
            }
            false
        });
        for (n, status) in [(firing, Status::Firing), (resolved, Status::Resolved)] {
            for _ in 0..n {
                self.metrics.alert(status.as_str());
            }
        }
        // A resolved heartbeat is Alertmanager saying the rule stopped
        // firing: not a sign of life.
        if firing > 0 {
            self.heartbeat_arrived(s).await?;
        }
        Ok(firing + resolved)
    }

    async fn heartbeat_arrived(self: &Arc<Self>, s: &Arc<Settings>) -> Result<(), super::journal::JournalError> {
        let now = crate::time::now();
        let silent = {
            let mut core = self.ledger.core().await;
            let p = &mut core.state.pipeline;
            p.last_heartbeat = Some(p.last_heartbeat.map_or(now, |t| t.max(now)));
            p.silent_since.is_some()
        };
        // The status file and the checkpoint carry the new time.
        self.ledger.mark_dirty(true);
        if !silent {
            return Ok(());
        }
        let hb = &s.cfg.heartbeat;
        let back = self
            .ledger
            .append(|b| {
                let since = b.state().pipeline.silent_since?;
                let ev = PipelineEvent {
                    state: PipelineChange::Back,
                    alertname: hb.alertname.clone(),
                    silent_since: since,
                    last_heartbeat: Some(b.now()),
                    message: back_message(hb, &s.identity.name, since, b.now()),
                };
                b.push(Event::Pipeline(ev.clone()));
                Some(ev)
            })
            .await?;
        if let Some(ev) = back {
            tracing::info!(silent_since = %rfc3339(ev.silent_since), "alert pipeline back: heartbeat received");
            self.announce(s.clone(), ev);
        }
        Ok(())
    }

    /// Background: checks for silence every `check_interval` (read again
    /// each round, so a reload applies) until `shutdown`.
    pub async fn watch_heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let started = crate::time::now();
        loop {
            let every = self.settings().cfg.heartbeat.check_interval;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.check_heartbeat(started).await {
                tracing::error!(error = %e, "cannot journal that the alert pipeline is silent");
            }
        }
    }

    /// One check: when the switch is on, the pipeline not yet silent and no
    /// heartbeat came within `max_silence` (counted from `started` at the
    /// earliest: the grace period), journals the silence and tells the
    /// channels. Returns the event when it did.
    pub async fn check_heartbeat(
        self: &Arc<Self>,
        started: f64,
    ) -> Result<Option<PipelineEvent>, super::journal::JournalError> {
        let s = self.settings();
        let hb = &s.cfg.heartbeat;
        if !hb.enabled {
            return Ok(None);
        }
        let max = hb.max_silence.as_secs_f64();
        let metrics = &self.metrics;
        let silent = self
            .ledger
            .append(|b| {
                let p = b.state().pipeline.clone();
                if p.silent_since.is_some() {
                    return None;
                }
                let reference = p.last_heartbeat.map_or(started, |t| t.max(started));
                if b.now() - reference <= max {
                    return None;
                }
                let since = p.last_heartbeat.unwrap_or(started);
                let ev = PipelineEvent {
                    state: PipelineChange::Silent,
                    alertname: hb.alertname.clone(),
                    silent_since: since,
                    last_heartbeat: p.last_heartbeat,
                    message: silent_message(
                        hb,
                        &s.identity.name,
                        (since, p.last_heartbeat),
                        b.now(),
                        metrics.unauthorized_since(since),
                    ),
                };
                b.push(Event::Pipeline(ev.clone()));
                Some(ev)
            })
            .await?;
        if let Some(ev) = &silent {
            tracing::warn!(silent_since = %rfc3339(ev.silent_since), "alert pipeline silent: no heartbeat within receiver.heartbeat.max_silence");
            self.announce(s.clone(), ev.clone());
        }
        Ok(silent)
    }

    /// Tells the heartbeat's channels (in the background: the webhook reply
    /// and the check loop do not wait for them); each send is journaled.
    fn announce(self: &Arc<Self>, s: Arc<Settings>, ev: PipelineEvent) {
        let me = self.clone();
        tokio::spawn(async move {
            let (kind, title) = match ev.state {
                PipelineChange::Silent => ("pipeline_silent", "hostmedic: alert pipeline silent"),
                PipelineChange::Back => ("pipeline_back", "hostmedic: alert pipeline back"),
            };
            let alert = Alert {
                alertname: ev.alertname.clone(),
                status: match ev.state {
                    PipelineChange::Silent => AlertStatus::Silent,
                    PipelineChange::Back => AlertStatus::Back,
                },
                labels: [("alertname".to_string(), ev.alertname.clone())].into(),
                annotations: [("summary".to_string(), ev.message.clone())].into(),
                fingerprint: String::new(),
                starts_at: rfc3339(ev.silent_since),
            };
            let sends = s
                .cfg
                .heartbeat
                .channels(&s.env.notify)
                .into_iter()
                .map(|c| me.notify_one(&s, "", c, kind, &alert, title, &ev.message));
            futures::future::join_all(sends).await;
        });
    }

    /// `hostmedic_pipeline_heartbeat_last_timestamp_seconds` and
    /// `hostmedic_pipeline_silent`.
    pub async fn write_pipeline_metrics(&self, set: &mut MetricSet) {
        let p = self.ledger.core().await.state.pipeline.clone();
        set.gauge(
            "hostmedic_pipeline_heartbeat_last_timestamp_seconds",
            "Unix time of the last heartbeat (receiver.heartbeat.alertname) Alertmanager delivered; 0: none yet.",
            &[],
            p.last_heartbeat.unwrap_or(0.0),
        );
        set.gauge(
            "hostmedic_pipeline_silent",
            "1 while no heartbeat arrived within receiver.heartbeat.max_silence (the alert pipeline is silent).",
            &[],
            if p.silent_since.is_some() { 1.0 } else { 0.0 },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(state: PipelineChange, since: f64) -> PipelineEvent {
        PipelineEvent {
            state,
            alertname: "HostmedicWatchdog".into(),
            silent_since: since,
            last_heartbeat: None,
            message: String::new(),
        }
    }

    #[test]
    fn fold_silent_then_back() {
        let mut p = PipelineState {
            last_heartbeat: Some(100.0),
            silent_since: None,
        };
        p.apply(500.0, &ev(PipelineChange::Silent, 100.0));
        assert_eq!(p.silent_since, Some(100.0));
        p.apply(900.0, &ev(PipelineChange::Back, 100.0));
        assert_eq!(p.silent_since, None);
        assert_eq!(p.last_heartbeat, Some(900.0));
    }

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
    fn messages_say_what_happened() {
        let c = HeartbeatConfig::default();
        let m = silent_message(&c, "web-1", (0.0, Some(0.0)), 360.0, None);
        assert!(
            m.starts_with("alert pipeline silent since 1970-01-01T00:00:00Z on web-1 (6m"),
            "{m}"
        );
        assert!(m.contains("Prometheus or Alertmanager down?"), "{m}");
        assert!(!m.contains("401"), "{m}");
        let m = back_message(&c, "web-1", 0.0, 420.0);
        assert!(m.starts_with("alert pipeline back after 7m on web-1"), "{m}");
    }

    #[test]
    fn the_heartbeat_is_hostmedics_own_name() {
        // `Watchdog` is what other rule sets call theirs: not ours by default.
        assert_eq!(HeartbeatConfig::default().alertname, "HostmedicWatchdog");
        assert_eq!(DEFAULT_ALERTNAME, "HostmedicWatchdog");
    }

    #[test]
    fn recent_401s_blame_the_token_not_prometheus() {
        let c = HeartbeatConfig::default();
        let m = silent_message(&c, "web-1", (0.0, Some(0.0)), 360.0, Some((12, 350.0)));
        assert!(
            m.contains("12 webhook request(s) were refused 401 since then (the last at 1970-01-01T00:05:50Z)"),
            "{m}"
        );
        assert!(m.contains("Alertmanager is delivering with the wrong token"), "{m}");
        assert!(!m.contains("Prometheus or Alertmanager down?"), "{m}");
    }

    #[test]
    fn only_401s_since_the_silence_count() {
        let m = super::super::metrics::Metrics::default();
        let before = crate::time::now();
        assert_eq!(m.unauthorized_since(0.0), None);
        m.request(200);
        m.request(422);
        assert_eq!(m.unauthorized_since(0.0), None);
        m.request(401);
        m.request(401);
        let (n, last) = m.unauthorized_since(before).unwrap();
        assert_eq!(n, 2);
        assert!(last >= before);
        assert_eq!(m.unauthorized_since(last + 60.0), None);
    }
}

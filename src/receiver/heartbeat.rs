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

use tokio_util::sync::CancellationToken;

use super::config::HeartbeatConfig;
use super::journal::{Event, JournalError, NotifyKind, PipelineChange, PipelineEvent};
use super::ledger::Ledger;
use super::payload::{Payload, Status};
use super::run::Runner;
use super::settings::Settings;
use crate::actions::{Alert, AlertStatus};
use crate::metrics::MetricSet;

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

/// Takes the heartbeat deliveries out of `payload` (they are never
/// routed); a firing one records the heartbeat, and after a silence
/// journals and announces that the pipeline is back. Returns how many
/// were taken.
pub async fn take(run: &Runner, s: &Arc<Settings>, payload: &mut Payload) -> Result<usize, JournalError> {
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
            run.metrics.alert(status.as_str());
        }
    }
    // A resolved heartbeat is Alertmanager saying the rule stopped
    // firing: not a sign of life.
    if firing > 0 {
        arrived(run, s).await?;
    }
    Ok(firing + resolved)
}

async fn arrived(run: &Runner, s: &Arc<Settings>) -> Result<(), JournalError> {
    let now = crate::time::now();
    let silent = {
        let mut core = run.ledger.core().await;
        let p = &mut core.state.pipeline;
        p.last_heartbeat = Some(p.last_heartbeat.map_or(now, |t| t.max(now)));
        p.silent_since.is_some()
    };
    // The status file and the checkpoint carry the new time.
    run.ledger.mark_dirty(true);
    if !silent {
        return Ok(());
    }
    let hb = &s.cfg.heartbeat;
    let back = run
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
        announce(run, s.clone(), ev);
    }
    Ok(())
}

/// Background: checks for silence every `check_interval` (the settings in
/// force, read again each round, so a reload applies) until `shutdown`.
pub async fn watch(run: Runner, settings: impl Fn() -> Arc<Settings>, shutdown: CancellationToken) {
    let started = crate::time::now();
    loop {
        let s = settings();
        let every = s.cfg.heartbeat.check_interval;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = check(&run, &settings(), started).await {
            tracing::error!(error = %e, "cannot journal that the alert pipeline is silent");
        }
    }
}

/// One check: when the switch is on, the pipeline not yet silent and no
/// heartbeat came within `max_silence` (counted from `started` at the
/// earliest: the grace period), journals the silence and tells the
/// channels. Returns the event when it did.
pub async fn check(run: &Runner, s: &Arc<Settings>, started: f64) -> Result<Option<PipelineEvent>, JournalError> {
    let hb = &s.cfg.heartbeat;
    if !hb.enabled {
        return Ok(None);
    }
    let max = hb.max_silence.as_secs_f64();
    let metrics = &run.metrics;
    let silent = run
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
        announce(run, s.clone(), ev.clone());
    }
    Ok(silent)
}

/// Tells the heartbeat's channels (in the background: the webhook reply
/// and the check loop do not wait for them); each send is journaled.
fn announce(run: &Runner, s: Arc<Settings>, ev: PipelineEvent) {
    let me = run.clone();
    tokio::spawn(async move {
        let (kind, title) = match ev.state {
            PipelineChange::Silent => (NotifyKind::PipelineSilent, "hostmedic: alert pipeline silent"),
            PipelineChange::Back => (NotifyKind::PipelineBack, "hostmedic: alert pipeline back"),
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
pub async fn write_metrics(ledger: &Ledger, set: &mut MetricSet) {
    let p = ledger.core().await.state.pipeline.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = crate::receiver::metrics::Metrics::default();
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

//! The running application: configuration, collectors and self metrics,
//! shared by the HTTP handlers.

use std::sync::Arc;
use std::time::SystemTime;

use crate::collector::Runner;
use crate::config::{Config, ConfigError};
use crate::metrics::MetricSet;

pub struct App {
    pub config: Config,
    pub runner: Runner,
    pub started: SystemTime,
    /// The webhook receiver / remediation engine (`receiver.enabled`).
    pub receiver: Option<Arc<crate::receiver::Receiver>>,
}

impl App {
    /// Builds the application from a validated configuration.
    pub fn new(config: Config) -> Result<Arc<App>, ConfigError> {
        let collectors = config.build_collectors()?;
        let runner = Runner::new(collectors, config.global.collector_timeout);
        let receiver = if config.receiver.enabled {
            Some(crate::receiver::Receiver::new(
                config.receiver.clone(),
                crate::receiver::config::compile_rules(&config.remediation, &config.receiver, &config.notify)?,
                crate::actions::ActionEnv {
                    dry_run: config.receiver.dry_run,
                    ..config.action_env()
                },
                crate::receiver::identity::Identity::new(config.fleet.as_ref()),
            )?)
        } else {
            None
        };
        Ok(Arc::new(App {
            config,
            runner,
            started: SystemTime::now(),
            receiver,
        }))
    }

    /// Starts background work: collectors' and the receiver's (checkpoints,
    /// status file, pruning). Everything returns when `shutdown` is cancelled.
    /// The returned tracker holds the work that must finish before the
    /// process exits (the receiver's last checkpoint and status file);
    /// collectors have nothing to flush.
    pub fn spawn_background(&self, shutdown: &tokio_util::sync::CancellationToken) -> tokio_util::task::TaskTracker {
        self.runner.spawn_background(shutdown);
        let flush = tokio_util::task::TaskTracker::new();
        if let Some(r) = &self.receiver {
            flush.spawn(r.clone().background(shutdown.clone()));
        }
        flush.close();
        flush
    }

    /// One full scrape: every collector plus hostmedic's own metrics.
    pub async fn scrape(&self) -> MetricSet {
        let mut set = self.runner.gather().await;
        set.gauge(
            "hostmedic_build_info",
            "hostmedic build information; always 1.",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        let started = self.started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        set.gauge(
            "hostmedic_start_time_seconds",
            "Unix time at which hostmedic started.",
            &[],
            started.as_secs_f64(),
        );
        if let Some(r) = &self.receiver {
            r.metrics.write(&mut set, &r.holds());
        }
        set
    }

    /// The HTML landing page: links and each collector's last status.
    pub fn landing_page(&self) -> String {
        let mut rows = String::new();
        let status = self.runner.status();
        for c in self.runner.collectors() {
            let name = c.name();
            let (state, detail) = match status.get(name) {
                None => ("not scraped yet", String::new()),
                Some(s) if s.success => ("ok", format!("{:.3} s", s.duration_seconds)),
                Some(s) if !s.source_present => ("source absent", s.error.clone().unwrap_or_default()),
                Some(s) => ("failing", s.error.clone().unwrap_or_default()),
            };
            let at = status
                .get(name)
                .map(|s| humantime::format_rfc3339_seconds(s.at).to_string())
                .unwrap_or_default();
            rows.push_str(&format!(
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>\n",
                html_escape(name),
                state.replace(' ', "-"),
                state,
                html_escape(&detail),
                at
            ));
        }
        format!(
            r#"<!doctype html>
<html><head><meta charset="utf-8"><title>hostmedic</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
.ok{{color:green}}.failing{{color:#b00}}.source-absent{{color:#888}}</style></head>
<body><h1>hostmedic {version}</h1>
<p>Prometheus exporter and Alertmanager webhook receiver that heals this host.</p>
<ul><li><a href="metrics">metrics</a></li><li><a href="-/healthy">health</a></li><li><a href="-/ready">readiness</a></li></ul>
<h2>Collectors</h2>
<table><tr><th>collector</th><th>status</th><th>detail</th><th>last scrape</th></tr>
{rows}</table>
</body></html>
"#,
            version = env!("CARGO_PKG_VERSION"),
        )
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

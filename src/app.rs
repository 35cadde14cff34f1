//! The running application: configuration, collectors and self metrics,
//! shared by the HTTP handlers, and its reload (SIGHUP, `POST /-/reload`).
//!
//! A reload re-reads the file given at start-up, validates it whole, and
//! only then swaps: the receiver's settings (rules, modes, channels,
//! credentials, identity; its state stays), the collectors whose section
//! changed, the configuration. Anything invalid, or a key that cannot change
//! while running ([`App::reload`]), keeps the running configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::collector::Runner;
use crate::config::{Config, ConfigError};
use crate::metrics::MetricSet;
use crate::observed::Observed;
use crate::receiver::settings::Settings;
use crate::selfmetrics::ReloadStatus;

/// Where the configuration came from, to read it again on reload.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `--config`; `None`: the embedded default, nothing to re-read.
    pub path: Option<PathBuf>,
    /// `--web.listen-address`, applied again over every reloaded file.
    pub listen_address: Option<SocketAddr>,
}

impl Source {
    /// What a reload judges ([`crate::judge`]), with the web config file.
    pub fn inputs<'a>(&'a self, web_config: Option<&'a std::path::Path>) -> crate::judge::Inputs<'a> {
        crate::judge::Inputs {
            config: self.path.as_deref(),
            web_config,
            listen_address: self.listen_address,
        }
    }

    /// Loads the configuration (the embedded default without a path).
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut cfg = Config::load(self.path.as_deref())?;
        if let Some(addr) = self.listen_address {
            cfg.web.listen_address = addr;
        }
        Ok(cfg)
    }
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Started on the embedded default: there is no file to re-read.
    #[error("started without --config (embedded default): there is no configuration file to re-read")]
    NoFile,
    /// The file is invalid or changes a key fixed at start-up; the running
    /// configuration stays.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
}

pub struct App {
    config: ArcSwap<Config>,
    pub runner: Runner,
    pub started: SystemTime,
    /// The webhook receiver / remediation engine (`receiver.enabled`).
    pub receiver: Option<Arc<crate::receiver::Receiver>>,
    source: Source,
    /// The web layer (`--web.config.file`), re-read with the configuration.
    web: Arc<crate::web::Layer>,
    /// Serializes reloads (a SIGHUP and a `POST /-/reload` at once).
    reloading: tokio::sync::Mutex<()>,
    reload_status: ReloadStatus,
    /// The host summary of the last scrape (the receiver's, when it runs,
    /// so its status document shows it too).
    host: Arc<crate::hostsummary::LastScrape>,
    /// What the collectors saw, for the receiver's evidence: one board for
    /// the process, kept across reloads.
    observed: Observed,
}

/// The receiver's swappable settings as `config` asks for them.
fn receiver_settings(config: &Config, observed: &Observed) -> Result<Settings, ConfigError> {
    Settings::new(
        config.receiver.clone(),
        crate::receiver::config::compile_rules(&config.remediation, &config.receiver, &config.notify)?,
        crate::actions::ActionEnv {
            dry_run: config.receiver.dry_run,
            ..config.action_env()
        },
        crate::receiver::identity::Identity::new(config.fleet.as_ref()),
        observed.clone(),
    )
}

impl App {
    /// Builds the application from a validated configuration that has no
    /// file to reload from.
    pub fn new(config: Config) -> Result<Arc<App>, ConfigError> {
        App::with_source(config, Source::default(), crate::web::Layer::plain())
    }

    /// Builds the application from a validated configuration, loaded from
    /// `source` (which a reload reads again, with the web layer's file).
    pub fn with_source(config: Config, source: Source, web: Arc<crate::web::Layer>) -> Result<Arc<App>, ConfigError> {
        let observed = Observed::default();
        let runner = Runner::from_built(config.build_collectors(&observed)?, config.global.collector_timeout);
        let receiver = if config.receiver.enabled {
            Some(crate::receiver::Receiver::new(receiver_settings(&config, &observed)?)?)
        } else {
            None
        };
        let host = receiver.as_ref().map(|r| r.host.clone()).unwrap_or_default();
        Ok(Arc::new(App {
            host,
            config: ArcSwap::from_pointee(config),
            runner,
            started: SystemTime::now(),
            receiver,
            source,
            web,
            reloading: tokio::sync::Mutex::new(()),
            reload_status: ReloadStatus::new(crate::time::now()),
            observed,
        }))
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Re-reads the configuration file and applies it; one reload at a
    /// time. Sets `hostmedic_config_last_reload_*` and logs the outcome.
    /// Refused, keeping everything as it runs, when the file is invalid or
    /// changes `web.listen_address`, `receiver.enabled`, or a `[receiver]`
    /// key the journal and state files are opened from.
    pub async fn reload(&self) -> Result<String, ReloadError> {
        let _one = self.reloading.lock().await;
        if self.source.path.is_none() && self.web.file().is_none() {
            tracing::info!("reload asked for; {}", ReloadError::NoFile);
            return Err(ReloadError::NoFile);
        }
        let r = self.apply();
        self.reload_status.record(r.is_ok());
        match r {
            Ok(summary) => {
                tracing::info!(summary = %summary.trim_end(), "configuration reloaded");
                Ok(summary)
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
                Err(e.into())
            }
        }
    }

    /// Reads the configuration file and the web config file, checks them
    /// against what cannot change and builds everything from them, then
    /// swaps. Nothing is swapped before every check has passed.
    fn apply(&self) -> Result<String, ConfigError> {
        // The judge `serve` started with: every error, start-up checks included.
        let next = crate::judge::judge(&self.source.inputs(self.web.file())).accepted()?;
        let web = self.web.prepare_reload()?;
        let web_note = match self.web.file() {
            Some(f) => format!("; web config reloaded from {}", f.display()),
            None => String::new(),
        };
        let running = self.config();
        let Some(path) = self.source.path.as_ref() else {
            // Embedded default: only the web config has a file to re-read.
            if let Some(next) = web {
                self.web.commit(next);
            }
            return Ok(format!("no configuration file (embedded default){web_note}\n"));
        };
        if next.web.listen_address != running.web.listen_address {
            return Err(ConfigError::invalid(
                "web.listen_address",
                format!(
                    "cannot change while hostmedic runs (listening on {}); restart it to apply",
                    running.web.listen_address
                ),
            ));
        }
        if next.receiver.enabled != running.receiver.enabled {
            return Err(ConfigError::invalid(
                "receiver.enabled",
                "cannot change while hostmedic runs; restart it to apply",
            ));
        }
        let built = next.build_collectors(&self.observed)?;
        if let Some(r) = &self.receiver {
            r.reload(receiver_settings(&next, &self.observed)?)?;
        }
        if let Some(w) = web {
            self.web.commit(w);
        }
        let done = self.runner.reload(built, next.global.collector_timeout);
        self.config.store(Arc::new(next));
        Ok(format!(
            "configuration reloaded from {}: collectors kept {:?}, rebuilt {:?}, stopped {:?}{web_note}\n",
            path.display(),
            done.kept,
            done.rebuilt,
            done.stopped
        ))
    }

    /// Starts background work: collectors' and the receiver's (checkpoints,
    /// status file, pruning, the heartbeat's silence check). Everything returns when `shutdown` is cancelled.
    /// The returned tracker holds the work that must finish before the
    /// process exits (the receiver's last checkpoint and status file);
    /// collectors have nothing to flush.
    pub fn spawn_background(&self, shutdown: &tokio_util::sync::CancellationToken) -> tokio_util::task::TaskTracker {
        self.runner.spawn_background(shutdown);
        let flush = tokio_util::task::TaskTracker::new();
        if let Some(r) = &self.receiver {
            flush.spawn(r.clone().background(shutdown.clone()));
            tokio::spawn(r.clone().watch_heartbeat(shutdown.clone()));
            // Plans a crash of the previous process cut short.
            tokio::spawn(r.clone().recover_interrupted());
        }
        flush.close();
        flush
    }

    /// Starts one collection in the background so the landing page and the
    /// status document show the host before Prometheus' first scrape
    /// (`serve` calls it once the listener is bound; it never delays
    /// `/metrics`, which runs its own collection). A collector whose source
    /// is absent reports so, as in a scrape; a scrape that ends first keeps
    /// its newer summary. Returns at once when `shutdown` is cancelled.
    pub fn spawn_first_collection(self: &Arc<Self>, shutdown: &tokio_util::sync::CancellationToken) {
        let (app, stop) = (self.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                set = app.runner.gather() => {
                    let mut h = crate::hostsummary::HostSummary::from_set(&set, crate::time::now());
                    h.at_startup = true;
                    if app.host.store_first(h) {
                        tracing::info!("first collection at start done: the landing page shows the host");
                    }
                }
            }
        });
    }

    /// One full scrape: every collector plus hostmedic's own metrics.
    pub async fn scrape(&self) -> MetricSet {
        let mut set = self.runner.gather().await;
        self.host
            .store(crate::hostsummary::HostSummary::from_set(&set, crate::time::now()));
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
        self.reload_status.write(&mut set);
        crate::selfmetrics::write_process(&mut set);
        if let Some(r) = &self.receiver {
            r.metrics.write(&mut set, &r.holds());
            r.write_pipeline_metrics(&mut set).await;
        }
        set
    }

    /// The HTML landing page ([`crate::landing`]): the verdict, links,
    /// the receiver's view, the host summary of the last collection, each
    /// collector's last status. Without `details` (a request the status API
    /// would refuse, see `Receiver::may_read_status`) the receiver's sections
    /// are replaced by one line asking to authenticate.
    pub async fn landing_page(&self, details: bool) -> String {
        let status = self.runner.status();
        let collectors = self
            .runner
            .collectors()
            .iter()
            .map(|c| (c.name(), status.get(c.name()).cloned()))
            .collect();
        let receiver = match &self.receiver {
            Some(r) if details => Some(r.status().await),
            _ => None,
        };
        let host = self.host.load();
        crate::landing::page(&crate::landing::Page {
            clock: crate::landing::Clock::system(),
            collectors,
            host: host.as_deref(),
            status: receiver.as_ref(),
            details_hidden: self.receiver.is_some() && !details,
        })
    }
}

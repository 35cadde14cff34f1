//! hostmedic: a Prometheus exporter for host health plus an Alertmanager
//! webhook receiver that runs the remediation mapped to each alert.
//!
//! Layout:
//! - [`cli`]: flags, subcommands, logging; `main.rs` only calls [`cli::main`].
//! - [`client`]: the control subcommands' HTTP(S) client (`approve`,
//!   `clear-hold`), with TLS and basic auth.
//! - [`config`]: the TOML schema, embedded default, validation (one place),
//!   and the collector registry [`config::COLLECTORS`] (each section is
//!   validated by building the collector that runs from it).
//! - [`error`]: `ConfigError` and `compile_regex`, a leaf every section uses.
//! - [`app`]: the running application shared by HTTP handlers.
//! - [`server`]: hyper 1.x HTTP server, `run(listener, app, shutdown)`.
//! - [`web`]: the web layer before every endpoint (`--web.config.file` in
//!   the exporter-toolkit format: TLS, basic auth, response headers).
//! - [`http`]: response helpers and path percent coding (a leaf shared by
//!   the server and the receiver's endpoints).
//! - [`time`]: Unix-seconds clock and the one RFC 3339 parser (a leaf).
//! - [`collector`]: the `Collector` trait and the concurrent scrape runner.
//! - [`collectors`]: one file or folder per collector (host, hwmon, …).
//! - [`command`]: runs an argv (no shell, own process group, timeout that
//!   kills the group, bounded output), for the command probes and the exec
//!   action.
//! - [`docker`]: Docker Engine connection and container operations shared by
//!   the docker collector and the remediation actions.
//! - [`metrics`]: per-scrape snapshot and its OpenMetrics/classic encodings.
//! - [`procfs`]: bounded readers of `<procfs_root>` (stat, start time,
//!   cmdline, cgroup), shared by the processes collector, the kill action and
//!   the docker cgroup-memory reader.
//! - [`notify`]: notification channels (ntfy, Telegram, webhook) and their
//!   delivery, for the notify action and the receiver's own messages.
//! - [`receiver`]: Alertmanager webhook receiver and remediation engine:
//!   webhook → http → route → plan (policy) → ledger (journal) → run
//!   (actions, verify, notify) → status.
//! - [`actions`]: one file per remediation action (spec, validation, target
//!   resolution, run, verify); the receiver resolves and runs them.
//! - [`systemd`]: D-Bus access to systemd (proxies, connections, unit helpers),
//!   shared by the systemd collector and the remediation actions.

pub mod actions;
pub mod app;
pub mod bytes;
pub mod cli;
pub mod client;
pub mod collector;
pub mod collectors;
pub mod command;
pub mod config;
pub mod docker;
pub mod error;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod procfs;
pub mod receiver;
pub mod server;
pub mod systemd;
pub mod time;
pub mod web;

/// Installs rustls' `ring` crypto provider as the process default (reqwest is
/// built with `rustls-no-provider`). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

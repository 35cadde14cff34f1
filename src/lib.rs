//! hostmedic: a Prometheus exporter for host health plus an Alertmanager
//! webhook receiver that runs the remediation mapped to each alert.
//!
//! # Two data flows
//!
//! ```text
//! scrape:   GET /metrics ─ server ─ app::App::scrape
//!             └─ collector::Runner (every collector concurrently, each under
//!                global.collector_timeout; a failing one never fails the scrape)
//!                  └─ collectors::{host, hwmon, pressure, processes, logfile,
//!                     probes, docker, systemd, git_lfs, paths}  (built from config::COLLECTORS)
//!                       └─ metrics::MetricSet (the snapshot) ─ encode (OpenMetrics | 0.0.4)
//!
//! webhook:  POST /api/v1/alerts ─ server ─ receiver::http (method, auth, limits, payload)
//!             └─ receiver::engine::Receiver::accept (settings snapshot)
//!                  ├─ route   (rules' actions::Compiled::resolve → actions::Resolved)
//!                  ├─ plan    (receiver::policy::decide: duplicate / hold / quiet window /
//!                  │           cooldown (backoff) / budget / act / dry-run / pending approval)
//!                  ├─ ledger  (journal append + fsync, then the 200)
//!                  └─ run     (run::Runner: per-target lock, semaphore, evidence before,
//!                              Resolved::run / verify, evidence again, notify
//!                              channels) ─ ledger ─ status / persist
//! ```
//!
//! # Modules
//!
//! Entry and assembly:
//! - [`cli`]: flags, subcommands, logging; `main.rs` only calls [`cli::main`].
//! - [`client`]: the control subcommands' HTTP(S) client (`approve`,
//!   `clear-hold`), with TLS and basic auth.
//! - [`config`]: the TOML schema, embedded default, validation by building
//!   what runs, and the collector registry [`config::COLLECTORS`].
//! - [`judge`]: the one judge of a configuration (file, web config,
//!   listen address) for `check-config`, `serve` and reload: every error
//!   with file, line and rule, and warnings.
//! - [`app`]: the running application (collectors, receiver) shared by the
//!   HTTP handlers, and its reload (SIGHUP, `POST /-/reload`): the file is
//!   re-read and validated whole, then the receiver's settings and the
//!   changed collectors are swapped.
//! - [`selfmetrics`]: `process_*` (from the real `/proc/self`) and
//!   `hostmedic_config_last_reload_*`.
//! - [`server`]: hyper 1.x HTTP server and its route table.
//! - [`landing`]: the landing page (`/`): the verdict line (what needs a
//!   person), alert pipeline, firing alerts with what was done, pending
//!   approvals, holds, host summary, collectors.
//! - [`web`]: the web layer before every endpoint (`--web.config.file` in
//!   the exporter-toolkit format: TLS, basic auth, response headers).
//!
//! Scrape side:
//! - [`collector`]: the `Collector` trait, `GlobalConfig` and the concurrent
//!   scrape runner.
//! - [`collectors`]: one file or folder per collector.
//! - [`metrics`]: the per-scrape snapshot and its two text encodings.
//! - [`hostsummary`]: the host at a glance from the last scrape's snapshot
//!   (status document, landing page).
//!
//! Remediation side:
//! - [`receiver`]: the Alertmanager webhook receiver as stages, one file each
//!   (http, route, policy, plan, ledger, run, status, persist), plus the
//!   journal, the safety state and the fleet identity; a chain of layers
//!   (journal, config and state at the bottom, the engine near the top),
//!   held by the `receiver::layers` test.
//! - [`actions`]: one file per remediation action (spec, validation, target
//!   resolution, run, verify, evidence subjects) as one `actions::Action`
//!   impl, registered by one line of the `actions!` table (`actions::ACTIONS`);
//!   the receiver holds the erased `ActionSpec` → `Compiled` → `Resolved`.
//! - [`evidence`]: what is captured about an incident's subjects before
//!   acting and at verification (one file per subject kind), its
//!   redaction (through [`redact`]) and bounds, `[receiver.evidence]`.
//!
//! Shared leaves (they import none of their consumers):
//! - [`error`]: `ConfigError`, `compile_regex`, and `chain` (an error with
//!   every cause, the one way library errors become details and log lines).
//! - [`http`]: response helpers and path percent coding.
//! - [`invocation`]: the configuration the control subcommands find
//!   (`--config`, `HOSTMEDIC_CONFIG`, the packaged file) and the commands
//!   printed for a person to paste (`--config` when not the packaged one).
//! - [`text`]: the one escaping of alert text (control characters, line
//!   separators, bidi overrides) wherever it is rendered for a person.
//! - [`time`]: Unix-seconds clock and the one RFC 3339 parser.
//! - [`bytes`]: byte sizes in configuration (`"2GiB"`).
//! - [`sync`]: the one mutex-poisoning policy (`lock`, `read`, `write`).
//! - [`spelling`]: `spelled!`, the one spelling of an enum value (`as_str`)
//!   as its `Display` and its comparison with text.
//! - [`redact`]: secrets out of text hostmedic exports or records (incident
//!   evidence, the processes collector's `cmdline` label, the kill action's
//!   messages).
//! - [`procfs`]: bounded readers of `<procfs_root>`, for the processes
//!   collector, the kill action and the cgroup leaf.
//! - [`cgroup`]: cgroup v2/v1 file readers (CPU, memory, tasks, I/O, PSI; one
//!   file each: `v2`, `v1`, `psi`, `owner`, `availability`, `series`),
//!   the PSI line parser and the owner (unit, manager, container) of a
//!   process, for the systemd, docker, processes and pressure collectors and
//!   the incident evidence.
//! - [`command`]: runs an argv (no shell, own process group, timeout that
//!   kills the group, bounded output), for the command probes and the exec
//!   action.
//! - [`notify`]: notification channels (ntfy, Telegram, webhook), for the
//!   notify action and the receiver's own messages.
//! - [`docker`]: Docker Engine connection and container operations, for the
//!   docker collector and the actions.
//! - [`systemd`]: D-Bus access to systemd (proxies, connections, unit
//!   helpers), for the systemd collector and the actions.
//! - [`du`]: disk use as `du` counts it (allocated blocks, hard links once,
//!   one filesystem, bounded walks) and free bytes as `df` shows them, for
//!   the disk_usage collector, the journal-vacuum action and the evidence.
//! - [`journal_files`]: a journal directory's files, archived or active as
//!   journald names them, measured through [`du`], for the journal-vacuum
//!   action, the journal evidence and the disk_usage collector's defaults.
//! - [`observed`]: what the background collectors last saw (a watched
//!   path's size history, an LFS repository's over-limit objects), for the
//!   evidence.

pub mod actions;
pub mod app;
pub mod bytes;
pub mod cgroup;
pub mod cli;
pub mod client;
pub mod collector;
pub mod collectors;
pub mod command;
pub mod config;
pub mod docker;
pub mod du;
pub mod error;
pub mod evidence;
pub mod hostsummary;
pub mod http;
pub mod invocation;
pub mod journal_files;
pub mod judge;
pub mod landing;
pub mod metrics;
pub mod notify;
pub mod observed;
pub mod procfs;
pub mod receiver;
pub mod redact;
pub mod selfmetrics;
pub mod server;
pub mod spelling;
pub mod sync;
pub mod systemd;
pub mod text;
pub mod time;
pub mod users;
pub mod web;

/// Installs rustls' `ring` crypto provider as the process default (reqwest is
/// built with `rustls-no-provider`). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

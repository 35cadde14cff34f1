//! The component test binary: each module exercises one part of hostmedic
//! (a collector, the actions, the receiver, the HTTP server, the CLI) on real
//! parts — real child processes, files, a private Docker engine, a systemd
//! rootfs, a real Alertmanager — but without the whole Prometheus →
//! Alertmanager → hostmedic loop, which lives in `tests/e2e/`.
//!
//! One binary instead of one per file (as ripgrep's `tests/tests.rs`): the
//! shared harness crate `tests/support` and the heavy dependencies (zbus,
//! bollard, gix, reqwest) are compiled and linked once. Run one area with
//! `cargo nextest run --test component -E 'test(/^receiver::/)'`.
//! `docs/e2e.md` explains the split between the two binaries.

/// The shared harness (`tests/support`), by the name the modules use.
use hostmedic_test_support as common;

mod actions;
mod actions_journal;
mod actions_systemd;
mod check_config;
mod churn;
mod cli;
mod collect_golden;
mod crash;
mod docker;
mod docker_disk;
mod evidence;
mod exec_user;
mod filesystems;
mod git_lfs;
mod latency;
mod logfile;
mod paths;
mod probes;
mod processes;
mod processes_logs_probes_binary;
mod receiver;
mod receiver_policy;
mod reload;
mod resources;
mod sd_notify;
mod security;
mod server;
mod status;
mod systemd;
mod web_config;

//! The end-to-end test binary: the field scenarios S1–S12 (`scenarios::*`)
//! with real Prometheus, Alertmanager and hostmedic wired as in production,
//! the fleet deployment in network namespaces (`fleet`) and the series a
//! realistic host costs (`fleet_series`), the getting-started
//! guide run with its own files (`getting_started`), the alert pipeline's
//! dead-man's switch with Prometheus killed and restarted (`heartbeat`), and the shipped
//! artefacts checked against real tools: alerting rules (`rules`), Grafana
//! dashboards (`dashboards`, `dashboards_full`) and the compose stack
//! (`compose`), the web layer (TLS, basic auth) against real clients
//! (`tls`), and the landing page rendered by headless Chromium
//! (`landing_browser`).
//!
//! One binary for all of them (as ripgrep's `tests/tests.rs`), so the shared
//! harness in `tests/support` is compiled and linked once; the per-component
//! tests are the other binary, `tests/component/`. Run the scenarios alone
//! with `cargo nextest run --test e2e -E 'test(/^scenarios::/)'`.
//! `docs/e2e.md` explains the split.

/// The shared harness (`tests/support`), by the name the modules use.
use hostmedic_test_support as common;

mod compose;
mod dashboards;
mod dashboards_full;
mod deploy;
mod deploy_unit;
mod fleet;
mod fleet_series;
mod getting_started;
mod heartbeat;
mod landing_browser;
mod quiet_defaults;
mod rules;
mod scenarios;
mod tls;

//! The Alertmanager webhook receiver and remediation engine, as a pipeline
//! of stages, one file each:
//!
//! ```text
//! http ──▶ route ──▶ plan (policy) ──▶ ledger (journal, fsync) ──▶ 200
//!  │         │          │                                            │
//!  auth,     rules →    decide: duplicate/hold/quiet/cooldown/       run (after the reply):
//!  limits,   targets,   budget/act/dry-run/pending approval          lock per target, semaphore,
//!  payload   refusals                                                actions, verify, notify
//! ```
//!
//! [`engine`] holds the receiver and orchestrates one request
//! ([`Receiver::accept`]); [`status`] builds the status document and
//! [`persist`] writes it and the checkpoint. Underneath: [`config`] (rules
//! compiled once, at validation), [`quiet`] (their remediation windows),
//! [`payload`], [`auth`], [`identity`] (fleet), [`journal`] (format and
//! writer), [`state`] (what the journal folds into), [`recover`] (plans a
//! crash interrupted, survivors of their processes), [`metrics`],
//! [`timeline`] (where a remediation's seconds go), [`private`] (the
//! owner-only modes of the files it writes) and [`incidents`]
//! (`hostmedic incidents`). Beside the pipeline: [`heartbeat`] (the
//! dead-man's switch for the alert pipeline) and [`firing`] (the alerts
//! firing as the deliveries tell).

pub mod auth;
pub mod config;
pub mod engine;
pub mod firing;
mod fuzz;
pub mod heartbeat;
pub mod http;
pub mod identity;
pub mod incidents;
pub mod journal;
pub mod ledger;
pub mod messages;
pub mod metrics;
pub mod payload;
pub mod persist;
pub mod plan;
pub mod policy;
pub mod private;
pub mod quiet;
pub mod recover;
pub mod route;
pub mod run;
pub mod state;
pub mod status;
pub mod timeline;

pub use auth::check_listen;
pub use engine::Receiver;
#[doc(hidden)]
pub use fuzz::fuzz_check;
pub use http::RESERVED_PATHS;

/// The crate's one mutex-poisoning policy ([`crate::sync`]).
pub(crate) use crate::sync::lock;

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
//! The modules form a chain, bottom first (each imports only modules of
//! the layers below it; `layers` is the test that holds it):
//!
//! ```text
//! persist
//! status, http, fuzz          what serves the receiver
//! engine                      the Receiver: wires the stages (accept, approve, clear a hold)
//! recover, heartbeat          crash recovery, the pipeline's dead-man's switch
//! plan, run                   the stages (run: Runner, the actions and notifications)
//! policy, messages, route, ledger, settings
//! state, job, metrics, incidents
//! timeline, firing            folds the state embeds or the metrics read
//! journal, config             the journal format (with the heartbeat's events),
//!                             `[receiver]`/`[[remediation]]`
//! identity                    the fleet identity: whose alert this is
//! private, payload, quiet,    leaves: owner-only files, the webhook body, quiet
//! auth, mode                  windows, credentials, what a rule does with a match
//! ```
//!
//! [`engine`] holds the receiver and orchestrates one request
//! ([`Receiver::accept`]); the stages take what they use as arguments
//! ([`settings::Settings`], the [`ledger`], the [`run::Runner`]). [`status`]
//! builds the status document and [`persist`] writes it and the checkpoint.
//! [`config`] compiles the rules once, at validation; [`quiet`] reads their
//! remediation windows and [`mode`] is what a rule does with a match;
//! [`journal`] is the format and writer, [`state`] what it folds into,
//! [`recover`] plans a crash interrupted, [`timeline`] where a
//! remediation's seconds go, [`private`] the owner-only file modes and
//! [`incidents`] `hostmedic incidents`. [`heartbeat`] is the dead-man's
//! switch for the alert pipeline and [`firing`] the alerts firing as the
//! deliveries tell.

pub mod auth;
pub mod config;
pub mod engine;
pub mod firing;
mod fuzz;
pub mod heartbeat;
pub mod http;
pub mod identity;
pub mod incidents;
pub mod job;
pub mod journal;
#[cfg(test)]
mod layers;
pub mod ledger;
pub mod messages;
pub mod metrics;
pub mod mode;
pub mod payload;
pub mod persist;
pub mod plan;
pub mod policy;
pub mod private;
pub mod quiet;
pub mod recover;
pub mod route;
pub mod run;
pub mod settings;
pub mod state;
pub mod status;
pub mod timeline;

pub use config::{RESERVED_PATHS, check_listen};
pub use engine::Receiver;
#[doc(hidden)]
pub use fuzz::fuzz_check;

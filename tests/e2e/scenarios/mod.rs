//! The S1–S12 field scenarios of docs/scenarios.md, one module per
//! area of the host (the table in `docs/e2e.md` maps scenarios to modules),
//! plus `harness`, which checks the `Stack` they all run on.

mod docker;
mod files;
mod harness;
mod health;
mod load;
mod processes;
mod s12_journal_notify;
mod systemd;

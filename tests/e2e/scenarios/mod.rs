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

use crate::common::config::Section;

/// `[processes]` sampled every second, with the watch `name`: exactly one
/// `python3 …/<script>.py` process.
fn one_python(name: &str, script: &str) -> impl FnOnce(&mut Section) {
    let (name, cmdline) = (name.to_string(), format!(r"python3 .*/{script}\.py"));
    move |p| {
        p.set("sample_interval", "1s").push("watch", |w| {
            w.set("name", name).set("cmdline", cmdline).set("min", 1).set("max", 1);
        });
    }
}

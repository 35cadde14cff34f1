//! Nothing left "acting" after a crash. While a plan runs, every process
//! its actions start (an `exec` program: the leader of its own process
//! group) is journaled as it starts (`spawned`: pid, group, start time in
//! ticks, boot id). The state fold keeps the plans whose actions have not
//! all journaled an outcome ([`Acting`]); one still there when hostmedic
//! starts was cut short by a crash, a `kill -9` or a power loss. For each,
//! the start:
//!
//! 1. looks for survivors of the processes it started — members of the
//!    recorded process group and session that started no earlier than its
//!    leader, in the same boot — and kills the group (SIGKILL), naming what
//!    it killed;
//! 2. journals the action that was running (or next to run) as
//!    `interrupted`, with that report; the attempt was counted when the plan
//!    was decided, so it stays spent;
//! 3. runs the plan's verification (its targets resolved again from the
//!    alert the decision kept) and tells the rule's channels.
//!
//! The processes are our own children, so they are read from the `/proc` of
//! our own pid namespace ([`OWN_PROCFS`]), not from `global.procfs_root`
//! (which may be a host's procfs mounted into a container).
//!
//! Under systemd the default `KillMode=control-group` has already killed
//! the unit's remaining processes when the main process died; the search
//! then finds the groups ended and says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::journal::{Event, NotifyKind};
use super::route::to_alert;
use super::run::Runner;
use super::settings::Settings;
use super::state::{Acting, Child};
use crate::actions::OutcomeResult;
use crate::actions::env::OWN_PROCFS;

/// How long to wait for killed survivors to be gone before reporting.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Accounts for every plan the previous process left acting (`plans`,
/// taken from the state when the receiver was built, before any request):
/// each in its own task, serialized with new work on its target.
pub async fn recover_interrupted(run: &Runner, s: Arc<Settings>, plans: Vec<(String, Acting)>) {
    let mut tasks = tokio::task::JoinSet::new();
    for (id, plan) in plans {
        let (run, s) = (run.clone(), s.clone());
        tasks.spawn(async move { recover_one(&run, &s, id, plan).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn recover_one(run: &Runner, s: &Settings, id: String, plan: Acting) {
    let lock = run.target_lock(&plan.target);
    let _serial = lock.lock().await;
    // Reading /proc and waiting for the groups to die block: off the runtime.
    let children = plan.children.clone();
    let reports = tokio::task::spawn_blocking(move || reap_all(Path::new(OWN_PROCFS), &children))
        .await
        .unwrap_or_else(|e| vec![format!("cannot look for survivors: {e}")]);
    let index = plan.done;
    let description = plan.actions.get(index).cloned().unwrap_or_default();
    let action = description.split_whitespace().next().unwrap_or("unknown").to_string();
    // One line (the incident log shows the first): what happened, then
    // what became of the processes.
    let detail = std::iter::once(format!(
        "hostmedic stopped mid-plan (crash or kill -9) at action {} of {}: outcome unknown, attempt spent",
        index + 1,
        plan.actions.len()
    ))
    .chain(reports.iter().cloned())
    .collect::<Vec<_>>()
    .join("; ");
    tracing::warn!(id, rule = %plan.rule, target = %plan.target, action = %description, survivors = ?reports, "an action was interrupted by the previous process's end");
    let result = OutcomeResult::Interrupted;
    run.metrics.action(&action, result.as_str());
    run.ledger
        .record(vec![Event::Action {
            id: id.clone(),
            rule: plan.rule.clone(),
            target: plan.target.clone(),
            index,
            action: action.clone(),
            description: description.clone(),
            result,
            detail: crate::actions::truncate(detail.clone(), crate::actions::DETAIL_MAX),
            duration_seconds: (crate::time::now() - plan.since).max(0.0),
        }])
        .await;

    // The plan's verification, on its targets as the alert gives them now.
    let Some(rule) = s.rules.iter().find(|r| r.cfg.name == plan.rule) else {
        tracing::warn!(id, rule = %plan.rule, "the interrupted plan's rule is no longer configured; not verified");
        return;
    };
    let alert = plan.alert.as_deref().map(to_alert);
    let mut verdict = String::new();
    if let Some(alert) = &alert
        && rule.cfg.verify
    {
        match rule.resolve(alert) {
            Ok((_, targets)) => verdict = run.verify_plan(rule, &id, &plan.target, &targets, &s.env, None).await,
            Err(e) => tracing::warn!(id, error = %e, "cannot resolve the interrupted plan's targets; not verified"),
        }
    }
    let Some(alert) = alert else { return };
    let title = format!(
        "{} interrupted on {}: {}",
        rule.cfg.name,
        plan.target,
        if verdict.is_empty() {
            result.as_str()
        } else {
            verdict.as_str()
        }
    );
    let message = format!(
        "{} ({})\n{description}: {result}\n{detail}",
        alert.alertname, alert.status
    );
    for ch in &rule.cfg.notify {
        run.notify_one(s, &id, ch.clone(), NotifyKind::Outcome, &alert, &title, &message)
            .await;
    }
}

/// Looks for survivors of each process group the plan's actions started
/// (one report per group, in the order they started) and kills them.
/// Blocking: reads `procfs` and waits up to [`REAP_WAIT`] per group.
fn reap_all(procfs: &Path, children: &[Child]) -> Vec<String> {
    let boot = crate::procfs::boot_id(procfs).ok();
    let mut groups: Vec<&Child> = Vec::new();
    for c in children {
        if !groups.iter().any(|g| g.pgid == c.pgid && g.boot_id == c.boot_id) {
            groups.push(c);
        }
    }
    groups.into_iter().map(|c| reap(procfs, c, boot.as_deref())).collect()
}

/// Looks for what is left of the process group `c` led and kills it;
/// returns one line saying what was found.
fn reap(procfs: &Path, c: &Child, boot: Option<&str>) -> String {
    let group = format!("process group {} (action {})", c.pgid, c.index + 1);
    if boot.is_some_and(|b| !c.boot_id.is_empty() && b != c.boot_id) {
        return format!("{group}: ended with the reboot since");
    }
    let members = match crate::procfs::group_members(procfs, c.pgid as i32, c.sid as i32, c.start_ticks) {
        Ok(m) => m,
        Err(e) => return format!("{group}: cannot look for survivors: {e}"),
    };
    if members.is_empty() {
        return format!("{group}: had already ended");
    }
    let named: Vec<String> = members
        .iter()
        .map(|m| {
            let cmd = crate::procfs::read_cmdline(procfs, m.pid);
            let cmd = if cmd.is_empty() {
                m.comm.clone()
            } else {
                crate::redact::defaults().redact(&cmd)
            };
            format!("{} ({})", m.pid, cmd.chars().take(80).collect::<String>())
        })
        .collect();
    if let Err(e) = crate::command::kill_group(c.pgid) {
        return format!("{group}: survived hostmedic: {}; cannot kill it: {e}", named.join(", "));
    }
    let until = std::time::Instant::now() + REAP_WAIT;
    loop {
        let left = crate::procfs::group_members(procfs, c.pgid as i32, c.sid as i32, c.start_ticks).unwrap_or_default();
        if left.is_empty() {
            return format!("{group}: survived hostmedic: killed {}", named.join(", "));
        }
        if std::time::Instant::now() >= until {
            let left: Vec<String> = left.iter().map(|m| m.pid.to_string()).collect();
            return format!(
                "{group}: survived hostmedic: {}; sent SIGKILL, still present: {}",
                named.join(", "),
                left.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

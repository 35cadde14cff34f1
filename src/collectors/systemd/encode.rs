//! Turning one manager's scrape into metric series (names, help texts,
//! exit-status settling, timestamps).

use super::*;

/// `ExecMainStatus` is reset to 0 when systemd starts the next main process,
/// so a crash-looping service that runs a while before failing reads 0 most
/// of the time. Export the exit status of the last main process that EXITED:
/// the read value when the read saw an exit (`ExecMainCode` ≠ 0), else the
/// last exit the change signals showed, else the last exit an earlier read
/// saw, else what systemd says (0: no main process has exited yet).
pub(super) fn settle_exit_status(
    name: &str,
    d: &mut UnitData,
    changes: Option<&systemd::Changes>,
    remembered: &mut HashMap<String, i32>,
) {
    let Some(entry) = &d.entry else { return };
    match (d.props.exec_main_code, d.props.exec_main_status) {
        (Some(code), Some(status)) if code != 0 => {
            remembered.insert(name.to_string(), status);
        }
        (_, Some(_)) => {
            let last = changes
                .and_then(|c| c.last_exit(entry.path.as_str()))
                .or_else(|| remembered.get(name).copied());
            if let Some(status) = last {
                d.props.exec_main_status = Some(status);
            }
        }
        _ => {}
    }
}

/// Realtime seconds from systemd's µs (0 stays 0: never).
pub(super) fn usec_to_secs(us: u64) -> f64 {
    if us == u64::MAX { 0.0 } else { us as f64 / 1e6 }
}

/// Next elapse as Unix seconds: the realtime value, or the monotonic one
/// converted with this host's clocks (same kernel as the manager's), the
/// earlier of the two when both are set; 0 when none is scheduled.
pub(super) fn next_elapse_secs(realtime: Option<u64>, monotonic: Option<u64>) -> f64 {
    let real = realtime.filter(|&v| v != 0 && v != u64::MAX).map(|v| v as f64 / 1e6);
    let mono = monotonic.filter(|&v| v != 0 && v != u64::MAX).and_then(|v| {
        let now_mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
        let now_mono = now_mono.tv_sec() as f64 + now_mono.tv_nsec() as f64 / 1e9;
        let now_real = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(now_real + (v as f64 / 1e6 - now_mono))
    });
    match (real, mono) {
        (Some(r), Some(m)) => r.min(m),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 0.0,
    }
}

pub(super) const UNIT_STATE: &str = "hostmedic_systemd_unit_state";
pub(super) const UNIT_INFO: &str = "hostmedic_systemd_unit_info";
pub(super) const ACTIVE_ENTER: &str = "hostmedic_systemd_unit_active_enter_timestamp_seconds";
pub(super) const RESTARTS: &str = "hostmedic_systemd_service_restarts";
pub(super) const EXEC_MAIN_STATUS: &str = "hostmedic_systemd_service_exec_main_status";
pub(super) const TIMER_LAST: &str = "hostmedic_systemd_timer_last_trigger_timestamp_seconds";
pub(super) const TIMER_NEXT: &str = "hostmedic_systemd_timer_next_elapse_timestamp_seconds";
pub(super) const TIMER_FAILED: &str = "hostmedic_systemd_timer_unit_failed";
pub(super) const EXPECTED_PRESENT: &str = "hostmedic_systemd_expected_unit_present";
pub(super) const EXPECTED_ACTIVE: &str = "hostmedic_systemd_expected_unit_active";
pub(super) const UNITS: &str = "hostmedic_systemd_units";
pub(super) const INFO: &str = "hostmedic_systemd_info";
pub(super) const MANAGER_UP: &str = "hostmedic_systemd_manager_up";

/// The per-unit cgroup series (`systemd.resources`).
pub(super) const UNIT_SERIES: crate::cgroup::SeriesNames = crate::cgroup::SeriesNames {
    cpu: "hostmedic_systemd_unit_cpu_seconds",
    memory_current: Some("hostmedic_systemd_unit_memory_current_bytes"),
    memory_peak: Some("hostmedic_systemd_unit_memory_peak_bytes"),
    tasks: Some("hostmedic_systemd_unit_tasks"),
    io_read: "hostmedic_systemd_unit_io_read_bytes",
    io_written: "hostmedic_systemd_unit_io_written_bytes",
    pressure: "hostmedic_systemd_unit_pressure_stalled_seconds",
};

pub(super) fn declare(out: &mut MetricSet) {
    use crate::metrics::Kind::{Counter, Gauge};
    for (name, help, kind) in [
        (
            UNIT_STATE,
            "Active state of a unit: 1 for the current state, 0 for the other states (none with unit_state_series = current).",
            Gauge,
        ),
        (
            UNIT_INFO,
            "Load state, sub state and type-specific result of a unit; always 1.",
            Gauge,
        ),
        (
            ACTIVE_ENTER,
            "Unix time the unit last entered the active state (0: never).",
            Gauge,
        ),
        (
            RESTARTS,
            "Automatic restarts of a service (NRestarts; reset by a manual start or reset-failed).",
            Counter,
        ),
        (
            EXEC_MAIN_STATUS,
            "Exit status (or signal number) of the service's last main process.",
            Gauge,
        ),
        (TIMER_LAST, "Unix time a timer last triggered (0: never).", Gauge),
        (
            TIMER_NEXT,
            "Unix time a timer elapses next (0: nothing scheduled).",
            Gauge,
        ),
        (
            TIMER_FAILED,
            "1 when the unit a timer triggers is failed or its last result is not success.",
            Gauge,
        ),
        (
            EXPECTED_PRESENT,
            "1 when an expected unit is known to systemd (0: load state not-found).",
            Gauge,
        ),
        (EXPECTED_ACTIVE, "1 when an expected unit is active.", Gauge),
        (UNITS, "Loaded units per active state.", Gauge),
        (INFO, "systemd version of a manager; always 1.", Gauge),
        (
            MANAGER_UP,
            "1 when the manager answered this scrape, 0 when its bus failed or timed out.",
            Gauge,
        ),
    ] {
        out.declare(name, help, kind);
    }
}

/// The series of one manager's scrape; `series` chooses which
/// `hostmedic_systemd_unit_state` series a unit gets.
pub(super) fn emit(out: &mut MetricSet, md: &ManagerData, series: UnitStateSeries) {
    let mgr = md.label.as_str();
    out.gauge(MANAGER_UP, "", &[("manager", mgr)], 1.0);
    out.gauge(INFO, "", &[("manager", mgr), ("version", md.version.as_str())], 1.0);
    for (state, n) in &md.counts {
        out.gauge(UNITS, "", &[("manager", mgr), ("state", state.as_str())], *n as f64);
    }
    for (name, d) in &md.units {
        if let Some(e) = &d.entry {
            emit_unit(out, md, name, d, e, series);
        }
    }
    for name in &md.expected {
        let e = md.units.get(name).and_then(|d| d.entry.as_ref());
        let present = e.is_some_and(|e| e.load_state != LoadState::NotFound);
        let active = e.is_some_and(|e| e.active_state == ActiveState::Active);
        let l = [("manager", mgr), ("name", name.as_str())];
        out.gauge(EXPECTED_PRESENT, "", &l, if present { 1.0 } else { 0.0 });
        out.gauge(EXPECTED_ACTIVE, "", &l, if active { 1.0 } else { 0.0 });
    }
}

/// The series of one listed unit of `md`.
fn emit_unit(out: &mut MetricSet, md: &ManagerData, name: &str, d: &UnitData, e: &UnitEntry, series: UnitStateSeries) {
    let mgr = md.label.as_str();
    let ty = unit_type(name);
    for state in &ACTIVE_STATES {
        let v = if e.active_state == *state { 1.0 } else { 0.0 };
        if series == UnitStateSeries::Current && v == 0.0 {
            continue;
        }
        out.gauge(
            UNIT_STATE,
            "",
            &[
                ("manager", mgr),
                ("name", name),
                ("type", ty),
                ("state", state.as_str()),
            ],
            v,
        );
    }
    out.gauge(
        UNIT_INFO,
        "",
        &[
            ("manager", mgr),
            ("name", name),
            ("type", ty),
            ("load_state", e.load_state.as_str()),
            ("sub_state", e.sub_state.as_str()),
            ("result", d.props.result.as_deref().unwrap_or("")),
        ],
        1.0,
    );
    if e.load_state == LoadState::NotFound {
        return;
    }
    if let Some(us) = d.props.active_enter_usec {
        out.gauge(
            ACTIVE_ENTER,
            "",
            &[("manager", mgr), ("name", name), ("type", ty)],
            usec_to_secs(us),
        );
    }
    let short = [("manager", mgr), ("name", name)];
    if let Some(n) = d.props.n_restarts {
        out.counter(RESTARTS, "", &short, n as f64);
    }
    if let Some(s) = d.props.exec_main_status {
        out.gauge(EXEC_MAIN_STATUS, "", &short, s as f64);
    }
    if let Some(u) = md.usage.get(name) {
        crate::cgroup::write_usage(out, &UNIT_SERIES, &short, u);
    }
    if let Some(target) = &d.props.timer_unit {
        emit_timer(out, md, name, target, &d.props);
    }
}

/// The series of timer `timer` (properties `p`) that triggers `target`.
fn emit_timer(out: &mut MetricSet, md: &ManagerData, timer: &str, target: &str, p: &Props) {
    let l = [("manager", md.label.as_str()), ("timer", timer), ("unit", target)];
    out.gauge(TIMER_LAST, "", &l, usec_to_secs(p.last_trigger_usec.unwrap_or(0)));
    out.gauge(
        TIMER_NEXT,
        "",
        &l,
        next_elapse_secs(p.next_elapse_realtime, p.next_elapse_monotonic),
    );
    let t = md.units.get(target).or_else(|| md.triggered.get(target));
    let failed = t.is_some_and(|t| {
        t.entry.as_ref().is_some_and(|e| e.active_state == ActiveState::Failed)
            || t.props.result.as_deref().is_some_and(|r| r != "success")
    });
    out.gauge(TIMER_FAILED, "", &l, if failed { 1.0 } else { 0.0 });
}

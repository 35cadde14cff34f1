//! Per-unit properties: which ones a unit type needs and how they are read
//! (concurrent pipelined `Get`s).

use super::*;

/// Everything known about one unit this scrape.
#[derive(Debug, Clone, Default)]
pub(super) struct UnitData {
    pub(super) entry: Option<UnitEntry>,
    pub(super) props: Props,
}

/// The properties read from one unit (beyond what `ListUnits` gives).
#[derive(Debug, Clone, Default)]
pub(super) struct Props {
    pub(super) active_enter_usec: Option<u64>,
    pub(super) result: Option<String>,
    pub(super) n_restarts: Option<u32>,
    pub(super) exec_main_status: Option<i32>,
    /// `ExecMainCode`: 0 while a main process runs (or none ran yet), else
    /// how the last one ended (`CLD_EXITED`, `CLD_KILLED`, …).
    pub(super) exec_main_code: Option<i32>,
    pub(super) timer_unit: Option<String>,
    pub(super) last_trigger_usec: Option<u64>,
    pub(super) next_elapse_realtime: Option<u64>,
    pub(super) next_elapse_monotonic: Option<u64>,
    /// `ControlGroup` (read only for the unit types of `resources`): the
    /// unit's cgroup path below the manager's cgroup root; empty while the
    /// unit has none (inactive).
    pub(super) control_group: Option<String>,
}

/// The D-Bus interface carrying `ControlGroup` for a unit type (the slice
/// interface has no `Result`, so it is not in [`systemd::type_interface`]).
fn cgroup_interface(ty: &str) -> Option<&'static str> {
    match ty {
        "slice" => Some("org.freedesktop.systemd1.Slice"),
        t => systemd::type_interface(t),
    }
}

/// The properties read for a unit of type `ty`: (interface, property);
/// `cgroup`: also its `ControlGroup` (resources are exported for the type).
pub(super) fn wanted_props(ty: &str, cgroup: bool) -> Vec<(&'static str, &'static str)> {
    use systemd::proxies::{SERVICE_INTERFACE as S, TIMER_INTERFACE as T, UNIT_INTERFACE as U};
    let mut v = vec![(U, "ActiveEnterTimestamp")];
    match ty {
        "service" => v.extend([
            (S, "NRestarts"),
            (S, "ExecMainStatus"),
            (S, "ExecMainCode"),
            (S, "Result"),
        ]),
        "timer" => v.extend([
            (T, "Unit"),
            (T, "LastTriggerUSec"),
            (T, "NextElapseUSecRealtime"),
            (T, "NextElapseUSecMonotonic"),
        ]),
        t => {
            if let Some(iface) = systemd::type_interface(t) {
                v.push((iface, "Result"));
            }
        }
    }
    if cgroup && let Some(iface) = cgroup_interface(ty) {
        v.push((iface, "ControlGroup"));
    }
    v
}

/// Reads the properties `wanted_props` names for one unit: concurrent
/// `Get`s, pipelined on one connection, each under `timeout`.
/// One property (`Get`), under `timeout` and the connection's call limit.
async fn get(
    conn: &zbus::Connection,
    path: &zbus::OwnedObjectPath,
    iface: &'static str,
    prop: &'static str,
    timeout: Duration,
    calls: &tokio::sync::Semaphore,
) -> Result<zbus::OwnedVariant, SystemdError> {
    // Closed only if the scrape is dropped; then nothing waits for us.
    let _call = calls.acquire().await.ok();
    let fut = async {
        let reply = conn
            .call_method(
                Some(systemd::proxies::DESTINATION),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(iface, prop),
            )
            .await?;
        reply.body().deserialize::<zbus::OwnedVariant>()
    };
    timed("Get", timeout, fut).await
}

/// `ExecMainCode` and `ExecMainStatus` of one service as a pair that
/// belongs together. Two `Get`s are two moments: a main process can exit
/// or the next one start between them, and a status read while the next
/// attempt runs (0) beside the code of the exit after it would export a
/// false `0` (seen under load). So the pair is read between two reads of
/// `ExecMainExitTimestampMonotonic`, which every exit sets anew and every
/// start zeroes: the same non-zero time before and after means no start or
/// exit came between, and the pair is the last exit's. Otherwise the code
/// is given as 0 ("no exit seen"), and the exit status falls back to the
/// last one seen ([`super::encode::settle_exit_status`]). Costs one `Get`
/// more while a main process runs (code 0: the pair is not used), two
/// after an exit.
async fn exec_main_pair(
    conn: &zbus::Connection,
    path: &zbus::OwnedObjectPath,
    timeout: Duration,
    calls: &tokio::sync::Semaphore,
) -> Result<(Option<i32>, Option<i32>), SystemdError> {
    use systemd::proxies::SERVICE_INTERFACE as S;
    let exited_at = || async {
        let v = get(conn, path, S, "ExecMainExitTimestampMonotonic", timeout, calls).await?;
        Ok::<_, SystemdError>(u64::try_from(v).unwrap_or(0))
    };
    let before = exited_at().await?;
    let (code, status) = futures::join!(
        get(conn, path, S, "ExecMainCode", timeout, calls),
        get(conn, path, S, "ExecMainStatus", timeout, calls)
    );
    let code = i32::try_from(code?).ok();
    let status = i32::try_from(status?).ok();
    if code.is_none_or(|c| c == 0) {
        return Ok((code, status));
    }
    let consistent = before != 0 && exited_at().await? == before;
    Ok((if consistent { code } else { Some(0) }, status))
}

/// At most this many property reads wait for replies at once on the one
/// connection, whatever `max_concurrency` (units in flight) says: a service
/// needs up to six `Get`s (five, plus `ControlGroup` with resources on), and
/// dbus-daemon refuses a connection's 129th pending call with `LimitsExceeded` (`max_replies_per_connection`, 128 on Debian's
/// system bus), which would lose those units' data for the scrape.
pub(super) const MAX_PENDING_CALLS: usize = 96;

pub(super) async fn read_props(
    conn: &zbus::Connection,
    path: &zbus::OwnedObjectPath,
    ty: &str,
    cgroup: bool,
    timeout: Duration,
    calls: &tokio::sync::Semaphore,
) -> Result<Props, SystemdError> {
    let wanted = wanted_props(ty, cgroup);
    let exec_main = wanted.iter().any(|(_, p)| *p == "ExecMainCode");
    let gets = wanted
        .into_iter()
        .filter(|(_, p)| !matches!(*p, "ExecMainCode" | "ExecMainStatus"))
        .map(|(iface, prop)| async move { get(conn, path, iface, prop, timeout, calls).await.map(|v| (prop, v)) });
    let (all, pair) = futures::join!(futures::future::join_all(gets), async {
        if exec_main {
            exec_main_pair(conn, path, timeout, calls).await.map(Some)
        } else {
            Ok(None)
        }
    });
    let mut p = Props::default();
    if let Some((code, status)) = pair? {
        (p.exec_main_code, p.exec_main_status) = (code, status);
    }
    for r in all {
        let (prop, v) = r?;
        match prop {
            "ActiveEnterTimestamp" => p.active_enter_usec = u64::try_from(v).ok(),
            "NRestarts" => p.n_restarts = u32::try_from(v).ok(),
            "ExecMainStatus" => p.exec_main_status = i32::try_from(v).ok(),
            "ExecMainCode" => p.exec_main_code = i32::try_from(v).ok(),
            "Result" => p.result = String::try_from(v).ok(),
            "Unit" => p.timer_unit = String::try_from(v).ok(),
            "LastTriggerUSec" => p.last_trigger_usec = u64::try_from(v).ok(),
            "NextElapseUSecRealtime" => p.next_elapse_realtime = u64::try_from(v).ok(),
            "NextElapseUSecMonotonic" => p.next_elapse_monotonic = u64::try_from(v).ok(),
            "ControlGroup" => p.control_group = String::try_from(v).ok(),
            _ => {}
        }
    }
    Ok(p)
}

//! `systemd` collector: unit states, restart counters, exit statuses and
//! timers of the system manager and of user managers, read over D-Bus
//! (scenarios S1 crash loop, S2 failing timer, S3 expected unit not installed).
//!
//! Cost per scrape and manager: one `ListUnits` (states of every unit), one
//! `ListUnitsByNames` for expected units that are not loaded, then, per unit
//! of interest whose properties are not cached, one batch of concurrent
//! property `Get`s (only the 1–6 properties its type needs), all pipelined
//! on the manager's one connection with bounded concurrency.
//!
//! Why `Get`s and a cache rather than `GetAll`: measured on systemd 252,
//! 1,000 services read serially took 0.33 s with one `Get` each, 5.3 s with
//! `GetAll(Unit)` + `GetAll(Service)` and 10.9 s with `GetAll("")` (systemd
//! computes every property, cgroup and accounting ones included), and systemd is
//! single-threaded, so its CPU per message is what bounds a scrape. Reads
//! are cached per unit and invalidated by systemd's own `PropertiesChanged`
//! signals (the connection calls `Manager.Subscribe`), so a steady-state
//! scrape costs one `ListUnits` plus reads of the units that changed; every
//! unit is re-read at least every `refresh_interval` regardless
//! (`refresh_interval = "0s"` disables the cache and the subscription).
//!
//! Every call is bounded by `systemd.call_timeout`; a transport error or
//! timeout drops the connection (and the cache) so the next scrape reconnects.
//!
//! Resources (`systemd.resources`, default services): for the exported units
//! of those types the batch also gets `ControlGroup` (cached like the other
//! properties: it changes only with the unit's state), and each scrape reads
//! the unit's cgroup files directly under `systemd.cgroup_root`
//! ([`crate::cgroup`]: CPU, memory, tasks, I/O; pressure only with
//! `systemd.resource_pressure`, off by default: three more files and six
//! series per unit, the larger part of the per-unit cost), the units split
//! over a few blocking tasks; no D-Bus call per accounting property, which
//! would cost systemd a `GetAll`-like computation per unit.
//!
//! Files: `config.rs` (the section, its checks, the unit filters),
//! `props.rs` (per-unit property reads), `resources.rs` (per-unit cgroup
//! files), `encode.rs` (series), this file
//! (managers, caches, the scrape).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::collector::{CollectError, Collector};
use crate::error::{ConfigError, compile_regex};
use crate::metrics::MetricSet;
use crate::systemd::{self, ActiveState, Bus, LoadState, ManagerTarget, SystemdError, UnitEntry, timed, unit_type};
use crate::users::Users;

mod config;
mod encode;
mod props;
mod resources;
pub use self::config::*;
use self::encode::*;
use self::props::*;

pub struct SystemdCollector {
    cfg: Config,
    /// Where the managers' `ControlGroup` paths are read (see
    /// `systemd.cgroup_root`); unused when `resources` is empty.
    cgroup_root: PathBuf,
    include: regex::Regex,
    exclude: regex::Regex,
    /// Expected unit names per manager label.
    expect: BTreeMap<String, Vec<String>>,
    system: Option<Arc<Manager>>,
    /// User managers by label, kept across scrapes (connections reused).
    users: tokio::sync::Mutex<HashMap<String, Arc<Manager>>>,
}

/// One manager: its bus and the property cache of its units.
struct Manager {
    bus: Bus,
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// Connection epoch the entries were read on.
    epoch: u64,
    units: HashMap<String, Cached>,
    /// Unit name → exit status of its last main process that a read saw
    /// exited (kept across reconnects; see [`settle_exit_status`]).
    last_exit: HashMap<String, i32>,
}

struct Cached {
    path: zbus::OwnedObjectPath,
    generation: u64,
    read_at: std::time::Instant,
    props: Props,
}

impl SystemdCollector {
    fn manager_for(&self, target: ManagerTarget) -> Manager {
        let mut bus = Bus::new(target, self.cfg.call_timeout);
        if !self.cfg.refresh_interval.is_zero() {
            bus = bus.with_change_watch();
        }
        Manager {
            bus,
            cache: tokio::sync::Mutex::new(Cache::default()),
        }
    }
}

impl SystemdCollector {
    /// `sysfs_root` (`global.sysfs_root`) gives the default cgroup root.
    pub fn new(cfg: &Config, sysfs_root: &std::path::Path) -> Result<Self, ConfigError> {
        let Filters {
            include,
            exclude,
            expect,
        } = cfg.filters("systemd")?;
        let cgroup_root = if cfg.cgroup_root.as_os_str().is_empty() {
            sysfs_root.join("fs/cgroup")
        } else {
            cfg.cgroup_root.clone()
        };
        let mut c = SystemdCollector {
            cgroup_root,
            include,
            exclude,
            cfg: cfg.clone(),
            expect,
            system: None,
            users: tokio::sync::Mutex::new(HashMap::new()),
        };
        if cfg.system {
            let addr = (!cfg.bus_address.is_empty()).then_some(cfg.bus_address.as_str());
            c.system = Some(Arc::new(c.manager_for(ManagerTarget::system(addr))));
        }
        Ok(c)
    }

    fn wanted(&self, name: &str) -> bool {
        self.include.is_match(name) && !self.exclude.is_match(name)
    }

    /// The user managers to scrape now (auto-discovery runs every scrape).
    async fn user_managers(&self) -> Vec<Arc<Manager>> {
        let cfg = self.cfg.clone();
        let targets = tokio::task::spawn_blocking(move || {
            let passwd = Users::load(&cfg.passwd_file);
            match &cfg.user_managers {
                UserManagers::Mode(m) if m == "none" => Vec::new(),
                UserManagers::Mode(_) => systemd::discover_user_managers(&cfg.user_runtime_dir, &passwd),
                UserManagers::Users(users) => users
                    .iter()
                    .filter_map(|u| {
                        systemd::configured_user_manager(u, &cfg.user_runtime_dir, &passwd)
                            .map_err(|e| tracing::debug!(user = %u, error = %e, "user manager skipped"))
                            .ok()
                    })
                    .collect(),
            }
        })
        .await
        .unwrap_or_default();
        let mut users = self.users.lock().await;
        // Forget managers that went away (user logged out), keep the others' connections.
        users.retain(|label, m| {
            targets
                .iter()
                .any(|t| &t.label == label && t.target == m.bus.target.target)
        });
        targets
            .into_iter()
            .map(|t| {
                users
                    .entry(t.label.clone())
                    .or_insert_with(|| Arc::new(self.manager_for(t)))
                    .clone()
            })
            .collect()
    }
}

/// One manager's scrape result.
struct ManagerData {
    label: String,
    version: String,
    /// Counts over every loaded unit, per active state.
    counts: BTreeMap<String, u64>,
    /// Units to export, by name (filtered ∪ expected).
    units: BTreeMap<String, UnitData>,
    /// Units read only because a timer of interest triggers them.
    triggered: HashMap<String, UnitData>,
    expected: Vec<String>,
    /// cgroup figures of the exported units of the `resources` types that
    /// have a cgroup (filled by [`SystemdCollector::read_resources`]).
    usage: HashMap<String, crate::cgroup::Usage>,
}

impl SystemdCollector {
    async fn collect_manager(&self, mgr: &Manager, expected: &[String]) -> Result<ManagerData, SystemdError> {
        let bus = &mgr.bus;
        let timeout = bus.timeout();
        let session = bus.session().await?;
        let version = bus.version().await?;
        let Listing {
            counts,
            by_name,
            wanted,
        } = self.list(bus, &session, expected).await?;

        let mut cache = mgr.cache.lock().await;
        prune_cache(&mut cache, &session, &by_name);
        let mut units = BTreeMap::new();
        let r = self
            .read_units(&session, &mut cache, &by_name, wanted, &mut units, timeout)
            .await;
        bus.check(r).await?;
        // Units triggered by timers of interest that were not read yet.
        let need: Vec<String> = units
            .values()
            .filter_map(|d| d.props.timer_unit.clone())
            .filter(|u| !units.contains_key(u))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut triggered = BTreeMap::new();
        let r = self
            .read_units(&session, &mut cache, &by_name, need, &mut triggered, timeout)
            .await;
        bus.check(r).await?;
        for (name, d) in units.iter_mut().chain(triggered.iter_mut()) {
            settle_exit_status(name, d, session.changes.as_deref(), &mut cache.last_exit);
        }
        drop(cache);

        Ok(ManagerData {
            label: bus.target.label.clone(),
            version,
            counts,
            units,
            triggered: triggered.into_iter().collect(),
            expected: expected.to_vec(),
            usage: HashMap::new(),
        })
    }

    /// `ListUnits`, plus `ListUnitsByNames` for the expected units systemd
    /// has not loaded.
    async fn list(&self, bus: &Bus, session: &systemd::Session, expected: &[String]) -> Result<Listing, SystemdError> {
        let timeout = bus.timeout();
        let m = systemd::manager(&session.conn).await?;
        let all = bus.check(timed("ListUnits", timeout, m.list_units()).await).await?;

        let mut counts: BTreeMap<String, u64> = ACTIVE_STATES.iter().map(|s| (s.to_string(), 0)).collect();
        for u in &all {
            *counts.entry(u.active_state.to_string()).or_default() += 1;
        }
        let mut by_name: HashMap<String, UnitEntry> = HashMap::with_capacity(all.len());
        let mut wanted: Vec<String> = Vec::new();
        for u in all {
            if self.wanted(&u.name) {
                wanted.push(u.name.clone());
            }
            by_name.insert(u.name.clone(), u);
        }
        // Expected units systemd has not loaded: ListUnitsByNames loads them
        // (a unit without a unit file comes back as load state not-found).
        let missing: Vec<&str> = expected
            .iter()
            .filter(|n| !by_name.contains_key(n.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let found = bus
                .check(timed("ListUnitsByNames", timeout, m.list_units_by_names(&missing)).await)
                .await?;
            for u in found {
                by_name.insert(u.name.clone(), u);
            }
        }
        for e in expected {
            if !wanted.contains(e) {
                wanted.push(e.clone());
            }
        }
        Ok(Listing {
            counts,
            by_name,
            wanted,
        })
    }

    /// Fills `out` with `names`, reading the properties of those whose cache
    /// entry is missing, changed (a signal bumped its generation) or older
    /// than `refresh_interval`.
    async fn read_units(
        &self,
        session: &systemd::Session,
        cache: &mut Cache,
        by_name: &HashMap<String, UnitEntry>,
        names: Vec<String>,
        out: &mut BTreeMap<String, UnitData>,
        timeout: Duration,
    ) -> Result<(), SystemdError> {
        let to_read = self.take_known(session, cache, by_name, names, out);
        let conn = &session.conn;
        let changes = session.changes.clone();
        let calls = tokio::sync::Semaphore::new(props::MAX_PENDING_CALLS);
        let calls = &calls;
        let mut stream = futures::stream::iter(to_read.into_iter().map(|entry| {
            let changes = changes.clone();
            async move {
                // Generation before the read: a change signal arriving during
                // or after it makes the entry stale again.
                let generation = changes.as_ref().map(|c| c.generation(entry.path.as_str())).unwrap_or(0);
                let ty = unit_type(&entry.name);
                let cgroup = self.cfg.resources.iter().any(|t| t == ty);
                let res = read_props(conn, &entry.path, ty, cgroup, timeout, calls).await;
                (entry, generation, res)
            }
        }))
        .buffer_unordered(self.cfg.max_concurrency);
        while let Some((entry, generation, res)) = stream.next().await {
            let props = match res {
                Ok(p) => {
                    cache.units.insert(
                        entry.name.clone(),
                        Cached {
                            path: entry.path.clone(),
                            generation,
                            read_at: std::time::Instant::now(),
                            props: p.clone(),
                        },
                    );
                    p
                }
                // The bus refused the read (too many pending calls): the
                // unit exists, so failing the scrape beats exporting it
                // without its properties.
                Err(e) if e.is_limits_exceeded() => return Err(e),
                // The unit was unloaded between ListUnits and the read.
                Err(e) if !e.is_transport() => {
                    tracing::debug!(unit = %entry.name, error = %e, "unit properties unavailable");
                    Props::default()
                }
                Err(e) => return Err(e),
            };
            out.insert(
                entry.name.clone(),
                UnitData {
                    entry: Some(entry),
                    props,
                },
            );
        }
        Ok(())
    }

    /// Puts into `out` the `names` that need no read (not loaded, not found,
    /// or fresh in the cache) and returns the entries of the others.
    fn take_known(
        &self,
        session: &systemd::Session,
        cache: &Cache,
        by_name: &HashMap<String, UnitEntry>,
        names: Vec<String>,
        out: &mut BTreeMap<String, UnitData>,
    ) -> Vec<UnitEntry> {
        let refresh = self.cfg.refresh_interval;
        let mut to_read = Vec::new();
        for name in names {
            let Some(entry) = by_name.get(&name) else {
                out.insert(name, UnitData::default());
                continue;
            };
            if entry.load_state == LoadState::NotFound {
                out.insert(
                    name,
                    UnitData {
                        entry: Some(entry.clone()),
                        props: Props::default(),
                    },
                );
                continue;
            }
            let fresh = session.changes.as_ref().and_then(|ch| {
                let c = cache.units.get(&name)?;
                (c.generation == ch.generation(entry.path.as_str()) && c.read_at.elapsed() < refresh)
                    .then(|| c.props.clone())
            });
            match fresh {
                Some(props) => {
                    out.insert(
                        name,
                        UnitData {
                            entry: Some(entry.clone()),
                            props,
                        },
                    );
                }
                None => to_read.push(entry.clone()),
            }
        }
        to_read
    }
}

/// One manager's unit list: what [`SystemdCollector::list`] returns.
struct Listing {
    /// Counts over every loaded unit, per active state.
    counts: BTreeMap<String, u64>,
    /// Every listed unit (loaded, and expected ones) by name.
    by_name: HashMap<String, UnitEntry>,
    /// Names to export: filtered ∪ expected.
    wanted: Vec<String>,
}

/// Drops what the cache holds that no longer matches the manager: everything
/// after a reconnect, else the units that went away or changed object path.
fn prune_cache(cache: &mut Cache, session: &systemd::Session, by_name: &HashMap<String, UnitEntry>) {
    if cache.epoch != session.epoch {
        // New connection: change signals may have been missed.
        cache.units.clear();
        cache.epoch = session.epoch;
    }
    cache
        .units
        .retain(|name, c| by_name.get(name).is_some_and(|e| e.path == c.path));
    cache.last_exit.retain(|name, _| by_name.contains_key(name));
    if let Some(ch) = &session.changes {
        let paths: HashSet<&str> = by_name.values().map(|e| e.path.as_str()).collect();
        ch.retain(|p| paths.contains(p));
    }
}

#[async_trait]
impl Collector for SystemdCollector {
    fn name(&self) -> &'static str {
        "systemd"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let users = self.user_managers().await;
        let mut buses: Vec<(Arc<Manager>, bool)> = Vec::new();
        if let Some(s) = &self.system {
            buses.push((s.clone(), true));
        }
        buses.extend(users.into_iter().map(|b| (b, false)));
        if buses.is_empty() {
            return Err(CollectError::Unavailable(
                "no systemd manager: system disabled and no user bus found".into(),
            ));
        }
        let empty = Vec::new();
        let mut results = futures::future::join_all(buses.iter().map(|(mgr, _)| {
            let expected = self.expect.get(&mgr.bus.target.label).unwrap_or(&empty);
            self.collect_manager(mgr, expected)
        }))
        .await;
        let avail = if self.cfg.resources.is_empty() {
            None
        } else {
            let mut read: Vec<&mut ManagerData> = results.iter_mut().filter_map(|r| r.as_mut().ok()).collect();
            Some(self.read_resources(&mut read).await)
        };

        declare(out);
        let mut system_err = None;
        let mut any_ok = false;
        for ((mgr, is_system), res) in buses.iter().zip(results) {
            let bus = &mgr.bus;
            match res {
                Ok(md) => {
                    any_ok = true;
                    emit(out, &md, self.cfg.unit_state_series);
                }
                Err(e) => {
                    tracing::debug!(manager = %bus.target.label, error = %e, "systemd manager unreachable");
                    out.gauge(MANAGER_UP, "", &[("manager", bus.target.label.as_str())], 0.0);
                    if *is_system {
                        system_err = Some((e, bus.ever_connected()));
                    }
                }
            }
        }
        if let Some(a) = avail {
            a.write(out, "systemd");
        }
        match system_err {
            // Never reached and no socket: this host has no system bus.
            Some((SystemdError::NoBus { address, reason }, false)) if !any_ok => Err(CollectError::Unavailable(
                format!("no system bus at {address}: {reason}"),
            )),
            Some((e, _)) => Err(CollectError::Failed(format!("system manager: {e}"))),
            None if any_ok => Ok(()),
            None => Err(CollectError::Failed("no systemd manager answered".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_entries() {
        assert_eq!(
            parse_expect("api.service").unwrap(),
            ("system".into(), "api.service".into())
        );
        assert_eq!(
            parse_expect("user:medic/sync.timer").unwrap(),
            ("user:medic".into(), "sync.timer".into())
        );
        assert_eq!(
            parse_expect("user:/x.service"),
            Err(config::ExpectError::UserForm("user:/x.service".into()))
        );
        assert_eq!(
            parse_expect("noservice").unwrap_err().to_string(),
            "\"noservice\": not a unit name with a type suffix (e.g. api.service)"
        );
    }

    #[test]
    fn validation_names_keys() {
        let t = Duration::from_secs(5);
        let mut c = Config::default();
        c.validate("systemd", t).unwrap();
        c.call_timeout = Duration::from_secs(5);
        assert!(
            c.validate("systemd", t)
                .unwrap_err()
                .to_string()
                .contains("systemd.call_timeout")
        );
        let bad = [
            (
                Config {
                    include: "(".into(),
                    ..Config::default()
                },
                "systemd.include",
            ),
            (
                Config {
                    include: "a)|(b".into(),
                    ..Config::default()
                },
                "systemd.include",
            ),
            (
                Config {
                    user_managers: UserManagers::Mode("some".into()),
                    ..Config::default()
                },
                "systemd.user_managers",
            ),
            (
                Config {
                    expect: vec!["user:bob".into()],
                    ..Config::default()
                },
                "systemd.expect",
            ),
            (
                Config {
                    max_concurrency: 0,
                    ..Config::default()
                },
                "systemd.max_concurrency",
            ),
        ];
        for (c, key) in bad {
            let err = c.validate("systemd", t).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn default_filter_drops_noise() {
        let c = SystemdCollector::new(&Config::default(), std::path::Path::new("/sys")).unwrap();
        assert!(c.wanted("crashy.service"));
        assert!(c.wanted("backup.timer"));
        for noise in ["dev-sda.device", "home.mount", "user-1000.slice", "session-1.scope"] {
            assert!(!c.wanted(noise), "{noise}");
        }
    }

    #[test]
    fn control_group_is_read_only_for_resource_types() {
        assert!(wanted_props("service", true).contains(&(systemd::proxies::SERVICE_INTERFACE, "ControlGroup")));
        assert!(!wanted_props("service", false).iter().any(|(_, p)| *p == "ControlGroup"));
        assert_eq!(
            wanted_props("slice", true),
            [
                (systemd::proxies::UNIT_INTERFACE, "ActiveEnterTimestamp"),
                ("org.freedesktop.systemd1.Slice", "ControlGroup")
            ]
        );
    }

    #[test]
    fn next_elapse_prefers_earlier_and_converts_monotonic() {
        assert_eq!(next_elapse_secs(Some(2_000_000), None), 2.0);
        assert_eq!(next_elapse_secs(Some(0), Some(0)), 0.0);
        assert_eq!(next_elapse_secs(Some(u64::MAX), None), 0.0);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
        let in_60s = (mono.tv_sec() as u64 + 60) * 1_000_000;
        let v = next_elapse_secs(None, Some(in_60s));
        assert!((v - (now + 60.0)).abs() < 2.0, "{v} vs {now}");
        let far = ((now + 3600.0) * 1e6) as u64;
        assert!((next_elapse_secs(Some(far), Some(in_60s)) - (now + 60.0)).abs() < 2.0);
    }
}

//! Per-unit resources of the `systemd` collector: the cgroup files of each
//! exported unit of a `systemd.resources` type, found by its `ControlGroup`
//! property (read with the other properties, see `props.rs`) and read
//! through [`crate::cgroup`] over a few blocking tasks, no D-Bus call.

use std::sync::Arc;

use super::{ManagerData, SystemdCollector};
use crate::systemd::unit_type;

impl SystemdCollector {
    /// Reads the cgroup files of every exported unit of a `resources` type
    /// that has a cgroup, for all managers at once, in one blocking task
    /// (a few small file reads per unit, no D-Bus call: the `ControlGroup`
    /// paths came with the batched property reads). Returns what could be
    /// read this scrape, for `hostmedic_cgroup_resource_available`.
    pub(super) async fn read_resources(&self, managers: &mut [&mut ManagerData]) -> crate::cgroup::Availability {
        let mut wanted: Vec<(usize, String, String)> = Vec::new();
        for (i, md) in managers.iter().enumerate() {
            for (name, d) in &md.units {
                let cg = d.props.control_group.as_deref().unwrap_or_default();
                if !cg.is_empty() && self.cfg.resources.iter().any(|t| t == unit_type(name)) {
                    wanted.push((i, name.clone(), cg.to_string()));
                }
            }
        }
        // The reads are syscalls (the kernel formats each file): spread them
        // over the CPUs, one blocking task per chunk of units.
        let h = Arc::new(crate::cgroup::Hierarchies::detect(&self.cgroup_root));
        let tasks = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let per_task = wanted.len().div_ceil(tasks).max(64);
        let mut chunks = Vec::new();
        while !wanted.is_empty() {
            let rest = wanted.split_off(per_task.min(wanted.len()));
            chunks.push(std::mem::replace(&mut wanted, rest));
        }
        let pressure = self.cfg.resource_pressure;
        let read = futures::future::join_all(chunks.into_iter().map(|chunk| {
            let h = h.clone();
            tokio::task::spawn_blocking(move || {
                let mut reader = crate::cgroup::V2Reader::new(pressure);
                chunk
                    .into_iter()
                    .filter_map(|(i, name, cg)| Some((i, name, reader.read(&h.v2_dir(&cg)?))))
                    .collect::<Vec<_>>()
            })
        }))
        .await
        .into_iter()
        .flat_map(Result::unwrap_or_default);
        let mut avail = crate::cgroup::Availability::default();
        if !pressure {
            avail.disable("pressure");
        }
        for (i, name, usage) in read {
            avail.note(&usage);
            managers[i].usage.insert(name, usage);
        }
        avail
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    /// A unit as `ListUnits` and the property reads would give it.
    fn unit(name: &str, control_group: Option<&str>) -> UnitData {
        UnitData {
            entry: Some(UnitEntry {
                name: name.into(),
                description: String::new(),
                load_state: "loaded".into(),
                active_state: "active".into(),
                sub_state: "running".into(),
                following: String::new(),
                path: zbus::OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit/x").unwrap(),
                job_id: 0,
                job_type: String::new(),
                job_path: zbus::OwnedObjectPath::try_from("/").unwrap(),
            }),
            props: Props {
                control_group: control_group.map(Into::into),
                ..Props::default()
            },
        }
    }

    #[tokio::test]
    async fn unit_resources_from_the_fixture_cgroup_tree() {
        let sysfs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs");
        let cfg = Config {
            resources: vec!["service".into(), "scope".into()],
            resource_pressure: true,
            ..Config::default()
        };
        let c = SystemdCollector::new(&cfg, &sysfs).unwrap();
        let mut md = ManagerData {
            label: "system".into(),
            version: "252".into(),
            counts: BTreeMap::new(),
            units: BTreeMap::new(),
            triggered: HashMap::new(),
            expected: Vec::new(),
            usage: HashMap::new(),
        };
        for (name, cg) in [
            ("worker.service", Some("/system.slice/worker.service")),
            // Only cpu.stat: memory, tasks, io absent, not zero.
            ("ssh.service", Some("/system.slice/ssh.service")),
            // Inactive: no cgroup.
            ("idle.service", Some("")),
            // Its cgroup is gone (stopped between the reads).
            ("gone.service", Some("/system.slice/gone.service")),
            // Not a `resources` type: never read.
            ("backup.timer", None),
        ] {
            md.units.insert(name.into(), unit(name, cg));
        }
        let avail = c.read_resources(&mut [&mut md]).await;
        let mut out = MetricSet::new();
        emit(&mut out, &md, UnitStateSeries::All);
        avail.write(&mut out, "systemd");
        let w = [("manager", "system"), ("name", "worker.service")];
        let v = |name: &str, l: &[(&str, &str)]| out.value(name, l);
        assert_eq!(v("hostmedic_systemd_unit_cpu_seconds", &w), Some(12.5));
        assert_eq!(v("hostmedic_systemd_unit_memory_current_bytes", &w), Some(268435456.0));
        assert_eq!(v("hostmedic_systemd_unit_memory_peak_bytes", &w), Some(536870912.0));
        assert_eq!(v("hostmedic_systemd_unit_tasks", &w), Some(7.0));
        assert_eq!(v("hostmedic_systemd_unit_io_read_bytes", &w), Some(1049600.0));
        assert_eq!(v("hostmedic_systemd_unit_io_written_bytes", &w), Some(4194304.0));
        let p = |r: &'static str, k: &'static str| {
            v(
                "hostmedic_systemd_unit_pressure_stalled_seconds",
                &[w[0], w[1], ("resource", r), ("kind", k)],
            )
        };
        assert_eq!(p("cpu", "some"), Some(4.0));
        assert_eq!(p("io", "full"), Some(2.0));
        let s = [("manager", "system"), ("name", "ssh.service")];
        assert_eq!(v("hostmedic_systemd_unit_cpu_seconds", &s), Some(0.5));
        assert_eq!(v("hostmedic_systemd_unit_memory_current_bytes", &s), None);
        assert_eq!(v("hostmedic_systemd_unit_tasks", &s), None);
        for name in ["idle.service", "gone.service", "backup.timer"] {
            let l = [("manager", "system"), ("name", name)];
            assert_eq!(v("hostmedic_systemd_unit_cpu_seconds", &l), None, "{name}");
        }
        let a = |r: &str| {
            v(
                crate::cgroup::AVAILABLE,
                &[("collector", "systemd"), ("resource", r), ("reason", "")],
            )
        };
        assert_eq!(a("memory"), Some(1.0));
        assert_eq!(a("pressure"), Some(1.0));

        // resource_pressure = false (the default): the same units, their
        // other figures, no pressure series, and pressure "disabled".
        let nop = SystemdCollector::new(
            &Config {
                resource_pressure: false,
                ..cfg.clone()
            },
            &sysfs,
        )
        .unwrap();
        md.usage.clear();
        let avail = nop.read_resources(&mut [&mut md]).await;
        let mut out = MetricSet::new();
        emit(&mut out, &md, UnitStateSeries::All);
        avail.write(&mut out, "systemd");
        let v = |name: &str, l: &[(&str, &str)]| out.value(name, l);
        assert_eq!(v("hostmedic_systemd_unit_cpu_seconds", &w), Some(12.5));
        assert_eq!(v("hostmedic_systemd_unit_io_written_bytes", &w), Some(4194304.0));
        assert!(
            out.get("hostmedic_systemd_unit_pressure_stalled_seconds")
                .is_none_or(|f| f.samples.is_empty())
        );
        let pa = [
            ("collector", "systemd"),
            ("resource", "pressure"),
            ("reason", "disabled"),
        ];
        assert_eq!(v(crate::cgroup::AVAILABLE, &pa), Some(0.0));

        // Resources off: nothing read, no availability series.
        let off = SystemdCollector::new(
            &Config {
                resources: Vec::new(),
                ..Config::default()
            },
            &sysfs,
        )
        .unwrap();
        assert!(off.cfg.resources.is_empty());
        let bad = Config {
            resources: vec!["timer".into()],
            ..Config::default()
        };
        let err = bad.validate("systemd", Duration::from_secs(5)).unwrap_err().to_string();
        assert!(err.contains("systemd.resources"), "{err}");
    }
}

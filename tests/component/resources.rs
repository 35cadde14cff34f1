//! Resource attribution on real parts (issue #16): per-unit cgroup figures
//! read from a real systemd 252's cgroup tree (system and user manager),
//! the owner labels of a process spawned by a unit, and per-container CPU,
//! memory and I/O from a private Docker engine's containers.
//!
//! Nothing here is timed: "the top consumer" is decided by comparing
//! counters between two scrapes (the spinning unit's CPU-seconds increase is
//! the largest of all units read), or a gauge across containers.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::config::TestConfig;
use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::systemd::{Spec, boot_or_skip};
use common::*;
use hostmedic::collector::Collector;
use hostmedic::metrics::{MetricSet, Value};

const CPU: &str = "hostmedic_systemd_unit_cpu_seconds";
const AVAILABLE: &str = "hostmedic_cgroup_resource_available";

/// `label value → sample value` of `family` over the samples carrying every
/// label of `filter`, keyed by label `key`.
fn by_label(set: &MetricSet, family: &str, key: &str, filter: &[(&str, &str)]) -> BTreeMap<String, f64> {
    let Some(fam) = set.get(family) else {
        return BTreeMap::new();
    };
    fam.samples
        .iter()
        .filter(|s| {
            filter
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .filter_map(|s| {
            let k = s.labels.iter().find(|(k, _)| k == key)?.1.clone();
            match s.value {
                Value::Number(v) => Some((k, v)),
                _ => None,
            }
        })
        .collect()
}

/// The labels of the first sample of `family` whose `label` is `value`.
fn labels_of(set: &MetricSet, family: &str, label: &str, value: &str) -> Option<BTreeMap<String, String>> {
    set.get(family)?
        .samples
        .iter()
        .find(|s| s.labels.iter().any(|(k, v)| k == label && v == value))
        .map(|s| s.labels.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// `(available, reason)` of one resource for `collector`.
fn availability(set: &MetricSet, collector: &str, resource: &str) -> Option<(f64, String)> {
    let fam = set.get(AVAILABLE)?;
    fam.samples.iter().find_map(|s| {
        let has = |k: &str, v: &str| s.labels.iter().any(|(lk, lv)| lk == k && lv == v);
        if !(has("collector", collector) && has("resource", resource)) {
            return None;
        }
        let reason = s.labels.iter().find(|(k, _)| k == "reason")?.1.clone();
        match s.value {
            Value::Number(v) => Some((v, reason)),
            _ => None,
        }
    })
}

/// The cgroup path (as `/proc/<pid>/cgroup` shows it on this host) of a
/// directory in this host's v2 tree.
fn cgroup_path_of(dir: &Path) -> String {
    let h = hostmedic::cgroup::Hierarchies::detect(Path::new("/sys/fs/cgroup"));
    let unified = h.unified.expect("a cgroup v2 tree (the machine runs in it)");
    format!(
        "/{}",
        dir.strip_prefix(&unified)
            .expect("machine cgroup in the v2 tree")
            .display()
    )
}

const SPIN: &str = "[Service]\nExecStart=/bin/sh -c 'while :; do :; done'\n";
const SLEEPER: &str = "[Service]\nExecStart=/bin/sleep infinity\n";

/// A CPU-spinning unit is the top unit by CPU seconds gained between two
/// scrapes (system manager), a user manager's unit has its own cgroup
/// series, and the processes each unit spawned carry its owner labels in
/// the top-K. Memory, tasks and I/O follow what the machine's cgroup tree
/// has: on a hybrid host its v2 tree has no memory/pids/io controllers, and
/// those series are absent with `reason="file_absent"`.
#[tokio::test(flavor = "multi_thread")]
async fn spinning_unit_is_the_top_unit_and_owns_its_process() {
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("spin.service", SPIN)
            .enabled_unit("sleeper.service", SLEEPER)
            .file(
                "/home/medic/.config/systemd/user/hello.service",
                "[Service]\nExecStart=/bin/sleep infinity\n",
                0o644,
            )
            .linger("medic"),
    ) else {
        return;
    };
    let bus = m.root().join("run/user/1000/bus");
    m.wait_for(Duration::from_secs(30), "the user bus", |_| bus.exists());
    m.systemctl_user("medic", 1000, &["daemon-reload"]);
    m.systemctl_user("medic", 1000, &["start", "hello.service"]);
    let machine_cg = m.cgroup();
    let top_k = i64::try_from(hostmedic::collectors::processes::MAX_TOP_K).unwrap();
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon", "docker"])
        .global(|g| {
            g.set("collector_timeout", "4s");
        })
        .section("processes", |p| {
            p.set("top_k", top_k)
                .set("sample_interval", "500ms")
                .set("owner_cgroup_root", cgroup_path_of(&machine_cg));
        })
        .section("systemd", |s| {
            s.set("bus_address", m.bus_address())
                .set("call_timeout", "1s")
                .set("user_managers", "auto")
                .path("user_runtime_dir", m.root().join("run/user"))
                .path("passwd_file", m.rootfs().join("etc/passwd"))
                .strings("resources", ["service"])
                .set("resource_pressure", true)
                .path("cgroup_root", &machine_cg);
        })
        .parse();
    let srv = InProcess::start(cfg).await;
    let spin = [("manager", "system"), ("name", "spin.service")];
    let hello = [("manager", "user:medic"), ("name", "hello.service")];

    let first = eventually(
        Duration::from_secs(30),
        "spin.service and hello.service read",
        || async {
            let set = srv.app.scrape().await;
            (set.value(CPU, &spin).is_some() && set.value(CPU, &hello).is_some()).then_some(set)
        },
    )
    .await;
    let before = by_label(&first, CPU, "name", &[("manager", "system")]);
    let second = eventually(Duration::from_secs(30), "spin.service gains CPU seconds", || async {
        let set = srv.app.scrape().await;
        (set.value(CPU, &spin)? > before["spin.service"] + 0.5).then_some(set)
    })
    .await;
    let after = by_label(&second, CPU, "name", &[("manager", "system")]);
    assert!(after.len() >= 3, "several system units read: {after:?}");
    let gained: BTreeMap<&String, f64> = after
        .iter()
        .map(|(name, v)| (name, v - before.get(name).copied().unwrap_or(0.0)))
        .collect();
    let top = gained.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(n, _)| n.as_str());
    assert_eq!(top, Some("spin.service"), "CPU seconds gained per unit: {gained:?}");
    // CPU and pressure are real on every v2 cgroup.
    assert_eq!(availability(&second, "systemd", "cpu"), Some((1.0, String::new())));
    if std::fs::read("/proc/pressure/cpu").is_ok() {
        let stalled = second.value(
            "hostmedic_systemd_unit_pressure_stalled_seconds",
            &[spin[0], spin[1], ("resource", "cpu"), ("kind", "some")],
        );
        assert!(stalled.is_some_and(|v| v >= 0.0), "{stalled:?}");
        assert_eq!(availability(&second, "systemd", "pressure"), Some((1.0, String::new())));
    }
    // Memory, tasks, io: present exactly when the machine's tree has the file.
    let spin_dir = machine_cg.join("system.slice/spin.service");
    for (resource, file, series) in [
        (
            "memory",
            "memory.current",
            "hostmedic_systemd_unit_memory_current_bytes",
        ),
        ("tasks", "pids.current", "hostmedic_systemd_unit_tasks"),
        ("io", "io.stat", "hostmedic_systemd_unit_io_read_bytes"),
    ] {
        let (avail, reason) = availability(&second, "systemd", resource).expect(resource);
        if spin_dir.join(file).exists() {
            assert_eq!((avail, reason.as_str()), (1.0, ""), "{resource}");
            assert!(second.value(series, &spin).is_some(), "{series}");
        } else {
            assert!(second.value(series, &spin).is_none(), "{series} without {file}");
            if avail == 0.0 {
                assert_eq!(reason, "file_absent", "{resource}");
            }
        }
    }

    // The spinning process, as the processes collector lists it: owned by
    // the unit that spawned it; the user unit's process by the user manager.
    let spin_pids = m.cgroup_pids("system.slice/spin.service");
    let pid = spin_pids.first().expect("spin.service has a process").to_string();
    let set = eventually(Duration::from_secs(20), "the spinning process in the top-K", || async {
        let set = srv.app.scrape().await;
        labels_of(&set, "hostmedic_process_top_cpu_seconds", "pid", &pid).map(|_| set)
    })
    .await;
    let l = labels_of(&set, "hostmedic_process_top_cpu_seconds", "pid", &pid).unwrap();
    assert_eq!(l.get("manager").map(String::as_str), Some("system"), "{l:?}");
    assert_eq!(l.get("unit").map(String::as_str), Some("spin.service"), "{l:?}");
    assert_eq!(l.get("container"), None, "{l:?}");
    let hello_cg = "user.slice/user-1000.slice/user@1000.service/app.slice/hello.service";
    let hello_pid = m
        .cgroup_pids(hello_cg)
        .first()
        .expect("hello.service has a process")
        .to_string();
    if let Some(l) = labels_of(&set, "hostmedic_process_top_cpu_seconds", "pid", &hello_pid) {
        assert_eq!(l.get("manager").map(String::as_str), Some("user:medic"), "{l:?}");
        assert_eq!(l.get("unit").map(String::as_str), Some("hello.service"), "{l:?}");
    }
    let owner = hostmedic::cgroup::owner_below(
        Path::new("/proc"),
        hello_pid.parse().unwrap(),
        &cgroup_path_of(&machine_cg),
        &hostmedic::users::Users::load(&m.rootfs().join("etc/passwd")),
    )
    .unwrap();
    assert_eq!(owner.manager.as_deref(), Some("user:medic"));
    assert_eq!(owner.unit.as_deref(), Some("hello.service"));
    srv.stop().await;
}

/// A memory-hungry container is the top container by memory, and every
/// running container has CPU-seconds and I/O series from the same cgroup
/// its memory is read from; the spinning one gains CPU.
#[tokio::test(flavor = "multi_thread")]
async fn memory_hungry_container_is_the_top_container() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    // 32 MiB in the container's /dev/shm (tmpfs: charged to its memory
    // cgroup as shared memory, which is not page cache, so it stays in the
    // working set), written at kernel speed; then some file writes.
    e.run_detached(&[
        "--name",
        "hog",
        "--memory=256m",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "head -c 33554432 /dev/zero > /dev/shm/hog; dd if=/dev/zero of=/tmp/f bs=64k count=16 2>/dev/null; exec sleep 3600",
    ]);
    e.run_detached(&["--name", "idle", BUSYBOX_IMAGE, "sleep", "3600"]);
    e.run_detached(&["--name", "busy", BUSYBOX_IMAGE, "sh", "-c", "while :; do :; done"]);
    let cfg = hostmedic::collectors::docker::Config {
        host: e.docker_host(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let c = hostmedic::collectors::docker::DockerCollector::new(&cfg, &Default::default()).unwrap();
    let scrape = || async {
        let mut m = MetricSet::new();
        c.collect(&mut m).await.expect("docker collect");
        m
    };
    let mem = "hostmedic_docker_container_memory_usage_bytes";
    let cpu = "hostmedic_docker_container_cpu_seconds";
    let first = eventually(Duration::from_secs(60), "hog holds its memory", || async {
        let m = scrape().await;
        (m.value(mem, &[("container", "hog")])? > 30_000_000.0).then_some(m)
    })
    .await;
    let usage = by_label(&first, mem, "container", &[]);
    let top = usage.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(n, _)| n.as_str());
    assert_eq!(top, Some("hog"), "memory per container: {usage:?}");
    for name in ["hog", "idle", "busy"] {
        let l = [("container", name)];
        assert!(first.value(cpu, &l).is_some(), "{name}: cpu seconds");
        assert!(
            first.value("hostmedic_docker_container_io_read_bytes", &l).is_some(),
            "{name}: io read"
        );
        assert!(
            first.value("hostmedic_docker_container_io_written_bytes", &l).is_some(),
            "{name}: io written"
        );
    }
    assert_eq!(availability(&first, "docker", "cpu"), Some((1.0, String::new())));
    assert_eq!(availability(&first, "docker", "io"), Some((1.0, String::new())));
    let busy0 = first.value(cpu, &[("container", "busy")]).unwrap();
    let idle0 = first.value(cpu, &[("container", "idle")]).unwrap();
    let second = eventually(Duration::from_secs(30), "busy gains CPU seconds", || async {
        let m = scrape().await;
        (m.value(cpu, &[("container", "busy")])? > busy0 + 0.5).then_some(m)
    })
    .await;
    let idle_gain = second.value(cpu, &[("container", "idle")]).unwrap() - idle0;
    let busy_gain = second.value(cpu, &[("container", "busy")]).unwrap() - busy0;
    assert!(busy_gain > idle_gain, "busy {busy_gain} idle {idle_gain}");
}

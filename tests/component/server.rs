//! The HTTP surface on a real listener: metrics in both formats, landing page,
//! health endpoints, wrong methods, and the binary's CLI.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::config::TestConfig;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn serves_metrics_landing_and_health() {
    let sysfs = tempfile::tempdir().unwrap();
    fake_hwmon(sysfs.path(), 87_000);
    let srv = InProcess::start(config_with_sysfs(sysfs.path())).await;

    let (code, body) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    assert!(body.contains("hostmedic_hwmon_temp_celsius{source=\"hwmon\",device=\"hwmon0\",chip=\"coretemp\",sensor=\"temp1\",label=\"Package id 0\"} 87"), "{body}");
    assert!(body.contains("hostmedic_scrape_collector_success{collector=\"host\"} 1"));
    assert!(body.contains("hostmedic_build_info{version="));
    assert!(!body.contains("# EOF"));

    let r = client()
        .get(srv.url("/metrics"))
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));

    // A hotter sensor shows up in the next scrape (fresh snapshot each time).
    fake_hwmon(sysfs.path(), 91_500);
    let (_, body) = get(&srv.url("/metrics")).await;
    assert!(body.contains("label=\"Package id 0\"} 91.5"), "{body}");

    let (code, page) = get(&srv.url("/")).await;
    assert_eq!(code, 200);
    assert!(page.contains("<td>hwmon</td><td class=\"ok\">ok</td>"), "{page}");
    assert_eq!(get(&srv.url("/-/healthy")).await.0, 200);
    assert_eq!(get(&srv.url("/-/ready")).await.0, 200);
    assert_eq!(get(&srv.url("/nope")).await.0, 404);

    let r = client().post(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn absent_source_is_reported_not_fatal() {
    let empty = tempfile::tempdir().unwrap();
    let srv = InProcess::start(config_with_sysfs(empty.path())).await;
    let (code, body) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        body.contains("hostmedic_collector_source_present{collector=\"hwmon\"} 0"),
        "{body}"
    );
    assert!(body.contains("hostmedic_scrape_collector_success{collector=\"hwmon\"} 0"));
    let (_, page) = get(&srv.url("/")).await;
    assert!(page.contains("source absent"), "{page}");
    srv.stop().await;
}

#[test]
fn binary_scrape_passes_promtool_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    fake_hwmon(dir.path(), 50_000);
    let cfg = dir.path().join("hostmedic.toml");
    TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", dir.path());
        })
        .write(&cfg);
    let mut bin = Binary::start(&cfg, dir.path());
    let body = std::process::Command::new("curl")
        .args(["-sf", &bin.url("/metrics")])
        .output()
        .expect("curl");
    assert!(body.status.success());
    let metrics = String::from_utf8(body.stdout).unwrap();
    assert!(metrics.contains("hostmedic_host_memory_total_bytes"));
    promtool_check_metrics(&metrics);

    let st = bin
        .signal_and_wait(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(15))
        .expect("exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    assert!(bin.log().contains("SIGTERM received"));
}

#[test]
fn check_config_names_the_bad_key_and_collect_prints_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    // Raw TOML on purpose: a config hostmedic must refuse.
    std::fs::write(&bad, "[host]\nfs_types_exclude = \"(\"\n").unwrap();
    let out = Command::new(binary_path())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("host.fs_types_exclude"));

    let out = Command::new(binary_path()).args(["check-config"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen_address = \"127.0.0.1:9877\""));

    let out = Command::new(binary_path()).arg("collect").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hostmedic_host_load1 "));

    let out = Command::new(binary_path()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hostmedic "));
}

/// A filesystem mounted twice (a bind mount) is reported once, at its
/// shortest mount point; two distinct ramfs mounts (same "device" name,
/// different filesystems) are both reported. (ramfs, not tmpfs: sysinfo
/// leaves tmpfs out of its disk list.) Runs in a private mount
/// namespace (`unshare -m`), so nothing is mounted on the host.
#[test]
fn bind_mounts_are_reported_once_and_distinct_filesystems_apart() {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/usr/bin/unshare").exists() {
        common::skip_or_fail("needs root and unshare(1) for a private mount namespace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bind, t1, t2) = (dir.path().join("bind"), dir.path().join("t1"), dir.path().join("t2"));
    for d in [&bind, &t1, &t2] {
        std::fs::create_dir(d).unwrap();
    }
    let cfg = dir.path().join("hostmedic.toml");
    TestConfig::new()
        .section("host", |h| {
            h.set("fs_types_exclude", "^(proc|sysfs|cgroup2?)$");
        })
        .disable(&["hwmon", "processes", "systemd", "docker"])
        .write(&cfg);
    let script = format!(
        "mount --bind / {b} && mount -t ramfs hm-ram {t1} && mount -t ramfs hm-ram {t2} && exec {bin} --config {cfg} collect",
        b = bind.display(),
        t1 = t1.display(),
        t2 = t2.display(),
        bin = binary_path().display(),
        cfg = cfg.display(),
    );
    let out = Command::new("/usr/bin/unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{text}", String::from_utf8_lossy(&out.stderr));
    let size_lines = |mount: &std::path::Path| {
        text.lines()
            .filter(|l| {
                l.starts_with("hostmedic_host_filesystem_size_bytes{")
                    && l.contains(&format!("mountpoint=\"{}\"", mount.display()))
            })
            .count()
    };
    assert_eq!(size_lines(std::path::Path::new("/")), 1, "{text}");
    assert_eq!(
        size_lines(&bind),
        0,
        "the bind mount of / is the same filesystem: {text}"
    );
    assert_eq!(size_lines(&t1), 1, "{text}");
    assert_eq!(
        size_lines(&t2),
        1,
        "a second ramfs of the same name is another filesystem: {text}"
    );
}

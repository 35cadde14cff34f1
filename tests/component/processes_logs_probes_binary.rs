//! The real hostmedic binary with processes, logfile and probes configured:
//! one scrape shows all three from real parts, passes `promtool check
//! metrics`, and a missing probe executable costs one log line, not a crash.

use crate::common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::config::TestConfig;
use common::procs::{HttpServer, Spawned, nonce};
use common::{Binary, eventually, get, promtool_check_metrics};

#[tokio::test(flavor = "multi_thread")]
async fn binary_exports_processes_logs_and_probes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = HttpServer::start().await;
    let log = dir.path().join("bot.log");
    std::fs::write(&log, "CRITICAL from before hostmedic started\n").unwrap();
    let n = nonce();
    let arg = format!("3600.{n}");
    let sleeper = Spawned::new("sleep", &[&arg]);

    let cfg = TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", dir.path());
        })
        .section("processes", |p| {
            p.set("top_k", 3).set("sample_interval", "1s").push("watch", |w| {
                w.set("name", "bot")
                    .set("cmdline", format!("^sleep {}$", regex::escape(&arg)))
                    .set("min", 1)
                    .set("max", 1);
            });
        })
        .section("logfile", |l| {
            l.set("interval", "100ms").push("watch", |w| {
                w.path("file", &log)
                    .pairs("patterns", &[("critical", "CRITICAL"), ("traceback", "^Traceback")]);
            });
        })
        .section("probes", |p| {
            p.push("http", |h| {
                h.set("name", "bot-http")
                    .set("url", srv.url("/ok"))
                    .set("timeout", "2s")
                    .set("interval", "200ms");
            })
            .push("command", |c| {
                c.set("name", "bot-health")
                    .strings("argv", ["sh", "-c", "exit 1"])
                    .set("interval", "200ms");
            })
            .push("command", |c| {
                c.set("name", "gone")
                    .strings("argv", ["/nonexistent/bot-check"])
                    .set("interval", "100ms");
            });
        })
        .write(dir.path().join("hostmedic.toml"));
    let out = Command::new(common::binary_path())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bin = tokio::task::spawn_blocking({
        let (cfg, d) = (cfg.clone(), dir.path().to_path_buf());
        move || Binary::start(&cfg, &d)
    })
    .await
    .unwrap();

    let logfile_ready = format!("hostmedic_logfile_readable{{file=\"{}\"}} 1", log.display());
    eventually(
        Duration::from_secs(20),
        "log follower and probes to have run",
        || async {
            let (_, body) = get(&bin.url("/metrics")).await;
            (body.contains(&logfile_ready) && body.contains("hostmedic_probe_exit_code{probe=\"gone\"}")).then_some(())
        },
    )
    .await;
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"CRITICAL lost connection\nTraceback (most recent call last):\n")
            .unwrap();
    }
    let crit = format!(
        "hostmedic_logfile_matched_lines_total{{file=\"{}\",pattern=\"critical\"}} 1\n",
        log.display()
    );
    let body = eventually(Duration::from_secs(20), "the appended CRITICAL line", || async {
        let (_, body) = get(&bin.url("/metrics")).await;
        body.contains(&crit).then_some(body)
    })
    .await;

    for want in [
        "hostmedic_process_watch_processes{watch=\"bot\"} 1\n",
        "hostmedic_process_watch_min{watch=\"bot\"} 1\n",
        "hostmedic_process_watch_max{watch=\"bot\"} 1\n",
        "# TYPE hostmedic_process_watch_cpu_seconds_total counter",
        "# TYPE hostmedic_process_top_cpu_seconds_total counter",
        "hostmedic_probe_success{probe=\"bot-http\",kind=\"http\"} 1\n",
        "hostmedic_probe_status_code{probe=\"bot-http\"} 200\n",
        "hostmedic_probe_success{probe=\"bot-health\",kind=\"command\"} 0\n",
        "hostmedic_probe_exit_code{probe=\"bot-health\"} 1\n",
        "hostmedic_probe_exit_code{probe=\"gone\"} -1\n",
        "hostmedic_scrape_collector_success{collector=\"processes\"} 1\n",
        "hostmedic_scrape_collector_success{collector=\"logfile\"} 1\n",
        "hostmedic_scrape_collector_success{collector=\"probes\"} 1\n",
    ] {
        assert!(body.contains(want), "missing {want:?} in:\n{body}");
    }
    let tops = body
        .lines()
        .filter(|l| l.starts_with("hostmedic_process_top_cpu_usage_ratio{"))
        .count();
    assert_eq!(tops, 3, "top_k = 3");
    let oldest = format!(
        "hostmedic_process_watch_oldest_start_time_seconds{{watch=\"bot\"}} {}\n",
        hostmedic::collectors::processes::start_time_seconds(std::path::Path::new("/proc"), sleeper.pid()).unwrap()
    );
    assert!(body.contains(&oldest), "missing {oldest:?} in:\n{body}");

    promtool_check_metrics(&body);

    // The missing executable was retried every 100 ms for seconds by now, yet
    // logged once; the server is still up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logged = bin.log();
    let gone_lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("probe=gone") && l.contains("probe failing"))
        .collect();
    assert_eq!(gone_lines.len(), 1, "{logged}");
    assert!(gone_lines[0].contains("/nonexistent/bot-check"), "{}", gone_lines[0]);
    assert_eq!(get(&bin.url("/-/healthy")).await.0, 200);
    drop(sleeper);
}

//! Golden-file test of `hostmedic collect` (node_exporter's `e2e-output.txt`
//! idea): the real binary scrapes the fixture trees `tests/fixtures/sysfs`
//! (hwmon) and `tests/fixtures/procfs` (processes: top-K and watches with
//! their owners from `<pid>/cgroup`; host pressure from `pressure/*`) once,
//! and its output must equal `tests/fixtures/collect-output.txt`, so any
//! change in the exported series (a name, a label, help text, a value, the
//! order) shows as a diff in review.
//!
//! Only collectors fed entirely by the configured roots are enabled. `host`
//! is disabled: it reads the machine's own `/proc` through sysinfo, whose
//! path cannot be configured. Values that can never be deterministic are
//! replaced in one place, [`normalize`]; everything else is compared exactly.
//!
//! `HOSTMEDIC_UPDATE_GOLDEN=1 cargo nextest run --test component -E
//! 'test(/collect_golden/)'` rewrites the golden file; review its diff.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::config::TestConfig;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The one place where run-dependent values are replaced:
/// - `hostmedic_scrape_collector_duration_seconds` (how long the scrape took),
///   `hostmedic_start_time_seconds` and
///   `hostmedic_config_last_reload_success_timestamp_seconds` (when the
///   binary started) and the `process_*` series (the binary's own CPU,
///   memory, threads and fds, read from the real `/proc/self`) get the value
///   `<normalized>`;
/// - `hostmedic_build_info`'s `version` label (changes with every release)
///   becomes `<version>`.
///
/// Nothing else varies: the fixture processes never use CPU between the two
/// samples (ratio 0), start times derive from the fixture's `btime`, and the
/// one user label is uid 0's name.
fn normalize(output: &str) -> String {
    const VALUE_NORMALIZED: [&str; 4] = [
        "hostmedic_scrape_collector_duration_seconds{",
        "hostmedic_start_time_seconds ",
        "hostmedic_config_last_reload_success_timestamp_seconds ",
        "process_",
    ];
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    output
        .lines()
        .map(|line| {
            if VALUE_NORMALIZED.iter().any(|p| line.starts_with(p))
                && let Some((series, _value)) = line.rsplit_once(' ')
            {
                format!("{series} <normalized>")
            } else if line.starts_with("hostmedic_build_info{") {
                line.replace(&version, "version=\"<version>\"")
            } else {
                line.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// The configuration of the golden run: the fixture roots, hwmon and
/// processes enabled, every collector that would read the real host disabled.
fn golden_config(dir: &Path) -> PathBuf {
    let fx = fixtures();
    TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", fx.join("sysfs"))
                .path("procfs_root", fx.join("procfs"));
        })
        .disable(&["host", "docker", "systemd"])
        // Names the user of the user-manager unit in the owner labels.
        .section("systemd", |s| {
            s.path("passwd_file", fx.join("passwd"));
        })
        .section("processes", |p| {
            // The opt-in label, to show it redacted (pid 813's argv holds
            // `--password=hunter2`).
            p.set("top_k", 6)
                .set("cmdline_label", true)
                .push("watch", |w| {
                    w.set("name", "worker")
                        .set("cmdline", r"worker\.py")
                        .set("min", 1)
                        .set("max", 4);
                })
                .push("watch", |w| {
                    w.set("name", "sshd").set("comm", "^sshd$");
                })
                .push("watch", |w| {
                    w.set("name", "absent").set("comm", "^nothing-runs-this$").set("min", 1);
                });
        })
        .write(dir.join("collect.toml"))
}

/// Runs `hostmedic --config <config> collect` and returns its normalized output.
fn collect(config: &Path) -> String {
    let out = Command::new(common::binary_path())
        .arg("--config")
        .arg(config)
        .arg("collect")
        .output()
        .expect("run hostmedic collect");
    assert!(
        out.status.success(),
        "hostmedic collect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    normalize(&String::from_utf8(out.stdout).expect("UTF-8 output"))
}

#[test]
fn collect_output_matches_the_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let got = collect(&golden_config(dir.path()));
    let golden = fixtures().join("collect-output.txt");
    if std::env::var_os("HOSTMEDIC_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&golden, &got).unwrap();
        eprintln!("rewrote {}", golden.display());
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (HOSTMEDIC_UPDATE_GOLDEN=1 writes it)", golden.display()));
    if got != want {
        let diff = Command::new("diff")
            .arg("-u")
            .arg(&golden)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut p| {
                use std::io::Write;
                p.stdin.take().expect("stdin").write_all(got.as_bytes())?;
                p.wait_with_output()
            })
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("(diff unavailable: {e})\n{got}"));
        panic!(
            "`hostmedic collect` output differs from {} (HOSTMEDIC_UPDATE_GOLDEN=1 rewrites it):\n{diff}",
            golden.display()
        );
    }
}

#[test]
fn golden_output_is_stable_across_runs() {
    // Two runs of the binary give the same normalized output: nothing in it
    // depends on timing beyond what `normalize` replaces.
    let dir = tempfile::tempdir().unwrap();
    let config = golden_config(dir.path());
    assert_eq!(collect(&config), collect(&config));
}

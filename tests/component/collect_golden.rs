//! Golden-file tests of `hostmedic collect` (node_exporter's `e2e-output.txt`
//! idea): the real binary scrapes fixture trees once and its output must
//! equal a checked-in file, so any change in the exported series (a name, a
//! label, help text, a value, the order) shows as a diff in review.
//!
//! - `collect_output_matches_the_golden_file`: `tests/fixtures/sysfs`
//!   (hwmon) and `tests/fixtures/procfs` (processes: top-K and watches with
//!   their owners from `<pid>/cgroup`; host pressure from `pressure/*`)
//!   together, with the binary-wide series, against
//!   `tests/fixtures/collect-output.txt`.
//! - `per_collector::<name>`: every collector registered in `src/config.rs`
//!   `COLLECTORS` alone (the others disabled) on its fixture source, against
//!   `tests/component/collect_golden/<name>.txt`; live sources (docker,
//!   systemd) are pointed at a socket that does not exist and golden what
//!   they export then. `every_registered_collector_has_a_golden_test` fails
//!   when a collector is registered without one.
//!
//! Values that can never be deterministic are replaced in [`normalize`] and
//! in a case's `varying` families (values read from the machine itself:
//! `host` through sysinfo, statvfs of the disk under the fixture tree);
//! everything else is compared exactly. A difference fails with a unified
//! diff (`diff -u golden got`).
//!
//! `HOSTMEDIC_UPDATE_GOLDEN=1 cargo nextest run --test component -E
//! 'test(/collect_golden/)'` rewrites the golden files; review their diff.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::config::TestConfig;
use hostmedic::config::COLLECTORS;

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
    assert_golden(&fixtures().join("collect-output.txt"), &got);
}

#[test]
fn golden_output_is_stable_across_runs() {
    // Two runs of the binary give the same normalized output: nothing in it
    // depends on timing beyond what `normalize` replaces.
    let dir = tempfile::tempdir().unwrap();
    let config = golden_config(dir.path());
    assert_eq!(collect(&config), collect(&config));
}

/// Compares `got` with the golden file (a unified diff on a difference), or
/// rewrites it under `HOSTMEDIC_UPDATE_GOLDEN=1`.
fn assert_golden(golden: &Path, got: &str) {
    if std::env::var_os("HOSTMEDIC_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(golden, got).unwrap();
        eprintln!("rewrote {}", golden.display());
        return;
    }
    let want = std::fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e} (HOSTMEDIC_UPDATE_GOLDEN=1 writes it)", golden.display()));
    if got != want {
        let diff = Command::new("diff")
            .arg("-u")
            .arg(golden)
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

/// The series of the binary itself (build, start, reload, its own process),
/// left out of the per-collector golden files: the combined golden file
/// above holds them once.
fn is_binary_wide(family: &str) -> bool {
    family.starts_with("process_")
        || family.starts_with("hostmedic_config_last_reload_")
        || family == "hostmedic_build_info"
        || family == "hostmedic_start_time_seconds"
}

/// The metric family a line of the exposition belongs to (`# HELP name …`,
/// `# TYPE name …`, `name{…} value`).
fn family(line: &str) -> &str {
    let rest = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .unwrap_or(line);
    rest.split(['{', ' ']).next().unwrap_or(rest)
}

/// One collector's golden case: its section of the configuration (every
/// other collector disabled) and the families whose values come from the
/// machine the test runs on rather than from a fixture.
struct Case {
    config: fn(TestConfig) -> TestConfig,
    /// Families (prefixes) whose sample values become `<normalized>`.
    varying: &'static [&'static str],
}

/// The case of each registered collector, by `collector` label. Collectors
/// that scan in the background (disk_usage, logfile, probes, paths, git_lfs)
/// export only their scrape series on a one-shot `collect`: their golden
/// file shows exactly that, on a configured fixture source, so a change
/// there (a first scan before the first scrape, say) shows in review.
fn case(name: &str) -> Option<Case> {
    let case = |config, varying| Some(Case { config, varying });
    match name {
        // sysinfo reads the machine's own /proc (no configurable root): the
        // machine-level series with their values normalized, no mounts.
        "host" => case(
            |c| {
                c.section("host", |s| {
                    s.set("mount_points_exclude", ".*");
                })
            },
            &["hostmedic_host_"],
        ),
        // The fixture mount table; `/` and `/procfs` are asked at the
        // fixture tree (statvfs of the disk it is on: values normalized),
        // `/procfs` is read-only by its superblock options, tmpfs is excluded.
        "filesystems" => case(
            |c| {
                let fx = fixtures();
                c.section("filesystems", |s| {
                    s.path("mountinfo", fx.join("filesystems/mountinfo"))
                        .path("rootfs", &fx);
                })
            },
            &["hostmedic_filesystem_files"],
        ),
        "disk_usage" => case(
            |c| {
                let fx = fixtures();
                c.section("disk_usage", |s| {
                    s.strings("roots", [fx.display().to_string()])
                        .strings("journal_dirs", [fx.join("procfs").display().to_string()]);
                })
            },
            &[],
        ),
        "hwmon" | "pressure" => case(|c| c, &[]),
        "processes" => case(
            |c| {
                c.section("processes", |p| {
                    p.set("top_k", 3).push("watch", |w| {
                        w.set("name", "sshd").set("comm", "^sshd$");
                    });
                })
            },
            &[],
        ),
        "logfile" => case(
            |c| {
                c.section("logfile", |l| {
                    l.push("watch", |w| {
                        w.path("file", fixtures().join("app.log"))
                            .pairs("patterns", &[("error", "ERROR"), ("critical", "CRITICAL")]);
                    });
                })
            },
            &[],
        ),
        // A refused HTTP probe (port 1 on loopback), a failing and a passing
        // command.
        "probes" => case(
            |c| {
                c.section("probes", |p| {
                    p.push("http", |h| {
                        h.set("name", "refused").set("url", "http://127.0.0.1:1/health");
                    })
                    .push("command", |h| {
                        h.set("name", "fails").strings("argv", ["/bin/sh", "-c", "exit 3"]);
                    })
                    .push("command", |h| {
                        h.set("name", "passes").strings("argv", ["/bin/true"]);
                    });
                })
            },
            &[],
        ),
        // Live sources pointed at where none exists: what they export then.
        "docker" => case(
            |c| {
                c.section("docker", |d| {
                    d.set("host", "unix:///nonexistent/docker.sock");
                })
            },
            &[],
        ),
        "systemd" => case(
            |c| {
                c.section("systemd", |s| {
                    s.set("bus_address", "unix:path=/nonexistent/bus");
                })
            },
            &[],
        ),
        "git_lfs" => case(
            |c| {
                c.section("git_lfs", |g| {
                    g.strings("search_roots", [fixtures().display().to_string()]);
                })
            },
            &[],
        ),
        "paths" => case(
            |c| {
                c.section("paths", |p| {
                    p.push("watch", |w| {
                        w.set("name", "passwd").path("path", fixtures().join("passwd"));
                    })
                    .push("watch", |w| {
                        w.set("name", "absent").path("path", fixtures().join("nothing-here"));
                    });
                })
            },
            &[],
        ),
        _ => None,
    }
}

/// `collect` with only `name` enabled (fixture roots), binary-wide series
/// left out, the case's varying values normalized.
fn collect_one(name: &str, case: &Case, dir: &Path) -> String {
    let fx = fixtures();
    let others: Vec<&str> = COLLECTORS.iter().map(|c| c.name).filter(|n| *n != name).collect();
    let config = (case.config)(
        TestConfig::new()
            .global(|g| {
                g.path("sysfs_root", fx.join("sysfs"))
                    .path("procfs_root", fx.join("procfs"));
            })
            .disable(&others),
    )
    .write(dir.join(format!("{name}.toml")));
    collect(&config)
        .lines()
        .filter(|l| !is_binary_wide(family(l)))
        .map(|l| match l.rsplit_once(' ') {
            Some((series, _)) if !l.starts_with('#') && case.varying.iter().any(|p| l.starts_with(p)) => {
                format!("{series} <normalized>\n")
            }
            _ => format!("{l}\n"),
        })
        .collect()
}

/// Golden check of one collector against `collect_golden/<name>.txt`.
fn golden_collector(name: &str) {
    let case = case(name).unwrap_or_else(|| panic!("no golden case for collector `{name}`"));
    let dir = tempfile::tempdir().unwrap();
    let got = collect_one(name, &case, dir.path());
    assert!(
        got.contains(&format!("hostmedic_collector_source_present{{collector=\"{name}\"}}")),
        "`{name}` did not run:\n{got}"
    );
    assert_golden(&golden_dir().join(format!("{name}.txt")), &got);
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/component/collect_golden")
}

macro_rules! golden_tests {
    ($($name:ident),* $(,)?) => {
        /// The collectors with a golden test below, for the registry check.
        const GOLDEN: &[&str] = &[$(stringify!($name)),*];
        mod per_collector {
            $(#[test]
            fn $name() {
                super::golden_collector(stringify!($name));
            })*
        }
    };
}

golden_tests!(
    host,
    filesystems,
    disk_usage,
    hwmon,
    pressure,
    processes,
    logfile,
    probes,
    docker,
    systemd,
    git_lfs,
    paths
);

#[test]
fn every_registered_collector_has_a_golden_test() {
    let registered: Vec<&str> = COLLECTORS.iter().map(|c| c.name).collect();
    assert_eq!(
        registered, GOLDEN,
        "src/config.rs COLLECTORS and the golden tests differ: add a `case` and a name to `golden_tests!`"
    );
    for name in registered {
        assert!(case(name).is_some(), "no golden case for `{name}`");
    }
}

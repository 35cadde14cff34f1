//! The compose stack: Debian's `docker-compose config` accepts it, and its
//! pieces agree with each other (mount targets, service names, ports, token
//! path, provisioning paths), so the configs the tests run are the ones the
//! stack ships.

use crate::common;

use std::process::Command;

use common::prometheus::repo_root;
use hostmedic::config::Config;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

const MARKER: &str = "# --- remediation map (shared with compose/hostmedic.toml) ---\n";
const TOKEN_PATH: &str = "/etc/hostmedic/secrets/hostmedic-token";

/// True when this build knows the receiver's `[receiver]` / `[[remediation]]`
/// schema (it lives on the receiver branch until that is merged).
fn receiver_schema_present() -> bool {
    // Raw TOML on purpose: the probe is whether this text parses.
    Config::parse("[receiver]\nenabled = false\n", "probe").is_ok()
}

/// Parses a shipped config with the token path pointed at a real file. Without
/// the receiver schema in this build, only the part before the remediation
/// marker is parsed (and that is said on stderr).
fn parse_with_token(rel: &str) -> Config {
    let text = read(rel);
    assert_eq!(text.matches(MARKER).count(), 1, "{rel}: remediation marker");
    assert_eq!(text.matches(TOKEN_PATH).count(), 1, "{rel}: token path");
    if !receiver_schema_present() {
        eprintln!("NOTE: no receiver schema in this build: {rel} checked without its remediation map");
        let base = &text[..text.find(MARKER).unwrap()];
        return Config::parse(base, rel).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef").unwrap();
    let text = text.replace(TOKEN_PATH, token.to_str().unwrap());
    Config::parse(&text, rel).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn alert_names() -> Vec<String> {
    read("alerting-rules/hostmedic.rules.yml")
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:").map(|n| n.trim().to_string()))
        .collect()
}

/// The shipped alerts whose `severity` label is `info`.
fn info_alert_names() -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for l in read("alerting-rules/hostmedic.rules.yml").lines().map(str::trim_start) {
        if let Some(n) = l.strip_prefix("- alert:") {
            current = Some(n.trim().to_string());
        } else if l.starts_with("severity:") && l.ends_with("info") {
            out.extend(current.take());
        }
    }
    out
}

/// Active (uncommented) `[[remediation]]` rules: (name, alertname, body).
fn active_rules(text: &str) -> Vec<(String, String, String)> {
    let active: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let value = |body: &str, key: &str| -> String {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .map(|v| v.trim_end_matches('"').to_string())
            .unwrap_or_default()
    };
    active
        .split("[[remediation]]")
        .skip(1)
        .map(|b| (value(b, "name"), value(b, "alertname"), b.to_string()))
        .collect()
}

#[test]
fn remediation_example_covers_every_alert_safely() {
    let example = read("config/remediation.example.toml");
    parse_with_token("config/remediation.example.toml");
    let rules = active_rules(&example);
    // The heartbeat is the pipeline's, not the host's: hostmedic takes it
    // before routing ([receiver.heartbeat]), so no rule maps it.
    let heartbeat = hostmedic::receiver::config::DEFAULT_ALERTNAME;
    // Info-level facts are routed to nobody by the shipped Alertmanager
    // configurations, so a rule for one would be dead (and noisy if routed).
    let info = info_alert_names();
    assert!(info.iter().any(|a| a == "HostmedicNoSwap"), "{info:?}");
    for alert in alert_names().into_iter().filter(|a| a != heartbeat) {
        let mapped = rules.iter().any(|(_, a, _)| *a == alert);
        if info.contains(&alert) {
            assert!(
                !mapped,
                "{alert} is info-level: no [[remediation]] rule may notify about it"
            );
        } else {
            assert!(
                mapped,
                "{alert}: no [[remediation]] rule in config/remediation.example.toml"
            );
        }
    }
    let names = alert_names();
    // Only these rules may change the host; the rest notify. Nothing kills,
    // executes commands or sheds load by default.
    let acting = [
        (
            "unit-crash-loop",
            "HostmedicUnitCrashLooping",
            vec!["op = \"stop\"", "op = \"disable\""],
        ),
        (
            "timer-service-failing",
            "HostmedicTimerServiceFailing",
            vec!["op = \"mask\"", "op = \"stop\""],
        ),
        (
            "expected-unit-restart",
            "HostmedicExpectedUnitInactive",
            vec!["op = \"restart\""],
        ),
        (
            "container-unhealthy",
            "HostmedicContainerUnhealthy",
            vec!["op = \"restart\""],
        ),
        (
            "container-restart-loop",
            "HostmedicContainerRestartLoop",
            vec!["op = \"restart-policy\"", "policy = \"no\""],
        ),
    ];
    for (name, alert, body) in &rules {
        assert!(names.contains(alert), "rule {name}: unknown alert {alert}");
        for forbidden in ["type = \"kill\"", "type = \"exec\"", "type = \"shed-load\""] {
            assert!(!body.contains(forbidden), "rule {name} is active with {forbidden}");
        }
        match acting.iter().find(|(n, _, _)| n == name) {
            Some((_, want_alert, ops)) => {
                assert_eq!(alert, want_alert, "rule {name}");
                for op in ops {
                    assert!(body.contains(op), "rule {name} lacks {op}");
                }
                assert!(
                    body.contains("budget_attempts = "),
                    "rule {name} acts without its own budget"
                );
            }
            None => {
                assert!(
                    !body.contains("type = \"systemd\"") && !body.contains("type = \"docker\""),
                    "rule {name} changes the host but is not in the reviewed list"
                );
                assert!(body.contains("type = \"notify\""), "rule {name} does nothing");
            }
        }
    }
    // The systemd rules never touch a unit that is not installed.
    let missing = rules
        .iter()
        .find(|(n, _, _)| n == "expected-unit-not-installed")
        .unwrap();
    assert!(!missing.2.contains("type = \"systemd\""));

    // compose/hostmedic.toml carries the same map.
    let compose = read("compose/hostmedic.toml");
    let tail = |t: &str| t[t.find(MARKER).unwrap()..].to_string();
    assert!(
        tail(&example) == tail(&compose),
        "compose/hostmedic.toml's remediation map differs from the example"
    );
}

#[test]
fn docker_compose_config_accepts_the_stack() {
    let out = run(Command::new("docker-compose")
        .args(["-f", "compose/docker-compose.yml", "config"])
        .env_remove("HOSTMEDIC_REPOS_DIR")
        .current_dir(repo_root()));
    for service in ["hostmedic:", "prometheus:", "alertmanager:", "grafana:"] {
        assert!(
            out.contains(&format!("\n  {service}\n")),
            "service {service} missing:\n{out}"
        );
    }
    let root = repo_root().display().to_string();
    for want in [
        "pid: host".to_string(),
        "/run/dbus/system_bus_socket:/run/dbus/system_bus_socket:ro".into(),
        "/var/run/docker.sock:/var/run/docker.sock:ro".into(),
        "/sys:/host/sys:ro".into(),
        "/srv/repos:/srv/repos:ro".into(),
        format!("{root}/compose/hostmedic.toml:/etc/hostmedic/hostmedic.toml:ro"),
        format!("{root}/compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro"),
        format!("{root}/alerting-rules:/etc/prometheus/rules:ro"),
        format!("{root}/compose/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"),
        format!("{root}/compose/secrets/hostmedic-token:/etc/alertmanager/secrets/hostmedic-token:ro"),
        format!("{root}/grafana/provisioning:/etc/grafana/provisioning:ro"),
        format!("{root}/grafana/dashboards:/var/lib/grafana/dashboards/hostmedic:ro"),
        "dockerfile: compose/Dockerfile".into(),
    ] {
        assert!(
            out.contains(&want),
            "`{want}` missing from the effective compose config:\n{out}"
        );
    }
    // The watched repositories directory is configurable.
    let out = run(Command::new("docker-compose")
        .args(["-f", "compose/docker-compose.yml", "config"])
        .env("HOSTMEDIC_REPOS_DIR", "/data/backups")
        .current_dir(repo_root()));
    assert!(out.contains("/data/backups:/srv/repos:ro"), "{out}");

    // A broken file is rejected (the check can fail).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("docker-compose.yml");
    std::fs::write(
        &bad,
        read("compose/docker-compose.yml").replace("pid: host", "pid: [host]"),
    )
    .unwrap();
    let st = Command::new("docker-compose")
        .arg("-f")
        .arg(&bad)
        .arg("config")
        .output()
        .unwrap();
    assert!(!st.status.success(), "docker-compose accepted an invalid file");
}

#[test]
fn compose_pieces_agree() {
    // hostmedic's config is valid for this binary and matches the mounts.
    let cfg = parse_with_token("compose/hostmedic.toml");
    assert_eq!(cfg.global.sysfs_root.to_str(), Some("/host/sys"));
    let port = cfg.web.listen_address.port();

    // Prometheus scrapes the hostmedic service on its port, loads the rules
    // from where compose mounts them, alerts the alertmanager service.
    let prom = read("compose/prometheus.yml");
    assert!(prom.contains(&format!("targets: [\"hostmedic:{port}\"]")), "{prom}");
    assert!(prom.contains("- /etc/prometheus/rules/*.yml"));
    assert!(prom.contains("targets: [\"alertmanager:9093\"]"));
    run(Command::new("promtool")
        .args(["check", "config", "compose/prometheus.yml"])
        .current_dir(repo_root()));

    // Alertmanager posts to the hostmedic service with the mounted token.
    let am = read("compose/alertmanager.yml");
    assert!(
        am.contains(&format!("url: http://hostmedic:{port}/api/v1/alerts")),
        "{am}"
    );
    assert!(am.contains("credentials_file: /etc/alertmanager/secrets/hostmedic-token"));
    assert!(am.contains("type: Bearer"));
    assert!(am.contains("send_resolved: true"));
    run(Command::new("amtool")
        .args(["check-config", "compose/alertmanager.yml"])
        .current_dir(repo_root()));

    // Grafana loads the dashboards from where compose mounts them and talks
    // to the prometheus service.
    let prov = read("grafana/provisioning/dashboards/hostmedic.yml");
    assert!(prov.contains("path: /var/lib/grafana/dashboards/hostmedic"), "{prov}");
    let ds = read("grafana/provisioning/datasources/prometheus.yml");
    assert!(ds.contains("url: http://prometheus:9090"), "{ds}");
    assert!(ds.contains("type: prometheus"));

    // The image builds the binary the stack runs; target/ stays out of the context.
    let dockerfile = read("compose/Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked --bin hostmedic"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/hostmedic\"]"));
    assert!(read(".dockerignore").lines().any(|l| l.trim() == "target/"));
}

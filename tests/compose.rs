//! The compose stack: Debian's `docker-compose config` accepts it, and its
//! pieces agree with each other (mount targets, service names, ports, token
//! path, provisioning paths), so the configs the tests run are the ones the
//! stack ships.

mod common;

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
    let cfg = Config::parse(&read("compose/hostmedic.toml"), "compose/hostmedic.toml").expect("valid");
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

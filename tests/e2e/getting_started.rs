//! docs/getting-started.md cannot rot: its configuration blocks are the
//! files in `docs/getting-started/` (checked byte for byte), and those very
//! files run the guide's loop here — real Prometheus and Alertmanager from
//! the Debian packages, the hostmedic binary, and a real systemd 252 (the
//! rootfs machine of tests/support/src/systemd.rs) holding the demo unit. The
//! unit is killed as the guide says; hostmedic restarts and verifies it, and
//! `hostmedic incidents` shows the incident.
//!
//! Everything the test changes in those files is in [`localize`], the one
//! place the guide's last section describes.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::alertmanager::Alertmanager;
use common::e2e::*;
use common::prometheus::{Prometheus, repo_root, shortened_rules_copy, substitute};
use common::systemd::{Spec, boot_or_skip};

const GUIDE: &str = "docs/getting-started.md";
const FILES_DIR: &str = "docs/getting-started";
/// How the guide marks a block as a copy of one of its files.
const MARKER: &str = "<!-- file: getting-started/";
const DEMO_UNIT: &str = "hostmedic-demo.service";
const RULE: &str = "restart-failed-demo";

fn guide_file(name: &str) -> String {
    let p = repo_root().join(FILES_DIR).join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The guide's marked blocks as (file name, block text), in order. A marker
/// line must be followed by a fence line; the block ends at the next line
/// that is exactly "```".
fn marked_blocks(guide: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = guide.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(rest) = lines[i].trim_end().strip_prefix(MARKER) {
            let name = rest
                .strip_suffix(" -->")
                .unwrap_or_else(|| panic!("{GUIDE}:{}: marker without ` -->`", i + 1));
            assert!(
                lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
                "{GUIDE}:{}: marker for {name} not followed by a fenced block",
                i + 1
            );
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].trim_end() == "```")
                .unwrap_or_else(|| panic!("{GUIDE}:{}: block of {name} never closed", i + 1));
            out.push((name.to_string(), lines[start..end].concat()));
            i = end;
        }
        i += 1;
    }
    out
}

#[test]
fn guide_blocks_are_the_shipped_files() {
    let guide = std::fs::read_to_string(repo_root().join(GUIDE)).unwrap();
    let blocks = marked_blocks(&guide);
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join(FILES_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the guide's files: {files:?}");
    for (name, text) in &blocks {
        assert_eq!(
            text,
            &guide_file(name),
            "{GUIDE}: the block marked {name} differs from {FILES_DIR}/{name}"
        );
    }
    for f in &files {
        assert!(
            blocks.iter().any(|(n, _)| n == f),
            "{FILES_DIR}/{f} is not included in {GUIDE}"
        );
        // A copy without its marker would escape the check above.
        let first = guide_file(f).lines().next().unwrap_or_default().to_string();
        assert_eq!(
            guide.matches(&first).count(),
            blocks.iter().filter(|(n, _)| n == f).count(),
            "{GUIDE}: {f}'s first line appears outside its marked block"
        );
    }
    // The guide's files are valid for the tools that will read them.
    let dir = tempfile::tempdir().unwrap();
    // The token file must exist for the receiver to validate: the paths
    // are localized, nothing else.
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let local = Local {
        dir: dir.path().to_path_buf(),
        hostmedic: String::new(),
        alertmanager: String::new(),
        rules: PathBuf::new(),
        machine: String::new(),
    };
    let cfg = hostmedic::config::Config::parse(&localize("hostmedic.toml", &local), "hostmedic.toml");
    assert!(cfg.is_ok(), "hostmedic.toml: {:#}", cfg.err().unwrap());
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(&am, guide_file("alertmanager.yml")).unwrap();
    let out = std::process::Command::new("amtool")
        .arg("check-config")
        .arg(&am)
        .output()
        .expect("amtool (Debian package prometheus-alertmanager)");
    assert!(out.status.success(), "amtool: {}", String::from_utf8_lossy(&out.stdout));
}

/// Where the test runs what the guide installs under /etc and /var/lib.
struct Local {
    dir: PathBuf,
    hostmedic: String,
    alertmanager: String,
    rules: PathBuf,
    /// The `[systemd]` (and collector) sections for the test machine.
    machine: String,
}

/// The one place the test changes the guide's files: ports, paths,
/// intervals, and hostmedic pointed at the test machine's bus. Each change
/// must match exactly once.
fn localize(file: &str, l: &Local) -> String {
    let text = guide_file(file);
    let d = l.dir.display();
    let edits: Vec<(&str, String)> = match file {
        "hostmedic.toml" => vec![
            (
                "bearer_token_file = \"/etc/hostmedic/webhook.token\"",
                format!("bearer_token_file = \"{d}/token\""),
            ),
            (
                "journal_path = \"/var/lib/hostmedic/journal.jsonl\"",
                format!("journal_path = \"{d}/state/journal.jsonl\""),
            ),
            (
                "state_path = \"/var/lib/hostmedic/state.json\"",
                format!("state_path = \"{d}/state/state.json\""),
            ),
            (
                "status_path = \"/var/lib/hostmedic/status.json\"",
                format!("status_path = \"{d}/state/status.json\""),
            ),
        ],
        "prometheus.yml" => vec![
            ("scrape_interval: 15s", "scrape_interval: 1s".into()),
            ("evaluation_interval: 15s", "evaluation_interval: 1s".into()),
            ("localhost:9093", l.alertmanager.clone()),
            ("localhost:9877", l.hostmedic.clone()),
            // Nothing else to scrape: Prometheus itself is not part of the loop.
            (
                "  - job_name: prometheus\n    static_configs:\n      - targets: [\"localhost:9090\"]\n\n",
                String::new(),
            ),
            (
                "/usr/share/hostmedic/alerting-rules/hostmedic.rules.yml",
                l.rules.display().to_string(),
            ),
        ],
        "alertmanager.yml" => vec![
            ("group_interval: 1m", "group_interval: 1s".into()),
            ("localhost:9877", l.hostmedic.clone()),
            (
                "credentials_file: /etc/prometheus/hostmedic.token",
                format!("credentials_file: {d}/token"),
            ),
        ],
        "hostmedic-demo.service" => vec![],
        other => panic!("no localization for {other}"),
    };
    let mut text = edits.iter().fold(text, |t, (from, to)| substitute(&t, from, to, file));
    if file == "hostmedic.toml" {
        text.push_str(&l.machine);
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn guide_heals_the_demo_unit() {
    let Some(m) = boot_or_skip(Spec::new().enabled_unit(DEMO_UNIT, &guide_file(DEMO_UNIT))) else {
        return;
    };
    let mut st = Stack::new("getting-started").await;
    let rules = shortened_rules_copy(&st.path("rules"), Duration::from_secs(2));
    let rules_file = rules
        .iter()
        .find(|p| p.ends_with("hostmedic.rules.yml"))
        .expect("shipped hostmedic.rules.yml")
        .clone();
    let mut local = Local {
        dir: st.dir.path().to_path_buf(),
        hostmedic: String::new(),
        alertmanager: String::new(),
        rules: PathBuf::new(),
        machine: m.hostmedic_section(&[]),
    };
    // Start-up order: each part needs the address of the one before.
    let hm_toml = localize("hostmedic.toml", &local);
    st.start_hostmedic(&hm_toml);
    local.hostmedic = st.hostmedic().addr.to_string();
    let am = Alertmanager::start_config(
        &st.path("alertmanager"),
        &localize("alertmanager.yml", &local),
        None,
        Duration::from_secs(2),
    );
    local.alertmanager = am.addr();
    let prom = Prometheus::start_config(&[rules_file], |_, rules_dir| {
        local.rules = rules_dir.join("hostmedic.rules.yml");
        localize("prometheus.yml", &local)
    })
    .await;
    st.alertmanager = Some(am);
    st.prometheus = Some(prom);

    st.wait_query(
        Duration::from_secs(30),
        &format!("hostmedic_systemd_unit_state{{name=\"{DEMO_UNIT}\",state=\"active\"}}"),
        |v| v == 1.0,
    )
    .await;

    // Step 7 of the guide: the fault.
    let (ok, out) = m.systemctl(&["kill", "--signal=KILL", DEMO_UNIT]);
    assert!(ok, "{out}");
    let sw = Stopwatch::fault_injected("getting-started");
    m.wait_for(Duration::from_secs(10), "demo unit failed", |m| {
        m.show(DEMO_UNIT, "ActiveState") == "failed"
    });

    st.wait_for(Duration::from_secs(90), "demo unit restarted (verified)", |st| {
        st.verified(RULE, DEMO_UNIT)
    })
    .await;
    sw.remediated(&st).await;
    assert_eq!(m.show(DEMO_UNIT, "ActiveState"), "active");
    let acts = st.actions(RULE);
    let kinds: Vec<&str> = acts.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(kinds, ["systemd.restart"], "{acts:?}");
    assert_eq!(acts[0].2, "ok", "{acts:?}");

    // Step 8: where the incident shows.
    let out = std::process::Command::new(common::binary_path())
        .args(["--config", st.path("hostmedic.toml").to_str().unwrap()])
        .args(["incidents", "--since", "1h"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8_lossy(&out.stdout);
    for want in ["HostmedicUnitFailed", DEMO_UNIT, "systemd.restart", "verified"] {
        assert!(md.contains(want), "`hostmedic incidents` lacks {want:?}:\n{md}");
    }
    let status: serde_json::Value = common::client()
        .get(format!("http://{}/api/v1/status", st.hostmedic().addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status.to_string().contains(DEMO_UNIT), "{status}");
    let metrics = common::client()
        .get(format!("http://{}/metrics", st.hostmedic().addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "hostmedic_actions_total{action=\"systemd.restart\",result=\"ok\"} 1",
        "hostmedic_actions_total{action=\"systemd.restart\",result=\"verified\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in /metrics");
    }
    st.assert_no_secrets();
}

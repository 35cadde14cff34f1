//! Unit tests of the action specs: parsing, config validation, target
//! resolution (refusals happen before anything runs).

use super::*;
use serde::Deserialize;

fn parse(toml_text: &str) -> ActionSpec {
    #[derive(Deserialize)]
    struct W {
        action: ActionSpec,
    }
    toml::from_str::<W>(toml_text)
        .map(|w| w.action)
        .unwrap_or_else(|e| panic!("{toml_text}: {e}"))
}

fn parse_err(toml_text: &str) -> String {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct W {
        action: ActionSpec,
    }
    toml::from_str::<W>(toml_text).unwrap_err().to_string()
}

fn alert(labels: &[(&str, &str)]) -> Alert {
    Alert {
        alertname: "A".into(),
        status: AlertStatus::Firing,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        annotations: BTreeMap::new(),
        fingerprint: "f".into(),
        starts_at: "2026-11-22T00:00:00Z".into(),
    }
}

#[test]
fn parses_every_action_with_defaults() {
    let s = parse("[action]\ntype = \"systemd\"\nop = \"reset-failed\"\nunit = \"{{ labels.name }}\"\n");
    assert_eq!(
        s,
        ActionSpec::from(SystemdAction {
            op: SystemdOp::ResetFailed,
            unit: "{{ labels.name }}".into(),
            manager: "system".into()
        })
    );
    let s = parse("[action]\ntype = \"kill\"\nallow = \"^python\"\n");
    let k = s.get::<KillAction>().unwrap();
    assert_eq!(k.pid, "{{ labels.pid }}");
    assert_eq!(k.grace, Duration::from_secs(10));
    let s = parse("[action]\ntype = \"docker\"\nop = \"restart-policy\"\ncontainer = \"web\"\npolicy = \"no\"\n");
    assert_eq!(s.name(), "docker.restart-policy");
    let s = parse("[action]\ntype = \"shed-load\"\nunits = [\"a.service\"]\n");
    assert_eq!(s.kind(), "shed-load");
    let s = parse("[action]\ntype = \"exec\"\nargv = [\"/bin/true\"]\ntimeout = \"5s\"\n");
    let e = s.get::<ExecAction>().unwrap();
    assert_eq!(e.timeout, Duration::from_secs(5));
    let s = parse("[action]\ntype = \"notify\"\nchannel = \"ops\"\n");
    assert!(!s.is_destructive());
}

#[test]
fn unknown_types_ops_and_keys_are_rejected() {
    assert!(parse_err("[action]\ntype = \"shell\"\n").contains("shell"));
    assert!(parse_err("[action]\ntype = \"systemd\"\nop = \"reload\"\nunit = \"a.service\"\n").contains("reload"));
    let e = parse_err("[action]\ntype = \"systemd\"\nop = \"stop\"\nunit = \"a.service\"\nunti = \"x\"\n");
    assert!(e.contains("unti"), "{e}");
    let e = parse_err("[action]\ntype = \"kill\"\npid = \"1\"\n");
    assert!(e.contains("allow"), "{e}");
}

#[test]
fn validate_names_the_key() {
    let s = parse("[action]\ntype = \"kill\"\nallow = \"(\"\n");
    let e = s
        .compile("remediation[0].actions[1]", &Context::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("remediation[0].actions[1].allow"), "{e}");
    let s = parse("[action]\ntype = \"exec\"\nargv = [\"/nonexistent/check.sh\"]\n");
    let e = s.compile("r.a", &Context::default()).unwrap_err().to_string();
    assert!(e.contains("r.a.argv[0]") && e.contains("/nonexistent/check.sh"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let s = ActionSpec::from(ExecAction {
        argv: vec![script.display().to_string()],
        timeout: Duration::from_secs(1),
        user: None,
        group: None,
    });
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("not executable")
    );
    let s = ActionSpec::from(ExecAction {
        argv: vec![dir.path().display().to_string()],
        timeout: Duration::from_secs(1),
        user: None,
        group: None,
    });
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("not a regular file")
    );
    let s = parse("[action]\ntype = \"exec\"\nargv = [\"{{ labels.cmd }}\"]\n");
    assert!(s.compile("r.a", &Context::default()).is_err());
    let s = parse("[action]\ntype = \"systemd\"\nop = \"stop\"\nunit = \"a/b.service\"\n");
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("r.a.unit")
    );
    let s = parse("[action]\ntype = \"systemd\"\nop = \"stop\"\nunit = \"{{ label.x }}\"\n");
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("label.x")
    );
    let s = parse("[action]\ntype = \"systemd\"\nop = \"stop\"\nunit = \"a.service\"\nmanager = \"root\"\n");
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("r.a.manager")
    );
    let s = parse("[action]\ntype = \"docker\"\nop = \"restart-policy\"\ncontainer = \"x\"\n");
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("r.a.policy")
    );
    let s = parse("[action]\ntype = \"docker\"\nop = \"restart\"\ncontainer = \"x\"\npolicy = \"no\"\n");
    assert!(s.compile("r.a", &Context::default()).is_err());
    let s = parse("[action]\ntype = \"docker\"\nop = \"restart-policy\"\ncontainer = \"x\"\npolicy = \"sometimes\"\n");
    assert!(s.compile("r.a", &Context::default()).is_err());
    let s = parse("[action]\ntype = \"shed-load\"\n");
    assert!(s.compile("r.a", &Context::default()).is_err());
    let s = parse("[action]\ntype = \"shed-load\"\ncontainers = [\"ok\", \"no way\"]\n");
    assert!(
        s.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("r.a.containers[1]")
    );
    let s = parse("[action]\ntype = \"notify\"\nchannel = \"ops\"\n");
    let e = s.compile("r.a", &Context::default()).unwrap_err().to_string();
    assert!(e.contains("r.a.channel") && e.contains("ops"), "{e}");
    let channels: BTreeMap<String, NotifyChannel> =
        toml::from_str("[ops]\nkind = \"webhook\"\nurl = \"https://example.com/\"\n").unwrap();
    s.compile("r.a", &Context { channels: &channels }).unwrap();
    parse("[action]\ntype = \"exec\"\nargv = [\"/bin/true\", \"{{ labels.x }}\"]\n")
        .compile("r.a", &Context::default())
        .unwrap();
}

#[test]
fn hostile_label_values_are_refused_before_anything_runs() {
    let unit = parse("[action]\ntype = \"systemd\"\nop = \"restart\"\nunit = \"{{ labels.name }}\"\n");
    let ctr = parse("[action]\ntype = \"docker\"\nop = \"restart\"\ncontainer = \"{{ labels.name }}\"\n");
    let kill = parse("[action]\ntype = \"kill\"\npid = \"{{ labels.name }}\"\nallow = \".\"\n");
    for bad in [
        "a/b.service",
        "../x.service",
        "x; rm -rf /",
        "$(id)",
        "a b.service",
        "",
        "`id`",
    ] {
        let a = alert(&[("name", bad)]);
        assert!(
            unit.compile("test.action", &Context::default())
                .expect("valid spec")
                .resolve(&a)
                .is_err(),
            "unit {bad:?}"
        );
        assert!(
            ctr.compile("test.action", &Context::default())
                .expect("valid spec")
                .resolve(&a)
                .is_err(),
            "container {bad:?}"
        );
        assert!(
            kill.compile("test.action", &Context::default())
                .expect("valid spec")
                .resolve(&a)
                .is_err(),
            "pid {bad:?}"
        );
    }
    // "1" is a fine container name but never a PID to kill.
    assert!(
        kill.compile("test.action", &Context::default())
            .expect("valid spec")
            .resolve(&alert(&[("name", "1")]))
            .is_err()
    );
    // A label the alert does not carry is an error naming it.
    let e = unit
        .compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&alert(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("labels.name"), "{e}");
}

#[test]
fn targets_and_keys() {
    let unit =
        parse("[action]\ntype = \"systemd\"\nop = \"restart\"\nunit = \"{{ labels.name }}\"\nmanager = \"user:bob\"\n");
    let t = unit
        .compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&alert(&[("name", "worker.service")]))
        .unwrap();
    assert_eq!(t.key(), "systemd:user:bob:worker.service");
    let kill = parse("[action]\ntype = \"kill\"\nallow = \".\"\nstart_time = \"{{ labels.start }}\"\n");
    let t = kill
        .compile("test.action", &Context::default())
        .unwrap()
        .resolve(&alert(&[("pid", "4242"), ("start", "1700000000.5")]))
        .unwrap();
    let k = t.target::<KillAction>().unwrap();
    assert_eq!((k.pid, k.start_time), (4242, Some(1_700_000_000.5)));
    assert_eq!(t.key(), "pid:4242");
    let ctr = parse("[action]\ntype = \"docker\"\nop = \"stop\"\ncontainer = \"{{ labels.name }}\"\n");
    assert_eq!(
        ctr.compile("test.action", &Context::default())
            .expect("valid spec")
            .resolve(&alert(&[("name", "web-1")]))
            .unwrap()
            .key(),
        "docker:web-1"
    );
    let ex = parse("[action]\ntype = \"exec\"\nargv = [\"/bin/echo\", \"disk={{ labels.name }}\"]\n");
    let t = ex
        .compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&alert(&[("name", "$(id); x")]))
        .unwrap();
    let e = t.target::<ExecAction>().unwrap();
    assert_eq!(e.argv, vec!["/bin/echo".to_string(), "disk=$(id); x".into()]);
}

#[test]
fn outcome_serializes_for_the_journal() {
    let o = Outcome {
        result: OutcomeResult::DryRun,
        detail: "x".into(),
        duration: Duration::from_millis(1500),
    };
    let j = serde_json::to_string(&o).unwrap();
    assert_eq!(j, r#"{"result":"dry_run","detail":"x","duration_seconds":1.5}"#);
    assert_eq!(serde_json::from_str::<Outcome>(&j).unwrap(), o);
    // Journals written before the one spelling still parse.
    let old = r#"{"result":"dry-run","detail":"x","duration_seconds":1.5}"#;
    assert_eq!(serde_json::from_str::<Outcome>(old).unwrap(), o);
    assert_eq!(OutcomeResult::DryRun.as_str(), "dry_run");
    let v = serde_json::to_string(&Verification::NotHelped("still failed".into())).unwrap();
    assert_eq!(v, r#"{"verification":"not-helped","reason":"still failed"}"#);
    assert!(truncate("é".repeat(10), 12).len() <= 12);
    let long = truncate("x".repeat(5000), DETAIL_MAX);
    assert!(long.len() <= DETAIL_MAX && long.ends_with("[truncated]"));
    assert_eq!(truncate("abc".into(), 12), "abc");
}

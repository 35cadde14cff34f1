use super::*;

/// Results are enums in memory and keep the journal's spelling on disk:
/// lines written before (including the old `dry-run`) still read, and
/// what is written reads back the same.
#[test]
fn action_and_verify_results_keep_their_journal_spelling() {
    let lines = [
        (
            r#"{"seq":1,"ts":1.0,"event":"action","id":"a","rule":"r","target":"t","index":0,"action":"exec","description":"exec x","result":"ok","duration_seconds":0.1}"#,
            "ok",
        ),
        (
            r#"{"seq":2,"ts":1.0,"event":"action","id":"a","rule":"r","target":"t","index":0,"action":"exec","description":"exec x","result":"dry-run","duration_seconds":0.1}"#,
            "dry_run",
        ),
        (
            r#"{"seq":3,"ts":1.0,"event":"action","id":"a","rule":"r","target":"t","index":0,"action":"exec","description":"exec x","result":"interrupted","detail":"d","duration_seconds":0.1}"#,
            "interrupted",
        ),
        (
            r#"{"seq":4,"ts":1.0,"event":"verify","id":"a","rule":"r","target":"t","result":"not_helped","detail":"still firing"}"#,
            "not_helped",
        ),
        (
            r#"{"seq":5,"ts":1.0,"event":"verify","id":"a","rule":"r","target":"t","result":"verified"}"#,
            "verified",
        ),
    ];
    for (line, spelled) in lines {
        let e: Entry = serde_json::from_str(line).unwrap_or_else(|err| panic!("{line}: {err}"));
        let result = match &e.event {
            Event::Action { result, .. } => result.as_str(),
            Event::Verify { result, .. } => result.as_str(),
            other => panic!("{line}: read as {other:?}"),
        };
        assert_eq!(result, spelled, "{line}");
        let written = serde_json::to_string(&e).unwrap();
        assert!(written.contains(&format!(r#""result":"{spelled}""#)), "{written}");
        let back: Entry = serde_json::from_str(&written).unwrap();
        assert_eq!(back, e);
    }
    let bad = r#"{"seq":6,"ts":1.0,"event":"verify","id":"a","rule":"r","target":"t","result":"maybe"}"#;
    assert!(
        serde_json::from_str::<Entry>(bad).is_err(),
        "an unknown result is refused"
    );
}

fn entry(seq: u64) -> Entry {
    Entry {
        seq,
        ts: 1.5,
        event: Event::HoldCleared {
            target: format!("t{seq}"),
            by: "cli".into(),
        },
    }
}

#[test]
fn append_read_and_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub/journal.jsonl");
    let mut w = JournalWriter::open(&p).unwrap();
    w.append(&[entry(1), entry(2)]).unwrap();
    drop(w);
    // Simulate a crash in the middle of a write.
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"{\"seq\":3,\"ts\":1.0,\"event\":\"hold_cle").unwrap();
    drop(f);
    let (got, warn) = read_from(&p, 0).unwrap();
    assert_eq!(got, vec![entry(1), entry(2)]);
    assert_eq!(warn, 1);
    let mut w = JournalWriter::open(&p).unwrap();
    w.append(&[entry(3)]).unwrap();
    let (got, warn) = read_from(&p, 0).unwrap();
    assert_eq!(got, vec![entry(1), entry(2), entry(3)]);
    assert_eq!(warn, 1);
    let first_len = serde_json::to_string(&entry(1)).unwrap().len() as u64 + 1;
    let (got, _) = read_from(&p, first_len).unwrap();
    assert_eq!(got[0], entry(2));
}

/// Modes, statuses, refusal reasons and notification kinds are enums in
/// memory and one spelling on disk: a decision says `dry_run` in `mode`
/// as in `decision`; the mode spelling of journals written before
/// (`dry-run`, `notify-only`) still reads.
#[test]
fn modes_statuses_reasons_and_kinds_keep_one_spelling() {
    let old = r#"{"seq":1,"ts":1.0,"event":"decision","id":"p1","rule":"r","target":"t","alertname":"A","fingerprint":"f","mode":"dry-run","decision":"dry_run","actions":[]}"#;
    let e: Entry = serde_json::from_str(old).unwrap();
    let Event::Decision { mode, decision, .. } = &e.event else {
        panic!("{e:?}")
    };
    assert_eq!((*mode, *decision), (Mode::DryRun, Decision::DryRun));
    let written = serde_json::to_string(&e).unwrap();
    assert!(
        written.contains(r#""mode":"dry_run","decision":"dry_run""#),
        "{written}"
    );
    let pending = old.replace(r#""mode":"dry-run""#, r#""mode":"notify-only""#);
    let e: Entry = serde_json::from_str(&pending).unwrap();
    assert!(matches!(
        e.event,
        Event::Decision {
            mode: Mode::NotifyOnly,
            ..
        }
    ));
    assert!(serde_json::to_string(&e).unwrap().contains(r#""mode":"notify_only""#));

    let foreign = r#"{"seq":2,"ts":1.0,"event":"refused_foreign","alertname":"A","status":"resolved","fingerprint":"f","starts_at":"s","names":{},"identity":"web-1","reason":"no_host"}"#;
    let e: Entry = serde_json::from_str(foreign).unwrap();
    let Event::RefusedForeign { status, reason, .. } = &e.event else {
        panic!("{e:?}")
    };
    assert_eq!((*status, *reason), (Status::Resolved, Refusal::NoHost));
    assert_eq!(serde_json::to_string(&e).unwrap(), foreign, "written as read");

    for kind in [
        "approval",
        "escalation",
        "outcome",
        "quiet",
        "pipeline_silent",
        "pipeline_back",
    ] {
        let line = format!(r#"{{"seq":3,"ts":1.0,"event":"notified","channel":"c","kind":"{kind}","ok":true}}"#);
        let e: Entry = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{line}: {err}"));
        let Event::Notified { kind: read, .. } = &e.event else {
            panic!("{e:?}")
        };
        assert_eq!(read.as_str(), kind);
        assert_eq!(serde_json::to_string(&e).unwrap(), line);
    }
    let unknown = r#"{"seq":4,"ts":1.0,"event":"notified","channel":"c","kind":"gossip","ok":true}"#;
    assert!(
        serde_json::from_str::<Entry>(unknown).is_err(),
        "an unknown kind is an error, not a default"
    );
}

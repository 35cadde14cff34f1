//! The modes that do not simply run: notify-only waiting for approval (API
//! and CLI), and the global dry run with its outcome notification.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn notify_only_waits_for_approval_via_api_and_cli() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let text = fx.config(&sink.url("/hook"), 3, |_| {});
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    let runaway = |s: &str, fp: &str| alert("Runaway", &[("pid", "4242")], s, "firing", fp);
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![runaway("2026-01-01T00:00:00Z", "01")]))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![runaway("2026-01-01T00:00:00Z", "02")]))
            .await
            .0,
        200
    );
    eventually(Duration::from_secs(20), "approval request at the sink", || async {
        sink.all().into_iter().find(|r| r.body.contains("approval needed"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.effects(), 0, "notify-only must not act");
    let ids = decision_ids(&fx.journal(), Decision::PendingApproval);
    assert_eq!(ids.len(), 2);
    // Each request's approval note is sent by its own task, so the two may
    // reach the sink in either order: take the first request's by its id.
    let wanted = format!("hostmedic approve {}`", ids[0]);
    let note = eventually(Duration::from_secs(20), "the first request's approval note", || async {
        sink.all().into_iter().find(|r| r.body.contains(&wanted))
    })
    .await;
    assert!(note.body.contains("test alert"), "the alert's summary: {}", note.body);

    let approve = |id: &str| srv.url(&format!("/api/v1/actions/{id}/approve"));
    assert_eq!(client().post(approve(&ids[0])).send().await.unwrap().status(), 401);
    assert_eq!(
        client()
            .get(approve(&ids[0]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        client()
            .post(approve("a999999"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client()
            .post(approve(&ids[0]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    wait_effects(&fx, 1).await;
    let again = client().post(approve(&ids[0])).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(
        again.status(),
        409,
        "a second approval is a conflict, not a missing action"
    );
    let body = again.text().await.unwrap();
    assert!(body.contains("already approved by api at "), "{body}");

    // The CLI approves the second one through the running server.
    let cfg = fx.write_config(&text);
    let out = std::process::Command::new(binary_path())
        .args(["--config"])
        .arg(&cfg)
        .args(["approve", &ids[1], "--url", &srv.url("")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_effects(&fx, 2).await;
    let by = approved_by(&fx.journal());
    assert_eq!(by.len(), 2);
    assert_eq!(by[0], "api");
    assert!(by[1].starts_with("cli:"), "{by:?}");

    // The markdown incident log tells the story.
    let md = incidents_last_hour(&cfg);
    assert!(md.starts_with("# hostmedic incident log"), "{md}");
    assert!(md.contains("**Runaway** firing `pid=4242`"), "{md}");
    assert!(md.contains("waiting for approval"), "{md}");
    assert!(md.contains("approved by api"), "{md}");
    assert!(
        md.contains("exec /usr/bin/mktemp") && !md.contains("exec exec:"),
        "{md}"
    );
    let out = std::process::Command::new(binary_path())
        .args(["--config"])
        .arg(&cfg)
        .args(["incidents", "--format", "json", "--since", "2999-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn global_dry_run_records_what_would_run() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(
        Config::parse(
            &fx.config(&sink.url("/hook"), 1, |r| {
                r.set("dry_run", true);
            }),
            "test",
        )
        .unwrap(),
    )
    .await;
    let url = srv.url("/api/v1/alerts");
    for s in ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"] {
        assert_eq!(post(&url, Some(TOKEN), &payload(vec![worker(s)])).await.0, 200);
    }
    eventually(Duration::from_secs(20), "three dry-run results", || async {
        (fx.journal()
            .iter()
            .filter(|e| matches!(&e.event, Event::Action { result, .. } if result == "dry_run"))
            .count()
            == 3)
            .then_some(())
    })
    .await;
    assert_eq!(fx.effects(), 0);
    // Dry runs do not spend the budget.
    assert!(decisions(&fx.journal()).iter().all(|d| d.1 == Decision::DryRun));
    srv.stop().await;
}

/// A dry run's outcome notification says nothing ran; a real run's says it
/// ran and how it went.
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_outcome_title_says_nothing_ran() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let d = fx.dir.path();
    let text = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token")).set("cooldown", "0s");
        })
        .notify_webhook("sink", &sink.url("/hook"))
        .rule(
            Rule::new("trial", "WorkerDown")
                .set("mode", "dry-run")
                .strings("notify", ["sink"])
                .action(Action::exec([
                    "/usr/bin/mktemp",
                    &format!("{}/effects/ran.XXXXXX", d.display()),
                ])),
        )
        .rule(
            Rule::new("real", "DiskFull")
                .strings("notify", ["sink"])
                .action(Action::exec(["/bin/true"])),
        )
        .render();
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let disk = alert(
        "DiskFull",
        &[("severity", "warning")],
        "2026-01-01T00:00:00Z",
        "firing",
        "0d15c",
    );
    let url = srv.url("/api/v1/alerts");
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![worker("2026-01-01T00:00:00Z"), disk]))
            .await
            .0,
        200
    );
    let titles = eventually(Duration::from_secs(20), "two outcome notifications", || async {
        let t: Vec<String> = sink
            .all()
            .iter()
            .map(|r| r.json()["title"].as_str().unwrap_or_default().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        (t.len() == 2).then_some(t)
    })
    .await;
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("trial dry run on exec:") && t.ends_with(": nothing ran, nothing changed")),
        "{titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.starts_with("trial") && t.contains(" ran on")),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"real ran on exec:/bin/true: ok".to_string()),
        "{titles:?}"
    );
    assert_eq!(fx.effects(), 0, "the dry run ran nothing");
    srv.stop().await;
}

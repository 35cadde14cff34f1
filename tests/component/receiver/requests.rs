//! What the receiver refuses: a non-loopback listener without auth, bad
//! rule keys, a corpus of bad requests (4xx, nothing runs), and the one 5xx
//! (the journal cannot be written).

use super::*;

#[test]
fn refuses_non_loopback_without_auth_and_names_bad_rule_keys() {
    let fx = Fixture::new();
    let d = fx.dir.path();
    let open = TestConfig::new().receiver(d, |_| {});
    let cfg = fx.write_config(&open.render());
    let out = std::process::Command::new(binary_path())
        .arg("--config")
        .arg(&cfg)
        .args(["--web.listen-address", "0.0.0.0:0", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("receiver.allow_unauthenticated_non_loopback"), "{err}");

    let check = |text: &str| {
        let p = fx.write_config(text);
        let out = std::process::Command::new(binary_path())
            .arg("check-config")
            .arg(&p)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let rule = |r: Rule| open.clone().rule(r).render();
    let e = check(&rule(
        Rule::new("r", "A").action(Action::exec(["/nonexistent/script.sh"])),
    ));
    assert!(e.contains("remediation[0].actions[0].argv[0]"), "{e}");
    let true_ = || Action::exec(["/usr/bin/true"]);
    let e = check(&rule(
        Rule::new("r", "A")
            .strings("matchers", [r#"unit=~"(""#])
            .action(true_()),
    ));
    assert!(e.contains("remediation[0].matchers[0]"), "{e}");
    let e = check(&rule(Rule::new("r", "A").action(Action::new("reboot"))));
    assert!(e.contains("reboot"), "{e}");
    let e = check(&rule(
        Rule::new("r", "A").strings("escalate", ["pager"]).action(true_()),
    ));
    assert!(e.contains("remediation[0].escalate[0]"), "{e}");
    let missing = open.clone().receiver(d, |r| {
        r.path("bearer_token_file", d.join("missing"));
    });
    let e = check(&missing.render());
    assert!(e.contains("receiver.bearer_token_file"), "{e}");
}

/// A corpus of bad requests: each gets a 4xx and nothing runs.
enum Auth {
    Good,
    None,
    Bearer(&'static str),
    Raw(&'static str),
}

/// One bad request and the status it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    auth: Auth,
    ctype: &'static str,
    body: Vec<u8>,
    want: u16,
}

/// A POST with good auth and content type.
fn case(name: &'static str, body: String, want: u16) -> Case {
    Case {
        name,
        method: "POST",
        auth: Auth::Good,
        ctype: "application/json",
        body: body.into_bytes(),
        want,
    }
}

/// The good payload every bad case is derived from.
fn good_payload() -> Value {
    payload(vec![worker("2026-01-01T00:00:00Z")])
}

/// Wrong methods, credentials and content types on a good payload.
fn transport_cases(good_text: &str) -> Vec<Case> {
    let good_text = good_text.to_string();
    vec![
        Case {
            method: "GET",
            ..case("wrong method GET", String::new(), 405)
        },
        Case {
            method: "PUT",
            ..case("wrong method PUT", good_text.clone(), 405)
        },
        Case {
            method: "DELETE",
            ..case("wrong method DELETE", good_text.clone(), 405)
        },
        Case {
            auth: Auth::None,
            ..case("no auth", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Bearer("wrong"),
            ..case("wrong token", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Bearer("t0ken-for-tests-012345678"),
            ..case("token prefix", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Bearer("t0ken-for-tests-01234567890"),
            ..case("token with extra char", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Raw("Basic dDB rZW4="),
            ..case("basic instead of bearer", good_text.clone(), 401)
        },
        Case {
            auth: Auth::Raw("t0ken-for-tests-0123456789"),
            ..case("token without scheme", good_text.clone(), 401)
        },
        Case {
            ctype: "text/plain",
            ..case("wrong content type", good_text.clone(), 415)
        },
        Case {
            ctype: "",
            ..case("no content type", good_text.clone(), 415)
        },
    ]
}

/// Bodies that are too big, not JSON, or not a valid payload, and alerts
/// naming a unit that is not one.
fn payload_cases(good: &Value) -> Vec<Case> {
    let good_text = good.to_string();
    let unit = |u: &str| {
        payload(vec![alert(
            "UnitFailed",
            &[("unit", u)],
            "2026-01-01T00:00:00Z",
            "firing",
            "ab",
        )])
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let many: Vec<Value> = (0..10_000)
        .map(|i| {
            alert(
                "WorkerDown",
                &[("severity", "critical")],
                "2026-01-01T00:00:00Z",
                "firing",
                &format!("{i:x}"),
            )
        })
        .collect();
    let many_small = json!({"status": "firing", "alerts": (0..1001).map(|i| json!({"status":"firing","labels":{"alertname":"WorkerDown","severity":"critical"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":format!("{i:x}")})).collect::<Vec<_>>()});
    vec![
        case(
            "huge body (2 MiB)",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20)),
            413,
        ),
        case("10,000 alerts in one payload", payload(many).to_string(), 413),
        case("1,001 small alerts", many_small.to_string(), 413),
        case("empty body", String::new(), 400),
        case("truncated JSON", good_text[..good_text.len() / 2].to_string(), 400),
        case("not JSON", "alert!".into(), 400),
        case("JSON array", "[]".into(), 400),
        case("alerts is a string", with(&|v| v["alerts"] = json!("many")), 400),
        case(
            "labels is a list",
            with(&|v| v["alerts"][0]["labels"] = json!(["a"])),
            400,
        ),
        case(
            "label value is a number",
            with(&|v| v["alerts"][0]["labels"]["severity"] = json!(5)),
            400,
        ),
        case(
            "status unknown",
            with(&|v| v["alerts"][0]["status"] = json!("burning")),
            400,
        ),
        case(
            "fingerprint not hex",
            with(&|v| v["alerts"][0]["fingerprint"] = json!("zz;rm -rf")),
            400,
        ),
        case(
            "startsAt not a time",
            with(&|v| v["alerts"][0]["startsAt"] = json!("yesterday")),
            400,
        ),
        case(
            "missing alerts",
            with(&|v| v.as_object_mut().unwrap().remove("alerts").map(|_| ()).unwrap()),
            400,
        ),
        case(
            "label name with a dash",
            with(&|v| v["alerts"][0]["labels"]["bad-name"] = json!("x")),
            400,
        ),
        case("payload version 5", with(&|v| v["version"] = json!("5")), 400),
        case(
            "payload without version",
            with(&|v| v.as_object_mut().unwrap().remove("version").map(|_| ()).unwrap()),
            400,
        ),
        case(
            "label given twice",
            good_text.replacen("\"labels\":{", "\"labels\":{\"severity\":\"info\",", 1),
            400,
        ),
        case("unit with slash", unit("../../etc/passwd").to_string(), 422),
        case("unit with ..", unit("foo..service").to_string(), 422),
        case("unit with space", unit("foo bar.service").to_string(), 422),
        case("unit with shell chars", unit("x.service;reboot").to_string(), 422),
        case("unit with $()", unit("$(reboot).service").to_string(), 422),
        case("unit with newline", unit("a.service\nb.service").to_string(), 422),
        case("unit without type", unit("sshd").to_string(), 422),
        case("unit empty", unit("").to_string(), 422),
        case(
            "unit label missing",
            payload(vec![alert("UnitFailed", &[], "2026-01-01T00:00:00Z", "firing", "ab")]).to_string(),
            422,
        ),
    ]
}

/// Sends one case and asserts its status (and that the token is not echoed).
async fn send_case(http: &reqwest::Client, srv: &InProcess, c: Case) {
    let url = srv.url("/api/v1/alerts");
    if c.body.len() > (1 << 20) {
        // An oversized body is refused from its Content-Length before it
        // is read; the connection then closes, so speak raw HTTP to see
        // the answer deterministically (a client still sending would see
        // a reset instead).
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let head = format!(
            "POST /api/v1/alerts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            c.body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let _ = s.write_all(&c.body[..65536]).await;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {}", c.want)),
            "case {:?}: {text}",
            c.name
        );
        return;
    }
    let mut r = http.request(c.method.parse().unwrap(), &url).body(c.body);
    if !c.ctype.is_empty() {
        r = r.header("content-type", c.ctype);
    }
    r = match c.auth {
        Auth::Good => r.bearer_auth(TOKEN),
        Auth::None => r,
        Auth::Bearer(t) => r.bearer_auth(t),
        Auth::Raw(h) => r.header("authorization", h),
    };
    let resp = r.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(code, c.want, "case {:?}: {text}", c.name);
    assert!(!text.contains(TOKEN), "case {:?} echoed the token", c.name);
}

/// Other endpoints: unknown action id, bad paths, wrong methods, no token.
/// Returns how many requests it sent.
async fn check_other_endpoints(http: &reqwest::Client, srv: &InProcess) -> usize {
    let other = [
        ("POST", "/api/v1/actions/nope/approve", 404),
        ("POST", "/api/v1/actions/a1/reject", 404),
        ("GET", "/api/v1/actions/a1/approve", 405),
        ("POST", "/api/v1/holds/%zz/clear", 404),
        ("POST", "/api/v1/holds/systemd:system:x.service/clear", 404),
        ("POST", "/api/v1/status", 405),
    ];
    for (m, p, want) in other {
        let r = http
            .request(m.parse().unwrap(), srv.url(p))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{m} {p}");
    }
    let r = http.get(srv.url("/api/v1/status")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    other.len() + 1
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_request_corpus_gets_4xx_and_runs_nothing() {
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let srv = InProcess::start(Config::parse(&fx.config(&sink.url("/hook"), 3, |_| {}), "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    let good = good_payload();
    let mut cases = transport_cases(&good.to_string());
    cases.extend(payload_cases(&good));
    let total = cases.len();
    assert!(total >= 25);
    let http = client();
    for c in cases {
        send_case(&http, &srv, c).await;
    }
    let control = check_other_endpoints(&http, &srv).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.effects(), 0);
    let entries = fx.journal();
    assert!(
        entries.iter().all(|e| matches!(e.event, Event::Refused { .. })),
        "only refusals may be journaled: {entries:?}"
    );
    assert_eq!(entries.len(), 9, "one refusal per bad unit");
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(!metrics.contains("hostmedic_alerts_received_total"), "{metrics}");
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"401\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"422\"} 9"),
        "{metrics}"
    );
    assert!(sink.all().is_empty());
    // And a good request still works afterwards.
    assert_eq!(post(&url, Some(TOKEN), &good).await.0, 200);
    wait_effects(&fx, 1).await;
    eprintln!("{total} bad webhook requests + {control} control requests rejected");
    srv.stop().await;
}

/// Unmounts a tmpfs mounted by the test (by path; lazily).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The one 5xx: the journal cannot be written (a full file system). Nothing
/// of the failed request counts, so Alertmanager's retry acts normally.
#[tokio::test(flavor = "multi_thread")]
async fn journal_failure_answers_500_and_the_retry_is_processed() {
    let fx = Fixture::new();
    let mnt = fx.path("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "hostmedic-test"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok && skip_or_fail("cannot mount a tmpfs (needs root)") {
        return;
    }
    let _mount = Mount(mnt.clone());
    let sink = Sink::start().await;
    let text = fx.config(&sink.url("/hook"), 3, |r| {
        r.path("journal_path", mnt.join("journal.jsonl"));
    });
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    // Fill the file system.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(mnt.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
    }
    let body = payload(vec![worker("2026-01-01T00:00:00Z")]);
    let (code, text) = post(&url, Some(TOKEN), &body).await;
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("cannot record"), "{text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.effects(), 0);
    // Space again: the retry (same alert) is not a duplicate and acts once.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let (code, text) = post(&url, Some(TOKEN), &body).await;
    assert_eq!(code, 200, "{text}");
    wait_effects(&fx, 1).await;
    let entries = journal::read_from(&mnt.join("journal.jsonl"), 0).unwrap().0;
    assert!(
        entries
            .iter()
            .filter(|e| matches!(e.event, Event::Alert { .. }))
            .all(|e| matches!(e.event, Event::Alert { duplicate: false, .. }))
    );
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(
        metrics.contains("hostmedic_webhook_requests_total{code=\"500\"} 1"),
        "{metrics}"
    );
    srv.stop().await;
}

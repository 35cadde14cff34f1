//! Probes against real parts: a local HTTP server on 127.0.0.1:0 (200, 500,
//! hang past the timeout), the same server over TLS with a short-lived
//! certificate from a CA made in the test (or an expired one, or a
//! self-signed one made by the `openssl` CLI, checked against `curl
//! --cacert`), and real commands (exit 0, exit 1, hanging and killed with
//! its process group, missing executable, minimal environment).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::eventually;
use common::procs::{HttpServer, nonce, pids_with_cmdline, tls_server_config, tls_server_config_from_pem};
use hostmedic::collector::Collector;
use hostmedic::collectors::probes::tls::{ProbeClient, ca_file_roots};
use hostmedic::collectors::probes::{
    CommandProbe, Config, DEFAULT_PATH, HttpProbe, ProbesCollector, StatusSet, run_command, run_http,
};
use hostmedic::metrics::MetricSet;
use tokio_util::sync::CancellationToken;

fn http(name: &str, url: String, timeout_ms: u64) -> HttpProbe {
    HttpProbe {
        name: name.into(),
        url,
        expected_status: None,
        timeout: Duration::from_millis(timeout_ms),
        interval: Duration::from_millis(200),
        ca_file: None,
    }
}

fn cmd(name: &str, argv: &[&str], timeout_ms: u64) -> CommandProbe {
    CommandProbe {
        name: name.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_millis(timeout_ms),
        interval: Duration::from_millis(200),
        working_dir: None,
        path: DEFAULT_PATH.into(),
    }
}

fn client() -> ProbeClient {
    ProbeClient::platform().unwrap()
}

#[tokio::test]
async fn http_200_500_and_hang() {
    let srv = HttpServer::start().await;
    let c = client();

    let r = run_http(&c, &http("ok", srv.url("/ok"), 2000)).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.code, 200);

    let r = run_http(&c, &http("fail", srv.url("/fail"), 2000)).await;
    assert!(!r.success);
    assert_eq!(r.code, 500);
    assert!(r.error.unwrap().contains("unexpected status 500"));

    // 500 is fine when it is what the probe expects; 200 then is not.
    let mut p = http("fail-expected", srv.url("/fail"), 2000);
    p.expected_status = Some(StatusSet::Many(vec![500, 503]));
    assert!(run_http(&c, &p).await.success);
    p.url = srv.url("/ok");
    assert!(!run_http(&c, &p).await.success);

    let start = Instant::now();
    let r = run_http(&c, &http("hang", srv.url("/hang"), 300)).await;
    let took = start.elapsed();
    assert!(!r.success);
    assert_eq!(r.code, 0, "no response");
    assert!(r.duration >= Duration::from_millis(300), "{:?}", r.duration);
    assert!(took < Duration::from_secs(10), "the timeout bounds the probe: {took:?}");
    assert!(r.error.unwrap().contains("no response within"));

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ok", closed.local_addr().unwrap());
    drop(closed);
    let r = run_http(&c, &http("refused", url, 2000)).await;
    assert!(!r.success);
    assert_eq!(r.code, 0);
}

#[tokio::test]
async fn commands_exit_0_exit_1_hang_and_missing() {
    let none = CancellationToken::new();
    let r = run_command(&cmd("true", &["sh", "-c", "exit 0"], 5000), &none).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.code, 0);

    let r = run_command(
        &cmd("one", &["sh", "-c", "echo 'bot is stuck' >&2; exit 1"], 5000),
        &none,
    )
    .await;
    assert!(!r.success);
    assert_eq!(r.code, 1);
    assert!(r.error.as_deref().unwrap().contains("bot is stuck"), "{:?}", r.error);

    // A hang, with a grandchild in the same process group: both are killed.
    let n = nonce();
    let (bg_sleep, fg_sleep) = (format!("sleep 300.{n}"), format!("sleep 301.{n}"));
    let script = format!("{bg_sleep} & {fg_sleep}; exit 0");
    let start = Instant::now();
    let r = run_command(&cmd("hang", &["sh", "-c", &script], 400), &none).await;
    assert!(!r.success);
    assert_eq!(r.code, -1);
    assert!(r.duration >= Duration::from_millis(400));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        r.error.as_deref().unwrap().contains("process group was killed"),
        "{:?}",
        r.error
    );
    eventually(
        Duration::from_secs(5),
        "the shell and both sleeps to be gone",
        || async {
            (pids_with_cmdline(&script).is_empty()
                && pids_with_cmdline(&bg_sleep).is_empty()
                && pids_with_cmdline(&fg_sleep).is_empty())
            .then_some(())
        },
    )
    .await;

    let r = run_command(&cmd("missing", &["/nonexistent/hostmedic-check"], 5000), &none).await;
    assert!(!r.success);
    assert_eq!(r.code, -1);
    let e = r.error.unwrap();
    assert!(
        e.contains("cannot start") && e.contains("/nonexistent/hostmedic-check"),
        "{e}"
    );

    let r = run_command(&cmd("missing-in-path", &["hostmedic-no-such-program"], 5000), &none).await;
    assert_eq!((r.success, r.code), (false, -1));
}

#[tokio::test]
async fn command_gets_path_only_and_working_dir() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("env.txt");
    let mut p = cmd(
        "env",
        &["sh", "-c", &format!("env > {0}; pwd >> {0}", out.display())],
        5000,
    );
    p.path = "/usr/bin:/bin".into();
    p.working_dir = Some(d.path().to_path_buf());
    // Something a leaky environment would carry into the probe.
    assert!(std::env::var("HOME").is_ok() || std::env::var("CARGO").is_ok());
    let r = run_command(&p, &CancellationToken::new()).await;
    assert!(r.success, "{:?}", r.error);
    let text = std::fs::read_to_string(&out).unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    assert!(text.contains("PATH=/usr/bin:/bin\n"), "{text}");
    // The shell itself adds PWD (and some add OLDPWD/SHLVL); nothing else.
    for n in &names {
        assert!(
            ["PATH", "PWD", "OLDPWD", "SHLVL", "_"].contains(n),
            "leaked {n}: {text}"
        );
    }
    assert!(text.trim_end().ends_with(&d.path().display().to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_runs_probes_in_background_and_caches_results() {
    let srv = HttpServer::start().await;
    let cfg = Config {
        http: vec![
            http("web-ok", srv.url("/ok"), 2000),
            http("web-500", srv.url("/fail"), 2000),
            http("web-hang", srv.url("/hang"), 300),
        ],
        command: vec![
            cmd("cmd-ok", &["true"], 5000),
            cmd("cmd-1", &["false"], 5000),
            cmd("cmd-hang", &["sleep", "60"], 300),
            cmd("cmd-missing", &["/nonexistent/check"], 5000),
        ],
        ..Config::default()
    };
    cfg.validate("probes").unwrap();
    let c = Arc::new(ProbesCollector::new(&cfg).unwrap());
    let stop = CancellationToken::new();
    let bg = tokio::spawn(c.clone().background(stop.clone()));
    let scrape = || async {
        let mut m = MetricSet::new();
        c.collect(&mut m).await.unwrap();
        m
    };
    let m = eventually(Duration::from_secs(20), "every probe to have run", || async {
        let m = scrape().await;
        let n = m.get("hostmedic_probe_success").map(|f| f.samples.len()).unwrap_or(0);
        (n == 7).then_some(m)
    })
    .await;
    let v = |m: &MetricSet, fam: &str, probe: &str| m.value(fam, &[("probe", probe)]).unwrap();
    for (probe, ok) in [
        ("web-ok", 1.0),
        ("web-500", 0.0),
        ("web-hang", 0.0),
        ("cmd-ok", 1.0),
        ("cmd-1", 0.0),
        ("cmd-hang", 0.0),
        ("cmd-missing", 0.0),
    ] {
        assert_eq!(v(&m, "hostmedic_probe_success", probe), ok, "{probe}");
    }
    assert_eq!(
        m.value("hostmedic_probe_success", &[("probe", "web-ok"), ("kind", "http")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("hostmedic_probe_success", &[("probe", "cmd-ok"), ("kind", "command")]),
        Some(1.0)
    );
    assert_eq!(v(&m, "hostmedic_probe_status_code", "web-ok"), 200.0);
    assert_eq!(v(&m, "hostmedic_probe_status_code", "web-500"), 500.0);
    assert_eq!(v(&m, "hostmedic_probe_status_code", "web-hang"), 0.0);
    assert_eq!(v(&m, "hostmedic_probe_exit_code", "cmd-ok"), 0.0);
    assert_eq!(v(&m, "hostmedic_probe_exit_code", "cmd-1"), 1.0);
    assert_eq!(v(&m, "hostmedic_probe_exit_code", "cmd-hang"), -1.0);
    assert_eq!(v(&m, "hostmedic_probe_exit_code", "cmd-missing"), -1.0);
    assert_eq!(m.value("hostmedic_probe_exit_code", &[("probe", "web-ok")]), None);
    assert!(v(&m, "hostmedic_probe_duration_seconds", "cmd-hang") >= 0.3);
    let t1 = v(&m, "hostmedic_probe_last_run_timestamp_seconds", "cmd-ok");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(t1 <= now && t1 > now - 60.0);

    // The cached result is refreshed on the probe's own interval.
    eventually(Duration::from_secs(10), "a later run", || async {
        let m = scrape().await;
        (m.value("hostmedic_probe_last_run_timestamp_seconds", &[("probe", "cmd-ok")])? > t1).then_some(())
    })
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), bg)
        .await
        .unwrap()
        .unwrap();
}

/// An HTTPS probe trusting the test CA through `ca_file` reports the
/// served certificate's notAfter to the second; without the CA (platform
/// roots) the same server fails the probe and the expiry is still reported;
/// a plain HTTP probe has no expiry series.
#[tokio::test(flavor = "multi_thread")]
async fn https_probe_reports_the_certificate_not_after() {
    let d = tempfile::tempdir().unwrap();
    // Expires in 3 days: inside the shipped rule's 14-day window.
    let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .replace_nanosecond(0)
        .unwrap();
    let tls = HttpServer::start_tls(tls_server_config(d.path(), not_after, None)).await;
    let plain = HttpServer::start().await;
    let mut trusted = http("tls", tls.url("/ok"), 5000);
    trusted.ca_file = Some(d.path().join("ca.pem"));
    let cfg = Config {
        http: vec![
            trusted,
            http("tls-untrusted", tls.url("/ok"), 5000),
            http("plain", plain.url("/ok"), 5000),
        ],
        ..Config::default()
    };
    let c = Arc::new(ProbesCollector::new(&cfg).unwrap());
    let stop = CancellationToken::new();
    let bg = tokio::spawn(c.clone().background(stop.clone()));
    let m = eventually(Duration::from_secs(20), "every probe to have run", || async {
        let mut m = MetricSet::new();
        c.collect(&mut m).await.unwrap();
        let n = m.get("hostmedic_probe_success").map(|f| f.samples.len()).unwrap_or(0);
        (n == 3).then_some(m)
    })
    .await;
    let v = |fam: &str, probe: &str| m.value(fam, &[("probe", probe)]);
    assert_eq!(v("hostmedic_probe_success", "tls"), Some(1.0));
    assert_eq!(v("hostmedic_probe_status_code", "tls"), Some(200.0));
    assert_eq!(
        v("hostmedic_probe_tls_cert_not_after_timestamp_seconds", "tls"),
        Some(not_after.unix_timestamp() as f64)
    );
    // Not trusted, and still the expiry of what the server presented.
    assert_eq!(v("hostmedic_probe_success", "tls-untrusted"), Some(0.0));
    assert_eq!(
        v("hostmedic_probe_tls_cert_not_after_timestamp_seconds", "tls-untrusted"),
        Some(not_after.unix_timestamp() as f64)
    );
    assert_eq!(v("hostmedic_probe_success", "plain"), Some(1.0));
    assert_eq!(v("hostmedic_probe_tls_cert_not_after_timestamp_seconds", "plain"), None);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), bg)
        .await
        .unwrap()
        .unwrap();

    // The same through run_http with the probes' own client: a wrong status
    // still shows the certificate, every run shakes hands again (no pooled
    // connection, no resumed session hides it).
    let client = ProbeClient::new(ca_file_roots("t", &d.path().join("ca.pem")).unwrap()).unwrap();
    for _ in 0..3 {
        let r = run_http(&client, &http("direct", tls.url("/fail"), 5000)).await;
        assert_eq!((r.success, r.code), (false, 500));
        assert_eq!(r.cert_not_after, Some(not_after.unix_timestamp()));
    }
    // Plain HTTP on the same client afterwards: nothing left over.
    let r = run_http(&client, &http("plain", plain.url("/ok"), 5000)).await;
    assert_eq!((r.success, r.cert_not_after), (true, None));
}

/// The metric is the earliest expiry of the presented chain: a leaf valid
/// for 60 days under an intermediate CA that expires in 5 days reports the
/// intermediate's notAfter (like blackbox_exporter's
/// `probe_ssl_earliest_cert_expiry`).
#[tokio::test(flavor = "multi_thread")]
async fn https_probe_reports_the_earliest_expiry_of_the_chain() {
    let d = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let (leaf, intermediate) = (now + time::Duration::days(60), now + time::Duration::days(5));
    let tls = HttpServer::start_tls(tls_server_config(d.path(), leaf, Some(intermediate))).await;
    let client = ProbeClient::new(ca_file_roots("t", &d.path().join("ca.pem")).unwrap()).unwrap();
    let r = run_http(&client, &http("chain", tls.url("/ok"), 5000)).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.cert_not_after, Some(intermediate.unix_timestamp()));
}

/// `ca_file` is checked at load: relative paths, missing files and files
/// without a certificate are errors naming the key.
#[test]
fn ca_file_errors_name_the_key() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.http.push(http("a", "https://127.0.0.1:1/".into(), 1000));
    cfg.http.push(http("b", "https://127.0.0.1:1/".into(), 1000));
    cfg.http[1].ca_file = Some("ca.pem".into());
    let e = ProbesCollector::new(&cfg).err().unwrap().to_string();
    assert!(e.contains("probes.http[1].ca_file") && e.contains("absolute"), "{e}");
    cfg.http[1].ca_file = Some(d.path().join("missing.pem"));
    let e = ProbesCollector::new(&cfg).err().unwrap().to_string();
    assert!(e.contains("probes.http[1].ca_file") && e.contains("missing.pem"), "{e}");
    std::fs::write(d.path().join("empty.pem"), "not a certificate\n").unwrap();
    cfg.http[1].ca_file = Some(d.path().join("empty.pem"));
    let e = ProbesCollector::new(&cfg).err().unwrap().to_string();
    assert!(
        e.contains("probes.http[1].ca_file") && e.contains("no PEM certificate"),
        "{e}"
    );
    // TOML spelling (loading reads the file): raw TOML on purpose.
    tls_server_config(
        d.path(),
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
        None,
    );
    let ca = d.path().join("ca.pem");
    let parsed = hostmedic::config::Config::parse(
        &format!(
            "[[probes.http]]\nname = \"x\"\nurl = \"https://127.0.0.1:9/\"\nca_file = \"{}\"\n",
            ca.display()
        ),
        "t",
    )
    .unwrap();
    assert_eq!(parsed.probes.http[0].ca_file.as_deref(), Some(ca.as_path()));
}

#[test]
fn validation_names_keys() {
    let mut cfg = Config::default();
    cfg.http.push(http("a", "ftp://x/".into(), 1000));
    assert!(
        cfg.validate("probes")
            .unwrap_err()
            .to_string()
            .contains("probes.http[0].url")
    );
    cfg.http[0].url = "http://127.0.0.1:1/".into();
    cfg.command.push(cmd("a", &["true"], 1000));
    let e = cfg.validate("probes").unwrap_err().to_string();
    assert!(e.contains("probes.command[0].name") && e.contains("duplicate"), "{e}");
    cfg.command[0].name = "b".into();
    cfg.command[0].argv.clear();
    assert!(
        cfg.validate("probes")
            .unwrap_err()
            .to_string()
            .contains("probes.command[0].argv")
    );
    cfg.command[0].argv = vec!["true".into()];
    cfg.http[0].expected_status = Some(StatusSet::One(42));
    assert!(
        cfg.validate("probes")
            .unwrap_err()
            .to_string()
            .contains("probes.http[0].expected_status")
    );
    cfg.http[0].expected_status = Some(StatusSet::One(204));
    cfg.validate("probes").unwrap();
    // TOML accepts one code or a list (raw TOML on purpose: the test is
    // about parsing it).
    let parsed = hostmedic::config::Config::parse(
        "[[probes.http]]\nname = \"x\"\nurl = \"http://127.0.0.1:9/\"\nexpected_status = 204\n\
         [[probes.http]]\nname = \"y\"\nurl = \"http://127.0.0.1:9/\"\nexpected_status = [200, 301]\ntimeout = \"2s\"\n\
         [[probes.command]]\nname = \"z\"\nargv = [\"/usr/local/bin/check\", \"--quick\"]\n",
        "t",
    )
    .unwrap();
    assert_eq!(parsed.probes.http[0].expected_status, Some(StatusSet::One(204)));
    assert_eq!(parsed.probes.http[1].timeout, Duration::from_secs(2));
    assert_eq!(parsed.probes.command[0].path, DEFAULT_PATH);
    // The effective config (`check-config`) parses back to the same probes.
    let again = hostmedic::config::Config::parse(&parsed.to_toml(), "rendered").unwrap();
    assert_eq!(
        again.probes.http[1].expected_status,
        Some(StatusSet::Many(vec![200, 301]))
    );
    assert_eq!(again.probes.command[0].argv, parsed.probes.command[0].argv);
}

#[test]
fn full_section_config_round_trips() {
    // Raw TOML on purpose: the test is about parsing it and rendering it back.
    let text = r#"
[processes]
top_k = 7
[[processes.watch]]
name = "bot"
cmdline = 'python3 .*bot\.py'
min = 1
[logfile]
interval = "250ms"
[[logfile.watch]]
file = "/var/log/bot.log"
patterns = { critical = "CRITICAL", traceback = "^Traceback" }
[[probes.command]]
name = "health"
argv = ["/bin/true"]
working_dir = "/tmp"
"#;
    let cfg = hostmedic::config::Config::parse(text, "t").unwrap();
    let again = hostmedic::config::Config::parse(&cfg.to_toml(), "rendered").unwrap();
    assert_eq!(again.processes.top_k, 7);
    assert_eq!(again.processes.watch[0].cmdline.as_deref(), Some(r"python3 .*bot\.py"));
    assert_eq!(again.processes.watch[0].min, Some(1));
    assert_eq!(again.processes.watch[0].max, None);
    assert_eq!(again.logfile.interval, Duration::from_millis(250));
    assert_eq!(again.logfile.watch[0].patterns.len(), 2);
    assert_eq!(
        again.probes.command[0].working_dir.as_deref(),
        Some(std::path::Path::new("/tmp"))
    );
    // A config that must be refused, as raw TOML.
    let err = hostmedic::config::Config::parse("[[processes.watch]]\nname = \"x\"\ncomm = \"(\"\n", "t").unwrap_err();
    assert!(err.to_string().contains("processes.watch[0].comm"), "{err}");
}

/// A port nothing listens on (bound, then released).
fn closed_port_url(scheme: &str) -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("{scheme}://{}/ok", closed.local_addr().unwrap());
    drop(closed);
    url
}

/// A failed run's error carries the cause, not only reqwest's "error
/// sending request": the refusal of a closed port, and why a certificate
/// was not trusted (here: an issuer the platform's roots do not know).
#[tokio::test(flavor = "multi_thread")]
async fn http_probe_errors_carry_the_cause() {
    let r = run_http(&client(), &http("refused", closed_port_url("http"), 5000)).await;
    let e = r.error.unwrap();
    assert!(e.contains("Connection refused"), "{e}");
    // The URL once, at the front (reqwest's own "for url (…)" is dropped).
    assert_eq!(e.matches("127.0.0.1").count(), 1, "{e}");

    let d = tempfile::tempdir().unwrap();
    let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .replace_nanosecond(0)
        .unwrap();
    let tls = HttpServer::start_tls(tls_server_config(d.path(), not_after, None)).await;
    let r = run_http(&client(), &http("untrusted", tls.url("/ok"), 5000)).await;
    assert_eq!((r.success, r.code), (false, 0));
    let e = r.error.unwrap();
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    // Untrusted, and its expiry is still known.
    assert_eq!(r.cert_not_after, Some(not_after.unix_timestamp()));
}

/// An expired certificate (under the CA the probe trusts) fails the probe
/// with the reason and exports that expiry: the series an operator needs
/// to see what broke.
#[tokio::test(flavor = "multi_thread")]
async fn expired_certificate_fails_with_the_reason_and_exports_its_expiry() {
    let d = tempfile::tempdir().unwrap();
    let expired = (time::OffsetDateTime::now_utc() - time::Duration::days(2))
        .replace_nanosecond(0)
        .unwrap();
    let tls = HttpServer::start_tls(tls_server_config(d.path(), expired, None)).await;
    let mut p = http("expired", tls.url("/ok"), 5000);
    p.ca_file = Some(d.path().join("ca.pem"));
    let client = ProbeClient::new(ca_file_roots("t", &d.path().join("ca.pem")).unwrap()).unwrap();
    let r = run_http(&client, &p).await;
    assert_eq!((r.success, r.code), (false, 0));
    let e = r.error.unwrap();
    assert!(e.contains("invalid peer certificate: certificate expired"), "{e}");
    assert_eq!(r.cert_not_after, Some(expired.unix_timestamp()));

    // The same through the collector: the metric is exported.
    let c = Arc::new(
        ProbesCollector::new(&Config {
            http: vec![p],
            ..Config::default()
        })
        .unwrap(),
    );
    let stop = CancellationToken::new();
    let bg = tokio::spawn(c.clone().background(stop.clone()));
    let m = eventually(Duration::from_secs(20), "the probe to have run", || async {
        let mut m = MetricSet::new();
        c.collect(&mut m).await.unwrap();
        m.get("hostmedic_probe_success").is_some().then_some(m)
    })
    .await;
    assert_eq!(m.value("hostmedic_probe_success", &[("probe", "expired")]), Some(0.0));
    assert_eq!(
        m.value(
            "hostmedic_probe_tls_cert_not_after_timestamp_seconds",
            &[("probe", "expired")]
        ),
        Some(expired.unix_timestamp() as f64)
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), bg)
        .await
        .unwrap()
        .unwrap();
}

/// `openssl req -x509` as operators run it: a self-signed certificate (the
/// config's v3_ca section makes it CA:TRUE) and its key, `<name>.pem` and
/// `<name>.key` in `dir`.
fn openssl_self_signed(dir: &std::path::Path, name: &str, san: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "30", "-subj", "/CN=localhost", "-addext"])
        .arg(format!("subjectAltName={}", san.split(' ').next().unwrap()))
        // More `-addext …` after the names, space-separated.
        .args(san.split(' ').skip(1))
        .output()
        .expect("the openssl CLI");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// Whether `curl --cacert ca` fetches `url` (proxies off, like the probes).
async fn curl_ok(ca: &std::path::Path, url: &str) -> bool {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .await
        .expect("the curl CLI");
    out.status.success()
}

fn not_after_of(pem: &std::path::Path) -> i64 {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.validity().not_after.timestamp()
}

/// A `ca_file` naming the server's own openssl-made self-signed (CA:TRUE)
/// certificate works wherever `curl --cacert` does, and fails where curl
/// fails: another self-signed certificate in the file, or a name the
/// certificate does not carry.
#[tokio::test(flavor = "multi_thread")]
async fn openssl_self_signed_ca_file_works_where_curl_does() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_self_signed(d.path(), "c", "DNS:localhost,IP:127.0.0.1");
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    // The case webpki refuses on its own (CaUsedAsEndEntity).
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"));
    let srv = HttpServer::start_tls(tls_server_config_from_pem(&cert, &key)).await;
    let by_name = format!("https://localhost:{}/ok", srv.addr.port());
    let probe = |url: &str, ca: &std::path::Path| {
        let mut p = http("self-signed", url.to_string(), 5000);
        p.ca_file = Some(ca.to_path_buf());
        p
    };
    for url in [srv.url("/ok"), by_name] {
        assert!(curl_ok(&cert, &url).await, "curl --cacert {url}");
        let client = ProbeClient::new(ca_file_roots("t", &cert).unwrap()).unwrap();
        let r = run_http(&client, &probe(&url, &cert)).await;
        assert!(r.success, "{url}: {:?}", r.error);
        assert_eq!(r.code, 200);
        assert_eq!(r.cert_not_after, Some(not_after_of(&cert)));
    }

    // Another self-signed certificate as ca_file: curl refuses, so does the
    // probe (with webpki's reason), and the expiry is still reported.
    let (other, _) = openssl_self_signed(d.path(), "other", "DNS:localhost,IP:127.0.0.1");
    assert!(!curl_ok(&other, &srv.url("/ok")).await);
    let client = ProbeClient::new(ca_file_roots("t", &other).unwrap()).unwrap();
    let r = run_http(&client, &probe(&srv.url("/ok"), &other)).await;
    assert!(!r.success);
    let e = r.error.unwrap();
    assert!(
        e.contains("invalid peer certificate") && e.contains("CaUsedAsEndEntity"),
        "{e}"
    );
    assert_eq!(r.cert_not_after, Some(not_after_of(&cert)));

    // The listed certificate without the address in its names: both refuse.
    let (dns_only, dns_key) = openssl_self_signed(d.path(), "dns-only", "DNS:localhost");
    let srv = HttpServer::start_tls(tls_server_config_from_pem(&dns_only, &dns_key)).await;
    assert!(!curl_ok(&dns_only, &srv.url("/ok")).await);
    let client = ProbeClient::new(ca_file_roots("t", &dns_only).unwrap()).unwrap();
    let r = run_http(&client, &probe(&srv.url("/ok"), &dns_only)).await;
    assert!(!r.success);
    let e = r.error.unwrap();
    assert!(e.contains("certificate not valid for name"), "{e}");

    // Listed, but only for client authentication (extendedKeyUsage): both
    // refuse it as a server's certificate.
    let (client_only, client_key) = openssl_self_signed(
        d.path(),
        "client-only",
        "DNS:localhost,IP:127.0.0.1 -addext extendedKeyUsage=clientAuth",
    );
    let srv = HttpServer::start_tls(tls_server_config_from_pem(&client_only, &client_key)).await;
    assert!(!curl_ok(&client_only, &srv.url("/ok")).await);
    let client = ProbeClient::new(ca_file_roots("t", &client_only).unwrap()).unwrap();
    let r = run_http(&client, &probe(&srv.url("/ok"), &client_only)).await;
    assert!(!r.success);
    let e = r.error.unwrap();
    assert!(e.contains("certificate does not allow extended key usage"), "{e}");
}

/// The control subcommands' `--tls.ca-file` uses the same verifier: a
/// server on an openssl-made self-signed certificate is reached with that
/// certificate as the CA, as `curl --cacert` reaches it.
#[tokio::test(flavor = "multi_thread")]
async fn control_client_trusts_an_openssl_self_signed_certificate() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_self_signed(d.path(), "c", "DNS:localhost,IP:127.0.0.1");
    let srv = HttpServer::start_tls(tls_server_config_from_pem(&cert, &key)).await;
    assert!(curl_ok(&cert, &srv.url("/ok")).await);
    let cfg = hostmedic::config::Config::parse("", "t").unwrap();
    let args = hostmedic::client::ClientArgs {
        url: Some(srv.url("")),
        ca_file: Some(cert.clone()),
        ..Default::default()
    };
    let control = hostmedic::client::Control::new(&cfg, None, &args).unwrap();
    let (status, _) = control.post("/ok").await.unwrap();
    assert_eq!(status.as_u16(), 200);

    // Another certificate as the CA: refused, and the error says why.
    let (other, _) = openssl_self_signed(d.path(), "other", "DNS:localhost,IP:127.0.0.1");
    let args = hostmedic::client::ClientArgs {
        ca_file: Some(other),
        ..args
    };
    let control = hostmedic::client::Control::new(&cfg, None, &args).unwrap();
    let e = control.post("/ok").await.unwrap_err();
    let text = hostmedic::error::chain(e.as_ref());
    assert!(text.contains("invalid peer certificate"), "{text}");
}

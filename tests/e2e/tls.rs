//! The web layer (`--web.config.file`) against real clients: a real
//! Prometheus scrapes hostmedic over TLS with basic auth, a real
//! Alertmanager delivers the webhook over TLS with basic auth and the action
//! runs, the CLI approves over TLS; wrong credentials get 401, plain HTTP to
//! the TLS port is refused, client certificates are checked under
//! `RequireAndVerifyClientCert`, and a certificate replaced on disk is served
//! without a restart.
//!
//! Certificates are made by the test with `rcgen` (in-process, any validity
//! window, so an expired client certificate needs no clock tricks; the
//! `openssl` CLI cannot back-date a certificate without a CA database).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::common::alertmanager::Alertmanager;
use crate::common::config::{Action, Rule, TestConfig};
use crate::common::prometheus::Prometheus;
use crate::common::{Binary, binary_path, eventually};

/// A test CA that issues server and client certificates into `dir`.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = p.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(p, key),
            pem,
        }
    }

    /// Issues a certificate for `cn` (server: SANs 127.0.0.1 and
    /// localhost), writes `<stem>.pem` and `<stem>.key` in `dir`.
    fn issue(&self, dir: &Path, stem: &str, cn: &str, server: bool, expired: bool) -> (PathBuf, PathBuf) {
        let sans = if server {
            vec!["127.0.0.1".to_string(), "localhost".to_string()]
        } else {
            vec![]
        };
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        if expired {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
        // A server's file holds the chain up to the CA (a "fullchain"), so
        // the CLI can trust it without --tls.ca-file.
        let chain = if server {
            format!("{}{}", cert.pem(), self.pem)
        } else {
            cert.pem()
        };
        std::fs::write(&c, chain).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pem).unwrap();
        path.to_path_buf()
    }
}

const PROM_PW: &str = "scrape-secret";
const AM_PW: &str = "alert-secret";

/// hostmedic behind a web config, with its files in a temp dir.
struct Secured {
    dir: tempfile::TempDir,
    ca: Ca,
    ca_file: PathBuf,
    web_config: PathBuf,
    config: PathBuf,
    bin: Binary,
}

impl Secured {
    /// TLS with the server certificate of a fresh CA; `tls_extra` adds
    /// lines to `tls_server_config`; basic auth for `prometheus` and
    /// `alertmanager` (the receiver takes only `alertmanager`, its own token
    /// stays); one exec rule (`TlsDelivered` touches `delivered`) and one
    /// notify-only rule (`TlsApprove` touches `approved`).
    fn start(tls_extra: &str) -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = Ca::new("hostmedic test CA");
        let ca_file = ca.write(&d.join("ca.pem"));
        ca.issue(d, "server", "hostmedic", true, false);
        std::fs::write(d.join("token"), "receiver-token").unwrap();
        let hash = |pw: &str| bcrypt::hash(pw, 4).unwrap();
        let web_config = d.join("web.yml");
        std::fs::write(
            &web_config,
            format!(
                "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{tls_extra}\
                 http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
                 basic_auth_users:\n  prometheus: {}\n  alertmanager: {}\n",
                hash(PROM_PW),
                hash(AM_PW)
            ),
        )
        .unwrap();
        let touch = |name: &str| Action::exec(["/usr/bin/touch".to_string(), d.join(name).display().to_string()]);
        let config = TestConfig::new()
            .disable(&["docker", "systemd"])
            .single_host("tls-test")
            .receiver(&d.join("state"), |r| {
                r.path("bearer_token_file", d.join("token"))
                    .strings("web_users", ["alertmanager"]);
            })
            .rule(Rule::new("tls-delivered", "TlsDelivered").action(touch("delivered")))
            .rule(
                Rule::new("tls-approve", "TlsApprove")
                    .set("mode", "notify-only")
                    .action(touch("approved")),
            )
            .write(d.join("hostmedic.toml"));
        std::fs::create_dir_all(d.join("state")).unwrap();
        let wc = web_config.display().to_string();
        let bin = Binary::start_with(&config, d, &["--web.config.file", &wc]);
        Secured {
            ca,
            ca_file,
            web_config,
            config,
            bin,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn https(&self, path: &str) -> String {
        format!("https://{}{path}", self.bin.addr)
    }

    fn password_file(&self, user: &str, pw: &str) -> PathBuf {
        let f = self.path(&format!("{user}.password"));
        std::fs::write(&f, format!("{pw}\n")).unwrap();
        f
    }

    /// A client trusting the test CA, with a client certificate if given.
    fn client(&self, identity: Option<(&Path, &Path)>) -> reqwest::Client {
        hostmedic::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.ca_file).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let b = rustls::ClientConfig::builder().with_root_certificates(roots);
        let tls = match identity {
            Some((c, k)) => b
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(c).unwrap().map(Result::unwrap).collect(),
                    PrivateKeyDer::from_pem_file(k).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// `GET /-/healthy` as the `prometheus` user, with a client certificate if given.
    async fn healthy_with(&self, identity: Option<(&Path, &Path)>) -> reqwest::Result<reqwest::Response> {
        self.client(identity)
            .get(self.https("/-/healthy"))
            .basic_auth("prometheus", Some(PROM_PW))
            .send()
            .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.bin.stderr_log).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_over_tls_with_basic_auth_and_bad_clients_are_refused() {
    let s = Secured::start("");
    let client = s.client(None);

    // Wrong or missing credentials: 401 with the Basic challenge, on every
    // endpoint, with the configured headers.
    let get_as = |path: &str, user: &str, pw: &str| client.get(s.https(path)).basic_auth(user, Some(pw)).send();
    for path in ["/metrics", "/", "/-/healthy", "/api/v1/status"] {
        let r = client.get(s.https(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
        assert_eq!(r.headers()["www-authenticate"], "Basic");
        assert_eq!(r.headers()["x-frame-options"], "deny");
        let r = get_as(path, "prometheus", "wrong").await.unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong password");
    }
    let r = get_as("/metrics", "nobody", PROM_PW).await.unwrap();
    assert_eq!(r.status(), 401, "unknown user");
    let r = get_as("/metrics", "prometheus", PROM_PW).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("hostmedic_build_info"));

    // Plain HTTP to the TLS port: no HTTP answer.
    let plain = crate::common::client().get(s.bin.url("/metrics")).send().await;
    assert!(plain.is_err(), "plain HTTP answered: {:?}", plain.map(|r| r.status()));

    // A real Prometheus scrapes it: scheme https, tls_config.ca_file, basic_auth.
    let pw = s.password_file("prometheus", PROM_PW);
    let (addr, ca) = (s.bin.addr, s.ca_file.clone());
    let prom = Prometheus::start_config(&[], move |_, _| {
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: hostmedic\n    \
             scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prometheus\n      \
             password_file: {}\n    static_configs:\n      - targets: ['{addr}']\n",
            ca.display(),
            pw.display()
        )
    })
    .await;
    prom.wait_scraped(2).await;
    let series = prom
        .query_value("count({job=\"hostmedic\", __name__=~\"hostmedic_.+\"})")
        .await;
    assert!(
        series.is_some_and(|n| n > 10.0),
        "hostmedic series in the TSDB: {series:?}"
    );
    // The receiver does not take the scraper's credentials (receiver.web_users).
    let r = client
        .post(s.https("/api/v1/alerts"))
        .basic_auth("prometheus", Some(PROM_PW))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the prometheus user on the webhook");
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_delivers_over_tls_with_basic_auth_and_the_cli_approves() {
    let s = Secured::start("");
    let pw = s.password_file("alertmanager", AM_PW);
    let yml = format!(
        "route:\n  receiver: hostmedic\n  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1s\n  \
         repeat_interval: 4h\nreceivers:\n  - name: hostmedic\n    webhook_configs:\n      - url: {}\n        \
         send_resolved: false\n        http_config:\n          basic_auth:\n            username: alertmanager\n            \
         password_file: {}\n          tls_config:\n            ca_file: {}\n",
        s.https("/api/v1/alerts"),
        pw.display(),
        s.ca_file.display()
    );
    let am = Alertmanager::start_config(&s.path("am"), &yml, None, Duration::from_secs(2));
    let alert = |name: &str| serde_json::json!([{"labels": {"alertname": name, "instance": "tls-test"}}]);
    am.post_alerts(&alert("TlsDelivered")).await;
    eventually(Duration::from_secs(30), "the exec action ran", || async {
        s.path("delivered").exists().then_some(())
    })
    .await;

    // notify-only: the CLI approves over TLS with basic auth, the CA taken
    // from the web config's cert_file (no --tls.ca-file).
    am.post_alerts(&alert("TlsApprove")).await;
    let journal = s.path("state/journal.jsonl");
    let id = eventually(Duration::from_secs(30), "a pending approval", || async {
        let (entries, _) = hostmedic::receiver::journal::read_from(&journal, 0).ok()?;
        entries.into_iter().find_map(|e| match e.event {
            hostmedic::receiver::journal::Event::Decision {
                id,
                decision: hostmedic::receiver::journal::Decision::PendingApproval,
                ..
            } => Some(id),
            _ => None,
        })
    })
    .await;
    let cli = |pw_file: &Path| {
        std::process::Command::new(binary_path())
            .arg("--config")
            .arg(&s.config)
            .arg("--web.config.file")
            .arg(&s.web_config)
            .args([
                "approve",
                &id,
                "--url",
                &s.https(""),
                "--basic-auth.username",
                "alertmanager",
            ])
            .arg("--basic-auth.password-file")
            .arg(pw_file)
            .output()
            .unwrap()
    };
    let wrong = cli(&s.password_file("wrong", "not-it"));
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"), "{wrong:?}");
    let out = cli(&pw);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(30), "the approved action ran", || async {
        s.path("approved").exists().then_some(())
    })
    .await;
    drop(am);
}

#[tokio::test(flavor = "multi_thread")]
async fn require_and_verify_client_cert_refuses_expired_and_unknown_ca_certs() {
    let s = Secured::start("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n");
    let d = s.dir.path();
    let good = s.ca.issue(d, "good-client", "ops", false, false);
    let expired = s.ca.issue(d, "expired-client", "ops", false, true);
    let stranger = Ca::new("someone else").issue(d, "stranger-client", "ops", false, false);
    let get = |identity| s.healthy_with(identity);
    let ok = get(Some((&good.0, &good.1))).await.expect("a good client certificate");
    assert_eq!(ok.status(), 200);
    for (what, id) in [
        ("expired", Some(&expired)),
        ("unknown CA", Some(&stranger)),
        ("none", None),
    ] {
        let r = get(id.map(|(c, k)| (c.as_path(), k.as_path()))).await;
        assert!(
            r.is_err(),
            "{what} client certificate accepted: {:?}",
            r.map(|r| r.status())
        );
    }
    // The CLI with its client certificate reaches the receiver (404: no such hold).
    let out = std::process::Command::new(binary_path())
        .arg("--config")
        .arg(&s.config)
        .arg("--web.config.file")
        .arg(&s.web_config)
        .args(["clear-hold", "systemd:system:none.service"])
        .arg("--tls.cert-file")
        .arg(&good.0)
        .arg("--tls.key-file")
        .arg(&good.1)
        .arg("--tls.ca-file")
        .arg(&s.ca_file)
        .args(["--basic-auth.username", "alertmanager", "--basic-auth.password-file"])
        .arg(s.password_file("alertmanager", AM_PW))
        .args(["--url", &s.https("")])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stderr.contains("404") && stdout.contains("hold"), "{stdout} {stderr}");
}

/// The certificate the server presents on a new connection.
async fn served_cert(addr: std::net::SocketAddr, ca_file: &Path) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_replaced_on_disk_is_served_without_a_restart() {
    hostmedic::install_crypto_provider();
    let s = Secured::start("");
    let d = s.dir.path();
    let first = served_cert(s.bin.addr, &s.ca_file).await;
    // A new pair from the same CA, moved over the served files.
    let (c, k) = s.ca.issue(d, "next", "hostmedic-renewed", true, false);
    let next = std::fs::read(&c).unwrap();
    std::fs::rename(&k, d.join("server.key")).unwrap();
    std::fs::rename(&c, d.join("server.pem")).unwrap();
    let next_der = CertificateDer::from_pem_slice(&next).unwrap().to_vec();
    assert_ne!(first, next_der);
    eventually(Duration::from_secs(15), "the renewed certificate served", || async {
        (served_cert(s.bin.addr, &s.ca_file).await == next_der).then_some(())
    })
    .await;
    // A broken certificate keeps the renewed one and logs the error.
    std::fs::write(d.join("server.pem"), "not a certificate\n").unwrap();
    eventually(Duration::from_secs(15), "the broken certificate reported", || async {
        // Each handshake may be the one that looks at the files again.
        assert_eq!(served_cert(s.bin.addr, &s.ca_file).await, next_der);
        s.log().contains("serving the previous one").then_some(())
    })
    .await;
    assert_eq!(served_cert(s.bin.addr, &s.ca_file).await, next_der);
}

#[tokio::test(flavor = "multi_thread")]
async fn require_any_client_cert_takes_any_certificate_but_not_none() {
    let s = Secured::start("  client_auth_type: RequireAnyClientCert\n");
    let stranger = Ca::new("someone else").issue(s.dir.path(), "stranger-client", "ops", false, false);
    let get = |identity| s.healthy_with(identity);
    let r = get(Some((&stranger.0, &stranger.1))).await.expect("any certificate");
    assert_eq!(r.status(), 200);
    assert!(get(None).await.is_err(), "no client certificate accepted");
}

//! `--web.config.file` on its own: the errors `check-config` and `serve`
//! report for a broken file (each naming its key), and `Layer::reload`
//! through the real server: a valid new file is used by the next request,
//! an invalid one keeps the running settings. TLS and real clients are in
//! `tests/e2e/tls.rs`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use hostmedic::web::Layer;
use tokio_util::sync::CancellationToken;

use crate::common::binary_path;
use crate::common::config::TestConfig;

fn check_config(dir: &Path, config: &Path, web: &str) -> (bool, String) {
    let f = dir.join("web.yml");
    std::fs::write(&f, web).unwrap();
    let out = Command::new(binary_path())
        .arg("--config")
        .arg(config)
        .arg("--web.config.file")
        .arg(&f)
        .arg("check-config")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_config_and_serve_name_the_broken_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = TestConfig::new()
        .receiver(d, |r| {
            r.strings("web_users", ["alertmanager"]);
        })
        .write(d.join("hostmedic.toml"));
    let hash = bcrypt::hash("pw", 4).unwrap();
    let cases: &[(&str, &str)] = &[
        ("tls_server_config:\n  cert: a.pem\n", "unknown field `cert`"),
        ("basic_auth_user:\n  am: x\n", "unknown field `basic_auth_user`"),
        ("tls_server_config:\n  cert_file: a.pem\n", "tls_server_config.key_file"),
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireClientCertPlease\n",
            "tls_server_config.client_auth_type",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS10\n",
            "tls_server_config.max_version",
        ),
        (
            "basic_auth_users:\n  alertmanager: not-bcrypt\n",
            "basic_auth_users.alertmanager",
        ),
        (
            "http_server_config:\n  headers:\n    Content-Type: text/html\n",
            "http_server_config.headers.Content-Type",
        ),
        (
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "http_server_config.headers.X-Content-Type-Options",
        ),
    ];
    for (text, key) in cases {
        let (ok, stderr) = check_config(d, &config, text);
        assert!(!ok && stderr.contains(key), "{text:?}: want {key:?} in {stderr}");
    }
    // receiver.web_users must name users of the web config.
    let (ok, stderr) = check_config(d, &config, &format!("basic_auth_users:\n  prometheus: {hash}\n"));
    assert!(!ok && stderr.contains("receiver.web_users[0]"), "{stderr}");
    let (ok, stderr) = check_config(d, &config, &format!("basic_auth_users:\n  alertmanager: {hash}\n"));
    assert!(ok && stderr.contains("web config OK"), "{stderr}");

    // serve refuses to start on a broken file, naming the key.
    std::fs::write(d.join("web.yml"), "tls_server_config:\n  cert_file: a.pem\n").unwrap();
    let out = Command::new(binary_path())
        .arg("--config")
        .arg(&config)
        .arg("--web.config.file")
        .arg(d.join("web.yml"))
        .args(["--web.listen-address", "127.0.0.1:0", "serve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("tls_server_config.key_file"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_applies_a_valid_file_and_keeps_the_running_one_on_error() {
    hostmedic::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let web_file = dir.path().join("web.yml");
    std::fs::write(
        &web_file,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    .unwrap();
    let layer = Layer::load(Some(&web_file)).unwrap();
    let text = TestConfig::new().disable(&["docker", "systemd"]).render();
    let app = hostmedic::app::App::new(hostmedic::config::Config::parse(&text, "test").unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/-/healthy", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(hostmedic::server::serve(
        listener,
        app,
        Arc::clone(&layer),
        shutdown.clone(),
    ));
    let client = crate::common::client();
    let get = |user: Option<&'static str>| {
        let mut r = client.get(&url);
        if let Some(pw) = user {
            r = r.basic_auth("ops", Some(pw));
        }
        async move {
            let r = r.send().await.unwrap();
            let frame = r
                .headers()
                .get("x-frame-options")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), frame)
        }
    };
    assert_eq!(get(None).await, (200, Some("deny".into())));

    // A valid new file: the next request has its header and basic auth.
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(
        &web_file,
        format!("http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\nbasic_auth_users:\n  ops: {hash}\n"),
    )
    .unwrap();
    layer.reload().unwrap();
    assert_eq!(get(None).await, (401, Some("sameorigin".into())));
    assert_eq!(get(Some("wrong")).await.0, 401);
    assert_eq!(get(Some("pw")).await, (200, Some("sameorigin".into())));

    // An invalid file: the error names the key, the running settings stay.
    std::fs::write(&web_file, "http_server_config:\n  headerz: {}\n").unwrap();
    let e = layer.reload().unwrap_err().to_string();
    assert!(e.contains("headerz"), "{e}");
    // Turning TLS on needs a restart.
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("c.pem"), pair.cert.pem()).unwrap();
    std::fs::write(dir.path().join("c.key"), pair.signing_key.serialize_pem()).unwrap();
    std::fs::write(&web_file, "tls_server_config:\n  cert_file: c.pem\n  key_file: c.key\n").unwrap();
    let e = layer.reload().unwrap_err().to_string();
    assert!(e.contains("restart"), "{e}");
    assert_eq!(get(Some("pw")).await, (200, Some("sameorigin".into())));

    shutdown.cancel();
    let _ = server.await;
}

/// SIGHUP re-reads the web config with the configuration: a rotated
/// basic-auth password is the one that works afterwards, the old one gets
/// 401, and a broken file keeps the rotated one (reload metric 0).
#[tokio::test(flavor = "multi_thread")]
async fn sighup_rereads_the_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = TestConfig::new().write(d.join("hostmedic.toml"));
    let web = d.join("web.yml");
    let users = |pw: &str| format!("basic_auth_users:\n  scraper: {}\n", bcrypt::hash(pw, 4).unwrap());
    std::fs::write(&web, users("one")).unwrap();
    let bin = crate::common::Binary::start_with(&config, d, &["--web.config.file", web.to_str().unwrap()]);
    let url = format!("http://{}/metrics", bin.addr);
    let http = crate::common::client();
    let status = |pw: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(&url).basic_auth("scraper", Some(pw)).send().await.unwrap();
            let code = r.status().as_u16();
            (code, r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(status("one").await.0, 200);
    assert_eq!(status("two").await.0, 401);
    let hup =
        || nix::sys::signal::kill(nix::unistd::Pid::from_raw(bin.pid()), nix::sys::signal::Signal::SIGHUP).unwrap();

    std::fs::write(&web, users("two")).unwrap();
    hup();
    crate::common::eventually(std::time::Duration::from_secs(20), "the rotated password", || async {
        (status("two").await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(status("one").await.0, 401, "the old password still works");

    std::fs::write(&web, "basic_auth_users:\n  scraper: not-bcrypt\n").unwrap();
    hup();
    crate::common::eventually(
        std::time::Duration::from_secs(20),
        "the failed reload counted",
        || async {
            let (code, body) = status("two").await;
            (code == 200 && body.contains("hostmedic_config_last_reload_successful 0")).then_some(())
        },
    )
    .await;
    assert!(
        bin.log().contains("basic_auth_users.scraper"),
        "the log names the broken key:\n{}",
        bin.log()
    );
}

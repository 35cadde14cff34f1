//! Real Alertmanager processes for tests: Debian's `prometheus-alertmanager`
//! on 127.0.0.1 with free ports, running the shipped `compose/alertmanager.yml`
//! (only group_interval, the webhook URL and the token file are substituted,
//! see `common::prometheus::alertmanager_config`), optionally in
//! a gossip cluster, stopped by PID on drop.
//!
//! One harness for the receiver tests and the rules / end-to-end tests: the
//! API is the receiver helper's (`Alertmanager::start(dir, name, hook,
//! cluster)`); the configuration is the shipped one, so tests and the compose
//! stack cannot drift. Prometheus lives in `common::prometheus`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; tiny race accepted).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Path of a binary on PATH, or None.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

/// Waits until `url/-/ready` answers 200; panics with the log if the child
/// exits or 30 s pass.
pub fn wait_ready(url: &str, child: &mut Child, log: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited early ({st}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if http_get_ok(&format!("{url}/-/ready")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} not ready after 30s; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A minimal blocking HTTP GET (no client dependency in sync code): true on 200.
fn http_get_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(addr) = host.parse::<std::net::SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

/// Where and how Alertmanager delivers the webhook.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    /// Bearer token (written to a credentials file, not into the YAML).
    pub bearer: Option<String>,
}

/// One `prometheus-alertmanager` process.
pub struct Alertmanager {
    child: Child,
    pub port: u16,
    /// Gossip port when clustered.
    pub cluster_port: Option<u16>,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Alertmanager {
    /// True when the binary is installed.
    pub fn available() -> bool {
        which("prometheus-alertmanager").is_some()
    }

    /// Starts an Alertmanager in `dir/<name>` with the shipped configuration
    /// delivering every alert to `hook` (group_wait/group_interval 1s).
    /// `cluster`: `Some(peers)` gossips on a free 127.0.0.1 port with those
    /// peer addresses; `None` disables clustering (`--cluster.listen-address=`).
    pub fn start(dir: &Path, name: &str, hook: &WebhookTarget, cluster: Option<&[String]>) -> Alertmanager {
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let token_file = hook.bearer.as_ref().map(|tok| {
            let f = dir.join("token");
            std::fs::write(&f, tok).unwrap();
            f
        });
        let yml = super::prometheus::alertmanager_config(&hook.url, token_file.as_deref());
        Alertmanager::start_config(&dir, &yml, cluster, Duration::from_secs(2))
    }

    /// Starts an Alertmanager in `dir` (created) with the configuration text
    /// `yml`; `cluster` as for [`Alertmanager::start`]. `peer_timeout`: how
    /// long the n-th peer waits (times n) for an earlier peer's notification
    /// to reach it by gossip before sending itself (`0s`: every peer sends,
    /// as when the gossip is slow or partitioned).
    pub fn start_config(dir: &Path, yml: &str, cluster: Option<&[String]>, peer_timeout: Duration) -> Alertmanager {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(&cfg, yml).unwrap();
        let port = free_port();
        let log = dir.join("alertmanager.log");
        let mut cmd = Command::new("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=debug");
        let cluster_port = match cluster {
            None => {
                cmd.arg("--cluster.listen-address=");
                None
            }
            Some(peers) => {
                let cp = free_port();
                // Peer timeout 0 is for "every peer sends": the notification
                // log must then not reach a peer before its own flush either
                // (gossiped every 50 ms, a loaded machine's two flushes can be
                // further apart than that, and the second peer stays quiet).
                let (gossip, pushpull) = if peer_timeout.is_zero() {
                    ("30s", "60s")
                } else {
                    ("50ms", "1s")
                };
                cmd.arg(format!("--cluster.listen-address=127.0.0.1:{cp}"))
                    .arg(format!("--cluster.advertise-address=127.0.0.1:{cp}"))
                    .arg(format!("--cluster.gossip-interval={gossip}"))
                    .arg(format!("--cluster.pushpull-interval={pushpull}"))
                    .arg(format!("--cluster.peer-timeout={}ms", peer_timeout.as_millis()));
                for p in peers {
                    cmd.arg(format!("--cluster.peer={p}"));
                }
                Some(cp)
            }
        };
        let logf = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("prometheus-alertmanager (Debian package prometheus-alertmanager) must be installed");
        wait_ready(&format!("http://127.0.0.1:{port}"), &mut child, &log, "alertmanager");
        Alertmanager {
            child,
            port,
            cluster_port,
            dir,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, as Prometheus' `alertmanagers` targets want it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn cluster_addr(&self) -> Option<String> {
        self.cluster_port.map(|p| format!("127.0.0.1:{p}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Injects alerts through `POST /api/v2/alerts` (what Prometheus does).
    /// Each alert: `(labels, annotations, starts_at, ends_at)`; times are
    /// RFC 3339 strings or empty.
    pub async fn post_alerts(&self, alerts: &serde_json::Value) {
        let r = super::client()
            .post(format!("{}/api/v2/alerts", self.url()))
            .json(alerts)
            .send()
            .await
            .expect("POST /api/v2/alerts");
        assert!(r.status().is_success(), "alertmanager answered {}", r.status());
    }

    /// Alerts this Alertmanager holds (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let Ok(r) = super::client()
            .get(format!("{}/api/v2/alerts", self.url()))
            .send()
            .await
        else {
            return Vec::new();
        };
        r.json().await.unwrap_or_default()
    }

    /// Number of cluster members this instance sees (`/api/v2/status`).
    pub async fn cluster_peers(&self) -> usize {
        let Ok(r) = super::client()
            .get(format!("{}/api/v2/status", self.url()))
            .send()
            .await
        else {
            return 0;
        };
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        v["cluster"]["peers"].as_array().map(Vec::len).unwrap_or(0)
    }
}

impl Alertmanager {
    /// Kills this Alertmanager with SIGKILL (by its PID) and reaps it.
    pub fn kill(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Helpers for the processes/logfile/probes tests: spawned children that are
//! killed by PID on drop, unique names, and a tiny HTTP server.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// A unique short token (comm names are limited to 15 bytes).
pub fn nonce() -> String {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:06}{}", n % 1_000_000, std::process::id() % 1000)
}

/// A symlink `dir/name` to `target`: exec'ing it gives the process that comm.
pub fn alias(dir: &Path, name: &str, target: &str) -> PathBuf {
    let p = dir.join(name);
    symlink(target, &p).unwrap();
    p
}

/// A child process killed (by its PID) and reaped when dropped.
pub struct Spawned(pub Child);

impl Spawned {
    pub fn new(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Spawned {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn test child");
        Spawned(child)
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids whose /proc cmdline contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && String::from_utf8_lossy(&raw).replace('\0', " ").contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// A minimal HTTP/1.1 server on 127.0.0.1:0: `/ok` → 200, `/fail` → 500,
/// `/hang` → accepts and never answers; connections are kept alive. Stops
/// when dropped. Plain HTTP from
/// [`HttpServer::start`], HTTPS from [`HttpServer::start_tls`].
pub struct HttpServer {
    pub addr: std::net::SocketAddr,
    scheme: &'static str,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start() -> HttpServer {
        Self::serve(None).await
    }

    /// The same server behind TLS with `tls` (certificate chain and key).
    pub async fn start_tls(tls: std::sync::Arc<rustls::ServerConfig>) -> HttpServer {
        Self::serve(Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> HttpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(sock).await,
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(sock).await {
                                answer(s).await
                            }
                        }
                    }
                });
            }
        });
        HttpServer { addr, scheme, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }
}

/// For [`HttpServer::start_tls`]: a root CA (valid for a year, written to
/// `dir/ca.pem`) and a server certificate for 127.0.0.1 that expires at
/// `leaf_not_after`. Signed by the root directly (presented chain: leaf +
/// root), or, with `intermediate_not_after`, by an intermediate CA the root
/// signed that expires then (presented chain: leaf + intermediate).
pub fn tls_server_config(
    dir: &std::path::Path,
    leaf_not_after: time::OffsetDateTime,
    intermediate_not_after: Option<time::OffsetDateTime>,
) -> std::sync::Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let now = time::OffsetDateTime::now_utc();
    let ca_params = |cn: &str, not_after| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = now - time::Duration::days(1);
        p.not_after = not_after;
        p
    };
    let root = ca_params("probe test root CA", now + time::Duration::days(365));
    let root_key = KeyPair::generate().unwrap();
    let root_cert = root.self_signed(&root_key).unwrap();
    std::fs::write(dir.join("ca.pem"), root_cert.pem()).unwrap();
    let root = Issuer::new(root, root_key);
    let (issuer, second) = match intermediate_not_after {
        None => (root, root_cert.der().clone()),
        Some(t) => {
            let params = ca_params("probe test intermediate CA", t);
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &root).unwrap();
            (Issuer::new(params, key), cert.der().clone())
        }
    };
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "short-lived");
    // A leaf that has already expired was valid for a day before.
    leaf.not_before = (now - time::Duration::hours(1)).min(leaf_not_after - time::Duration::days(1));
    leaf.not_after = leaf_not_after;
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    hostmedic::install_crypto_provider();
    std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), second], key)
            .unwrap(),
    )
}

/// For [`HttpServer::start_tls`]: serves the PEM certificate chain and
/// private key made elsewhere (the `openssl` CLI, as operators make them).
pub fn tls_server_config_from_pem(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
    hostmedic::install_crypto_provider();
    std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// Answers the requests of one connection (see [`HttpServer`]), keeping
/// it open between them (HTTP/1.1 keep-alive) until the client closes it.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut sock: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 1024];
    loop {
        // GETs only: a request is its head.
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&req);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (code, reason) = match path.as_str() {
            "/ok" => (200, "OK"),
            "/fail" => (500, "Internal Server Error"),
            "/hang" => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                return;
            }
            _ => (404, "Not Found"),
        };
        let body = format!("{code}\n");
        let resp = format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

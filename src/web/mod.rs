//! The web layer in front of every endpoint (metrics, landing page, health,
//! webhook, control API), configured by `--web.config.file` in the
//! exporter-toolkit format: TLS (with client certificates), HTTP basic auth
//! and extra response headers. The server asks it once per connection
//! ([`Layer::accept`]: the TLS handshake) and once per request
//! ([`Layer::authorize`], [`Layer::decorate`]). [`Layer::reload`] re-reads
//! the file (and so the certificate, key and client CAs); an invalid file
//! keeps the running settings.
//!
//! - [`config`]: the YAML schema and its validation into [`WebConfig`].
//! - [`tls`]: the rustls server configuration and the self-reloading
//!   certificate store.
//! - [`basic`]: bcrypt checks with the toolkit's cache.

pub mod basic;
pub mod config;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use crate::error::ConfigError;
use crate::http::{Body, text};
pub use config::WebConfig;

/// The basic-auth user the web layer verified, put in the request's
/// extensions for the endpoints behind it (the receiver may take it as its
/// own authentication, see `receiver.web_users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUser(pub String);

/// A served connection: plain TCP or TLS over it.
pub type Conn = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

struct Active {
    config: WebConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Active {
    fn build(config: WebConfig) -> Result<Active, ConfigError> {
        let tls = config
            .tls
            .as_ref()
            .map(tls::server_config)
            .transpose()?
            .map(tokio_rustls::TlsAcceptor::from);
        Ok(Active { config, tls })
    }
}

/// The web-config holder the server runs with.
pub struct Layer {
    path: Option<PathBuf>,
    active: RwLock<Arc<Active>>,
    basic: basic::BasicAuth,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer").field("path", &self.path).finish()
    }
}

/// Reads and validates a web config file the way `serve` does, loading the
/// certificate, key and client CAs (for `check-config`).
pub fn check(path: &Path) -> Result<WebConfig, ConfigError> {
    let config = WebConfig::load(path)?;
    Active::build(config.clone())?;
    Ok(config)
}

/// A web config read and checked by [`Layer::prepare_reload`], not yet
/// applied.
pub struct Prepared(Arc<Active>);

impl Layer {
    /// No web config: plain HTTP, no basic auth, no extra headers.
    pub fn plain() -> Arc<Layer> {
        Arc::new(Layer {
            path: None,
            active: RwLock::new(Arc::new(Active {
                config: WebConfig::default(),
                tls: None,
            })),
            basic: basic::BasicAuth::default(),
        })
    }

    /// Loads `path` (or nothing: [`Layer::plain`]), certificates included.
    pub fn load(path: Option<&Path>) -> Result<Arc<Layer>, ConfigError> {
        let Some(path) = path else { return Ok(Layer::plain()) };
        let active = Active::build(WebConfig::load(path)?)?;
        Ok(Arc::new(Layer {
            path: Some(path.to_path_buf()),
            active: RwLock::new(Arc::new(active)),
            basic: basic::BasicAuth::default(),
        }))
    }

    fn active(&self) -> Arc<Active> {
        crate::sync::read(&self.active).clone()
    }

    /// Re-reads the web config file and the files it names. On error the
    /// running settings stay and the error (naming the key) is returned.
    /// Turning TLS on or off needs a restart (clients would have to change
    /// scheme mid-flight), as with the toolkit.
    pub fn reload(&self) -> Result<(), ConfigError> {
        if let Some(next) = self.prepare_reload()? {
            self.commit(next);
        }
        Ok(())
    }

    /// The first half of [`Layer::reload`]: reads and checks the file
    /// without applying it (`None` without a file), so a reload of the whole
    /// application can check everything before it swaps anything.
    pub fn prepare_reload(&self) -> Result<Option<Prepared>, ConfigError> {
        let Some(path) = &self.path else { return Ok(None) };
        let next = Active::build(WebConfig::load(path)?)?;
        if next.tls.is_some() != self.active().tls.is_some() {
            return Err(ConfigError::invalid(
                "tls_server_config",
                "turning TLS on or off needs a restart; keeping the running web config",
            ));
        }
        Ok(Some(Prepared(Arc::new(next))))
    }

    /// The second half of [`Layer::reload`]: applies what
    /// [`Layer::prepare_reload`] read.
    pub fn commit(&self, next: Prepared) {
        *crate::sync::write(&self.active) = next.0;
        if let Some(path) = &self.path {
            tracing::info!(file = %path.display(), "web config reloaded");
        }
    }

    /// The web config file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The basic-auth users a prepared reload would serve.
    pub fn users_of(next: &Prepared) -> Vec<String> {
        next.0.config.users.keys().cloned().collect()
    }

    pub fn tls_enabled(&self) -> bool {
        self.active().tls.is_some()
    }

    /// The users of `basic_auth_users` (empty: basic auth off).
    pub fn users(&self) -> Vec<String> {
        self.active().config.users.keys().cloned().collect()
    }

    /// Runs the TLS handshake when TLS is on.
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<Conn> {
        match &self.active().tls {
            None => Ok(Either::Left(tcp)),
            Some(acceptor) => Ok(Either::Right(acceptor.accept(tcp).await?)),
        }
    }

    /// Checks basic auth when `basic_auth_users` is set: `Some(401)` for
    /// missing or wrong credentials, else the request goes on with the
    /// [`WebUser`] in its extensions.
    pub async fn authorize<B>(&self, req: &mut Request<B>) -> Option<Response<Body>> {
        let active = self.active();
        if active.config.users.is_empty() {
            return None;
        }
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| basic::parse_header(v.as_bytes()));
        if let Some((user, password)) = given
            && self.basic.check(&active.config.users, &user, password).await
        {
            req.extensions_mut().insert(WebUser(user));
            return None;
        }
        let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Basic"));
        Some(r)
    }

    /// Adds `http_server_config.headers` to a response.
    pub fn decorate(&self, resp: &mut Response<Body>) {
        for (name, value) in &self.active().config.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

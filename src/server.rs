//! The HTTP server (hyper 1.x): `/metrics`, the landing page, health and
//! readiness endpoints, `POST /-/reload`, with graceful shutdown. Every
//! connection and request passes the web layer ([`crate::web::Layer`]: TLS,
//! basic auth, headers) before it reaches a route.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::ACCEPT;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::http::{Body, CLASSIC_TYPE, HTML_TYPE, OPENMETRICS_TYPE, method_not_allowed, response, text};

/// Serves `app` on `listener` over plain HTTP until `shutdown` is
/// cancelled ([`serve`] without a web config).
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) -> anyhow::Result<()> {
    serve(listener, app, crate::web::Layer::plain(), shutdown).await
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` behind the web layer `web` until `shutdown`
/// is cancelled, then lets open connections finish (up to 10 s). A failed
/// `accept()` is logged and the loop goes on; the TLS handshake runs in the
/// connection's own task, so a slow client holds up no one else.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    web: Arc<crate::web::Layer>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        // EMFILE and friends: back off briefly instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (app, web, watcher) = (app.clone(), web.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let io = match tokio::time::timeout(HANDSHAKE_TIMEOUT, web.accept(stream)).await {
                        Ok(Ok(io)) => io,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let service = hyper::service::service_fn(move |mut req| {
                        let (app, web) = (app.clone(), web.clone());
                        async move {
                            let (method, path) = (req.method().clone(), req.uri().path().to_string());
                            let mut resp = match web.authorize(&mut req).await {
                                Some(refused) => refused,
                                None => route(app, req).await,
                            };
                            if resp.status().is_client_error() {
                                resp = log_refusal(resp, peer, &method, &path).await;
                            }
                            web.decorate(&mut resp);
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(io), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection error");
                    }
                });
            }
        }
    }
    tracing::info!("shutting down: waiting for open connections");
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10s; closing them");
    }
    Ok(())
}

/// Logs a refused request (4xx) with the reason it was given and who sent
/// it: a wrong token, a wrong path, a payload too large are setup errors
/// an operator finds in the service log. Returns the response unchanged.
async fn log_refusal(resp: Response<Body>, peer: SocketAddr, method: &Method, path: &str) -> Response<Body> {
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
    let reason: String = reason.chars().take(200).collect();
    tracing::warn!(
        status = parts.status.as_u16(),
        %peer,
        method = %method,
        path = %path.chars().take(200).collect::<String>(),
        reason = %reason,
        "request refused"
    );
    Response::from_parts(parts, Body::new(bytes))
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if let Some(rx) = app.receiver.as_ref().filter(|r| r.owns(&path)) {
        return rx.handle(req).await;
    }
    let get_only = |req: &Request<Incoming>| matches!(*req.method(), Method::GET | Method::HEAD);
    match path.as_str() {
        "/metrics" => {
            if !get_only(&req) {
                return method_not_allowed("GET, HEAD");
            }
            let openmetrics = req
                .headers()
                .get_all(ACCEPT)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| s.contains("application/openmetrics-text")));
            let set = app.scrape().await;
            if openmetrics {
                response(StatusCode::OK, OPENMETRICS_TYPE, set.encode_openmetrics())
            } else {
                response(StatusCode::OK, CLASSIC_TYPE, set.encode_classic())
            }
        }
        "/" => {
            if !get_only(&req) {
                return method_not_allowed("GET, HEAD");
            }
            // The receiver's sections follow the status API's rule.
            let details = app.receiver.as_ref().is_none_or(|r| r.may_read_status(&req));
            response(StatusCode::OK, HTML_TYPE, app.landing_page(details).await)
        }
        "/-/healthy" | "/-/ready" => {
            if !get_only(&req) {
                return method_not_allowed("GET, HEAD");
            }
            text(StatusCode::OK, if path == "/-/ready" { "Ready\n" } else { "Healthy\n" })
        }
        "/-/reload" => reload(&app, &req).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// `POST /-/reload` (or `PUT`, as Prometheus): 200 once reloaded, 500 with
/// the error when the file was refused, 409 when there is no file to
/// re-read (started on the embedded default without a web config). Asks for the receiver's credentials
/// when it has them, like its other control endpoints.
async fn reload(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return method_not_allowed("POST, PUT");
    }
    if app.receiver.as_ref().is_some_and(|r| !r.authorized(req)) {
        return crate::receiver::Receiver::unauthorized();
    }
    match app.reload().await {
        Ok(summary) => text(StatusCode::OK, summary),
        // Nothing was re-read, so nothing is "applied": 409, still running.
        Err(e @ crate::app::ReloadError::NoFile) => text(StatusCode::CONFLICT, format!("{e}\n")),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
    }
}

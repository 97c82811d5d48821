//! The node's HTTP server: accepting connections (over TLS when
//! configured) and serving each with hyper, within limits a client on the
//! open internet cannot stretch: a header read timeout (which also bounds
//! an idle keep-alive connection, so a slowloris client is dropped), a cap
//! on open connections, a cap on requests in progress (past it 503 with
//! `Retry-After`), and a time limit per request (admin calls, which may
//! rebuild a projection, are exempt).
//!
//! It accepts and bounds; routing is `http`'s, and what a request may do
//! is the handlers'.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::Problem;

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Longest in-flight requests are waited for at shutdown.
const DRAIN: Duration = Duration::from_secs(30);

/// The server's limits (`[server]` in `weft.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest a client may take to send a request's headers, and longest
    /// a kept-alive connection may sit idle, in milliseconds. Clients that
    /// pool connections should let them idle for less (weft's own: 20 s),
    /// or a request may meet a connection as the server closes it.
    pub header_timeout_ms: u64,
    /// Longest one request may take, body included, in milliseconds
    /// (`/admin/…` calls are exempt).
    pub request_timeout_ms: u64,
    /// Most connections open at once; past it new ones wait to be accepted.
    pub max_connections: usize,
    /// Most requests in progress at once; past it 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Token buckets on the endpoints that write (`[server.rate_limit]`).
    pub rate_limit: super::ratelimit::RateLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout_ms: 30_000,
            request_timeout_ms: 60_000,
            max_connections: 4096,
            max_concurrent_requests: 1024,
            rate_limit: super::ratelimit::RateLimits::default(),
        }
    }
}

impl Limits {
    /// Checks the limits make a usable server.
    pub fn check(&self) -> Result<(), String> {
        if self.header_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return Err("server.header_timeout_ms and request_timeout_ms must be above 0".into());
        }
        if self.max_connections == 0 || self.max_concurrent_requests == 0 {
            return Err(
                "server.max_connections and max_concurrent_requests must be at least 1".into(),
            );
        }
        self.rate_limit.check()
    }
}

/// Wraps `router` in the per-request limits.
pub fn limit(router: Router, limits: &Limits) -> Router {
    let in_progress = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let in_progress = in_progress.clone();
            async move { bounded(request, next, &in_progress, timeout).await }
        },
    ))
}

async fn bounded(
    request: Request,
    next: Next,
    in_progress: &Semaphore,
    timeout: Duration,
) -> Response {
    let Ok(_permit) = in_progress.try_acquire() else {
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is serving as many requests as it allows; try again in a moment",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    if request.uri().path().starts_with("/admin/") {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than the node allows ({} ms)",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown`
/// resolves, then lets in-flight requests finish (for at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms))
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        // Each request learns its client's address (for per-IP limits).
        let client = super::ratelimit::ClientAddr(remote);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(client);
                request
            },
        ));
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let outcome = match tls {
                None => {
                    let connection = http.serve_connection(TokioIo::new(tcp), service);
                    watcher.watch(connection).await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
            };
            if let Err(e) = outcome {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time");
    }
    Ok(())
}

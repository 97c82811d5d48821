//! The HTTP interface (docs/architecture.md §11), on axum. Handlers translate between HTTP
//! and the kernel; they hold no state of their own. The JSON shapes of
//! ActivityPub (actor documents, collections, WebFinger, NodeInfo) are
//! `weft_core::wire`'s; the operator's JSON (module listings, delivery
//! jobs) is built here, in the handlers' modules; the policies' is
//! `weft_core::wire::policy`'s.

pub mod activities;
pub mod actors;
pub mod auth;
mod body;
pub mod dashboard;
pub mod extract;
pub mod federation;
pub mod modules;
mod paging;
pub mod policies;
pub mod problem;
pub mod ratelimit;
pub mod server;
pub mod status;
pub mod sync;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use problem::Problem;

use weft_kernel::Kernel;

/// What the handlers need of the node's configuration (`weft.toml`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Activities per outbox page.
    pub page_size: usize,
    /// What modules may use per call; a module added over HTTP is checked
    /// against it.
    pub runtime: weft_runtime::Limits,
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub kernel: Arc<Kernel>,
    pub config: Arc<Settings>,
    pub public_url: Arc<str>,
    pub federation: Arc<weft_federation::Federation>,
    /// The token buckets of the endpoints that write.
    pub rate: Arc<ratelimit::Limiter>,
    /// The last hour of the node's counters ([`status::spawn_sampler`]).
    pub history: Arc<status::History>,
    /// The dashboard's logins.
    pub sessions: Arc<dashboard::Sessions>,
}

/// The node's routes.
pub fn router(state: AppState) -> Router {
    // Writes from outside take a token per client IP before any work.
    let rate = state.rate.clone();
    let per_ip = || axum::middleware::from_fn_with_state(rate.clone(), ratelimit::per_ip);
    Router::new()
        .route("/activity", post(activities::publish).route_layer(per_ip()))
        .route("/activities/{id}", get(activities::get))
        .route("/actors", get(actors::directory).post(actors::create))
        .route("/actors/{name}", get(actors::document))
        .route(
            "/actors/{name}/outbox",
            get(actors::outbox)
                .post(activities::publish_to_outbox)
                .route_layer(per_ip()),
        )
        .route(
            "/actors/{name}/inbox",
            get(federation::inbox)
                .post(federation::receive)
                .route_layer(per_ip()),
        )
        .route("/actors/{name}/head", get(actors::head))
        .route("/actors/{name}/objects/{seq}", get(activities::object))
        .route("/actors/{name}/followers", get(federation::followers))
        .route("/actors/{name}/following", get(federation::following))
        .route(
            "/inbox",
            post(federation::receive_shared).route_layer(per_ip()),
        )
        .route("/.well-known/webfinger", get(federation::webfinger))
        .route("/.well-known/nodeinfo", get(federation::nodeinfo_links))
        .route("/nodeinfo/2.1", get(federation::nodeinfo))
        .route("/admin/dead-letter", get(federation::dead_letters))
        .route("/admin/dead-letter/{id}/retry", post(federation::retry))
        .route("/admin/deliveries", get(federation::deliveries))
        .route("/admin/forks", get(federation::forks))
        .route("/admin/sync", get(sync::view).post(sync::run))
        .route("/sync/negentropy", post(sync::negentropy))
        .route("/sync/fetch", post(sync::fetch))
        .route("/artifacts", post(modules::upload))
        .route("/artifacts/{id}", get(modules::download))
        .route("/projections/define-registry", get(modules::describe))
        .route("/projections/{name}", get(modules::query))
        .route("/projections/{name}/status", get(modules::status))
        .route("/projections/{name}/{*path}", get(modules::query))
        .route("/admin/projections/dry-run", post(modules::dry_run))
        .route("/admin/projections/{name}/rebuild", post(modules::rebuild))
        .route("/admin/modules/pending", get(modules::pending))
        .route("/admin/digest", get(modules::digest))
        .route("/admin/policies", get(policies::list))
        .route("/admin/policies/{name}", get(policies::get))
        .route("/admin/policies/{name}/status", get(policies::status))
        .route("/admin/follows/pending", get(policies::pending_follows))
        .route(
            "/admin/follows/pending/{id}/approve",
            post(policies::approve_follow),
        )
        .route(
            "/admin/follows/pending/{id}/reject",
            post(policies::reject_follow),
        )
        .route(
            "/admin/modules/pending/{verb}",
            axum::routing::delete(modules::discard),
        )
        .route(
            "/admin/modules/pending/{verb}/approve",
            post(modules::approve),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/readyz", get(status::ready))
        .route("/admin/status", get(status::view))
        .route("/admin/status/history", get(status::history))
        .route("/admin/actors", get(status::actors))
        .route("/admin/actors/{name}/token", post(status::token))
        .route("/metrics", get(metrics))
        .merge(dashboard::routes())
        .fallback(|| async { Problem::not_found("no such resource on this node") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "this resource does not support that method; see the Allow header",
            )
        })
        .with_state(state)
        // Outermost: every request gets a span (method, path) that the
        // handlers' logs nest in; its status and latency are logged at
        // debug. Responses are gzipped for clients that ask for it.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                )
                .on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                ),
        )
}

/// Serves `router` on `listener` (over TLS with `tls`) within `limits`
/// until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: &server::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = server::limit(router, limits);
    server::serve(listener, router, tls, limits, shutdown).await
}

/// A document (JSON text) as `application/activity+json`.
fn activity_json(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, weft_core::wire::ACTIVITY_JSON)],
        body,
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        format!(
            "{}{}{}",
            state.kernel.metrics().render(),
            sync::metrics(&state),
            status::memory().map_or_else(String::new, |(rss, peak)| format!(
                "# HELP process_resident_memory_bytes Resident memory of the node's process.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n# HELP weft_peak_resident_memory_bytes The most resident memory the node's process has had.\n# TYPE weft_peak_resident_memory_bytes gauge\nweft_peak_resident_memory_bytes {peak}\n"
            ))
        ),
    )
}

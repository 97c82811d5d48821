//! The operator's dashboard (docs/architecture.md §11): server-rendered
//! HTML pages under `/admin` for what the JSON endpoints under `/admin/…`
//! answer — the overview with the last hour as charts, peers, deliveries
//! and dead letters, forks, parked verbs, modules, projections and
//! policies — and the operator's actions on them (retry a dead letter,
//! approve or discard a parked verb, define or roll back a module, rebuild
//! a projection), each a form `POST` that redirects back with what it did.
//!
//! Logging in takes the admin token once and keeps a session cookie
//! ([`session`]); every page and action wants a valid session, and an
//! action also a same-origin request (the cookie is `SameSite=Strict`, and
//! an `Origin` header, when sent, must be this node's). Pages forbid inline
//! script and framing.
//!
//! This module renders and dispatches only: what it shows is read from the
//! store, the kernel, the federation and [`crate::status`]; what it does
//! goes through the same kernel and federation calls the JSON endpoints
//! use.

mod assets;
mod chart;
mod pages;
pub mod session;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::extract::Path;
use super::{AppState, Problem};
use weft_kernel::{FederationWrite, KernelError, now_ms};

pub use session::Sessions;

/// The dashboard's routes (merged into the node's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/admin", get(overview))
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/ui/assets/app.css", get(css))
        .route("/admin/ui/assets/app.js", get(js))
        .route("/admin/ui/peers", get(peers))
        .route("/admin/ui/deliveries", get(deliveries))
        .route("/admin/ui/forks", get(forks))
        .route("/admin/ui/parked", get(parked))
        .route("/admin/ui/modules", get(modules))
        .route("/admin/ui/projections", get(projections))
        .route("/admin/ui/policies", get(policies))
        .route("/admin/ui/dead-letters/{id}/retry", post(retry))
        .route("/admin/ui/parked/{verb}/approve", post(approve))
        .route("/admin/ui/parked/{verb}/discard", post(discard))
        .route("/admin/ui/modules/define", post(define))
        .route("/admin/ui/modules/{name}/rollback", post(rollback))
        .route("/admin/ui/projections/{name}/rebuild", post(rebuild))
}

/// A request from a logged-in operator. Without a session a page
/// redirects to the login form (an action answers 401); an action whose
/// `Origin` is another site's is refused (403).
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let id = parts
            .headers
            .get(header::COOKIE)
            .and_then(|h| h.to_str().ok())
            .and_then(session::from_cookies);
        let logged_in = id.is_some_and(|id| state.sessions.valid(id, now_ms()));
        let reading = parts.method == axum::http::Method::GET;
        if !logged_in {
            return Err(if reading {
                Redirect::to("/admin/login").into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "log in at /admin/login first").into_response()
            });
        }
        if !reading && !same_origin(&parts.headers) {
            return Err((
                StatusCode::FORBIDDEN,
                "this action must come from the dashboard's own pages",
            )
                .into_response());
        }
        Ok(Self)
    }
}

/// Whether a request's `Origin` (when it has one) is the host it was sent
/// to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// A page: HTML that may not be framed, cached or run inline script.
fn page(markup: maud::Markup) -> Response {
    let mut response = markup.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// What an action did, or why not, shown once on the page it returns to.
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    pub done: Option<String>,
    pub error: Option<String>,
}

/// Back to `path`, saying `result`.
fn back(path: &str, result: Result<String, String>) -> Response {
    let (key, text) = match result {
        Ok(text) => ("done", text),
        Err(text) => ("error", text),
    };
    let mut query = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                query.push(char::from(byte));
            }
            _ => query.push_str(&format!("%{byte:02X}")),
        }
    }
    Redirect::to(&format!("{path}?{key}={query}")).into_response()
}

fn problem_text(e: impl Into<Problem>) -> String {
    e.into().detail
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        assets::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        assets::JS,
    )
        .into_response()
}

/// `GET /`: what anyone who opens the node's address sees: what it is,
/// its public actors, where the machine-readable descriptions are, and
/// the way to the operator's dashboard.
async fn home(State(state): State<AppState>) -> Result<Response, Problem> {
    let base = state.kernel.public_url()?.trim_end_matches('/').to_owned();
    Ok(page(pages::home(&base, &crate::actors::listed(&state)?)))
}

async fn login_form(Query(flash): Query<Flash>) -> Response {
    page(pages::login(flash.error.as_deref()))
}

#[derive(Debug, Deserialize)]
struct Login {
    token: String,
}

/// `POST /admin/login`: the admin token opens a session.
async fn login(State(state): State<AppState>, axum::Form(form): axum::Form<Login>) -> Response {
    let admin = matches!(
        state.kernel.authenticate(form.token.trim()),
        Ok(Some(weft_store::Role::Admin))
    );
    if !admin {
        let mut response = page(pages::login(Some(
            "that is not this node's admin token (it is in admin.token in the data folder)",
        )));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let id = state.sessions.open(now_ms());
    let mut response = Redirect::to("/admin").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(Some(&id))) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(session::from_cookies)
    {
        state.sessions.close(id);
    }
    let mut response = Redirect::to("/admin/login").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(None)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn overview(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let summary = crate::status::summary(&state)?;
    let samples = state.history.samples();
    Ok(page(pages::overview(&flash, &summary, &samples, now_ms())))
}

async fn peers(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let mut queued: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for job in reader.jobs()? {
        queued.entry(job.origin).or_default().0 += 1;
    }
    for job in reader.dead_letters()? {
        queued.entry(job.origin).or_default().1 += 1;
    }
    let mut sync = Vec::new();
    for s in reader.sync_states()? {
        let held = reader.held_tip(&s.actor)?.map(|h| h.0);
        sync.push((s, held));
    }
    let delivery = state.federation.deliveries.all();
    Ok(page(pages::peers(
        &flash,
        &delivery,
        &queued,
        &sync,
        now_ms(),
    )))
}

async fn deliveries(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let jobs = reader.jobs()?;
    let dead = reader.dead_letters()?;
    let healed = reader.healed()?;
    Ok(page(pages::deliveries(&flash, &jobs, &dead, &healed)))
}

async fn forks(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let forks = reader.forks()?;
    let kept: Vec<Option<String>> = forks
        .iter()
        .map(|(actor, seq, _, _)| reader.activity_at(actor, *seq).ok().flatten())
        .collect();
    Ok(page(pages::forks(&flash, &forks, &kept)))
}

async fn parked(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let pending = crate::modules::describe_pending(&state.kernel)?;
    Ok(page(pages::parked(&flash, &pending)))
}

async fn modules(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let registry = state
        .kernel
        .registry()
        .ok_or_else(|| Problem::not_found("this node runs without a WASM runtime"))?;
    let view = crate::modules::registry_view(&registry.describe()?);
    Ok(page(pages::modules(&flash, &view)))
}

async fn projections(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let summary = crate::status::summary(&state)?;
    let reader = state.kernel.store().read()?;
    let mut errors = std::collections::BTreeMap::new();
    for p in summary["projections"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        errors.insert(name.clone(), reader.projection_status(&name)?.errors);
    }
    Ok(page(pages::projections(&flash, &summary, &errors)))
}

async fn policies(
    State(state): State<AppState>,
    _: Operator,
    Query(flash): Query<Flash>,
) -> Result<Response, Problem> {
    let statuses = state.kernel.policy_statuses();
    let rows: Vec<(
        weft_kernel::policy::Policy,
        Option<weft_kernel::policy::PolicyStatus>,
    )> = state
        .kernel
        .policies()?
        .into_iter()
        .map(|p| {
            let status = statuses.get(&p.name);
            (p, status)
        })
        .collect();
    Ok(page(pages::policies(&flash, &rows)))
}

/// `POST /admin/ui/dead-letters/{id}/retry`.
async fn retry(State(state): State<AppState>, _: Operator, Path(id): Path<String>) -> Response {
    let to = "/admin/ui/deliveries";
    let Ok(id) = id.parse::<u64>() else {
        return back(to, Err(format!("`{id}` is not a dead letter's number")));
    };
    let result = state
        .kernel
        .federation_write(vec![FederationWrite::Revive {
            id,
            now_ms: now_ms(),
        }])
        .await;
    back(
        to,
        result
            .map(|()| format!("dead letter {id} queued for delivery again"))
            .map_err(problem_text),
    )
}

/// `POST /admin/ui/parked/{verb}/approve`.
async fn approve(State(state): State<AppState>, _: Operator, Path(verb): Path<String>) -> Response {
    let result = state.federation.approve(&verb).await;
    back(
        "/admin/ui/parked",
        result
            .map(|n| format!("verb `{verb}` admitted; {n} parked activities ingested"))
            .map_err(problem_text),
    )
}

/// `POST /admin/ui/parked/{verb}/discard`.
async fn discard(State(state): State<AppState>, _: Operator, Path(verb): Path<String>) -> Response {
    let result = weft_federation::modules::discard(&state.kernel, &verb).await;
    back(
        "/admin/ui/parked",
        result
            .map(|n| format!("verb `{verb}` discarded with its {n} parked activities"))
            .map_err(problem_text),
    )
}

#[derive(Debug, Deserialize)]
struct Rollback {
    version: u32,
}

/// `POST /admin/ui/modules/{name}/rollback` (form: `version`): defines the
/// module again as that version, as the service actor.
async fn rollback(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<Rollback>,
) -> Response {
    let to = "/admin/ui/modules";
    let result = async {
        let record = state
            .kernel
            .store()
            .read()?
            .module(&name)?
            .ok_or_else(|| KernelError::NotFound(format!("no module `{name}`")))?;
        let current = record
            .versions
            .last()
            .ok_or_else(|| KernelError::NotFound(format!("`{name}` has no version")))?;
        let target = record
            .versions
            .iter()
            .find(|v| v.version == form.version)
            .ok_or_else(|| {
                KernelError::NotFound(format!("`{name}` has no version {}", form.version))
            })?;
        let mut draft = Map::new();
        draft.insert("type".into(), json!(define_type(record.kind)));
        draft.insert("name".into(), json!(name));
        draft.insert("module".into(), json!(target.artifact));
        draft.insert("replaces".into(), json!(current.artifact));
        draft.insert("to".into(), json!([weft_core::model::PUBLIC]));
        if let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(&target.metadata) {
            draft.extend(meta);
        }
        let service = state.kernel.service_actor()?;
        state.kernel.publish(&service, draft).await?;
        Ok::<_, KernelError>(format!(
            "`{name}` rolled back to version {} as version {}",
            target.version,
            current.version + 1
        ))
    }
    .await;
    back(to, result.map_err(problem_text))
}

fn define_type(kind: weft_store::ModuleKind) -> &'static str {
    match kind {
        weft_store::ModuleKind::Verb => weft_kernel::registry::DEFINE_ACTIVITY,
        weft_store::ModuleKind::Projection => weft_kernel::registry::DEFINE_PROJECTION,
    }
}

#[derive(Debug, Deserialize)]
struct Define {
    kind: String,
    name: String,
    #[serde(default)]
    replace: String,
    #[serde(default)]
    force: String,
}

/// `POST /admin/ui/modules/define?kind=&name=&replace=&force=`, the body a
/// component: uploads it and defines it as the service actor, as `weft
/// module add` does (metadata carried over, a built-in replaced only with
/// `replace`, a projection dry-run first). Answers `{message}` for the
/// page's script.
async fn define(
    State(state): State<AppState>,
    _: Operator,
    Query(form): Query<Define>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let answer = |status: StatusCode, message: String| {
        (status, axum::Json(json!({"message": message}))).into_response()
    };
    let kind = match form.kind.as_str() {
        "verb" => weft_store::ModuleKind::Verb,
        "projection" => weft_store::ModuleKind::Projection,
        other => {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`{other}` is not a kind: verb or projection"),
            );
        }
    };
    let limit = state.config.runtime.max_artifact_bytes;
    let bytes = match crate::body::bytes(&headers, body, limit, "the module").await {
        Ok(b) if b.starts_with(b"\0asm") => b,
        Ok(_) => {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                "that file is not WebAssembly: choose the .wasm your build produced".into(),
            );
        }
        Err(p) => return answer(p.status, p.detail),
    };
    let result = async {
        let artifact = state.kernel.put_artifact(bytes.to_vec()).await?;
        let current = state.kernel.store().read()?.module(&form.name)?;
        let mut draft = Map::new();
        draft.insert("type".into(), json!(define_type(kind)));
        draft.insert("name".into(), json!(form.name));
        draft.insert("module".into(), json!(artifact));
        draft.insert("to".into(), json!([weft_core::model::PUBLIC]));
        if let Some(version) = current.as_ref().and_then(|r| r.versions.last()) {
            if let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(&version.metadata) {
                draft.extend(meta.into_iter().filter(|(k, _)| k != "wit"));
            }
            if !form.replace.is_empty() {
                draft.insert("replaces".into(), json!(version.artifact));
            }
        }
        if kind == weft_store::ModuleKind::Projection && form.force.is_empty() {
            let registry = state.kernel.registry().cloned().ok_or_else(|| {
                KernelError::NotFound("this node runs without a WASM runtime".into())
            })?;
            let (id, name) = (artifact.clone(), form.name.clone());
            let run = tokio::task::spawn_blocking(move || {
                registry.dry_run(&name, &id, 100, std::time::Duration::from_secs(10))
            })
            .await
            .map_err(|e| KernelError::NotCommitted(e.to_string()))?
            .map_err(|m| KernelError::field("module", m))?;
            if run.tried > 0 && run.folded == 0 {
                return Err(KernelError::field(
                    "module",
                    format!(
                        "failed every fold of its dry run over the newest {} activities (first error: {}); fix it, or tick “define anyway”",
                        run.tried,
                        run.first_error.unwrap_or_default()
                    ),
                ));
            }
        }
        let service = state.kernel.service_actor()?;
        state.kernel.publish(&service, draft).await?;
        Ok::<_, KernelError>(format!(
            "defined {} `{}` as module {artifact}",
            kind.as_str(),
            form.name
        ))
    }
    .await;
    match result {
        Ok(message) => answer(StatusCode::OK, message),
        Err(e) => {
            let p = Problem::from(e);
            answer(p.status, p.detail)
        }
    }
}

/// `POST /admin/ui/projections/{name}/rebuild`: starts the rebuild and
/// returns at once; the projections page shows its progress.
async fn rebuild(State(state): State<AppState>, _: Operator, Path(name): Path<String>) -> Response {
    let to = "/admin/ui/projections";
    let known = state
        .kernel
        .registry()
        .is_some_and(|r| r.projection(&name).is_some());
    if !known {
        return back(to, Err(format!("no projection `{name}` on this node")));
    }
    let kernel = state.kernel.clone();
    let started = name.clone();
    tokio::spawn(async move {
        if let Err(e) = kernel.rebuild(&started).await {
            tracing::warn!(projection = %started, error = %e, "a rebuild from the dashboard failed");
        }
    });
    back(to, Ok(format!("rebuilding `{name}`")))
}

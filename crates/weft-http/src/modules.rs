//! Modules over HTTP: artifact upload and download, the registry view,
//! projection status and queries, rebuilds, and peers' verbs pending
//! admission. The registry view's format is `weft_core::wire::registry`'s;
//! the operator's JSON (status, pending modules) is written here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Admin, Caller};
use super::extract::Path;
use super::{AppState, Problem, body};
use weft_core::wire::registry as registry_view;
use weft_kernel::registry::{Described, QueryFault, Registry};
use weft_kernel::{Kernel, KernelError};
use weft_runtime::{QueryError, Visible};
use weft_store::ModuleKind;

fn registry(state: &AppState) -> Result<&std::sync::Arc<Registry>, Problem> {
    state
        .kernel
        .registry()
        .ok_or_else(|| Problem::not_found("this node runs without a WASM runtime"))
}

/// `POST /artifacts` (admin): the body is a WASM component; answers its id.
pub async fn upload(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let limit = state.config.runtime.max_artifact_bytes;
    let bytes = body::bytes(&headers, body, limit, "the artifact").await?;
    if bytes.is_empty() {
        return Err(Problem::bad_request(
            "the body must be a WebAssembly component; it is empty",
        ));
    }
    let size = bytes.len();
    let id = state.kernel.put_artifact(bytes.to_vec()).await?;
    let location = format!("{}/artifacts/{id}", state.public_url);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(json!({"id": id, "size": size})),
    )
        .into_response())
}

/// `GET /artifacts/{id}`: the artifact's bytes.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let bytes = state
        .kernel
        .store()
        .read()?
        .artifact(&id)?
        .ok_or_else(|| Problem::not_found(format!("no artifact {id} on this node")))?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response())
}

/// `GET /projections/define-registry`: every verb and projection, with versions.
pub async fn describe(State(state): State<AppState>) -> Result<Response, Problem> {
    let modules = registry(&state)?.describe()?;
    Ok(axum::Json(registry_view(&modules)).into_response())
}

/// The registry's modules as the registry view lists them.
pub(crate) fn registry_view(modules: &[Described]) -> Value {
    let (mut verbs, mut projections) = (Vec::new(), Vec::new());
    for described in modules {
        let record = &described.record;
        let entry = registry_view::Module {
            name: &record.name,
            active: described.active,
            fuel: described.budget.fuel,
            memory: described.budget.memory,
            versions: record
                .versions
                .iter()
                .map(|v| registry_view::Version {
                    version: v.version,
                    module: &v.artifact,
                    defined_by: &v.defined_by,
                    defined: &v.defined_at,
                    metadata: &v.metadata,
                })
                .collect(),
        }
        .to_json();
        match record.kind {
            ModuleKind::Verb => verbs.push(entry),
            ModuleKind::Projection => projections.push(entry),
        }
    }
    registry_view::view(verbs, projections)
}

/// `GET /projections/{name}/status`: how far it folded and what failed,
/// and while it is being built, how far the build has come.
pub async fn status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let registry = registry(&state)?;
    let module = registry
        .projection(&name)
        .ok_or_else(|| Problem::not_found(format!("no projection `{name}` on this node")))?;
    // Everything below comes from one snapshot, so the answer is one
    // moment's: the registry's memory of what it builds changes before the
    // transaction that starts or ends a build commits.
    let reader = state.kernel.store().read()?;
    let status = reader.projection_status(&name)?;
    let building = match reader.projection_builds()?.get(&name) {
        Some(next) => json!({"folded": next.saturating_sub(1), "of": reader.last_position()?}),
        None => Value::Null,
    };
    let errors: Vec<Value> = status
        .errors
        .iter()
        .map(|e| json!({"position": e.position, "activity": e.activity, "message": e.message}))
        .collect();
    Ok(axum::Json(json!({
        "name": name,
        "module": module.artifact,
        "position": status.position,
        "lastActivity": status.last_activity,
        "folded": status.folded,
        "failed": status.failed,
        "errors": errors,
        "building": building,
        "generation": reader.projection_generation(&name)?,
        "rebuilding": reader.projection_rebuilds()?.contains_key(&name),
    }))
    .into_response())
}

/// `GET /projections/{name}` and `/projections/{name}/{path…}?…`: the
/// projection's `query`, reading the log as the caller may (a feed shows
/// an anonymous reader its public activities only).
pub async fn query(
    State(state): State<AppState>,
    Path(parts): Path<Vec<(String, String)>>,
    uri: axum::http::Uri,
    caller: Caller,
) -> Result<Response, Problem> {
    let get = |k: &str| {
        parts
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (name, path) = (get("name"), get("path"));
    let params: Vec<(String, String)> = uri
        .query()
        .map(url_pairs)
        .transpose()
        .map_err(Problem::bad_request)?
        .unwrap_or_default();
    let registry = registry(&state)?.clone();
    // What the projection reads of the log is what the caller may read.
    let view = caller.view(&state.kernel);
    let visible: Visible = Arc::new(move |record| view.may_read(record));
    let answer = state
        .kernel
        .workers()
        .run(move || {
            registry
                .query(&name, &path, &params, Some(visible))
                .map_err(|e| (name, e))
        })
        .await
        .map_err(|busy| Problem::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()))?;
    match answer {
        Ok(Ok(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(value) => Ok(axum::Json(value).into_response()),
            Err(_) => Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "the projection answered with text that is not JSON",
            )),
        },
        Ok(Err(QueryError::NotFound(m))) => Err(Problem::not_found(m)),
        Ok(Err(QueryError::BadRequest(m))) => Err(Problem::bad_request(m)),
        Err((name, QueryFault::Unknown)) => Err(Problem::not_found(format!(
            "no projection `{name}` on this node"
        ))),
        Err((_, QueryFault::Runtime(e))) => Err(Problem::new(
            if e.is_transient() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            },
            e.to_string(),
        )),
        Err((_, QueryFault::Store(e))) => Err(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Err((_, QueryFault::Building(m))) => Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, m)),
    }
}

/// `POST /admin/projections/{name}/rebuild` (admin): refold from the log.
pub async fn rebuild(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let folded = state.kernel.rebuild(&name).await?;
    Ok(axum::Json(json!({"name": name, "folded": folded})).into_response())
}

/// How many of the newest activities a dry run folds, and for how long.
const DRY_RUN_ACTIVITIES: u64 = 100;
const DRY_RUN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /admin/projections/dry-run` (admin), `{"module": artifact id,
/// "name": the projection's name (for messages)}`:
/// folds the uploaded projection over the newest 100 activities in a
/// scratch store (nothing is written here) and answers `{tried, folded,
/// failed, firstError, timedOut}`, what `weft module add projection`
/// checks before it defines one.
pub async fn dry_run(
    State(state): State<AppState>,
    _: Admin,
    axum::Json(body): axum::Json<Value>,
) -> Result<Response, Problem> {
    let artifact = body
        .get("module")
        .and_then(Value::as_str)
        .filter(|m| weft_core::model::cid::is_artifact_id(m))
        .ok_or_else(|| {
            Problem::unprocessable(
                Some("module".into()),
                "`module` must be the id of an uploaded artifact (POST /artifacts)",
            )
        })?
        .to_owned();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("dry-run")
        .to_owned();
    let registry = registry(&state)?.clone();
    let run = tokio::task::spawn_blocking(move || {
        registry.dry_run(&name, &artifact, DRY_RUN_ACTIVITIES, DRY_RUN_TIME)
    })
    .await
    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|m| Problem::unprocessable(Some("module".into()), m))?;
    Ok(axum::Json(json!({
        "tried": run.tried,
        "folded": run.folded,
        "failed": run.tried - run.folded,
        "firstError": run.first_error,
        "timedOut": run.timed_out,
    }))
    .into_response())
}

/// `GET /admin/modules/pending` (admin): peers' verbs waiting for
/// admission and the activities parked for them.
pub async fn pending(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    Ok(axum::Json(describe_pending(&state.kernel)?).into_response())
}

/// `POST /admin/modules/pending/{verb}/approve` (admin): admit a peer's
/// verb that awaits approval and ingest its parked activities.
pub async fn approve(
    State(state): State<AppState>,
    _: Admin,
    Path(verb): Path<String>,
) -> Result<Response, Problem> {
    let released = state.federation.approve(&verb).await?;
    Ok(axum::Json(json!({"verb": verb, "admitted": true, "released": released})).into_response())
}

/// `DELETE /admin/modules/pending/{verb}` (admin): drop a peer's verb and
/// the activities parked for it.
pub async fn discard(
    State(state): State<AppState>,
    _: Admin,
    Path(verb): Path<String>,
) -> Result<Response, Problem> {
    let discarded = weft_federation::modules::discard(&state.kernel, &verb).await?;
    Ok(axum::Json(json!({"verb": verb, "discarded": discarded})).into_response())
}

/// The pending modules and parked activities, as `GET
/// /admin/modules/pending` (and so `weft module pending`) shows them.
pub(crate) fn describe_pending(kernel: &Kernel) -> Result<Value, KernelError> {
    let reader = kernel.store().read()?;
    let parked = reader.parked(None)?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in &parked {
        *counts.entry(p.verb.as_str()).or_default() += 1;
    }
    let modules: Vec<Value> = reader
        .pending_modules()?
        .into_iter()
        .map(|m| {
            json!({
                "verb": m.verb,
                "state": m.state.as_str(),
                "reason": m.reason,
                "origin": m.origin,
                "definer": m.definer,
                "module": m.module,
                "definedBy": m.define.as_deref()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .and_then(|d| d.get("id").cloned()),
                "parked": counts.get(m.verb.as_str()).copied().unwrap_or(0),
                "updated": m.updated_at,
            })
        })
        .collect();
    let activities: Vec<Value> = parked
        .iter()
        .map(|p| {
            let actor = serde_json::from_str::<Value>(&p.json)
                .ok()
                .and_then(|v| v.get("actor").cloned());
            json!({
                "verb": p.verb,
                "id": p.id,
                "actor": actor,
                "recipients": p.recipients,
                "backfilled": p.backfilled,
                "received": p.received_at,
            })
        })
        .collect();
    Ok(json!({"modules": modules, "activities": activities}))
}

/// Decodes `a=1&b=x%20y` into pairs, in order.
fn url_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is
/// a space, `%XX` a byte; the result must be UTF-8.
pub fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .ok_or("a `%` escape in the query string is cut short")?;
                // Two hex digits: `from_str_radix` alone would take `+1`.
                let byte = u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| format!("`%{hex}` is not a valid escape"))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the query string is not UTF-8".to_owned())
}

/// `GET /admin/digest` (admin): counts and hashes of the log, each
/// projection's state, and the module and federation tables, to compare a
/// node with itself before and after something, or with another node.
pub async fn digest(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let kernel = state.kernel.clone();
    let digest = tokio::task::spawn_blocking(move || kernel.store().read()?.digest())
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(axum::Json(digest).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_in_order() {
        assert_eq!(
            url_pairs("actor=http%3A%2F%2Fx%2Fa&limit=5&q=a+b&flag").expect("valid"),
            vec![
                ("actor".into(), "http://x/a".into()),
                ("limit".into(), "5".into()),
                ("q".into(), "a b".into()),
                ("flag".into(), String::new())
            ]
        );
        assert!(url_pairs("a=%zz").is_err());
        // Found by fuzzing: a sign is not a hex digit.
        assert!(url_pairs("a=%+A").is_err());
        assert_eq!(percent_decode("%2b%2B"), Ok("++".to_owned()));
        assert!(url_pairs("a=%e9").is_err());
    }
}

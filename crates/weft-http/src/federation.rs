//! Federation over HTTP (docs/architecture.md §8, §11): the inbox (`POST` from peers,
//! `GET` for its owner), the followers and following collections,
//! WebFinger and NodeInfo, and the operator's view of deliveries, dead
//! letters and forks.
//!
//! Handlers translate; verifying and storing is `weft_federation`'s job,
//! and the documents are `weft_core::wire`'s.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::actors::find;
use super::auth::{Admin, Caller};
use super::extract::{Path, Query};
use super::paging::{Paging, page_limit, page_number};
use super::{AppState, Problem, activity_json, body};
use weft_core::wire::{collection, nodeinfo, webfinger};
use weft_federation::signatures::{Request as SignedRequest, is_signed};
use weft_federation::{InboxError, Received};
use weft_kernel::{FederationWrite, now_ms};
use weft_store::Job;

impl From<InboxError> for Problem {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::Malformed(m) => Problem::bad_request(m),
            InboxError::Unauthorized(m) => Problem::unauthorized(m),
            InboxError::UnknownRecipient(_) => Problem::not_found(e.to_string()),
            InboxError::Rejected { field, message } => Problem::unprocessable(field, message),
            InboxError::Unavailable(m) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, m),
            InboxError::Forbidden(m) => Problem::forbidden(m),
            InboxError::Quota(m) => Problem::new(StatusCode::INSUFFICIENT_STORAGE, m),
            InboxError::UnsupportedMediaType(m) => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, m)
            }
            InboxError::RateLimited { origin, .. } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many activities from {origin}; retry later"),
            ),
            InboxError::Kernel(k) => k.into(),
        }
    }
}

/// `POST /actors/{name}/inbox`: an activity from a peer.
pub async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    deliver(&state, Some(&name), &method, &uri, &headers, body)
        .await
        .unwrap_or_else(|refused| refused)
}

/// `POST /inbox`: the shared inbox; an activity for whichever local actors
/// it is addressed to (or whose followers it names).
pub async fn receive_shared(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    deliver(&state, None, &method, &uri, &headers, body)
        .await
        .unwrap_or_else(|refused| refused)
}

/// A refused inbox request as a response: a problem document, with
/// `Retry-After` when the sender's origin is over its rate.
fn refusal(e: InboxError) -> Response {
    match e {
        InboxError::RateLimited {
            origin,
            retry_after,
        } => super::ratelimit::too_many(
            format!(
                "too many activities from {origin}: this node takes at most its `[server.rate_limit] per_origin_per_second` from one origin"
            ),
            &super::ratelimit::Limited { retry_after },
        ),
        other => Problem::from(other).into_response(),
    }
}

/// Whether a request's `Content-Type`, if it has one, is JSON
/// (`application/json`, `application/activity+json`, `application/ld+json`
/// or another `application/…+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Checks the request's HTTP signature, when it has one, and hands the
/// activity to federation. The sender's origin takes a token from its
/// bucket once it is proven: by the HTTP signature, or for an unsigned
/// weft envelope by the author's proof.
async fn deliver(
    state: &AppState,
    name: Option<&str>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    if !is_json(headers) {
        return Err(refusal(InboxError::UnsupportedMediaType(format!(
            "an inbox takes JSON: send `Content-Type: application/activity+json` (or application/ld+json, application/json), not `{}`",
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(not text)")
        ))));
    }
    let bytes = body::bytes(headers, body, state.config.max_body_bytes, "the body")
        .await
        .map_err(IntoResponse::into_response)?;
    let activity = body::parse_inbox_object(&bytes).map_err(IntoResponse::into_response)?;
    let budget = state.federation.budget();
    let rate = state.rate.clone();
    let gate = move |origin: &str| {
        rate.check_origin(origin)
            .map_err(|limited| InboxError::RateLimited {
                origin: origin.to_owned(),
                retry_after: limited.retry_after,
            })
    };
    let signed_by = if is_signed(headers) {
        let signed_by = request_signer(state, method, uri, headers, &bytes, &budget)
            .await
            .map_err(refusal)?;
        if let Some(origin) = weft_core::model::origin(&signed_by.actor) {
            gate(&origin).map_err(refusal)?;
        }
        Some(signed_by)
    } else {
        None
    };
    let (id, status) = match state
        .federation
        .receive_gated(name, activity, signed_by, &budget, &gate)
        .await
        .map_err(refusal)?
    {
        Received::Accepted(id) => (id, "accepted"),
        Received::Duplicate(id) => (id, "duplicate"),
        Received::Parked(id) => (id, "pending"),
        Received::Ignored(id) => (id, "ignored"),
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "status": status})),
    )
        .into_response())
}

/// `GET /actors/{name}/inbox` with the owner's (or the admin) token: the
/// collection, or `?page=N` (newest first) with an optional `limit`.
pub async fn inbox(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    caller: Caller,
) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let actor = find(&reader, &name)?;
    if !caller.owns(&actor.id)? {
        return Err(Problem::unauthorized(
            "an inbox is private: send its owner's token",
        ));
    }
    let limit = page_limit(&query, state.config.page_size)?;
    let base = format!("{}/inbox", actor.id);
    let paging = Paging {
        base: &base,
        total: reader.inbox_count(&actor.id)?,
        limit,
        named: true,
    };
    let body = match page_number(&query)? {
        None => paging.collection(),
        Some(page) => paging.page(page, |oldest, newest| {
            Ok(reader
                .inbox_range(&actor.id, oldest, newest)?
                .into_iter()
                .filter_map(|r| RawValue::from_string(r.json).ok())
                .collect())
        })?,
    };
    Ok(activity_json(body.to_string()))
}

/// `GET /actors/{name}/followers`.
pub async fn followers(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    collection(&state, &name, "followers")
}

/// `GET /actors/{name}/following`.
pub async fn following(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    collection(&state, &name, "following")
}

fn collection(state: &AppState, name: &str, list: &str) -> Result<Response, Problem> {
    let actor = find(&state.kernel.store().read()?, name)?;
    let items = if list == "followers" {
        state.kernel.followers(&actor.id)?
    } else {
        state.kernel.following(&actor.id)?
    };
    let body = collection::whole(&format!("{}/{list}", actor.id), &items);
    Ok(activity_json(body.to_string()))
}

/// `GET /.well-known/webfinger?resource=acct:name@host:port`.
pub async fn webfinger(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let resource = query.get("resource").ok_or_else(|| {
        Problem::bad_request("`resource` is required, e.g. ?resource=acct:alice@host:port")
    })?;
    let base = state.kernel.public_url()?;
    let authority = base.split_once("://").map_or(base, |(_, rest)| rest);
    let actor_id = if let Some(acct) = resource.strip_prefix("acct:") {
        let (name, host) = acct
            .rsplit_once('@')
            .ok_or_else(|| Problem::bad_request("an acct: resource is `acct:name@host[:port]`"))?;
        if !host.eq_ignore_ascii_case(authority) {
            return Err(Problem::not_found(format!(
                "{host} is not this node ({authority})"
            )));
        }
        format!("{base}/actors/{name}")
    } else if resource.starts_with("http://") || resource.starts_with("https://") {
        resource.clone()
    } else {
        return Err(Problem::bad_request(
            "`resource` must be acct:name@host[:port] or an actor URL",
        ));
    };
    let actor = state
        .kernel
        .store()
        .read()?
        .actor(&actor_id)?
        .ok_or_else(|| Problem::not_found(format!("no actor {resource} on this node")))?;
    let body = webfinger::jrd(&format!("acct:{}@{authority}", actor.username), &actor.id);
    Ok((
        [(header::CONTENT_TYPE, webfinger::JRD_JSON)],
        body.to_string(),
    )
        .into_response())
}

/// `GET /.well-known/nodeinfo`: where the NodeInfo document is.
pub async fn nodeinfo_links(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        nodeinfo::links(&state.public_url).to_string(),
    )
        .into_response()
}

/// `GET /nodeinfo/2.1`: NodeInfo 2.1, what software this node runs and
/// how big it is.
pub async fn nodeinfo(State(state): State<AppState>) -> Result<Response, Problem> {
    let (users, posts) = state.kernel.store().read()?.local_usage()?;
    Ok((
        [(header::CONTENT_TYPE, nodeinfo::MEDIA_TYPE)],
        nodeinfo::document(users, posts).to_string(),
    )
        .into_response())
}

/// A delivery job as the admin endpoints and `weft dead-letter` show it.
fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id,
        "activity": job.activity,
        "recipient": job.recipient,
        "origin": job.origin,
        "attempts": job.attempts,
        "nextAttempt": humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(job.next_at_ms)).to_string(),
        "created": humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(job.created_ms)).to_string(),
        "lastError": job.last_error,
    })
}

/// The verified signer of a signed request to this node (the request's
/// target and the node's own scheme make the signed string).
pub(crate) async fn request_signer(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    budget: &weft_federation::Budget,
) -> Result<weft_federation::signatures::SignedBy, InboxError> {
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let scheme = if state.public_url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let request = SignedRequest {
        method,
        target,
        headers,
        body,
        scheme,
    };
    state.federation.check_signature(&request, budget).await
}

/// `GET /admin/dead-letter`: deliveries that gave up.
/// A dead letter carries `healed` (and when) once anti-entropy found the
/// recipient's node holding its activity: it no longer matters.
pub async fn dead_letters(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let healed = reader.healed()?;
    let items = reader
        .dead_letters()?
        .iter()
        .map(|job| {
            let mut item = job_json(job);
            let at = healed.get(&job.id);
            item["healed"] = json!(at.is_some());
            if let Some(ms) = at {
                item["healedAt"] = json!(rfc3339_ms(*ms));
            }
            item
        })
        .collect();
    Ok(listing(items))
}

fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// `GET /admin/deliveries`: deliveries still queued.
pub async fn deliveries(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let jobs = state.kernel.store().read()?.jobs()?;
    Ok(listing(jobs.iter().map(job_json).collect()))
}

/// `POST /admin/dead-letter/{id}/retry`: queue a dead letter again, due now.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<Response, Problem> {
    let id: u64 = id
        .parse()
        .map_err(|_| Problem::bad_request("the dead letter id is a whole number"))?;
    state
        .kernel
        .federation_write(vec![FederationWrite::Revive {
            id,
            now_ms: now_ms(),
        }])
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "status": "queued"})),
    )
        .into_response())
}

/// `GET /admin/forks`: evidence of actors that signed two different
/// activities at one position.
pub async fn forks(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let items: Vec<Value> = reader
        .forks()?
        .into_iter()
        .map(|(actor, seq, other, json)| {
            let kept = reader.activity_at(&actor, seq).ok().flatten();
            json!({
                "actor": actor,
                "seq": seq,
                "kept": kept,
                "refused": other,
                "refusedActivity": serde_json::from_str::<Value>(&json).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(listing(items))
}

/// A list as the admin endpoints answer it.
fn listing(items: Vec<Value>) -> Response {
    axum::Json(json!({"totalItems": items.len(), "items": items})).into_response()
}

//! Anti-entropy over HTTP (docs/architecture.md §10). The operator's
//! view: `GET /admin/sync` shows where sync stands with every remote actor
//! (and origin) it has tried, and `POST /admin/sync` runs a reconcile pass
//! now and answers what it did (admin only). And the answering side of set
//! reconciliation between nodes: `POST /sync/negentropy` (one negentropy
//! message in, one out) and `POST /sync/fetch` (activities by set id),
//! each HTTP-signed by an actor of the asking node, whose origin is the
//! one whose set is served: proven by the signature, never claimed.
//!
//! The loop itself is `weft_federation::reconcile`, and the protocol
//! `weft_federation::setsync`; handlers only read, prove and translate.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use serde_json::json;

use super::auth::Admin;
use super::{AppState, Problem, body};
use weft_core::wire::sync::{
    ActorSync, MAX_FETCH_IDS, OriginSync, Position, SetFetch, SetMessage, SyncView,
};
use weft_federation::setsync::SetError;
use weft_federation::signatures::is_signed;

/// `GET /admin/sync`.
pub async fn view(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let mut actors = Vec::new();
    let mut origins = Vec::new();
    for s in reader.sync_states()? {
        // Set reconciliation keeps its state under the origin's URL.
        if weft_core::model::origin(&s.actor).as_deref() == Some(s.actor.as_str()) {
            origins.push(OriginSync {
                origin: s.actor,
                last_sync_at: s.last_sync_ms.map(rfc3339_ms),
                last_error: s.last_error,
                offences: s.offences,
                last_offence: s.last_offence,
                stored: s.stored,
            });
            continue;
        }
        let held = reader.held_tip(&s.actor)?.map(|(seq, id)| {
            let url = weft_core::model::cid::activity_url(&s.actor, &id);
            (seq, url)
        });
        let lag = match (&held, &s.head) {
            (Some((held, _)), Some((head, _))) => head.saturating_sub(*held),
            (None, Some((head, _))) => *head,
            _ => 0,
        };
        actors.push(ActorSync {
            actor: s.actor,
            held: held.map(Position::from),
            head: s.head.map(Position::from),
            lag,
            last_sync_at: s.last_sync_ms.map(rfc3339_ms),
            last_error: s.last_error,
            offences: s.offences,
            last_offence: s.last_offence,
            stored: s.stored,
        });
    }
    Ok(axum::Json(SyncView { actors, origins }).into_response())
}

/// `POST /admin/sync`: one pass now, backoffs set aside.
pub async fn run(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let pass = weft_federation::reconcile::pass(&state.federation, true).await;
    Ok(axum::Json(json!({
        "actors": pass.actors,
        "rounds": pass.rounds,
        "stored": pass.stored,
        "failed": pass.failed,
        "healed": pass.healed,
        "outstanding": pass.outstanding,
        "deferred": pass.deferred,
        "origins": pass.origins,
        "setRounds": pass.set_rounds,
        "setStored": pass.set_stored,
        "pruned": pass.pruned,
        "discovered": pass.discovered,
    }))
    .into_response())
}

/// Prometheus gauges of anti-entropy, appended to `GET /metrics`: each
/// synced actor's lag (seqs between its head and what is held) and offences,
/// and the dead letters no sync has healed yet.
pub fn metrics(state: &AppState) -> String {
    let Ok(reader) = state.kernel.store().read() else {
        return String::new();
    };
    let mut out = String::new();
    out.push_str("# HELP weft_sync_lag Seqs between a followed remote actor's head and the newest of its activities held here.\n# TYPE weft_sync_lag gauge\n");
    let mut offences = String::new();
    for s in reader.sync_states().unwrap_or_default() {
        let held = reader.held_tip(&s.actor).ok().flatten().map_or(0, |h| h.0);
        let lag = s.head.as_ref().map_or(0, |h| h.0.saturating_sub(held));
        let actor = s.actor.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!("weft_sync_lag{{actor=\"{actor}\"}} {lag}\n"));
        offences.push_str(&format!(
            "weft_sync_offences{{actor=\"{actor}\"}} {}\n",
            s.offences
        ));
    }
    out.push_str("# HELP weft_sync_offences Sync ranges refused because the peer served something wrong.\n# TYPE weft_sync_offences gauge\n");
    out.push_str(&offences);
    out.push_str("# HELP weft_policy_obligations Obligations of a policy not met at the last reconcile pass.\n# TYPE weft_policy_obligations gauge\n");
    for p in state.kernel.policies().unwrap_or_default() {
        if let Some(status) = state.kernel.policy_statuses().get(&p.name) {
            out.push_str(&format!(
                "weft_policy_obligations{{policy=\"{}\"}} {}\n",
                p.name,
                status.obligations.len()
            ));
        }
    }
    let dead = reader.dead_letters().map(|d| d.len()).unwrap_or(0);
    let healed = reader.healed().map(|h| h.len()).unwrap_or(0);
    out.push_str(&format!(
        "# HELP weft_dead_letters_unhealed Dead letters no sync has found delivered.\n# TYPE weft_dead_letters_unhealed gauge\nweft_dead_letters_unhealed {}\n",
        dead.saturating_sub(healed)
    ));
    out
}

fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

impl From<SetError> for Problem {
    fn from(e: SetError) -> Self {
        match e {
            SetError::Malformed(m) => Problem::bad_request(m),
            SetError::Store(e) => e.into(),
            SetError::Internal(m) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

/// Reads a node-to-node sync request: its body (within the body limit),
/// the origin of the actor whose HTTP signature it carries (401 without a
/// valid one), within that origin's rate (429).
async fn signed_origin(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, axum::body::Bytes), Response> {
    let bytes = body::bytes(headers, body, state.config.max_body_bytes, "the body")
        .await
        .map_err(IntoResponse::into_response)?;
    if !is_signed(headers) {
        return Err(Problem::unauthorized(
            "sync requests are HTTP-signed by an actor of the asking node (its service actor): the set served is what was addressed to that actor's origin",
        )
        .into_response());
    }
    let budget = state.federation.budget();
    let signed_by = super::federation::request_signer(state, method, uri, headers, &bytes, &budget)
        .await
        .map_err(|e| Problem::from(e).into_response())?;
    let Some(origin) = weft_core::model::origin(&signed_by.actor) else {
        return Err(Problem::forbidden(format!(
            "the signer {} has no http(s) origin to sync with",
            signed_by.actor
        ))
        .into_response());
    };
    state.rate.check_origin(&origin).map_err(|limited| {
        super::ratelimit::too_many(
            format!(
                "too many requests from {origin}: this node takes at most its `[server.rate_limit] per_origin_per_second` from one origin"
            ),
            &limited,
        )
    })?;
    Ok((origin, bytes))
}

/// A JSON body of type `T`, or 400 saying what is wrong.
fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("the body must be {shape}: {e}")))
}

/// `POST /sync/negentropy`: `{"msg": "<hex>"}`, one negentropy (NIP-77
/// protocol v1) message over (published, id) of the activities this
/// node's actors addressed to the signer's origin; answers the next one.
pub async fn negentropy(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (origin, bytes) = match signed_origin(&state, &method, &uri, &headers, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let message: SetMessage = match parse_body(&bytes, r#"{"msg": "<hex>"}"#) {
        Ok(message) => message,
        Err(refused) => return refused.into_response(),
    };
    let Ok(msg) = HEXLOWER_PERMISSIVE.decode(message.msg.as_bytes()) else {
        return Problem::bad_request("`msg` must be a negentropy message in hex").into_response();
    };
    match state.federation.set_answer(&origin, msg).await {
        Ok(answer) => axum::Json(SetMessage {
            msg: HEXLOWER.encode(&answer),
        })
        .into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// `POST /sync/fetch`: `{"ids": ["<hex32>", …]}` (at most 500) → `{"items":
/// [activity…]}`, those of them this node's actors addressed to the
/// signer's origin; unknown ids (and ones addressed elsewhere) left out.
pub async fn fetch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (origin, bytes) = match signed_origin(&state, &method, &uri, &headers, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let request: SetFetch = match parse_body(&bytes, r#"{"ids": ["<64 hex digits>", …]}"#) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    if request.ids.len() > MAX_FETCH_IDS {
        return Problem::bad_request(format!(
            "at most {MAX_FETCH_IDS} ids per request; got {}",
            request.ids.len()
        ))
        .into_response();
    }
    let mut ids = Vec::with_capacity(request.ids.len());
    for text in &request.ids {
        match HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            Some(id) => ids.push(id),
            None => {
                return Problem::bad_request(format!(
                    "`{}` is not a set id (64 hex digits)",
                    text.chars().take(80).collect::<String>()
                ))
                .into_response();
            }
        }
    }
    let federation = state.federation.clone();
    let items = match tokio::task::spawn_blocking(move || federation.set_items(&origin, &ids)).await
    {
        Ok(Ok(items)) => items,
        Ok(Err(e)) => return Problem::from(e).into_response(),
        Err(e) => {
            return Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("a sync task failed: {e}"),
            )
            .into_response();
        }
    };
    // The stored JSON text, as it is (each is a JSON object).
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 12);
    out.push_str(r#"{"items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("]}");
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

//! Actors over HTTP: creation (`POST /actors`, admin), the actor document
//! (`GET /actors/{name}`) and the outbox collection.

use std::collections::HashMap;
use weft_core::wire::ACTIVITY_JSON;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::extract::{Path, Query};
use super::{AppState, Problem, body};
use weft_core::identity::{ActorKind, ActorState, multikey};
use weft_store::Reader;

/// Most activities one outbox page may hold.
const MAX_LIMIT: u64 = 200;

/// `POST /actors` with the admin token: `{"name": "alice", "type": "Person"}`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    match caller {
        Caller::Admin => {}
        Caller::Anonymous => {
            return Err(Problem::unauthorized(
                "creating actors needs the admin token",
            ));
        }
        Caller::Actor(_) => {
            return Err(Problem::forbidden(
                "creating actors needs the admin token, not an actor's",
            ));
        }
    }
    let request = body::json_object(&headers, body, state.config.max_body_bytes).await?;
    let name = request.get("name").and_then(Value::as_str).ok_or_else(|| {
        Problem::unprocessable(
            Some("name".into()),
            "`name` is required, e.g. {\"name\": \"alice\"}",
        )
    })?;
    let kind = match request.get("type") {
        None => ActorKind::Person,
        Some(t) => t.as_str().and_then(ActorKind::parse).ok_or_else(|| {
            Problem::unprocessable(
                Some("type".into()),
                "`type` must be Person, Service or Group",
            )
        })?,
    };
    let created = state.kernel.create_actor(name, kind).await?;
    let body = json!({
        "id": created.id,
        "name": created.name,
        "token": created.token,
        "activity": serde_json::from_str::<Value>(&created.activity).unwrap_or(Value::Null),
    });
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, created.id.clone())],
        axum::Json(body),
    )
        .into_response())
}

/// `GET /actors/{name}`: the ActivityPub actor document with the key history.
pub async fn document(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let actor = find(&state.kernel.store().read()?, &name)?;
    let (_, http_key) = state.kernel.http_key(&actor.id)?;
    Ok((
        [(header::CONTENT_TYPE, ACTIVITY_JSON)],
        actor_document(&actor, Some(&http_key.public_key_pem())).to_string(),
    )
        .into_response())
}

/// The actor document for `actor`: its Ed25519 log keys (with their
/// history) in `assertionMethod` as Multikeys, and its RSA key for HTTP
/// signatures (`http_key_pem`) as `publicKey`, which is what ActivityPub
/// servers read.
pub fn actor_document(actor: &ActorState, http_key_pem: Option<&str>) -> Value {
    let id = &actor.id;
    let mut doc = Map::new();
    doc.insert(
        "@context".into(),
        json!([
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/v1",
            "https://w3id.org/security/multikey/v1"
        ]),
    );
    for (k, v) in actor.profile_map() {
        doc.insert(k, v);
    }
    doc.insert("type".into(), actor.kind.as_str().into());
    doc.insert("id".into(), id.as_str().into());
    doc.insert("preferredUsername".into(), actor.username.as_str().into());
    for collection in ["inbox", "outbox", "followers", "following"] {
        doc.insert(collection.into(), format!("{id}/{collection}").into());
    }
    let history: Vec<Value> = actor
        .keys
        .iter()
        .map(|k| {
            let mut key = json!({
                "id": k.id,
                "type": "Multikey",
                "controller": id,
                "publicKeyMultibase": k.verifying_key().map(|v| multikey::encode(&v)).unwrap_or_default(),
                "purposes": k.purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "addedAtSeq": k.added_seq,
                "validFromSeq": k.valid_from_seq,
                "added": k.added_at,
            });
            if let (Some(seq), Some(at)) = (k.superseded_seq, &k.superseded_at) {
                key["supersededAtSeq"] = seq.into();
                key["superseded"] = at.as_str().into();
            }
            key
        })
        .collect();
    doc.insert("assertionMethod".into(), Value::Array(history));
    if let Some(pem) = http_key_pem {
        doc.insert(
            "publicKey".into(),
            json!({
                "id": weft_core::identity::rsa::key_id(id),
                "owner": id,
                "publicKeyPem": pem,
            }),
        );
    }
    doc.insert(
        "endpoints".into(),
        json!({"sharedInbox": format!("{}/inbox", origin_of(id))}),
    );
    if let Some(target) = &actor.moved_to {
        doc.insert("movedTo".into(), target.as_str().into());
    }
    doc.insert("published".into(), actor.created.as_str().into());
    doc.insert("updated".into(), actor.updated.as_str().into());
    doc.insert(
        "log".into(),
        json!({"seq": actor.tip_seq, "tip": actor.tip_id}),
    );
    Value::Object(doc)
}

/// The scheme and authority of `url` (`https://host:port`).
fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..]
        .find('/')
        .map_or(url, |slash| &url[..after + slash])
}

/// `GET /actors/{name}/outbox`: the collection, `?page=N` (newest first), or
/// `?since=<id>&limit=N` (the activities after `id`, oldest first).
pub async fn outbox(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    caller: Caller,
) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let actor = find(&reader, &name)?;
    let owner = caller.owns(&actor.id)?;
    let view = View {
        reader: &reader,
        actor: &actor,
        owner,
    };
    let base = format!("{}/outbox", actor.id);
    let limit = page_limit(&query, state.config.page_size)?;
    let suffix = if query.contains_key("limit") {
        format!("&limit={limit}")
    } else {
        String::new()
    };
    let body = if let Some(page) = query.get("page") {
        let page = page
            .parse::<u64>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| Problem::bad_request("`page` must be a whole number from 1"))?;
        view.page(&base, page, limit, &suffix)?
    } else if query.contains_key("since") || query.contains_key("limit") {
        view.since(&base, query.get("since").map(String::as_str), limit)?
    } else {
        let total = view.total();
        let pages = total.div_ceil(limit).max(1);
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": base,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": format!("{base}?page=1"),
            "last": format!("{base}?page={pages}"),
        })
    };
    Ok(([(header::CONTENT_TYPE, ACTIVITY_JSON)], body.to_string()).into_response())
}

/// One reader's view of an outbox: everything for the owner, the public part
/// for everyone else.
struct View<'a> {
    reader: &'a Reader,
    actor: &'a ActorState,
    owner: bool,
}

impl View<'_> {
    fn total(&self) -> u64 {
        if self.owner {
            self.actor.tip_seq
        } else {
            self.actor.public_count
        }
    }

    /// Seqs at positions `from..=to` (1-based, oldest first) of this view.
    fn seqs(&self, from: u64, to: u64) -> Result<Vec<u64>, Problem> {
        if self.owner {
            Ok((from..=to.min(self.actor.tip_seq)).collect())
        } else {
            Ok(self.reader.public_range(&self.actor.id, from, to)?)
        }
    }

    fn items(&self, seqs: &[u64]) -> Result<Vec<Box<RawValue>>, Problem> {
        let (Some(first), Some(last)) = (seqs.iter().min(), seqs.iter().max()) else {
            return Ok(Vec::new());
        };
        let ids: HashMap<u64, String> = self
            .reader
            .log_range(&self.actor.id, *first, *last)?
            .into_iter()
            .collect();
        let mut items = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let record = ids
                .get(seq)
                .map(|id| self.reader.activity(id))
                .transpose()?
                .flatten();
            let record = record.ok_or_else(|| {
                Problem::from(weft_kernel::KernelError::NotFound(format!(
                    "activity at seq {seq}"
                )))
            })?;
            // Stored JSON was produced by serde_json, so it is valid.
            if let Ok(raw) = RawValue::from_string(record.json) {
                items.push(raw);
            }
        }
        Ok(items)
    }

    /// Page `page` (1 = newest); `suffix` carries an explicit `&limit=` into links.
    fn page(&self, base: &str, page: u64, limit: u64, suffix: &str) -> Result<Value, Problem> {
        let total = self.total();
        let pages = total.div_ceil(limit).max(1);
        // Page 1 holds the newest activities.
        let newest = total.saturating_sub((page - 1).saturating_mul(limit));
        let oldest = newest.saturating_sub(limit - 1).max(1);
        let mut seqs = if newest == 0 {
            Vec::new()
        } else {
            self.seqs(oldest, newest)?
        };
        seqs.reverse();
        let mut body = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{base}?page={page}{suffix}"),
            "type": "OrderedCollectionPage",
            "partOf": base,
            "totalItems": total,
            "orderedItems": self.items(&seqs)?,
        });
        if page < pages {
            body["next"] = format!("{base}?page={}{suffix}", page + 1).into();
        }
        if page > 1 {
            body["prev"] = format!("{base}?page={}{suffix}", page - 1).into();
        }
        Ok(body)
    }

    fn since(&self, base: &str, since: Option<&str>, limit: u64) -> Result<Value, Problem> {
        let after_seq = match since {
            None | Some("") => 0,
            Some(id) => {
                let record = self
                    .reader
                    .activity(id)?
                    .filter(|r| r.actor == self.actor.id)
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "`since` must be the id of an activity of {}; {id} is not",
                            self.actor.id
                        ))
                    })?;
                record.seq
            }
        };
        let (seqs, more) = if self.owner {
            let to = after_seq.saturating_add(limit).min(self.actor.tip_seq);
            (
                (after_seq + 1..=to).collect::<Vec<_>>(),
                to < self.actor.tip_seq,
            )
        } else {
            let from = self.reader.public_rank_after(
                &self.actor.id,
                after_seq,
                self.actor.public_count,
            )?;
            let to = from.saturating_add(limit - 1).min(self.actor.public_count);
            (self.seqs(from, to)?, to < self.actor.public_count)
        };
        let items = self.items(&seqs)?;
        let query = match since {
            Some(id) if !id.is_empty() => format!("since={id}&limit={limit}"),
            _ => format!("limit={limit}"),
        };
        let mut body = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{base}?{query}"),
            "type": "OrderedCollectionPage",
            "partOf": base,
            "orderedItems": items,
        });
        if more
            && let Some(last) = seqs
                .last()
                .and_then(|s| self.reader.activity_at(&self.actor.id, *s).ok().flatten())
        {
            body["next"] = format!("{base}?since={last}&limit={limit}").into();
        }
        Ok(body)
    }
}

/// The `limit` query parameter of a collection page: 1 to [`MAX_LIMIT`],
/// `page_size` when absent.
pub fn page_limit(query: &HashMap<String, String>, page_size: usize) -> Result<u64, Problem> {
    match query.get("limit") {
        None => Ok(page_size as u64),
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                Problem::bad_request(format!(
                    "`limit` must be a whole number from 1 to {MAX_LIMIT}"
                ))
            }),
    }
}

fn find(reader: &Reader, name: &str) -> Result<ActorState, Problem> {
    reader
        .actor_by_name(name)?
        .ok_or_else(|| Problem::not_found(format!("no actor named `{name}` on this node")))
}

//! Actors over HTTP: creation (`POST /actors`, admin), the actor document
//! (`GET /actors/{name}`) and the outbox collection, with who may read
//! which of an outbox. The documents are `weft_core::wire`'s.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::auth::{Admin, Caller};
use super::extract::{Path, Query};
use super::paging::{Paging, page_limit, page_number};
use super::{AppState, Problem, activity_json, body};
use weft_core::identity::{ActorKind, ActorState};
use weft_core::wire::{actor, collection};
use weft_store::Reader;

/// `POST /actors` with the admin token: `{"name": "alice", "type": "Person"}`.
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
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

/// `GET /actors`: the node's directory, an ActivityStreams collection of
/// its local actors' ids (public, like their documents): how a peer's
/// `replication` policy that mirrors this origin learns its actors. The
/// node's service actor is not listed: its log is the node's machinery
/// (module definitions travel on their own), not content to mirror.
pub async fn directory(State(state): State<AppState>) -> Result<Response, Problem> {
    let base = state.kernel.public_url()?.trim_end_matches('/').to_owned();
    let body = weft_core::wire::collection::whole(&format!("{base}/actors"), &listed(&state)?);
    Ok(crate::activity_json(body.to_string()))
}

/// The local actors anyone may be shown (the directory, the home page):
/// all but the node's service actor.
pub(crate) fn listed(state: &AppState) -> Result<Vec<String>, Problem> {
    let service = state.kernel.service_actor().ok();
    let mut ids = state.kernel.local_actors()?;
    ids.retain(|id| Some(id) != service.as_ref());
    Ok(ids)
}

/// `GET /actors/{name}`: the ActivityPub actor document with the key history.
pub async fn document(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let actor = find(&state.kernel.store().read()?, &name)?;
    let (_, http_key) = state.kernel.http_key(&actor.id)?;
    let document = actor::document(&actor, Some(&http_key.public_key_pem()));
    Ok(activity_json(document.to_string()))
}

/// `GET /actors/{name}/head`: where the actor's log ends as the caller may
/// see it (the owner: every activity; anyone else: the public ones), so a
/// peer can tell whether it lacks anything before fetching a page.
pub async fn head(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let actor = find(&reader, &name)?;
    let (seq, total_items) = if caller.owns(&actor.id)? {
        (actor.tip_seq, actor.tip_seq)
    } else {
        let count = actor.public_count;
        let seq = reader
            .public_range(&actor.id, count, count)?
            .first()
            .copied()
            .unwrap_or(0);
        (seq, count)
    };
    let id = if seq == 0 {
        None
    } else {
        reader
            .activity_at(&actor.id, seq)?
            .map(|cid| weft_core::model::cid::activity_url(&actor.id, &cid))
    };
    let head = weft_core::wire::sync::Head {
        actor: actor.id.clone(),
        seq,
        id,
        total_items,
    };
    Ok(activity_json(serde_json::to_string(&head).map_err(
        |e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("writing the head failed: {e}"),
            )
        },
    )?))
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
    let paging = Paging {
        base: &base,
        total: view.total(),
        limit: page_limit(&query, state.config.page_size)?,
        named: query.contains_key("limit"),
    };
    let body = if let Some(page) = page_number(&query)? {
        paging.page(page, |oldest, newest| {
            view.items(&view.seqs(oldest, newest)?)
        })?
    } else if query.contains_key("since") || query.contains_key("limit") {
        view.since(&base, query.get("since").map(String::as_str), paging.limit)?
    } else {
        paging.collection()
    };
    Ok(activity_json(body.to_string()))
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
        let next = if more {
            seqs.last()
                .and_then(|s| self.reader.activity_at(&self.actor.id, *s).ok().flatten())
                .map(|last| collection::since_url(base, Some(&last), limit))
        } else {
            None
        };
        Ok(collection::Page {
            id: collection::since_url(base, since, limit),
            part_of: base,
            total: None,
            items: self.items(&seqs)?,
            next,
            prev: None,
        }
        .to_json())
    }
}

/// The local actor `name`; 404 when there is none.
pub(crate) fn find(reader: &Reader, name: &str) -> Result<ActorState, Problem> {
    reader.actor_by_name(name)?.ok_or_else(|| no_actor(name))
}

/// The id of the local actor `name`; 404 when there is none.
pub(crate) fn find_id(reader: &Reader, name: &str) -> Result<String, Problem> {
    reader.actor_id_by_name(name)?.ok_or_else(|| no_actor(name))
}

fn no_actor(name: &str) -> Problem {
    Problem::not_found(format!("no actor named `{name}` on this node"))
}

//! Publishing (`POST /activity`, `POST /actors/{name}/outbox`) and reading a
//! single activity (`GET /activities/{id}`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use weft_core::wire::{self, ACTIVITY_JSON};

use super::actors::find_id;
use super::auth::Caller;
use super::extract::Path;
use super::{AppState, Problem, activity_json, body};

/// `POST /activity`: the bearer token names the publishing actor.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let actor = match caller {
        Caller::Actor(id) => id,
        Caller::Admin => {
            return Err(Problem::unprocessable(
                None,
                "the admin token does not name an actor; use POST /actors/{name}/outbox to publish as one",
            ));
        }
        Caller::Anonymous => return Err(anonymous()),
    };
    publish_as(&state, &actor, &headers, body, false).await
}

/// `POST /actors/{name}/outbox`: publish as `name` with its token (or the admin's).
pub async fn publish_to_outbox(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let id = find_id(&state.kernel.store().read()?, &name)?;
    if caller == Caller::Anonymous {
        return Err(anonymous());
    }
    caller.owns(&id)?;
    let by_admin = caller == Caller::Admin;
    publish_as(&state, &id, &headers, body, by_admin).await
}

fn anonymous() -> Problem {
    Problem::unauthorized("publishing needs `Authorization: Bearer <actor token>`")
}

async fn publish_as(
    state: &AppState,
    actor: &str,
    headers: &HeaderMap,
    body: Body,
    by_admin: bool,
) -> Result<Response, Problem> {
    let draft = body::json_object(headers, body, state.config.max_body_bytes).await?;
    let published = if by_admin {
        state.kernel.publish_by_admin(actor, draft).await?
    } else {
        state.kernel.publish(actor, draft).await?
    };
    let location = format!("{}/activities/{}", state.public_url, published.id);
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CONTENT_TYPE, ACTIVITY_JSON.into()),
        ],
        published.json,
    )
        .into_response())
}

/// `GET /activities/{id}`: public activities to anyone; others to the
/// tokens of their actor, of the actors they name and (when addressed to
/// the followers) of the author's followers, and the admin's; 404
/// otherwise so existence does not leak.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, Problem> {
    let missing = || Problem::not_found(format!("no activity {id} on this node"));
    let record = state
        .kernel
        .store()
        .read()?
        .activity(&id)?
        .ok_or_else(missing)?;
    let record = visible(&state, &caller, record)
        .await?
        .ok_or_else(missing)?;
    Ok(activity_json(record.json))
}

/// `GET /actors/{name}/objects/{seq}`: the object that the activity at
/// `seq` of the actor's log created (a Note, say), as ActivityPub peers
/// dereference it, under the same visibility as that activity.
pub async fn object(
    State(state): State<AppState>,
    Path((name, seq)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, Problem> {
    let missing = || Problem::not_found(format!("no object {seq} of `{name}` on this node"));
    let seq: u64 = seq.parse().map_err(|_| missing())?;
    let reader = state.kernel.store().read()?;
    let actor = reader.actor_id_by_name(&name)?.ok_or_else(missing)?;
    let id = reader.activity_at(&actor, seq)?.ok_or_else(missing)?;
    let record = reader.activity(&id)?.ok_or_else(missing)?;
    drop(reader);
    let record = visible(&state, &caller, record)
        .await?
        .ok_or_else(missing)?;
    let object = wire::object::document(&record.json, &wire::object::url(&actor, seq))
        .ok_or_else(missing)?;
    Ok(activity_json(object.to_string()))
}

/// `record` when `caller` may see it (`weft_kernel::visibility`). Whether
/// the caller follows the author may take a module call (the follower
/// graph), made on the worker pool, never on an async worker.
async fn visible(
    state: &AppState,
    caller: &Caller,
    record: weft_store::ActivityRecord,
) -> Result<Option<weft_store::ActivityRecord>, Problem> {
    if record.public {
        return Ok(Some(record));
    }
    let view = caller.view(&state.kernel);
    state
        .kernel
        .workers()
        .run(move || view.may_read(&record).then_some(record))
        .await
        .map_err(|busy| Problem::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()))
}

//! The operator's view of policies (docs/architecture.md §10), admin only:
//! `GET /admin/policies` (each policy's current version and history),
//! `GET /admin/policies/{name}` and `GET /admin/policies/{name}/status`
//! (conditions and obligations). Policies are defined by publishing a
//! `DefinePolicy` activity (`POST /actors/{name}/outbox`), not here. Also
//! the Follows a `follows` policy holds: `GET /admin/follows/pending`,
//! `POST /admin/follows/pending/{id}/approve|reject`.
//!
//! The JSON shapes are `weft_core::wire::policy`'s; what a policy means is
//! the kernel's.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth::Admin;
use super::extract::Path;
use super::{AppState, Problem};
use weft_core::wire::policy as wire;
use weft_store::PolicyRecord;

/// A stored policy with its history, as the wire shows it (`None` for a
/// record without versions, which the writer never makes).
fn view(record: &PolicyRecord) -> Option<wire::Policy> {
    let history: Vec<wire::Version> = record
        .versions
        .iter()
        .map(|v| wire::Version {
            version: v.version,
            kind: v.kind.clone(),
            spec: serde_json::from_str(&v.spec).unwrap_or(Value::Null),
            id: v.activity.clone(),
            actor: v.actor.clone(),
            published: v.published.clone(),
            description: v.description.clone(),
        })
        .collect();
    Some(wire::Policy {
        name: record.name.clone(),
        current: history.last()?.clone(),
        history,
    })
}

fn unknown(name: &str) -> Problem {
    Problem::not_found(format!(
        "no policy `{name}` on this node; `GET /admin/policies` lists them"
    ))
}

/// `GET /admin/policies`.
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<wire::Policies>, Problem> {
    let records = state.kernel.store().read()?.policies()?;
    Ok(Json(wire::Policies {
        policies: records.iter().filter_map(view).collect(),
    }))
}

/// `GET /admin/policies/{name}`.
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<wire::Policy>, Problem> {
    let record = state.kernel.store().read()?.policy(&name)?;
    record
        .as_ref()
        .and_then(view)
        .map(Json)
        .ok_or_else(|| unknown(&name))
}

/// `GET /admin/policies/{name}/status`.
pub async fn status(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<wire::Status>, Problem> {
    if state.kernel.policy(&name)?.is_none() {
        return Err(unknown(&name));
    }
    Ok(Json(state.kernel.policy_status(&name)?.to_wire()))
}

/// `GET /admin/follows/pending`: Follows of local actors a `follows`
/// policy holds for the operator.
pub async fn pending_follows(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<wire::PendingFollows>, Problem> {
    Ok(Json(wire::PendingFollows {
        items: state
            .kernel
            .pending_follows()?
            .iter()
            .map(|p| p.to_wire())
            .collect(),
    }))
}

/// `POST /admin/follows/pending/{id}/approve`: the followed actor
/// publishes what its Follow verb answers (the Accept); answers the
/// published activities.
pub async fn approve_follow(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let published = state.kernel.approve_follow(&id).await?;
    Ok(Json(json!({
        "published": published
            .iter()
            .map(|p| serde_json::from_str::<Value>(&p.json).unwrap_or(Value::Null))
            .collect::<Vec<_>>(),
    })))
}

/// `POST /admin/follows/pending/{id}/reject`: the followed actor
/// publishes a Reject of it; answers the Reject.
pub async fn reject_follow(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let published = state.kernel.reject_follow(&id).await?;
    Ok(Json(json!({
        "published": [serde_json::from_str::<Value>(&published.json).unwrap_or(Value::Null)],
    })))
}

//! The operator's view of anti-entropy (docs/architecture.md §10):
//! `GET /admin/sync` shows where sync stands with every remote actor it
//! has tried, and `POST /admin/sync` runs a reconcile pass now and answers
//! what it did. Admin only. The loop itself is `weft_federation::reconcile`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Admin;
use super::{AppState, Problem};
use weft_core::wire::sync::{ActorSync, Position, SyncView};

/// `GET /admin/sync`.
pub async fn view(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let reader = state.kernel.store().read()?;
    let mut actors = Vec::new();
    for s in reader.sync_states()? {
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
    Ok(axum::Json(SyncView { actors }).into_response())
}

/// `POST /admin/sync`: one pass now.
pub async fn run(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let pass = weft_federation::reconcile::pass(&state.federation).await;
    Ok(axum::Json(json!({
        "actors": pass.actors,
        "rounds": pass.rounds,
        "stored": pass.stored,
        "failed": pass.failed,
        "healed": pass.healed,
    }))
    .into_response())
}

fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

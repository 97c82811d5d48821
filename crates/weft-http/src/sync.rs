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

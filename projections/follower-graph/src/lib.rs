//! The follower-graph projection: for every actor, who follows it, whom it
//! follows, and the follows still waiting for an answer either way. The
//! kernel reads followers through this projection's query to deliver an
//! actor's activities (docs/architecture.md §7.1, §7.5).
//!
//! - A Follow (actor → object) makes a pending edge, unless the follower
//!   already follows.
//! - An Accept whose `object` is a Follow's id (looked up with `log::get`)
//!   makes the edge accepted; it counts only when the Accept is by the
//!   followed actor.
//! - A Reject by the followed actor removes the edge (pending, and also an
//!   accepted one: rejecting an accepted Follow removes a follower).
//! - An Undo of a Follow by its follower removes the edge whatever its
//!   state, and a later Accept of that Follow is ignored.
//!
//! It is not an access-control list and does not check that actors exist:
//! an edge is whatever the folded activities say. Everything else is
//! ignored.
//!
//! Key layout (`␟` is U+001F, which no URL or activity id contains):
//!
//! | key                                  | value          |
//! |--------------------------------------|----------------|
//! | `followers␟{target}␟{follower}`      | Follow id      |
//! | `following␟{follower}␟{target}`      | Follow id      |
//! | `pending-in␟{target}␟{follower}`     | Follow id      |
//! | `pending-out␟{follower}␟{target}`    | Follow id      |
//! | `undone␟{activity id}`               | Undo's actor   |
//!
//! Queries: `followers`, `following`, `pending-in`, `pending-out`, each with
//! `actor=<url>`, answer `{"actor", "items": [urls, sorted], "totalItems"}`.

use weft_guest::Activity;
use weft_guest::Json;
use weft_guest::Projection;
use weft_guest::kv;
use weft_guest::projection::{QueryError, log};
use weft_guest::serde_json::json;
use weft_guest::text::{is_http_url as is_actor, is_safe, key};
use weft_verb_rules::follow_edge;

/// The four lists, each a key namespace and a query path.
const LISTS: [&str; 4] = ["followers", "following", "pending-in", "pending-out"];

struct FollowerGraph;

impl Projection for FollowerGraph {
    fn fold(activity: &Activity<'_>) -> Result<(), String> {
        if !matches!(activity.kind, "Follow" | "Accept" | "Reject" | "Undo") {
            return Ok(());
        }
        let Some(object) = activity.object_id else {
            return Ok(());
        };
        let actor = activity.actor;
        match activity.kind {
            "Follow" => {
                let target = object;
                if !is_actor(actor) || !is_actor(target) || actor == target {
                    return Ok(());
                }
                let undone = kv::get(&key(&["undone", activity.id])).is_some_and(|a| a == actor);
                let following = kv::get(&key(&["following", actor, target])).is_some();
                if !undone && !following {
                    kv::set(&key(&["pending-out", actor, target]), activity.id);
                    kv::set(&key(&["pending-in", target, actor]), activity.id);
                }
            }
            "Accept" | "Reject" => {
                let follow_id = object;
                let Some((follower, target)) = follow(follow_id) else {
                    return Ok(());
                };
                if target != actor {
                    return Ok(());
                }
                if activity.kind == "Reject" {
                    remove(&follower, &target, &LISTS);
                } else if kv::get(&key(&["undone", follow_id])).is_none_or(|a| a != follower) {
                    remove(&follower, &target, &["pending-out", "pending-in"]);
                    kv::set(&key(&["following", &follower, &target]), follow_id);
                    kv::set(&key(&["followers", &target, &follower]), follow_id);
                }
            }
            "Undo" => {
                let undone = object;
                if !is_safe(undone) {
                    return Ok(());
                }
                kv::set(&key(&["undone", undone]), actor);
                if let Some((follower, target)) = follow(undone)
                    && follower == actor
                {
                    remove(&follower, &target, &LISTS);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn query(path: String, params: Vec<(String, String)>) -> Result<String, QueryError> {
        let list = LISTS
            .iter()
            .find(|l| **l == path)
            .ok_or_else(|| QueryError::NotFound(unknown_path(&path)))?;
        let actor = actor_param(&params).map_err(QueryError::BadRequest)?;
        let prefix = key(&[list, actor, ""]);
        let items: Vec<String> = kv::scan_all(&prefix)
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        Ok(json!({"actor": actor, "totalItems": items.len(), "items": items}).to_string())
    }
}

/// The (follower, target) of the Follow with this id, when the log has it.
fn follow(id: &str) -> Option<(String, String)> {
    let json = Json::from_text(&log::get(id)?).ok()?;
    follow_edge(&json)
}

/// Deletes the edge follower → target from the given lists.
fn remove(follower: &str, target: &str, lists: &[&str]) {
    for list in lists {
        let (from, to) = match *list {
            "followers" | "pending-in" => (target, follower),
            _ => (follower, target),
        };
        kv::delete(&key(&[list, from, to]));
    }
}

/// The `actor` query parameter, checked.
fn actor_param(params: &[(String, String)]) -> Result<&str, String> {
    let actor = params
        .iter()
        .find(|(k, _)| k == "actor")
        .map(|(_, v)| v.as_str())
        .ok_or("the `actor` parameter is required: the actor's URL, e.g. ?actor=https://host/actors/alice")?;
    if is_actor(actor) {
        Ok(actor)
    } else {
        Err(format!(
            "`actor` must be an actor URL (http:// or https://), not `{}`",
            actor.chars().take(80).collect::<String>()
        ))
    }
}

fn unknown_path(path: &str) -> String {
    format!(
        "no query `{path}`: use followers, following, pending-in or pending-out, each with ?actor=<url>"
    )
}

weft_guest::export_projection!(FollowerGraph);

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "http://127.0.0.1:9999/actors/alice";
    const BOB: &str = "https://example.com/actors/bob";

    #[test]
    fn keys_nest_by_actor() {
        let k = key(&["followers", BOB, ALICE]);
        assert!(k.starts_with(&key(&["followers", BOB, ""])));
        assert!(!k.starts_with(&key(&["followers", "https://example.com/actors/bo", ""])));
        assert_eq!(k.matches(weft_guest::text::SEP).count(), 2);
    }

    #[test]
    fn actors_and_safety() {
        assert!(is_actor(ALICE) && is_actor(BOB));
        assert!(!is_actor("acct:bob@example.com"));
        assert!(!is_actor("https://"));
        assert!(!is_actor("https://x/a\u{1f}b"));
        assert!(!is_safe("") && !is_safe("a\u{1f}b") && is_safe("bxyz"));
    }

    #[test]
    fn actor_param_is_required_and_checked() {
        let p = |v: &str| vec![("actor".to_owned(), v.to_owned())];
        assert_eq!(actor_param(&p(ALICE)), Ok(ALICE));
        assert!(actor_param(&p("alice")).is_err());
        assert!(actor_param(&[]).is_err());
    }
}

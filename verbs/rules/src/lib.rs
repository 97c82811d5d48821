//! The policy that several built-in verbs share, and that the built-in
//! projections mirror: who may answer a Follow (Accept, Reject), whose
//! activities an actor may undo or delete (Undo, Delete), and what edge a
//! Follow asks for (the `feed` and `follower-graph` projections).
//!
//! This is the genesis bundle's own policy, not part of the SDK: a verb of
//! another author decides its own. Each check returns a message a person
//! can act on, and is pure: it looks only at the JSON it is given.

use weft_guest::Json;
use weft_guest::text::{clip, is_http_url};

/// When `answered` is a Follow, only the actor it follows may answer it
/// (Accept or Reject); `action` is "accept" or "reject".
pub fn followed_actor_answers(answered: &Json, actor: &str, action: &str) -> Result<(), String> {
    match (answered.str("type"), answered.str("object")) {
        (Some("Follow"), Some(target)) if target != actor => Err(format!(
            "only the followed actor ({}) can {action} this Follow",
            clip(target)
        )),
        _ => Ok(()),
    }
}

/// An actor can undo only its own activities.
pub fn own_activity(undone: &Json, actor: &str) -> Result<(), String> {
    match undone.str("actor") {
        Some(owner) if owner != actor => Err(format!(
            "an actor can undo only its own activities; that one is by {}",
            clip(owner)
        )),
        _ => Ok(()),
    }
}

/// The (follower, target) a Follow asks for: both actor URLs and not
/// the same actor; `None` for anything else.
pub fn follow_edge(follow: &Json) -> Option<(String, String)> {
    if follow.str("type") != Some("Follow") {
        return None;
    }
    let (follower, target) = (follow.str("actor")?, follow.str("object")?);
    (is_http_url(follower) && is_http_url(target) && follower != target)
        .then(|| (follower.to_owned(), target.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::{Value, json};

    const BOB: &str = "https://example.com/actors/bob";

    fn json(v: Value) -> Json {
        Json::from_text(&v.to_string()).expect("an object")
    }

    #[test]
    fn only_the_followed_actor_answers_a_follow() {
        let follow = json(json!({"type": "Follow", "object": BOB}));
        assert!(followed_actor_answers(&follow, BOB, "accept").is_ok());
        assert!(
            followed_actor_answers(&follow, "https://example.com/actors/eve", "reject").is_err()
        );
        let other = json(json!({"type": "Invite", "object": BOB}));
        assert!(followed_actor_answers(&other, "https://example.com/actors/eve", "accept").is_ok());
    }

    #[test]
    fn follow_edges() {
        let alice = "http://127.0.0.1:9999/actors/alice";
        let f = json(json!({"type": "Follow", "actor": alice, "object": BOB}));
        assert_eq!(follow_edge(&f), Some((alice.into(), BOB.into())));
        let own = json(json!({"type": "Follow", "actor": alice, "object": alice}));
        assert_eq!(follow_edge(&own), None);
        let like = json(json!({"type": "Endorse", "actor": alice, "object": BOB}));
        assert_eq!(follow_edge(&like), None);
        let acct = json(json!({"type": "Follow", "actor": alice, "object": "acct:bob@x"}));
        assert_eq!(follow_edge(&acct), None);
    }

    #[test]
    fn only_the_author_undoes() {
        let follow = json(json!({"type": "Follow", "actor": BOB}));
        assert!(own_activity(&follow, BOB).is_ok());
        assert!(own_activity(&follow, "https://example.com/actors/eve").is_err());
    }
}

//! An example verb in Rust: `Rsvp`, an answer to an invitation.
//!
//! ```sh
//! # from the repository root, with a node running (see the README)
//! cargo build --release --target wasm32-unknown-unknown -p weft-example-rsvp
//! weft module add verb Rsvp target/wasm32-unknown-unknown/release/weft_example_rsvp.wasm \
//!     --language rust --description "answer an invitation: yes, no or maybe"
//! curl -s -X POST http://127.0.0.1:8080/activity -H "Authorization: Bearer $TOKEN" \
//!     -d '{"type":"Rsvp","object":"<the invitation activity id>","answer":"yes","to":["https://www.w3.org/ns/activitystreams#Public"]}'
//! ```
//!
//! An Rsvp names the invitation (`object`, an activity id this node has)
//! and an `answer` (`yes`, `no` or `maybe`), with an optional `comment` of
//! at most 500 characters. It checks the shape and that the invitation is
//! in the log; it does not count answers (a projection would) or stop an
//! actor from changing its mind. It needs no reaction.
//!
//! Copy this crate to start a verb of your own: rename it, change
//! `validate`, and keep `export_verb!` at the bottom.

use weft_guest::serde_json::Value;
use weft_guest::text::{clip, is_activity_id};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};

/// The answers an Rsvp may give.
const ANSWERS: [&str; 3] = ["yes", "no", "maybe"];
/// Longest comment, in characters.
const MAX_COMMENT: usize = 500;

struct Rsvp;

impl Guest for Rsvp {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        let json = Json::of(&activity.id)?;
        check(&json).map_err(reject)?;
        let invitation = json.str("object").unwrap_or_default();
        if log::get(invitation).is_none() {
            return Err(reject(format!(
                "no activity {invitation} on this node: an Rsvp answers an invitation the node has"
            )));
        }
        Ok(())
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks an Rsvp's fields (everything but whether the invitation exists).
fn check(json: &Json) -> Result<(), String> {
    match json.get("object") {
        Some(Value::String(id)) if is_activity_id(id) => {}
        Some(Value::String(other)) => {
            return Err(format!(
                "`object` must be the invitation's activity id (`b` then 60 characters a-z, 2-7), not `{}`",
                clip(other)
            ));
        }
        _ => return Err("an Rsvp needs `object`: the invitation's activity id".into()),
    }
    match json.get("answer") {
        Some(Value::String(a)) if ANSWERS.contains(&a.as_str()) => {}
        Some(Value::String(a)) => {
            return Err(format!(
                "`answer` must be \"yes\", \"no\" or \"maybe\", not \"{}\"",
                clip(a)
            ));
        }
        _ => return Err("an Rsvp needs `answer`: \"yes\", \"no\" or \"maybe\"".into()),
    }
    match json.get("comment") {
        None => Ok(()),
        Some(Value::String(c)) if c.chars().count() <= MAX_COMMENT => Ok(()),
        Some(_) => Err(format!(
            "`comment` must be text of at most {MAX_COMMENT} characters"
        )),
    }
}

weft_guest::verb::export_verb!(Rsvp);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";

    fn json(v: Value) -> Json {
        match v {
            Value::Object(map) => Json(map),
            _ => Json(Default::default()),
        }
    }

    #[test]
    fn answers_are_checked() {
        assert_eq!(check(&json(json!({"object": ID, "answer": "yes"}))), Ok(()));
        assert!(check(&json(json!({"object": ID, "answer": "perhaps"}))).is_err());
        assert!(check(&json(json!({"object": ID}))).is_err());
        assert!(check(&json(json!({"object": "an event", "answer": "no"}))).is_err());
        let long = "x".repeat(MAX_COMMENT + 1);
        assert!(
            check(&json(
                json!({"object": ID, "answer": "no", "comment": long})
            ))
            .is_err()
        );
    }
}

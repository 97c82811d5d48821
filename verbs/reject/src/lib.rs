//! The Reject verb: the followed actor refuses a Follow (or, later, removes
//! an accepted follower), naming the Follow by its activity id in `object`.
//! When the Follow is in this node's log, only the actor it follows may
//! reject it; when it is not, only the shape of the id is checked. It does
//! not remove the follow (the `follower-graph` and `feed` projections do).
//! Rejects need no reaction.

use weft_guest::serde_json::Value;
use weft_guest::text::{clip, is_activity_id};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};

struct Reject;

impl Guest for Reject {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        if activity.kind != "Reject" {
            return Err(reject(format!(
                "a Reject is published as its own activity (`\"type\": \"Reject\"`), not inside a `{}`",
                activity.kind
            )));
        }
        let json = Json::parse(&activity)?;
        let id = check_object(json.get("object")).map_err(reject)?;
        match log::get(id).and_then(|text| Json::from_text(&text).ok()) {
            Some(answered) => check_answerer(&answered, &activity.actor).map_err(reject),
            None => Ok(()),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks `object`, the id of the Follow being rejected, and returns it.
fn check_object(object: Option<&Value>) -> Result<&str, String> {
    match object {
        Some(Value::String(id)) if is_activity_id(id) => Ok(id),
        Some(Value::String(other)) => Err(format!(
            "`object` must be the id of the Follow being rejected (`b` then 60 characters a-z, 2-7), not `{}`",
            clip(other)
        )),
        Some(_) => Err("`object` must be the rejected Follow's id as a string".into()),
        None => Err("a Reject needs `object`: the id of the Follow it rejects".into()),
    }
}

/// When the answered activity is a Follow, `actor` must be the followed actor.
fn check_answerer(answered: &Json, actor: &str) -> Result<(), String> {
    match (answered.str("type"), answered.str("object")) {
        (Some("Follow"), Some(target)) if target != actor => Err(format!(
            "only the followed actor ({}) can reject this Follow",
            clip(target)
        )),
        _ => Ok(()),
    }
}

weft_guest::verb::export_verb!(Reject);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";
    const BOB: &str = "https://example.com/actors/bob";

    #[test]
    fn object_is_an_activity_id() {
        assert_eq!(check_object(Some(&json!(ID))), Ok(ID));
        assert!(check_object(Some(&json!(BOB))).is_err());
        assert!(check_object(Some(&json!({"id": ID}))).is_err());
        assert!(check_object(None).is_err());
    }

    #[test]
    fn only_the_followed_actor_answers() -> Result<(), weft_guest::JsonError> {
        let follow = Json::from_text(&json!({"type": "Follow", "object": BOB}).to_string())?;
        assert!(check_answerer(&follow, BOB).is_ok());
        assert!(check_answerer(&follow, "https://example.com/actors/eve").is_err());
        let other = Json::from_text(&json!({"type": "Invite", "object": BOB}).to_string())?;
        assert!(check_answerer(&other, "https://example.com/actors/eve").is_ok());
        Ok(())
    }
}

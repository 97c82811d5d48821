//! The Undo verb: an actor withdraws one of its own activities (a Follow,
//! an Endorse, …), named by its activity id in `object`. When that activity
//! is in this node's log, it must be by the same actor; when it is not, only
//! the shape of the id is checked. It does not undo anything itself: each
//! projection decides what an Undo of the activities it folds means.
//! Undos need no reaction.

use weft_guest::serde_json::Value;
use weft_guest::text::{clip, is_activity_id};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};

struct Undo;

impl Guest for Undo {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        if activity.kind != "Undo" {
            return Err(reject(format!(
                "an Undo is published as its own activity (`\"type\": \"Undo\"`), not inside a `{}`",
                activity.kind
            )));
        }
        let json = Json::parse(&activity)?;
        let id = check_object(json.get("object")).map_err(reject)?;
        match log::get(id).and_then(|text| Json::from_text(&text).ok()) {
            Some(undone) => check_owner(&undone, &activity.actor).map_err(reject),
            None => Ok(()),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks `object`, the id of the activity being undone, and returns it.
fn check_object(object: Option<&Value>) -> Result<&str, String> {
    match object {
        Some(Value::String(id)) if is_activity_id(id) => Ok(id),
        Some(Value::String(other)) => Err(format!(
            "`object` must be the id of the activity being undone (`b` then 60 characters a-z, 2-7), not `{}`",
            clip(other)
        )),
        Some(_) => Err(
            "`object` must be the undone activity's id as a string, not an embedded object".into(),
        ),
        None => Err("an Undo needs `object`: the id of the activity it undoes".into()),
    }
}

/// An actor can undo only its own activities.
fn check_owner(undone: &Json, actor: &str) -> Result<(), String> {
    match undone.str("actor") {
        Some(owner) if owner != actor => Err(format!(
            "an actor can undo only its own activities; that one is by {}",
            clip(owner)
        )),
        _ => Ok(()),
    }
}

weft_guest::verb::export_verb!(Undo);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";
    const ALICE: &str = "http://127.0.0.1:9999/actors/alice";

    #[test]
    fn object_is_an_activity_id() {
        assert_eq!(check_object(Some(&json!(ID))), Ok(ID));
        assert!(check_object(Some(&json!(ALICE))).is_err());
        assert!(check_object(Some(&json!({"type": "Follow", "id": ID}))).is_err());
        assert!(check_object(None).is_err());
    }

    #[test]
    fn only_the_author_undoes() -> Result<(), weft_guest::JsonError> {
        let follow = Json::from_text(&json!({"type": "Follow", "actor": ALICE}).to_string())?;
        assert!(check_owner(&follow, ALICE).is_ok());
        assert!(check_owner(&follow, "https://example.com/actors/eve").is_err());
        Ok(())
    }
}

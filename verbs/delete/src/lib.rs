//! The Delete verb: a `Delete` whose object is a `Tombstone` (what
//! Mastodon, GoToSocial and others send: `{"id": …, "type": "Tombstone"}`)
//! or a bare URL or activity id. (A `Delete` of an embedded Note is the
//! Note verb's.) Only the author of a thing may delete it: when the deleted
//! thing is an activity this node holds, its `actor` must be the Delete's;
//! otherwise its URL must be on the deleting actor's origin. The `feed`
//! projection shows a deleted object as a Tombstone. Deletes need no
//! reaction.

use weft_guest::checks::{object_activity_id, own_type};
use weft_guest::text::{clip, is_activity_id, origin};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};
use weft_verb_rules::own_activity;

struct Delete;

impl Guest for Delete {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        own_type(&activity.kind, "Delete").map_err(reject)?;
        let json = Json::of(&activity.id)?;
        let id = object_activity_id(&json, "Delete", "what it deletes").map_err(reject)?;
        match log::get(id).and_then(|text| Json::from_text(&text).ok()) {
            Some(held) => own_activity(&held, &activity.actor).map_err(reject),
            None => same_origin(id, &activity.actor).map_err(reject),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// A thing this node does not hold may be deleted only by an actor of its
/// origin.
fn same_origin(id: &str, actor: &str) -> Result<(), String> {
    if is_activity_id(id) || origin(id).is_some_and(|o| Some(o) == origin(actor)) {
        Ok(())
    } else {
        Err(format!(
            "{} is not on the origin of {}: only its author can delete it",
            clip(id),
            clip(actor)
        ))
    }
}

weft_guest::verb::export_verb!(Delete);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::{Value, json};

    const BOB: &str = "https://m.example/users/bob";

    #[test]
    fn tombstones_and_urls_name_what_is_deleted() {
        let note = "https://m.example/users/bob/statuses/1";
        let named = |object: Value| {
            let json = Json::from_text(&json!({"type": "Delete", "object": object}).to_string())
                .expect("json");
            object_activity_id(&json, "Delete", "what it deletes").map(str::to_owned)
        };
        assert_eq!(
            named(json!({"id": note, "type": "Tombstone"})),
            Ok(note.to_owned())
        );
        assert_eq!(named(json!(note)), Ok(note.to_owned()));
        assert!(named(json!({"type": "Tombstone"})).is_err());
        assert!(named(json!("nope")).is_err());
        assert!(named(Value::Null).is_err());
    }

    #[test]
    fn only_the_origin_deletes_what_is_not_held() {
        assert!(same_origin("https://m.example/users/bob/statuses/1", BOB).is_ok());
        assert!(same_origin("https://M.example/users/bob/statuses/1", BOB).is_ok());
        assert!(same_origin("https://evil.example/users/bob/statuses/1", BOB).is_err());
    }
}

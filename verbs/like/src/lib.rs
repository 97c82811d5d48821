//! The Like verb: ActivityPub's `Like`, which Mastodon, GoToSocial, Misskey
//! and others send when someone favourites a post. `object` names what is
//! liked: an activity id, an http(s) URL, or an embedded object with its
//! `id`. It checks shape only; the `endorsements` projection counts Likes
//! with the likes of `Endorse`. Likes need no reaction.

use weft_guest::checks::{object_activity_id, own_type};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject};

struct Like;

impl Guest for Like {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        own_type(&activity.kind, "Like").map_err(reject)?;
        let json = Json::of(&activity.id)?;
        check(&json).map_err(reject)
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks a Like's `object`.
fn check(json: &Json) -> Result<(), String> {
    object_activity_id(json, "Like", "what is liked").map(|_| ())
}

weft_guest::verb::export_verb!(Like);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::{Value, json};

    fn like(object: Value) -> Json {
        Json::from_text(&json!({"type": "Like", "object": object}).to_string()).expect("json")
    }

    #[test]
    fn likes_name_what_they_like() {
        assert!(check(&like(json!("https://m.example/users/a/statuses/1"))).is_ok());
        assert!(
            check(&like(
                json!({"id": "https://m.example/notes/1", "type": "Note"})
            ))
            .is_ok()
        );
        assert!(
            check(&like(json!(
                "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga"
            )))
            .is_ok()
        );
        assert!(check(&like(Value::Null)).is_err());
        assert!(check(&like(json!("not a url"))).is_err());
        assert!(check(&like(json!({"type": "Note"}))).is_err());
        assert!(check(&like(json!(3))).is_err());
    }
}

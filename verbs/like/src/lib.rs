//! The Like verb: ActivityPub's `Like`, which Mastodon, GoToSocial, Misskey
//! and others send when someone favourites a post. `object` names what is
//! liked: an activity id, an http(s) URL, or an embedded object with its
//! `id`. It checks shape only; the `endorsements` projection counts Likes
//! with the likes of `Endorse`. Likes need no reaction.

use weft_guest::serde_json::Value;
use weft_guest::text::{clip, is_activity_id, is_http_url};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject, rules};

struct Like;

impl Guest for Like {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        rules::own_type(&activity.kind, "Like").map_err(reject)?;
        let json = Json::parse(&activity)?;
        check(json.get("object")).map_err(reject)
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks a Like's `object`.
fn check(object: Option<&Value>) -> Result<(), String> {
    let id = match object {
        Some(Value::String(id)) => id,
        Some(Value::Object(embedded)) => match embedded.get("id") {
            Some(Value::String(id)) => id,
            _ => return Err("an embedded `object` must carry the liked thing's `id`".into()),
        },
        Some(_) => return Err("`object` must be the id or URL of what is liked".into()),
        None => return Err("a Like needs `object`: the id or URL of what is liked".into()),
    };
    if is_activity_id(id) || is_http_url(id) {
        Ok(())
    } else {
        Err(format!(
            "`object` must be an activity id or an http(s) URL, not `{}`",
            clip(id)
        ))
    }
}

weft_guest::verb::export_verb!(Like);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    #[test]
    fn likes_name_what_they_like() {
        assert!(check(Some(&json!("https://m.example/users/a/statuses/1"))).is_ok());
        assert!(
            check(Some(
                &json!({"id": "https://m.example/notes/1", "type": "Note"})
            ))
            .is_ok()
        );
        assert!(
            check(Some(&json!(
                "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga"
            )))
            .is_ok()
        );
        assert!(check(None).is_err());
        assert!(check(Some(&json!("not a url"))).is_err());
        assert!(check(Some(&json!({"type": "Note"}))).is_err());
        assert!(check(Some(&json!(3))).is_err());
    }
}

//! The Note verb: a `Create`, `Update` or `Delete` of a Note. A Note has
//! text `content` of at most 100,000 characters; an Update or Delete names
//! the Note by `object.id`. Notes need no reaction.

use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject, reject_field};

/// Longest `content` accepted, in characters.
const MAX_CONTENT: usize = 100_000;

struct Note;

impl Guest for Note {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        let json = Json::of(&activity.id)?;
        match activity.kind.as_str() {
            "Create" => {
                let content = json.object_str("content").ok_or_else(|| {
                    reject_field("object.content", "a Note needs `object.content`, a string")
                })?;
                if content.chars().count() > MAX_CONTENT {
                    return Err(reject_field(
                        "object.content",
                        format!("`object.content` is longer than {MAX_CONTENT} characters"),
                    ));
                }
                Ok(())
            }
            "Update" | "Delete" => json.object_id().map(|_| ()).ok_or_else(|| {
                reject_field(
                    "object.id",
                    "an Update or Delete of a Note names it with `object.id`",
                )
            }),
            other => Err(reject(format!(
                "a Note is created, updated or deleted, not `{other}`"
            ))),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

weft_guest::verb::export_verb!(Note);

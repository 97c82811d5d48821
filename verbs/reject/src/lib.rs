//! The Reject verb: the followed actor refuses a Follow (or, later, removes
//! an accepted follower), naming the Follow by its activity id in `object`.
//! When the Follow is in this node's log, only the actor it follows may
//! reject it; when it is not, only the shape of the id is checked. It does
//! not remove the follow (the `follower-graph` and `feed` projections do).
//! Rejects need no reaction.

use weft_guest::checks::{object_activity_id, own_type};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};
use weft_verb_rules::followed_actor_answers;

struct Reject;

impl Guest for Reject {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        own_type(&activity.kind, "Reject").map_err(reject)?;
        let json = Json::of(&activity.id)?;
        let id =
            object_activity_id(&json, "Reject", "the Follow being rejected").map_err(reject)?;
        match log::get(id).and_then(|text| Json::from_text(&text).ok()) {
            Some(answered) => {
                followed_actor_answers(&answered, &activity.actor, "reject").map_err(reject)
            }
            None => Ok(()),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

weft_guest::verb::export_verb!(Reject);

//! The Accept verb: the followed actor accepts a Follow, named by its
//! activity id in `object`. When the Follow is in this node's log, only
//! the actor it follows may accept it; when it is not, only the shape of
//! the id is checked. It does not record the follow (the `follower-graph`
//! and `feed` projections do) or start backfill (the kernel does).
//! Accepts need no reaction.

use weft_guest::checks::{object_activity_id, own_type};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};
use weft_verb_rules::followed_actor_answers;

struct Accept;

impl Guest for Accept {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        own_type(&activity.kind, "Accept").map_err(reject)?;
        let json = Json::of(&activity.id)?;
        let id =
            object_activity_id(&json, "Accept", "the Follow being accepted").map_err(reject)?;
        match log::get(id).and_then(|text| Json::from_text(&text).ok()) {
            Some(answered) => {
                followed_actor_answers(&answered, &activity.actor, "accept").map_err(reject)
            }
            None => Ok(()),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

weft_guest::verb::export_verb!(Accept);

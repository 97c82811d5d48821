//! The Undo verb: an actor withdraws one of its own activities (a Follow,
//! an Endorse, …), named by its activity id in `object`. When that activity
//! is in this node's log, it must be by the same actor; when it is not, only
//! the shape of the id is checked. It does not undo anything itself: each
//! projection decides what an Undo of the activities it folds means.
//! Undos need no reaction.

use weft_guest::checks::{object_activity_id, own_type};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection, log};
use weft_guest::{Json, reject};
use weft_verb_rules::own_activity;

struct Undo;

impl Guest for Undo {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        own_type(&activity.kind, "Undo").map_err(reject)?;
        let json = Json::of(&activity.id)?;
        let id = object_activity_id(&json, "Undo", "the activity being undone").map_err(reject)?;
        match log::get(id).and_then(|text| Json::from_text(&text).ok()) {
            Some(undone) => own_activity(&undone, &activity.actor).map_err(reject),
            None => Ok(()),
        }
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

weft_guest::verb::export_verb!(Undo);

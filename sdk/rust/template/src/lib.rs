//! A weft verb: `Checkin`, an actor saying where it is. Rename it, change
//! `validate`, and keep `export_verb!` at the bottom.
//!
//! ```sh
//! rustup target add wasm32-unknown-unknown
//! cargo build --release --target wasm32-unknown-unknown
//! weft module add verb Checkin target/wasm32-unknown-unknown/release/my_verb.wasm --language rust
//! ```

use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject_field};

struct Checkin;

impl Guest for Checkin {
    /// Accept the activity (`Ok`) or refuse it with a message saying what
    /// to fix, naming the field at fault; the publisher gets both in a 422.
    fn validate(activity: Activity) -> Result<(), Rejection> {
        let json = Json::of(&activity.id)?;
        match json.str("place") {
            Some(place) if !place.trim().is_empty() && place.chars().count() <= 200 => Ok(()),
            _ => Err(reject_field(
                "place",
                "a Checkin needs `place`: where you are, as text of at most 200 characters",
            )),
        }
    }

    /// What a local recipient publishes in response: nothing here.
    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

weft_guest::verb::export_verb!(Checkin);

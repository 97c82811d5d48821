//! Who may read a stored activity: anyone a public one; an actor of this
//! node the ones it wrote, the ones that name it (`to`, `cc`, an actor URL
//! in `object`) and, while it follows their author, the ones addressed to
//! the author's followers collection; the admin every one. The HTTP layer
//! asks it before serving an activity or its object, and a projection's
//! query reads the log through it, so a projection cannot show a reader
//! what the reader could not fetch.
//!
//! It decides only: who is asking is the HTTP layer's (tokens).

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use weft_store::ActivityRecord;

use super::Kernel;
use super::audience::{addressed, followers_collection};

/// Who is reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    Anonymous,
    Admin,
    /// A local actor, by id.
    Actor(String),
}

/// What one reader may read, for one request: whom the reader follows is
/// looked up once, the first time an activity needs it.
#[derive(Debug)]
pub struct View {
    kernel: Arc<Kernel>,
    reader: Reader,
    following: OnceLock<BTreeSet<String>>,
}

impl View {
    /// The view of `reader`.
    pub fn new(kernel: Arc<Kernel>, reader: Reader) -> Self {
        Self {
            kernel,
            reader,
            following: OnceLock::new(),
        }
    }

    /// Whether the reader may read `record`.
    pub fn may_read(&self, record: &ActivityRecord) -> bool {
        may_read(record, &self.reader, |_, author| self.follows(author))
    }

    /// Whether the reader follows `author`, as the follower graph says;
    /// while the graph cannot say (being built), no one does, nor does a
    /// reader that is no actor.
    fn follows(&self, author: &str) -> bool {
        let Reader::Actor(me) = &self.reader else {
            return false;
        };
        self.following
            .get_or_init(|| {
                self.kernel
                    .following(me)
                    .unwrap_or_default()
                    .into_iter()
                    .collect()
            })
            .contains(author)
    }
}

/// Whether `reader` may read `record`; `follows(me, author)` says whether
/// `me` follows `author`, asked only of an activity addressed to its
/// author's followers.
pub fn may_read(
    record: &ActivityRecord,
    reader: &Reader,
    follows: impl FnOnce(&str, &str) -> bool,
) -> bool {
    if record.public {
        return true;
    }
    let me = match reader {
        Reader::Admin => return true,
        Reader::Anonymous => return false,
        Reader::Actor(me) => me.as_str(),
    };
    if record.actor == me {
        return true;
    }
    let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&record.json) else {
        return false;
    };
    let named = addressed(&json);
    if named.contains(&me) {
        return true;
    }
    let followers = followers_collection(&record.actor);
    named.contains(&followers.as_str()) && follows(me, &record.actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "https://n.example/actors/bob";
    const ALICE: &str = "https://n.example/actors/alice";

    fn record(public: bool, json: serde_json::Value) -> ActivityRecord {
        ActivityRecord {
            id: "x".into(),
            json: json.to_string(),
            actor: BOB.into(),
            seq: 2,
            public,
            backfilled: false,
        }
    }

    fn alice() -> Reader {
        Reader::Actor(ALICE.into())
    }

    #[test]
    fn public_ones_to_all_the_rest_to_those_they_concern() {
        let public = record(true, serde_json::json!({"to": []}));
        let private = record(false, serde_json::json!({"type": "Create"}));
        let never = |_: &str, _: &str| -> bool { panic!("no follow lookup needed") };
        for reader in [Reader::Anonymous, Reader::Admin, alice()] {
            assert!(may_read(&public, &reader, never));
        }
        assert!(!may_read(&private, &Reader::Anonymous, never));
        assert!(may_read(&private, &Reader::Admin, never));
        assert!(may_read(&private, &Reader::Actor(BOB.into()), never));
        assert!(!may_read(&private, &alice(), never));
        // Named in `to`, `cc` or as the `object`.
        for named in [
            serde_json::json!({"to": [ALICE]}),
            serde_json::json!({"cc": ALICE}),
            serde_json::json!({"type": "Follow", "object": ALICE}),
        ] {
            assert!(may_read(&record(false, named), &alice(), never));
        }
        assert!(!may_read(
            &record(false, serde_json::json!({"to": [BOB]})),
            &alice(),
            |_, _| true
        ));
    }

    #[test]
    fn followers_only_ones_to_the_authors_followers() {
        let followers_only = record(
            false,
            serde_json::json!({"to": [format!("{BOB}/followers")]}),
        );
        assert!(may_read(&followers_only, &alice(), |me, author| {
            me == ALICE && author == BOB
        }));
        assert!(!may_read(&followers_only, &alice(), |_, _| false));
        assert!(!may_read(&followers_only, &Reader::Anonymous, |_, _| true));
        // Another actor's followers collection is not the author's.
        let elsewhere = record(
            false,
            serde_json::json!({"to": ["https://n.example/actors/carol/followers"]}),
        );
        assert!(!may_read(&elsewhere, &alice(), |_, _| true));
    }
}

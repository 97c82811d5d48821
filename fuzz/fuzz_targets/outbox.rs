//! An outbox page as backfill reads it (`federation::backfill`:
//! `ordered_items`, then `chain`) from any JSON.
//!
//! Checks, when the entries make a chain: every activity is the target's,
//! seqs strictly increase, consecutive seqs link through `prev`, ids are
//! unique and each is the CID of its canonical bytes; the same entries in
//! reverse order give the same chain (and an error stays an error); the
//! chain re-serialised is a chain of the same ids. It does not verify
//! signatures (that needs the peer's keys) nor fetch further pages.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft_core::model::cid;
use weft_core::wire::collection::ordered_items;
use weft_federation::backfill::chain;

/// The test vectors' actor, when the first entry names no actor.
const ALICE: &str = "http://127.0.0.1:9999/actors/alice";

fuzz_target!(|data: &[u8]| {
    let Ok(page) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if !page.is_object() {
        return;
    }
    let items = ordered_items(&page);
    let target = items
        .first()
        .and_then(|item| item.get("actor"))
        .and_then(Value::as_str)
        .unwrap_or(ALICE)
        .to_owned();
    let result = chain(items.clone(), &target);
    let reversed = chain(items.iter().rev().cloned().collect(), &target);
    assert_eq!(
        result.is_ok(),
        reversed.is_ok(),
        "the order of entries matters"
    );
    let Ok(activities) = result else {
        return;
    };
    let ids =
        |chain: &[weft_core::model::Signed]| chain.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&activities), ids(&reversed.expect("checked above")));
    assert!(activities.len() <= items.len());
    let mut seen = HashSet::new();
    for signed in &activities {
        assert_eq!(signed.header.actor, target);
        assert_eq!(signed.id, cid::activity_id(&signed.canonical));
        assert!(seen.insert(signed.id.clone()), "{} twice", signed.id);
    }
    for pair in activities.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.header.seq < b.header.seq, "seqs out of order");
        if b.header.seq == a.header.seq + 1 {
            assert_eq!(
                b.header.prev.as_deref(),
                Some(a.id.as_str()),
                "an unlinked pair"
            );
        }
    }
    let again: Vec<Value> = activities
        .iter()
        .map(|s| Value::Object(s.json.clone()))
        .collect();
    let again = chain(again, &target).expect("a chain re-serialised is a chain");
    assert_eq!(ids(&again), ids(&activities));
});

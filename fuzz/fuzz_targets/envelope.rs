//! The signed envelope (`weft_core::model::envelope`): parse, re-serialise,
//! verify and re-sign any JSON.
//!
//! Checks, for every text `Signed::parse` accepts: its id is the CID of
//! its canonical bytes, which are JCS of the activity without `id` and
//! `proof`; the JSON it re-serialises parses to the same id, header, key
//! and signature, in bare and URL id form; if it verifies under the test
//! vectors' key (host/tests/data/envelope.json), the re-serialised form
//! verifies too; stripped of `id` and `proof` and signed again with that
//! key it keeps its id, verifies, and parses. It does not check whether
//! the key belongs to the actor (that is `identity`, with a key history).

#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft_core::model::{Signed, cid, jcs};

/// The test vectors' key: seed bytes 0, 1, …, 31.
fn key() -> SigningKey {
    SigningKey::from_bytes(&std::array::from_fn(|i| i as u8))
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(signed) = Signed::parse(value) else {
        return;
    };
    assert_eq!(signed.id, cid::activity_id(&signed.canonical));
    let canonical = jcs::object_to_vec(&signed.json, &["id", "proof"]).expect("canonical");
    assert_eq!(signed.canonical, canonical);

    let text = signed.to_json_string();
    let again = reparse(&text);
    assert_same(&signed, &again);
    let url_form = reparse(&signed.clone().with_url_id().to_json_string());
    assert_same(&signed, &url_form);

    let key = key();
    let public = key.verifying_key();
    if signed.verify_with(&public).is_ok() {
        again
            .verify_with(&public)
            .expect("a re-serialised activity still verifies");
        url_form
            .verify_with(&public)
            .expect("the URL id form still verifies");
    }

    let mut unsigned = signed.json.clone();
    unsigned.remove("id");
    unsigned.remove("proof");
    let resigned = Signed::sign(unsigned, &signed.key_id, &key).expect("what parsed signs");
    assert_eq!(resigned.id, signed.id, "the id depends on the signature");
    resigned
        .verify_with(&public)
        .expect("a fresh signature verifies");
    let reread = reparse(&resigned.to_json_string());
    assert_eq!(reread.id, signed.id);
    reread
        .verify_with(&public)
        .expect("a fresh signature verifies after a round trip");
});

fn reparse(text: &str) -> Signed {
    let value: Value = serde_json::from_str(text).expect("re-serialised JSON parses");
    Signed::parse(value).expect("a re-serialised activity parses")
}

fn assert_same(a: &Signed, b: &Signed) {
    assert_eq!(a.id, b.id);
    assert_eq!(a.header, b.header);
    assert_eq!(a.key_id, b.key_id);
    assert_eq!(a.signature, b.signature);
    assert_eq!(a.canonical, b.canonical);
}

//! Activity and artifact ids (`weft_core::model::cid`) from any text.
//!
//! Checks: a text that parses as an activity id displays back to exactly
//! that text (one spelling per id); the id of the parsed digest parses to
//! the same digest; `internal` returns the input or a parseable id that
//! ends it; an artifact id is never an activity id and has one spelling. It does not check
//! that the digest is BLAKE3 of anything (that is the envelope target).

#![no_main]

use data_encoding::BASE32_NOPAD;
use libfuzzer_sys::fuzz_target;
use weft_core::model::cid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(digest) = cid::parse(text) {
        assert_eq!(cid::from_digest(&digest), text, "an id with two spellings");
        assert!(
            !cid::is_artifact_id(text),
            "an activity id taken as an artifact id"
        );
    }
    let internal = cid::internal(text);
    if internal != text {
        assert!(
            text.ends_with(internal),
            "internal() is not the end of its input"
        );
        assert!(
            cid::parse(internal).is_ok(),
            "internal() returned an unparseable id"
        );
    }
    if cid::is_artifact_id(text) {
        assert!(
            cid::parse(text).is_err(),
            "an artifact id taken as an activity id"
        );
        let bytes = BASE32_NOPAD
            .decode(text[1..].to_ascii_uppercase().as_bytes())
            .expect("an artifact id is base32");
        let spelled = format!("b{}", BASE32_NOPAD.encode(&bytes).to_ascii_lowercase());
        assert_eq!(spelled, text, "an artifact id with two spellings");
    }
    // Any 32 bytes make an id that parses back to them.
    if let Some(bytes) = data.get(..32) {
        let digest: [u8; 32] = bytes.try_into().expect("32 bytes");
        let id = cid::from_digest(&digest);
        assert_eq!(id.len(), cid::TEXT_LEN);
        assert_eq!(cid::parse(&id), Ok(digest));
        let url = cid::activity_url("https://example.com/actors/alice", &id);
        assert_eq!(cid::internal(&url), id);
    }
    // The artifact id of the input is one, and is not an activity id.
    let artifact = cid::artifact_id(data);
    assert!(cid::is_artifact_id(&artifact));
    assert!(cid::parse(&artifact).is_err());
});

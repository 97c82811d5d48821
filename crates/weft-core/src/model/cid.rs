//! Activity ids: CIDv1, codec json (0x0200), multihash BLAKE3-256 (0x1e),
//! multibase base32 lower-case without padding (`b…`).
//!
//! Only this one shape is produced or accepted; this is not a general CID
//! library.

use data_encoding::BASE32_NOPAD;

/// The binary prefix every weft id shares: version 1, codec json, BLAKE3, 32 bytes.
const PREFIX: [u8; 5] = [0x01, 0x80, 0x04, 0x1e, 0x20];
/// Length of the textual form: `b` + base32 of 37 bytes.
pub const TEXT_LEN: usize = 1 + 60;

/// Why a string is not a weft activity id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidError {
    #[error(
        "an activity id is `b` followed by 60 lower-case base32 characters; got {0} characters"
    )]
    Length(usize),
    #[error("an activity id must start with `b` (multibase base32 lower-case)")]
    Multibase,
    #[error("an activity id must be lower-case base32 (a–z, 2–7)")]
    Base32,
    #[error("an activity id must be a CIDv1 with codec json (0x0200) and a BLAKE3-256 multihash")]
    Shape,
}

/// The path segment before an activity's content id in its URL form,
/// `{base}/activities/{id}` (docs/architecture.md §9): the `id` a weft activity carries
/// on the wire, which ActivityPub peers dereference and weft peers read the
/// content id from.
pub const URL_SEGMENT: &str = "/activities/";

/// The URL id of the activity `cid` published by `actor`
/// (`{base}/actors/{name}` → `{base}/activities/{cid}`); the bare `cid`
/// when `actor` is not shaped like a weft actor URL.
pub fn activity_url(actor: &str, cid: &str) -> String {
    match actor.rsplit_once("/actors/") {
        Some((base, _)) if base.contains("://") => format!("{base}{URL_SEGMENT}{cid}"),
        _ => cid.to_owned(),
    }
}

/// The content id an activity id names: itself when it is a bare id, the
/// id at the end of a `…/activities/{id}` URL, and otherwise `id` as it is
/// (a foreign activity's URL).
pub fn internal(id: &str) -> &str {
    match id.rsplit_once(URL_SEGMENT) {
        Some((base, cid)) if base.contains("://") && parse(cid).is_ok() => cid,
        _ => id,
    }
}

/// Prefix of artifact ids: CIDv1, codec raw (0x55), BLAKE3-256.
const ARTIFACT_PREFIX: [u8; 4] = [0x01, 0x55, 0x1e, 0x20];

/// The content address of an artifact (a WASM component): CIDv1 with the
/// raw codec and a BLAKE3-256 multihash, base32.
pub fn artifact_id(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(36);
    out.extend_from_slice(&ARTIFACT_PREFIX);
    out.extend_from_slice(blake3::hash(bytes).as_bytes());
    format!("b{}", BASE32_NOPAD.encode(&out).to_ascii_lowercase())
}

/// Whether `text` has the shape of an artifact id.
pub fn is_artifact_id(text: &str) -> bool {
    text.strip_prefix('b')
        .and_then(|b| BASE32_NOPAD.decode(b.to_ascii_uppercase().as_bytes()).ok())
        .is_some_and(|b| {
            b.len() == 36
                && b[..4] == ARTIFACT_PREFIX
                && text.bytes().all(|c| !c.is_ascii_uppercase())
        })
}

/// The id of the activity whose canonical bytes are `canonical`.
pub fn activity_id(canonical: &[u8]) -> String {
    from_digest(blake3::hash(canonical).as_bytes())
}

/// The textual id for a BLAKE3 digest.
pub fn from_digest(digest: &[u8; 32]) -> String {
    let mut bytes = [0u8; 37];
    bytes[..5].copy_from_slice(&PREFIX);
    bytes[5..].copy_from_slice(digest);
    let mut text = String::with_capacity(TEXT_LEN);
    text.push('b');
    text.push_str(&BASE32_NOPAD.encode(&bytes).to_ascii_lowercase());
    text
}

/// Parses a textual id back to its BLAKE3 digest.
pub fn parse(text: &str) -> Result<[u8; 32], CidError> {
    if text.len() != TEXT_LEN {
        return Err(CidError::Length(text.chars().count()));
    }
    let body = text.strip_prefix('b').ok_or(CidError::Multibase)?;
    if !body
        .bytes()
        .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
    {
        return Err(CidError::Base32);
    }
    let bytes = BASE32_NOPAD
        .decode(body.to_ascii_uppercase().as_bytes())
        .map_err(|_| CidError::Base32)?;
    if bytes.len() != 37 || bytes[..5] != PREFIX {
        return Err(CidError::Shape);
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&bytes[5..]);
    // Reject non-canonical encodings (stray low bits in the last character).
    if from_digest(&digest) != text {
        return Err(CidError::Base32);
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ids_name_their_content_id() {
        let cid = activity_id(b"{}");
        let url = activity_url("https://example.com/actors/alice", &cid);
        assert_eq!(url, format!("https://example.com/activities/{cid}"));
        assert_eq!(internal(&url), cid);
        assert_eq!(internal(&cid), cid);
        assert_eq!(activity_url("urn:x", &cid), cid);
        let foreign = "https://mastodon.example/users/bob/statuses/1/activity";
        assert_eq!(internal(foreign), foreign);
        let not_a_cid = "https://example.com/activities/123";
        assert_eq!(internal(not_a_cid), not_a_cid);
    }
    use proptest::prelude::*;

    #[test]
    fn known_prefix() {
        let id = activity_id(b"{}");
        assert!(id.starts_with("bagaaihra"), "{id}");
        assert_eq!(id.len(), TEXT_LEN);
    }

    #[test]
    fn rejects_other_shapes() {
        assert_eq!(parse("bafy"), Err(CidError::Length(4)));
        let id = activity_id(b"x");
        assert_eq!(parse(&id.replacen('b', "z", 1)), Err(CidError::Multibase));
        assert_eq!(parse(&id.to_uppercase()), Err(CidError::Multibase));
        let mut sha = id.clone();
        sha.replace_range(1..9, "aflqqqqq");
        assert!(parse(&sha).is_err());
    }

    proptest! {
        #[test]
        fn id_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let id = activity_id(&bytes);
            let digest = parse(&id).expect("own ids parse");
            let expected = blake3::hash(&bytes);
            prop_assert_eq!(&digest, expected.as_bytes());
            prop_assert_eq!(from_digest(&digest), id);
        }
    }
}

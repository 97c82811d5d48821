//! The key an activity has in set reconciliation (docs/architecture.md
//! §10): a timestamp (`published`, in milliseconds since the Unix epoch)
//! and a 32-byte id, the pair negentropy (NIP-77 protocol v1) orders and
//! fingerprints. A weft envelope's 32 bytes are the BLAKE3 digest inside
//! its content id; a foreign activity's (its id is a URL) are the BLAKE3
//! of that URL.
//!
//! Both nodes derive the key from the same signed bytes, so they agree on
//! it without exchanging anything. This is only the derivation: the index
//! tables are `weft_store`'s and the protocol is `weft_federation`'s.

use super::cid;

/// An activity's set-reconciliation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetKey {
    /// `published` in ms since the Unix epoch; 0 when it is absent or not
    /// an RFC 3339 time (a foreign activity may have either).
    pub published_ms: u64,
    pub id: [u8; 32],
}

impl SetKey {
    /// The key of the activity `id` (a content id, its URL form
    /// `…/activities/{cid}`, or a foreign activity's URL) published at
    /// `published`.
    pub fn of(id: &str, published: &str) -> Self {
        Self {
            published_ms: published_ms(published),
            id: id32(id),
        }
    }
}

/// The 32 bytes that stand for the activity `id`.
pub fn id32(id: &str) -> [u8; 32] {
    match cid::parse(cid::internal(id)) {
        Ok(digest) => digest,
        Err(_) => *blake3::hash(id.as_bytes()).as_bytes(),
    }
}

/// `published` as ms since the Unix epoch; 0 when it is not an RFC 3339
/// time after the epoch.
pub fn published_ms(published: &str) -> u64 {
    humantime::parse_rfc3339_weak(published)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weft_id_keys_by_its_digest_in_either_form() {
        let cid = cid::activity_id(b"{\"a\":1}");
        let digest = cid::parse(&cid).expect("own ids parse");
        let url = cid::activity_url("https://a.example/actors/alice", &cid);
        let key = SetKey::of(&url, "2026-01-02T03:04:05.678Z");
        assert_eq!(key.id, digest);
        assert_eq!(SetKey::of(&cid, "2026-01-02T03:04:05.678Z"), key);
        assert_eq!(key.published_ms, 1_767_323_045_678);
    }

    #[test]
    fn a_foreign_id_keys_by_the_hash_of_its_url() {
        let url = "https://mastodon.example/users/bob/statuses/1/activity";
        let key = SetKey::of(url, "2026-01-02T03:04:05Z");
        assert_eq!(key.id, *blake3::hash(url.as_bytes()).as_bytes());
        assert_eq!(key.published_ms, 1_767_323_045_000);
        // Something shaped like a weft URL whose last segment is no cid is
        // foreign too.
        let odd = "https://a.example/activities/123";
        assert_eq!(id32(odd), *blake3::hash(odd.as_bytes()).as_bytes());
    }

    #[test]
    fn a_missing_or_odd_time_is_zero() {
        assert_eq!(published_ms(""), 0);
        assert_eq!(published_ms("yesterday"), 0);
        assert_eq!(published_ms("1969-12-31T23:59:59Z"), 0);
    }

    #[test]
    fn keys_order_by_time_then_id() {
        let early = SetKey::of("https://x.example/b", "2026-01-01T00:00:00Z");
        let late = SetKey::of("https://x.example/a", "2026-01-01T00:00:01Z");
        assert!(early < late);
    }
}

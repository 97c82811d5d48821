//! WebFinger (RFC 7033) as weft answers it: the JRD that maps
//! `acct:name@host` to an actor's URL, and reading that URL back out of a
//! JRD.
//!
//! The format only: resolving a `resource` to a local actor is the HTTP
//! layer's, fetching a JRD the command line's.

use serde_json::{Value, json};

use super::ACTIVITY_JSON;

/// The media type of a JRD.
pub const JRD_JSON: &str = "application/jrd+json";

/// The JRD for the actor `actor` (its URL), known as `subject`
/// (`acct:name@host`).
pub fn jrd(subject: &str, actor: &str) -> Value {
    json!({
        "subject": subject,
        "aliases": [actor],
        "links": [{
            "rel": "self",
            "type": ACTIVITY_JSON,
            "href": actor,
        }],
    })
}

/// The actor URL a JRD names: its `self` link of an ActivityPub media type
/// (`application/activity+json` or an `ld+json` profile).
pub fn actor_url(jrd: &Value) -> Option<&str> {
    jrd["links"].as_array()?.iter().find(|l| {
        l["rel"] == "self"
            && l["type"]
                .as_str()
                .is_some_and(|t| t.contains("activity+json") || t.contains("ld+json"))
    })?["href"]
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_read_back_as_written() {
        let jrd = jrd("acct:a@n.example", "https://n.example/actors/a");
        assert_eq!(actor_url(&jrd), Some("https://n.example/actors/a"));
        assert_eq!(
            actor_url(&json!({"links": [{"rel": "self", "type": "text/html", "href": "x"}]})),
            None
        );
    }
}

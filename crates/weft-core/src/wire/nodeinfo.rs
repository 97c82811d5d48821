//! NodeInfo 2.1 (<https://nodeinfo.diaspora.software>): the discovery
//! document at `/.well-known/nodeinfo` and the document it points at, which
//! says what software a node runs and how big it is.
//!
//! The format only: the counts come from the store, through the HTTP layer.

use serde_json::{Value, json};

/// The schema, and the `rel` of the link to it.
pub const SCHEMA: &str = "http://nodeinfo.diaspora.software/ns/schema/2.1";

/// The media type of the NodeInfo document.
pub const MEDIA_TYPE: &str =
    "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"";

/// The discovery document: where the node at `base` serves NodeInfo.
pub fn links(base: &str) -> Value {
    json!({
        "links": [{
            "rel": SCHEMA,
            "href": format!("{base}/nodeinfo/2.1"),
        }],
    })
}

/// The NodeInfo document of a weft node with `users` local actors that
/// have published `posts` activities.
pub fn document(users: u64, posts: u64) -> Value {
    json!({
        "version": "2.1",
        "software": {
            "name": "weft",
            "version": env!("CARGO_PKG_VERSION"),
            "repository": env!("CARGO_PKG_REPOSITORY"),
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": false,
        "usage": {
            "users": {"total": users},
            "localPosts": posts,
        },
        "metadata": {},
    })
}

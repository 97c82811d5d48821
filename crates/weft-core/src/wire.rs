//! Wire formats shared by the node's server and its client side: media
//! types, and the JSON shapes weft writes and reads (docs/architecture.md
//! §9, §11). Each shape is built and parsed in one module: the actor
//! document and an actor's first activity (`actor`), ordered collections,
//! their pages and page links (`collection`), the object a `Create` makes
//! as it is served (`object`), the registry view of a node's modules
//! (`registry`), the operator's view of policies (`policy`), WebFinger
//! (`webfinger`), NodeInfo (`nodeinfo`) and anti-entropy's heads and sync
//! view (`sync`).
//!
//! What is here is the format, not the transport or the policy: no HTTP
//! types, no I/O, and no decision about whom to trust (identity's key
//! rules are `identity::actor`'s, what a peer may claim is federation's).

pub mod actor;
pub mod collection;
pub mod nodeinfo;
pub mod object;
pub mod policy;
pub mod registry;
pub mod sync;
pub mod webfinger;

/// The media type of activities and actor documents.
pub const ACTIVITY_JSON: &str = "application/activity+json";

/// The ActivityStreams context every published activity names.
pub const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";

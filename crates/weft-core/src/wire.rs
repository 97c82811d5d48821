//! Wire formats shared by the node's server and its client side: media types
//! and the ActivityStreams shapes weft writes and reads.
//!
//! What is here is the format, not the transport: no HTTP types, no I/O.

/// The media type of activities and actor documents.
pub const ACTIVITY_JSON: &str = "application/activity+json";

//! The data model (DESIGN §2): canonical JSON, activity ids and the signed
//! envelope. Pure functions, no I/O.

pub mod cid;
pub mod envelope;
pub mod jcs;

pub use envelope::{EnvelopeError, Header, PUBLIC, Signed};

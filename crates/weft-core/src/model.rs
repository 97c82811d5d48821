//! The data model (docs/architecture.md §3): canonical JSON, activity ids and the signed
//! envelope. Pure functions, no I/O.

pub mod cid;
pub mod envelope;
pub mod jcs;
pub mod setkey;

pub use envelope::{EnvelopeError, Header, PUBLIC, Signed};

/// `scheme://authority` (lower-cased) of an http(s) URL, the unit peers are
/// told apart by; `None` for anything else.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

//! The dashboard's logins: the operator presents the admin token once, at
//! `POST /admin/login`, and gets a session cookie (`Secure`, `HttpOnly`,
//! `SameSite=Strict`, path `/admin`) holding a random session id; the node
//! keeps only the id's hash and its expiry, in memory (a restart logs
//! everyone out). The admin token itself never sits in the browser.

use std::collections::HashMap;
use std::sync::Mutex;

use weft_core::identity::token;

/// The cookie's name.
pub const COOKIE: &str = "weft_session";
/// How long a login lasts.
pub const LIFETIME_MS: u64 = 12 * 3_600_000;
/// Most sessions kept at once (the oldest go first).
const MOST: usize = 64;

/// The open sessions: BLAKE3 of the id → expiry (ms since the epoch).
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], u64>>,
}

impl Sessions {
    /// Opens a session; answers its id (for the cookie).
    pub fn open(&self, now_ms: u64) -> String {
        let id = token::generate();
        if let Ok(mut open) = self.open.lock() {
            open.retain(|_, expires| *expires > now_ms);
            if open.len() >= MOST
                && let Some(oldest) = open.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
            {
                open.remove(&oldest);
            }
            open.insert(token::hash(&id), now_ms + LIFETIME_MS);
        }
        id
    }

    /// Whether `id` is an open session.
    pub fn valid(&self, id: &str, now_ms: u64) -> bool {
        self.open
            .lock()
            .is_ok_and(|open| open.get(&token::hash(id)).is_some_and(|e| *e > now_ms))
    }

    /// Closes the session `id`.
    pub fn close(&self, id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&token::hash(id));
        }
    }
}

/// The session id in a `Cookie` header, if there is one.
pub fn from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value for session `id` (or, with `None`, one that
/// removes it).
pub fn set_cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/admin; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
            LIFETIME_MS / 1000
        ),
        None => format!("{COOKIE}=; Path=/admin; Max-Age=0; Secure; HttpOnly; SameSite=Strict"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_expire_and_close() {
        let sessions = Sessions::default();
        let id = sessions.open(1_000);
        assert!(sessions.valid(&id, 2_000));
        assert!(!sessions.valid(&id, 1_000 + LIFETIME_MS));
        assert!(!sessions.valid("someone else's", 2_000));
        sessions.close(&id);
        assert!(!sessions.valid(&id, 2_000));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_is_strict() {
        assert_eq!(from_cookies("a=1; weft_session=xyz; b=2"), Some("xyz"));
        assert_eq!(from_cookies("weft_session="), None);
        assert_eq!(from_cookies("other=1"), None);
        let set = set_cookie(Some("xyz"));
        for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/admin"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(set_cookie(None).contains("Max-Age=0"));
    }
}

//! The Rust guest SDK for weft modules: a thin layer over wit-bindgen.
//!
//! A verb enables the `verb` feature, implements [`verb::Guest`] and calls
//! `verb::export_verb!`; a projection enables `projection`, implements
//! [`projection::Guest`] and calls `projection::export_projection!`. [`Json`] gives a
//! typed view of the activity JSON, [`kv`] helpers wrap the projection's
//! store. This crate adds no behaviour of its own: what the WIT in
//! `sdk/wit/weft.wit` says is what a module can do.
//!
//! ```ignore
//! use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
//! struct Note;
//! impl Guest for Note {
//!     fn validate(a: Activity) -> Result<(), Rejection> {
//!         let json = weft_guest::Json::parse(&a)?;
//!         json.object_str("content").map(|_| ()).ok_or_else(|| weft_guest::reject("a Note needs `object.content`"))
//!     }
//!     fn react(_: Activity, _: Context) -> Vec<Intent> { Vec::new() }
//! }
//! weft_guest::verb::export_verb!(Note);
//! ```

#![allow(
    unsafe_code,
    reason = "wit-bindgen's generated glue is unsafe by nature"
)]

// A module enables one of the `verb` and `projection` features. Both may be
// on at once in a native workspace build (cargo unifies features); a WASM
// module must be built with one, or its component would claim both worlds.

pub use serde_json;
use serde_json::{Map, Value};

/// The `verb` world: validate and react.
#[cfg(feature = "verb")]
#[allow(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated lifting code"
)]
pub mod verb {
    wit_bindgen::generate!({
        world: "verb",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_verb",
        default_bindings_module: "weft_guest::verb",
    });
    pub use self::weft::module::log;
}

/// The `projection` world: fold and query over a private key-value store.
#[cfg(feature = "projection")]
#[allow(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated lifting code"
)]
pub mod projection {
    wit_bindgen::generate!({
        world: "projection",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_projection",
        default_bindings_module: "weft_guest::projection",
    });
    pub use self::weft::module::{kv, log};
}

#[cfg(feature = "verb")]
use verb::Rejection;

/// Anything that carries an activity's JSON text: both worlds' `activity`.
pub trait ActivityJson {
    fn json_text(&self) -> &str;
}

#[cfg(feature = "verb")]
impl ActivityJson for verb::Activity {
    fn json_text(&self) -> &str {
        &self.json
    }
}

#[cfg(feature = "projection")]
impl ActivityJson for projection::Activity {
    fn json_text(&self) -> &str {
        &self.json
    }
}

/// A rejection with `message`.
#[cfg(feature = "verb")]
pub fn reject(message: impl Into<String>) -> Rejection {
    Rejection {
        message: message.into(),
    }
}

/// Small checks and helpers that verbs and projections share.
pub mod text {
    /// Separator of key parts in projection stores (U+001F): no valid URL or
    /// activity id contains it.
    pub const SEP: char = '\u{1f}';

    /// Is `s` shaped like an activity id: `b` and 60 lower-case base32 characters?
    pub fn is_activity_id(s: &str) -> bool {
        s.len() == 61
            && s.starts_with('b')
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
    }

    /// Is `s` an absolute http(s) URL with a host and no whitespace or controls?
    pub fn is_http_url(s: &str) -> bool {
        match s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
        {
            Some(rest) => {
                !rest.is_empty()
                    && !rest.starts_with('/')
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        }
    }

    /// Can `s` be part of a store key (non-empty, no control characters)?
    pub fn is_safe(s: &str) -> bool {
        !s.is_empty() && !s.chars().any(char::is_control)
    }

    /// Joins key parts with [`SEP`].
    pub fn key(parts: &[&str]) -> String {
        parts.join(&SEP.to_string())
    }

    /// `s`, shortened to 80 characters for an error message.
    pub fn clip(s: &str) -> String {
        match s.char_indices().nth(80) {
            Some((end, _)) => format!("{}…", &s[..end]),
            None => s.to_owned(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn checks() {
            assert!(is_activity_id(
                "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga"
            ));
            assert!(!is_activity_id("bagaaihra"));
            assert!(
                is_http_url("http://127.0.0.1:9/actors/a")
                    && !is_http_url("http:///x")
                    && !is_http_url("ftp://x")
            );
            assert!(!is_safe("a\u{1f}b") && is_safe("a"));
            assert_eq!(key(&["a", "b"]), "a\u{1f}b");
            assert_eq!(clip(&"x".repeat(100)).chars().count(), 81);
        }
    }
}

/// Checks that several verbs share: each returns a message a person can act
/// on. Pure: they look only at the JSON they are given.
pub mod rules {
    use crate::Json;
    use crate::serde_json::Value;
    use crate::text::{clip, is_activity_id};

    /// The activity must be published as its own `type` (not wrapped in a Create).
    pub fn own_type(kind: &str, verb: &str) -> Result<(), String> {
        if kind == verb {
            return Ok(());
        }
        Err(format!(
            "{} {verb} is published as its own activity (`\"type\": \"{verb}\"`), not inside a `{kind}`",
            article(verb)
        ))
    }

    /// `object` must be an activity id (a string); `what` names it in
    /// messages, e.g. "the Follow being accepted".
    pub fn object_activity_id<'a>(
        json: &'a Json,
        verb: &str,
        what: &str,
    ) -> Result<&'a str, String> {
        match json.get("object") {
            Some(Value::String(id)) if is_activity_id(id) => Ok(id),
            Some(Value::String(other)) => Err(format!(
                "`object` must be the id of {what} (`b` then 60 characters a-z, 2-7), not `{}`",
                clip(other)
            )),
            Some(_) => Err(format!(
                "`object` must be the id of {what} as a string, not an embedded object"
            )),
            None => Err(format!(
                "{} {verb} needs `object`: the id of {what}",
                article(verb)
            )),
        }
    }

    /// When `answered` is a Follow, only the actor it follows may answer it
    /// (Accept or Reject); `action` is "accept" or "reject".
    pub fn followed_actor_answers(
        answered: &Json,
        actor: &str,
        action: &str,
    ) -> Result<(), String> {
        match (answered.str("type"), answered.str("object")) {
            (Some("Follow"), Some(target)) if target != actor => Err(format!(
                "only the followed actor ({}) can {action} this Follow",
                clip(target)
            )),
            _ => Ok(()),
        }
    }

    /// An actor can undo only its own activities.
    pub fn own_activity(undone: &Json, actor: &str) -> Result<(), String> {
        match undone.str("actor") {
            Some(owner) if owner != actor => Err(format!(
                "an actor can undo only its own activities; that one is by {}",
                clip(owner)
            )),
            _ => Ok(()),
        }
    }

    fn article(word: &str) -> &'static str {
        if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
            "an"
        } else {
            "a"
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::serde_json::json;

        const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";
        const BOB: &str = "https://example.com/actors/bob";

        fn json(v: Value) -> Json {
            Json::from_text(&v.to_string()).expect("an object")
        }

        #[test]
        fn own_type_names_the_verb() {
            assert!(own_type("Accept", "Accept").is_ok());
            let err = own_type("Create", "Undo").expect_err("wrapped");
            assert!(
                err.starts_with("an Undo") && err.contains("`Create`"),
                "{err}"
            );
        }

        #[test]
        fn object_must_be_an_activity_id() {
            let what = "the Follow being accepted";
            assert_eq!(
                object_activity_id(&json(json!({"object": ID})), "Accept", what),
                Ok(ID)
            );
            assert!(object_activity_id(&json(json!({"object": BOB})), "Accept", what).is_err());
            assert!(
                object_activity_id(&json(json!({"object": {"id": ID}})), "Accept", what).is_err()
            );
            let missing =
                object_activity_id(&json(json!({})), "Reject", what).expect_err("missing");
            assert!(missing.starts_with("a Reject needs `object`"), "{missing}");
        }

        #[test]
        fn only_the_followed_actor_answers_a_follow() {
            let follow = json(json!({"type": "Follow", "object": BOB}));
            assert!(followed_actor_answers(&follow, BOB, "accept").is_ok());
            assert!(
                followed_actor_answers(&follow, "https://example.com/actors/eve", "reject")
                    .is_err()
            );
            let other = json(json!({"type": "Invite", "object": BOB}));
            assert!(
                followed_actor_answers(&other, "https://example.com/actors/eve", "accept").is_ok()
            );
        }

        #[test]
        fn only_the_author_undoes() {
            let follow = json(json!({"type": "Follow", "actor": BOB}));
            assert!(own_activity(&follow, BOB).is_ok());
            assert!(own_activity(&follow, "https://example.com/actors/eve").is_err());
        }
    }
}

/// A typed view of an activity's JSON.
#[derive(Debug, Clone)]
pub struct Json(pub Map<String, Value>);

impl Json {
    /// Parses an activity's JSON text.
    pub fn parse(activity: &impl ActivityJson) -> Result<Self, JsonError> {
        Self::from_text(activity.json_text())
    }

    /// Parses JSON text that must be an object.
    pub fn from_text(text: &str) -> Result<Self, JsonError> {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(JsonError),
        }
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(Value::as_str)
    }

    /// `object` when it is embedded (an object).
    pub fn object(&self) -> Option<&Map<String, Value>> {
        self.0.get("object").and_then(Value::as_object)
    }

    /// A string field of the embedded `object`.
    pub fn object_str(&self, field: &str) -> Option<&str> {
        self.object()
            .and_then(|o| o.get(field))
            .and_then(Value::as_str)
    }

    /// The object's id: the `object` string itself, or the embedded object's `id`.
    pub fn object_id(&self) -> Option<&str> {
        match self.0.get("object") {
            Some(Value::String(s)) => Some(s),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str),
            _ => None,
        }
    }

    /// Everyone in `to` and `cc`.
    pub fn audience(&self) -> Vec<&str> {
        ["to", "cc"]
            .iter()
            .flat_map(|f| match self.0.get(*f) {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// The activity JSON was not an object (the node never sends such).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError;

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the activity is not a JSON object")
    }
}

#[cfg(feature = "verb")]
impl From<JsonError> for Rejection {
    fn from(e: JsonError) -> Self {
        reject(e.to_string())
    }
}

/// Helpers over the projection's key-value store.
#[cfg(feature = "projection")]
pub mod kv {
    pub use crate::projection::kv::{delete, get, scan, set};

    /// Reads a counter (0 when absent).
    pub fn counter(key: &str) -> u64 {
        get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// Adds `delta` to a counter, deleting it when it reaches 0.
    pub fn add(key: &str, delta: i64) -> u64 {
        let next = counter(key).saturating_add_signed(delta);
        if next == 0 {
            delete(key)
        } else {
            set(key, &next.to_string())
        }
        next
    }

    /// Every entry under `prefix`, page by page.
    pub fn scan_all(prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = scan(prefix, after.as_deref(), 256);
            let done = page.len() < 256;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(page);
            if done {
                return out;
            }
        }
    }
}

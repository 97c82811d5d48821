//! The Rust guest SDK for weft modules: a thin layer over wit-bindgen.
//! Verbs are built against `weft:module@0.2.0` and projections against
//! `weft:module@0.3.0` (`sdk/wit/`), the newest contract with each world;
//! the feature `contract-0-2` builds projections against 0.2.0 instead (a
//! switch, not an addition: for testing that contract). Modules of 0.1.0
//! use the crate `weft-guest-v0-1` (`sdk/rust-v0.1`).
//!
//! A verb enables the `verb` feature, implements [`verb::Guest`] and calls
//! `verb::export_verb!`. A projection enables `projection`, implements
//! [`Projection`] (a `fold` of one [`Activity`] and a `query`) and calls
//! [`export_projection!`], which folds each run the node passes one
//! activity at a time and hands the run's successful folds' writes to the
//! node in one call: [`kv`] buffers them and lets the fold read them back.
//! The activity arrives with its most-read fields parsed (`object_type`,
//! `object_id`, `in_reply_to`, `to`, `cc`), borrowed from the run;
//! [`activity_text`] fetches its whole JSON, which [`Json`] views typed and
//! [`fields_in`] with [`view`] types reads just the fields a module needs.
//! This crate adds no behaviour of its own: what the WIT says is what a
//! module can do.
//!
//! ```ignore
//! use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
//! struct Note;
//! impl Guest for Note {
//!     fn validate(a: Activity) -> Result<(), Rejection> {
//!         let json = weft_guest::Json::from_text(&weft_guest::activity_text(&a.id)?)?;
//!         json.object_str("content")
//!             .map(|_| ())
//!             .ok_or_else(|| weft_guest::reject_field("object.content", "a Note needs `object.content`"))
//!     }
//!     fn react(_: Activity, _: Context) -> Vec<Intent> { Vec::new() }
//! }
//! weft_guest::verb::export_verb!(Note);
//! ```

#![allow(
    unsafe_code,
    reason = "wit-bindgen's generated glue is unsafe by nature"
)]

// The `verb` and `projection` features add up: a crate may enable both (cargo
// unifies them when one build compiles verbs and projections together). With
// `pub_export_macro`, what wit-bindgen embeds in this library for each world is
// that world with its exports removed (its imports only); the world with its
// exports is embedded by `export_verb!` / `export_projection!`, in the crate
// that calls it. So a crate's component exports the world it exports, and
// wit-component keeps only the imports its code uses (a verb never imports
// `kv`).

pub use serde;
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
        path: "../wit/weft-module@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_verb",
        default_bindings_module: "weft_guest::verb",
    });
    pub use self::weft::module::log;
}

/// The `projection` world (0.3.0): fold and query over a private key-value
/// store. Implement [`crate::Projection`] and call
/// [`crate::export_projection!`] rather than this world's `Guest` and
/// export macro.
#[cfg(all(feature = "projection", not(feature = "contract-0-2")))]
#[allow(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated lifting code"
)]
pub mod projection {
    wit_bindgen::generate!({
        world: "projection",
        path: "../wit/weft-module@0.3.0",
        pub_export_macro: true,
        export_macro_name: "export_projection_world",
        default_bindings_module: "weft_guest::projection",
    });
    pub use self::weft::module::{kv, log};
}

/// The `projection` world of 0.2.0 (feature `contract-0-2`).
#[cfg(all(feature = "projection", feature = "contract-0-2"))]
#[allow(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated lifting code"
)]
pub mod projection {
    wit_bindgen::generate!({
        world: "projection",
        path: "../wit/weft-module@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_projection_world",
        default_bindings_module: "weft_guest::projection",
    });
    pub use self::weft::module::{kv, log};
}

#[cfg(feature = "projection")]
mod activity;
#[cfg(any(test, all(target_arch = "wasm32", feature = "arena")))]
mod arena;
#[cfg(target_arch = "wasm32")]
mod mem;
#[cfg(all(target_arch = "wasm32", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();
#[cfg(feature = "projection")]
pub use activity::{Activity, Addressees};

#[cfg(feature = "verb")]
use verb::Rejection;

/// Anything that carries an activity's JSON text (a 0.1.0 activity, in
/// `weft-guest-v0-1`).
pub trait ActivityJson {
    fn json_text(&self) -> &str;
}

/// The JSON text of the activity `id` (the one a call is about, or any
/// stored one), from the node's log: through the `verb` world's `log` when
/// that feature is on (a build with both features on reads through the
/// verb's, a 0.2.0 import), else the projection's. A projection reads the
/// activity it folds with [`Activity::text`], and others with
/// `projection::log::get`, which import its own contract's `log`.
#[cfg(any(feature = "verb", feature = "projection"))]
pub fn activity_text(id: &str) -> Result<String, JsonError> {
    #[cfg(feature = "verb")]
    let text = verb::log::get(id);
    #[cfg(not(feature = "verb"))]
    let text = projection::log::get(id);
    text.ok_or(JsonError)
}

/// A rejection with `message`.
#[cfg(feature = "verb")]
pub fn reject(message: impl Into<String>) -> Rejection {
    Rejection {
        message: message.into(),
        field: None,
    }
}

/// A rejection with `message` naming the `field` at fault, as a path into
/// the activity (`object.content`); the publisher's 422 carries it.
#[cfg(feature = "verb")]
pub fn reject_field(field: impl Into<String>, message: impl Into<String>) -> Rejection {
    Rejection {
        message: message.into(),
        field: Some(field.into()),
    }
}

/// A projection: folds one activity into its store (through [`kv`]) and
/// answers queries from it. [`export_projection!`] exports it.
#[cfg(feature = "projection")]
pub trait Projection {
    /// Folds one activity. Its [`kv`] writes reach the store only if it
    /// returns `Ok`; it reads them back meanwhile.
    fn fold(activity: &Activity<'_>) -> Result<(), String>;
    /// Serves `GET /projections/{name}/{path}?{params}` with JSON text.
    fn query(path: String, params: Vec<(String, String)>)
    -> Result<String, projection::QueryError>;
}

/// Folds activities in turn with `P`: each successful fold's writes are
/// kept for the folds after it, each scan of the node's store is made once,
/// and the writes reach the node in one call at the end; a failed fold's
/// writes are dropped.
#[cfg(feature = "projection")]
pub fn fold_each<'a, P: Projection>(
    activities: impl Iterator<Item = Activity<'a>>,
) -> Vec<Result<(), String>> {
    kv::begin_batch();
    let results = activities
        .map(|activity| {
            kv::discard();
            let result = P::fold(&activity);
            match result {
                Ok(()) => kv::keep(),
                Err(_) => kv::discard(),
            }
            result
        })
        .collect();
    kv::end_batch();
    results
}

/// Folds a packed run with `P` (the 0.3.0 export `fold`), as [`fold_each`].
#[cfg(all(feature = "projection", not(feature = "contract-0-2")))]
pub fn fold_run<P: Projection>(run: &projection::Run) -> Vec<Result<(), String>> {
    fold_each::<P>(Activity::all_of(run))
}

/// Folds one 0.2.0 activity with `P` (the 0.2.0 export `fold`), handing
/// its writes to the node in one call if it succeeds.
#[cfg(all(feature = "projection", feature = "contract-0-2"))]
pub fn fold_one<P: Projection>(activity: &projection::Activity) -> Result<(), String> {
    fold_each::<P>(std::iter::once(Activity::of_record(activity)))
        .pop()
        .unwrap_or(Ok(()))
}

/// Folds a run of 0.2.0 activities with `P` (the 0.2.0 export
/// `fold-batch`), as [`fold_each`].
#[cfg(all(feature = "projection", feature = "contract-0-2"))]
pub fn fold_batch<P: Projection>(activities: &[projection::Activity]) -> Vec<Result<(), String>> {
    fold_each::<P>(activities.iter().map(Activity::of_record))
}

/// Exports a type implementing [`Projection`] as the component's
/// `projection` world: `fold` of a packed run (each activity in turn) and
/// `query`.
#[cfg(all(feature = "projection", not(feature = "contract-0-2")))]
#[macro_export]
macro_rules! export_projection {
    ($ty:ident) => {
        const _: () = {
            struct WeftProjectionExport;
            impl $crate::projection::Guest for WeftProjectionExport {
                fn fold(run: $crate::projection::Run) -> Vec<::core::result::Result<(), String>> {
                    $crate::fold_run::<$ty>(&run)
                }
                fn query(
                    path: String,
                    params: Vec<(String, String)>,
                ) -> ::core::result::Result<String, $crate::projection::QueryError> {
                    <$ty as $crate::Projection>::query(path, params)
                }
            }
            $crate::projection::export_projection_world!(WeftProjectionExport);
        };
    };
}

/// Exports a type implementing [`Projection`] as the 0.2.0 `projection`
/// world: `fold`, `fold-batch` (each activity in turn, as `fold`) and
/// `query`.
#[cfg(all(feature = "projection", feature = "contract-0-2"))]
#[macro_export]
macro_rules! export_projection {
    ($ty:ident) => {
        const _: () = {
            struct WeftProjectionExport;
            impl $crate::projection::Guest for WeftProjectionExport {
                fn fold(
                    activity: $crate::projection::Activity,
                ) -> ::core::result::Result<(), String> {
                    $crate::fold_one::<$ty>(&activity)
                }
                fn fold_batch(
                    activities: Vec<$crate::projection::Activity>,
                ) -> Vec<::core::result::Result<(), String>> {
                    $crate::fold_batch::<$ty>(&activities)
                }
                fn query(
                    path: String,
                    params: Vec<(String, String)>,
                ) -> ::core::result::Result<String, $crate::projection::QueryError> {
                    <$ty as $crate::Projection>::query(path, params)
                }
            }
            $crate::projection::export_projection_world!(WeftProjectionExport);
        };
    };
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
            Some(rest) => !rest.is_empty() && !rest.starts_with('/') && !has_space_or_control(s),
            None => false,
        }
    }

    /// Does `s` hold a whitespace or control character? Read a byte at a
    /// time while `s` is ASCII (where those are the bytes up to space, and
    /// DEL), by character once it is not.
    fn has_space_or_control(s: &str) -> bool {
        // For ASCII, whitespace and controls are the bytes up to space,
        // and DEL.
        let (ascii, found) = ascii_prefix(s.as_bytes(), b' ' + 1);
        if found {
            return true;
        }
        // The prefix ends on a character boundary: what precedes it is ASCII.
        let rest = s.get(ascii..).unwrap_or_default();
        if rest.is_ascii() {
            return rest.bytes().any(|b| b <= b' ' || b == 0x7f);
        }
        rest.chars().any(|c| c.is_whitespace() || c.is_control())
    }

    /// Reads `bytes` eight at a time while they are ASCII: how many were
    /// read (a multiple of 8, ending before the first word holding a
    /// non-ASCII byte or before the last few bytes), and whether a byte
    /// below `floor` (at most 128) or DEL is among them. In a module a
    /// byte loop pays the runtime's fuel and interruption checks on each
    /// byte; this pays them on each word.
    fn ascii_prefix(bytes: &[u8], floor: u8) -> (usize, bool) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let below = ONES * u64::from(floor);
        let mut read = 0;
        for word in bytes.chunks_exact(8) {
            let mut eight = [0; 8];
            eight.copy_from_slice(word);
            let x = u64::from_le_bytes(eight);
            if x & HIGH != 0 {
                break;
            }
            // With every byte below 128, a byte-wise subtraction sets a
            // high bit exactly when some byte is below what is subtracted
            // (a borrow only follows such a byte): below `floor`, or zero
            // once DEL is flipped to zero.
            if (x.wrapping_sub(below) | (x ^ (ONES * 0x7f)).wrapping_sub(ONES)) & HIGH != 0 {
                return (read, true);
            }
            read += 8;
        }
        (read, false)
    }

    /// The content id an activity reference names: the `b…` at the end of
    /// a weft activity URL (`{base}/activities/b…`), or `s` itself (a bare
    /// id, or another server's URL). Two references to one weft activity
    /// then key the same entries.
    pub fn content_id(s: &str) -> &str {
        match s.rsplit_once("/activities/") {
            Some((base, id)) if base.contains("://") && is_activity_id(id) => id,
            _ => s,
        }
    }

    /// The origin (scheme and authority, lower-cased) of an http(s) URL.
    pub fn origin(url: &str) -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
    }

    /// Can `s` be part of a store key (non-empty, no control characters)?
    pub fn is_safe(s: &str) -> bool {
        // Read a byte at a time: the controls are U+0000–U+001F, U+007F
        // and U+0080–U+009F, the last written C2 80–C2 9F in UTF-8 (C2
        // is only ever a lead byte there).
        // An ASCII prefix is read a word at a time (`ascii_prefix`); it
        // holds no C2, so the rest is checked on its own.
        let (ascii, found) = ascii_prefix(s.as_bytes(), b' ');
        let bytes = s.as_bytes().get(ascii..).unwrap_or_default();
        !s.is_empty()
            && !found
            && !bytes.iter().enumerate().any(|(at, &b)| {
                b < b' '
                    || b == 0x7f
                    || (b == 0xc2 && bytes.get(at + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
            })
    }

    /// Joins key parts with [`SEP`].
    pub fn key(parts: &[&str]) -> String {
        let len = parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        for (at, part) in parts.iter().enumerate() {
            if at > 0 {
                key.push(SEP);
            }
            key.push_str(part);
        }
        key
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
            assert!(!is_safe("a\u{85}") && !is_safe("\u{7f}") && !is_safe(""));
            assert!(is_safe("é\u{a0}\u{2028}") && is_safe("\u{100}"));
            assert!(!is_http_url("https://a/\u{a0}") && !is_http_url("https://a/\u{85}"));
            assert!(is_http_url("https://a/é"));
            assert_eq!(key(&["a", "b"]), "a\u{1f}b");
            assert_eq!(key(&["a", "b", ""]), "a\u{1f}b\u{1f}");
            assert_eq!((key(&[]), key(&[""])), (String::new(), String::new()));
            assert_eq!(clip(&"x".repeat(100)).chars().count(), 81);
        }

        proptest::proptest! {
            /// The byte-wise checks say what their definitions by
            /// character say, for any text (controls, Unicode spaces,
            /// multi-byte characters and URLs among it).
            #[test]
            fn byte_checks_agree_with_their_definitions(
                s in "(https?://)?[a-z/\\x00-\\x20\\x7e-\\u{a0}é\\u{2028}\\u{3000}\\u{100}-\\u{10ff}]{0,12}[a-z/.:]{0,30}[\\x00-\\x21\\x7e-\\x80]?[a-z/.]{0,20}",
                parts in proptest::collection::vec("[a-z\\x80-\\u{a0}]{0,3}", 0..4),
            ) {
                let safe = !s.is_empty() && !s.chars().any(char::is_control);
                proptest::prop_assert_eq!(is_safe(&s), safe);
                let url = s
                    .strip_prefix("https://")
                    .or_else(|| s.strip_prefix("http://"))
                    .is_some_and(|rest| {
                        !rest.is_empty()
                            && !rest.starts_with('/')
                            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                    });
                proptest::prop_assert_eq!(is_http_url(&s), url);
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                proptest::prop_assert_eq!(key(&parts), parts.join("\u{1f}"));
            }

            /// Read a word at a time, an ASCII prefix holds a byte below
            /// the floor, or DEL, exactly when a byte loop finds one in
            /// it, and it ends only where a word is not ASCII or too few
            /// bytes are left.
            #[test]
            fn words_are_read_as_bytes_are(
                bytes in proptest::collection::vec(
                    proptest::prop_oneof![12 => 0x21u8..0x7f, 1 => proptest::prelude::any::<u8>()],
                    0..48,
                ),
                floor in 0u8..=128,
            ) {
                let (read, found) = ascii_prefix(&bytes, floor);
                let bad = |b: &u8| *b < floor || *b == 0x7f;
                proptest::prop_assert_eq!(read % 8, 0);
                proptest::prop_assert!(bytes[..read].is_ascii() && !bytes[..read].iter().any(bad));
                if found {
                    let word = &bytes[read..read + 8];
                    proptest::prop_assert!(word.is_ascii() && word.iter().any(bad));
                } else {
                    proptest::prop_assert!(bytes.get(read..read + 8).is_none_or(|w| !w.is_ascii()));
                }
            }
        }
    }
}

/// Checks of an activity's shape that many verbs make: each returns a
/// message a person can act on (a verb's `validate` makes it a rejection
/// with `.map_err(reject)`). Pure: they look only at what they are given.
///
/// Policy is the verb's own: the built-in verbs' (who may answer a Follow,
/// whose activities an actor may undo) is in their crate `weft-verb-rules`.
pub mod checks {
    use crate::Json;
    use crate::serde_json::Value;
    use crate::text::{clip, is_activity_id, is_http_url};

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

    /// `object` must name an activity: its id (`b…`), its URL (a weft
    /// activity's `…/activities/b…`, or a fediverse server's), or the
    /// activity embedded with its `id`, as Mastodon and others send an
    /// Accept or Undo; `what` names it in messages, e.g. "the Follow being
    /// accepted".
    pub fn object_activity_id<'a>(
        json: &'a Json,
        verb: &str,
        what: &str,
    ) -> Result<&'a str, String> {
        let named = match json.get("object") {
            Some(Value::Object(embedded)) => match embedded.get("id") {
                Some(Value::String(id)) => Some(id),
                _ => {
                    return Err(format!(
                        "an embedded `object` must carry the `id` of {what}"
                    ));
                }
            },
            Some(Value::String(id)) => Some(id),
            Some(_) => {
                return Err(format!(
                    "`object` must be the id of {what}: a string, or the activity with its `id`"
                ));
            }
            None => None,
        };
        match named {
            Some(id) if is_activity_id(id) || is_http_url(id) => Ok(id),
            Some(other) => Err(format!(
                "`object` must be the id of {what} (`b` then 60 characters a-z, 2-7, or its URL), not `{}`",
                clip(other)
            )),
            None => Err(format!(
                "{} {verb} needs `object`: the id of {what}",
                article(verb)
            )),
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
            // A URL (weft's own form, or a fediverse server's) and an
            // embedded activity with its id name it too.
            assert_eq!(
                object_activity_id(&json(json!({"object": BOB})), "Accept", what),
                Ok(BOB)
            );
            assert_eq!(
                object_activity_id(
                    &json(json!({"object": {"id": ID, "type": "Follow"}})),
                    "Accept",
                    what
                ),
                Ok(ID)
            );
            assert!(object_activity_id(&json(json!({"object": "bob"})), "Accept", what).is_err());
            assert!(
                object_activity_id(&json(json!({"object": {"type": "Follow"}})), "Accept", what)
                    .is_err()
            );
            assert!(object_activity_id(&json(json!({"object": 7})), "Accept", what).is_err());
            let missing =
                object_activity_id(&json(json!({})), "Reject", what).expect_err("missing");
            assert!(missing.starts_with("a Reject needs `object`"), "{missing}");
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

    /// Parses the JSON text of activity `id` ([`activity_text`]): the
    /// activity a call is about, or any stored one.
    #[cfg(any(feature = "verb", feature = "projection"))]
    pub fn of(id: &str) -> Result<Self, JsonError> {
        Self::from_text(&activity_text(id)?)
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

/// Reads the activity's JSON into `T`, typically a `#[derive(Deserialize)]`
/// struct naming only the fields a module needs, with [`view`] types for
/// them. Much cheaper than [`Json::parse`]: the other fields are skipped
/// without being built, and strings are borrowed from the text.
pub fn fields<'a, T: serde::Deserialize<'a>>(
    activity: &'a impl ActivityJson,
) -> Result<T, JsonError> {
    fields_in(activity.json_text())
}

/// [`fields`] of an activity's JSON text ([`activity_text`]).
pub fn fields_in<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, JsonError> {
    serde_json::from_str(text).map_err(|_| JsonError)
}

/// The top-level field `name` of an activity's JSON text, read as
/// [`view::Str`] reads it (a string, or an embedded object's `id`): the
/// text is parsed only up to that field, so a module that needs one field
/// of a long activity (an Endorse's `kind`, ahead of its `object` and
/// `proof`) skips the rest. The node's activity texts are canonical JSON,
/// each key once; in other text, the first occurrence counts, and what
/// follows it is not checked.
pub fn field_in<'a>(text: &'a str, name: &str) -> view::Str<'a> {
    view::top_level(text, name)
}

/// Field types for [`fields`] structs that borrow from the activity text
/// and tolerate any JSON shape: a field of an unexpected shape reads as
/// absent rather than failing the whole parse.
///
/// ```
/// use weft_guest::serde::Deserialize;
/// use weft_guest::view::{Str, Strings};
///
/// #[derive(Deserialize)]
/// #[serde(crate = "weft_guest::serde")]
/// struct Fields<'a> {
///     #[serde(borrow, default)]
///     object: Str<'a>,
///     #[serde(borrow, default)]
///     to: Strings<'a>,
/// }
///
/// let f: Fields = weft_guest::serde_json::from_str(
///     r#"{"object": {"type": "Note"}, "to": "https://example.com/actors/bob", "cc": []}"#,
/// ).unwrap();
/// assert_eq!(f.object.as_deref(), None);
/// assert_eq!(f.to.iter().collect::<Vec<_>>(), ["https://example.com/actors/bob"]);
/// ```
pub mod view {
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// A field's text when it is a JSON string, or the `id` string of an
    /// embedded object (ActivityStreams' link or embedded form of the same
    /// reference); `None` for anything else (a number, null, an array, an
    /// object without a string `id`, or no field).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Str<'a>(pub Option<Cow<'a, str>>);

    impl Str<'_> {
        pub fn as_deref(&self) -> Option<&str> {
            self.0.as_deref()
        }
    }

    /// A field that is one string or an array (ActivityStreams' `to`, `cc`):
    /// its strings, in order; other entries are skipped.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Strings<'a>(pub Vec<Cow<'a, str>>);

    impl Strings<'_> {
        pub fn iter(&self) -> impl Iterator<Item = &str> {
            self.0.iter().map(|s| s.as_ref())
        }
    }

    struct StrVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
        type Value = Str<'a>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Str(Some(Cow::Borrowed(v))))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Str(Some(Cow::Owned(v.to_owned()))))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Str(Some(Cow::Owned(v))))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Str(None))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Str(None))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Str(None))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Str(None))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Str(None))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Str(None))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Str(None))
        }
        /// An embedded object stands for its `id` (ActivityStreams treats
        /// a link and an embedded object with that id alike: a fediverse
        /// Accept embeds the Follow it accepts).
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut id = Str(None);
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "id" {
                    id = map.next_value::<Str<'a>>()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(id)
        }
    }

    /// [`crate::field_in`].
    pub(crate) fn top_level<'a>(text: &'a str, name: &str) -> Str<'a> {
        /// Reads an object's entries until the key `name`, and its value.
        struct Until<'n, 'a> {
            name: &'n str,
            found: &'n mut Str<'a>,
        }
        impl<'de: 'a, 'a> Visitor<'de> for Until<'_, 'a> {
            type Value = ();

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    if key.as_deref() == Some(self.name) {
                        *self.found = map.next_value::<Str<'a>>()?;
                        return Ok(());
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(())
            }
        }
        let mut found = Str(None);
        let mut de = serde_json::Deserializer::from_str(text);
        // Stopping at the key leaves the rest of the object unread, which
        // the deserializer then reports as an error: what was found stands.
        let _ = de.deserialize_map(Until {
            name,
            found: &mut found,
        });
        found
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrVisitor(PhantomData))
        }
    }

    struct StringsVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for StringsVisitor<'a> {
        type Value = Strings<'a>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Strings(vec![Cow::Borrowed(v)]))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Strings(vec![Cow::Owned(v.to_owned())]))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Strings(vec![Cow::Owned(v)]))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Strings::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Strings::default())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Strings::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Strings::default())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Strings::default())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Strings::default())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Str<'a>>()? {
                out.extend(item.0);
            }
            Ok(Strings(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Strings::default())
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Strings<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StringsVisitor(PhantomData))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde::Deserialize;

        #[derive(Deserialize, Debug, PartialEq)]
        struct Fields<'a> {
            #[serde(borrow, default)]
            object: Str<'a>,
            #[serde(borrow, default)]
            to: Strings<'a>,
            #[serde(borrow, default)]
            cc: Strings<'a>,
        }

        fn parse(text: &str) -> Fields<'_> {
            serde_json::from_str(text).expect("parses")
        }

        #[test]
        fn strings_borrow_and_other_shapes_read_as_absent() {
            let f = parse(
                r#"{"object":"b123","to":["x",1,{"a":[2]},"y"],"cc":"z","extra":{"deep":[1,{"k":null}]}}"#,
            );
            assert!(matches!(f.object.0, Some(Cow::Borrowed("b123"))));
            assert_eq!(f.to.iter().collect::<Vec<_>>(), ["x", "y"]);
            assert_eq!(f.cc.iter().collect::<Vec<_>>(), ["z"]);

            // An embedded object reads as its `id`.
            let f = parse(r#"{"object":{"id":"b1","to":["q"]},"to":null,"cc":{"a":"b"}}"#);
            assert_eq!(f.object.as_deref(), Some("b1"));
            let f = parse(r#"{"object":{"type":"Note","id":{"x":1}}}"#);
            assert_eq!(f.object.as_deref(), None);
            let f = parse(r#"{"object":{"type":"Note"},"to":null,"cc":{"a":"b"}}"#);
            assert_eq!(f.object.as_deref(), None);
            assert!(f.to.0.is_empty() && f.cc.0.is_empty());

            let f = parse(r#"{"object":[1,"a"],"to":true}"#);
            assert_eq!(
                f,
                Fields {
                    object: Str(None),
                    to: Strings::default(),
                    cc: Strings::default()
                }
            );
        }

        #[test]
        fn escaped_strings_are_unescaped() {
            let f = parse(r#"{"object":"a\u0041\"b"}"#);
            assert_eq!(f.object.as_deref(), Some("aA\"b"));
        }

        #[test]
        fn a_top_level_field_is_read_up_to_itself() {
            let text = r#"{"actor":"a","kind":"like","object":{"id":"b1","kind":"x"},"proof":{"kind":"y"}}"#;
            assert_eq!(crate::field_in(text, "kind").as_deref(), Some("like"));
            assert_eq!(crate::field_in(text, "object").as_deref(), Some("b1"));
            assert_eq!(crate::field_in(text, "proof").as_deref(), None);
            assert_eq!(crate::field_in(text, "id").as_deref(), None);
            // Only top-level keys count, escaped ones too.
            let text = r#"{"object":{"kind":"x"},"k\u0069nd":"share"}"#;
            assert_eq!(crate::field_in(text, "kind").as_deref(), Some("share"));
            for text in ["[]", "\"kind\"", "", "{", r#"{"kind":"#] {
                assert_eq!(crate::field_in(text, "kind").as_deref(), None, "{text}");
            }
            // What comes after the field is not read.
            assert_eq!(
                crate::field_in(r#"{"kind":"like",]"#, "kind").as_deref(),
                Some("like")
            );
        }

        use proptest::strategy::Strategy as _;

        proptest::proptest! {
            /// In any JSON object, the field read up to itself is the field
            /// a whole parse reads.
            #[test]
            fn a_field_read_up_to_itself_is_the_whole_parse_s(
                entries in proptest::collection::btree_map(
                    "(kind|object|id|a|\\\\)",
                    proptest::prop_oneof![
                        "[a-z\"\\\\]{0,4}".prop_map(serde_json::Value::from),
                        proptest::prelude::any::<i64>().prop_map(serde_json::Value::from),
                        ("(kind|id)", "[a-z]{0,3}").prop_map(|(k, v)| serde_json::json!({k: v, "n": [1, {"kind": "z"}]})),
                        proptest::collection::vec("[a-z]{0,2}", 0..3).prop_map(serde_json::Value::from),
                    ],
                    0..5,
                ),
                name in "(kind|object|id|a|b|\\\\)",
            ) {
                let text = serde_json::Value::from_iter(entries.clone()).to_string();
                let whole = match entries.get(&name) {
                    Some(value) => Str::deserialize(value).expect("a Str reads any value"),
                    None => Str(None),
                };
                let read = crate::field_in(&text, &name);
                proptest::prop_assert_eq!(read.as_deref(), whole.as_deref());
            }
        }
    }
}

/// The projection's key-value store, as a fold sees it: writes are
/// buffered in the module, read back by the fold that made them, and handed
/// to the node in one `kv.write` call when the fold succeeds
/// ([`crate::fold_one`]) or, in a `fold-batch`, once for the whole batch
/// ([`crate::fold_batch`]), whose scans of the node's store are each made
/// once: nothing else writes the store meanwhile.
#[cfg(feature = "projection")]
pub mod kv {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap};
    use std::ops::Bound;

    use crate::projection::kv as host;
    use crate::projection::weft::module::types::Change;

    /// Writes not yet handed over: `None` is a delete.
    type Writes = BTreeMap<String, Option<String>>;

    /// The hash of a batch's remembered scans: a multiply-rotate of 8
    /// bytes at a time (as rustc's FxHash), where std's SipHash was a
    /// tenth of a feed fold. The keys are the module's own; nothing in
    /// them is chosen to collide.
    #[derive(Default, Clone, Copy)]
    struct Fx(u64);

    impl std::hash::Hasher for Fx {
        fn write(&mut self, bytes: &[u8]) {
            let mut chunks = bytes.chunks_exact(8);
            for chunk in &mut chunks {
                let mut word = [0; 8];
                word.copy_from_slice(chunk);
                self.add(u64::from_le_bytes(word));
            }
            for &b in chunks.remainder() {
                self.add(u64::from(b));
            }
        }

        fn write_u8(&mut self, n: u8) {
            self.add(u64::from(n));
        }

        fn write_u32(&mut self, n: u32) {
            self.add(u64::from(n));
        }

        fn write_u64(&mut self, n: u64) {
            self.add(n);
        }

        fn write_usize(&mut self, n: usize) {
            self.add(n as u64);
        }

        fn finish(&self) -> u64 {
            self.0
        }
    }

    impl Fx {
        fn add(&mut self, word: u64) {
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    /// A scan of the node's store made during a batch.
    struct Scan {
        prefix: String,
        after: Option<String>,
        asked: u32,
        entries: Vec<(String, String)>,
    }

    /// A batch's scans, by the [`Fx`] hash of their arguments.
    type Scans = HashMap<u64, Scan, std::hash::BuildHasherDefault<Fx>>;

    /// The heads of the keys a batch has kept writes of — a key's head is
    /// the key up to and including its first [`SEP`](crate::text::SEP),
    /// the whole key if it has none — up to [`Heads::MOST`] of them. A
    /// prefix holding a separator has the head of every key it starts:
    /// when no kept key has that head, a scan needs no search of the
    /// kept writes. (The feed scans an author's followers in every fold
    /// while its kept writes are feed entries; skipping the search took
    /// 0.06 µs off its 2.3 µs fold in `weft bench --fold`.)
    #[derive(Default)]
    struct Heads {
        heads: Vec<String>,
        /// More than [`Heads::MOST`] heads were kept: every prefix may
        /// have writes.
        overflowed: bool,
    }

    impl Heads {
        const MOST: usize = 16;

        fn head(key: &str) -> Option<&str> {
            let sep = crate::text::SEP;
            key.find(sep).map(|at| &key[..at + sep.len_utf8()])
        }

        fn note(&mut self, key: &str) {
            if self.overflowed {
                return;
            }
            let head = Self::head(key).unwrap_or(key);
            if self.heads.iter().any(|h| h == head) {
                return;
            }
            if self.heads.len() == Self::MOST {
                self.overflowed = true;
                self.heads = Vec::new();
            } else {
                self.heads.push(head.to_owned());
            }
        }

        /// Whether a kept key may start with `prefix`.
        fn may_hold(&self, prefix: &str) -> bool {
            match Self::head(prefix) {
                Some(head) => self.overflowed || self.heads.iter().any(|h| h == head),
                None => true,
            }
        }
    }

    /// A `fold-batch` under way: the writes of its successful folds, the
    /// scans it made of the node's store (which does not change until the
    /// batch hands its writes over), and the last few keys it read (a
    /// setting or a counter every fold reads is asked of the node once;
    /// remembering every key would cost more than the node's own cache).
    #[derive(Default)]
    struct Batch {
        kept: Writes,
        heads: Heads,
        scans: Scans,
        recent: std::collections::VecDeque<(String, Option<String>)>,
    }

    #[cfg(test)]
    mod tests {
        use super::Heads;
        use proptest::prelude::*;

        proptest! {
            /// A prefix that starts a kept key is never said to start
            /// none, however many heads were kept.
            #[test]
            fn heads_never_hide_a_kept_key(
                keys in prop::collection::vec("[ab\u{1f}]{0,5}", 0..40),
                prefix in "[ab\u{1f}]{0,4}",
            ) {
                let mut heads = Heads::default();
                for key in &keys {
                    heads.note(key);
                }
                if keys.iter().any(|k| k.starts_with(&prefix)) {
                    prop_assert!(heads.may_hold(&prefix));
                }
            }
        }

        #[test]
        fn heads_tell_apart_what_they_can() {
            let mut heads = Heads::default();
            heads.note("feed\u{1f}alice\u{1f}0001");
            heads.note("count");
            assert!(!heads.may_hold("follower\u{1f}alice\u{1f}"));
            assert!(heads.may_hold("feed\u{1f}bob\u{1f}"));
            // Without a separator a prefix may start any head.
            assert!(heads.may_hold("fo"));
        }
    }

    /// Keys a batch remembers the values of.
    const RECENT: usize = 8;

    thread_local! {
        /// The running fold's writes.
        static FOLD: RefCell<Writes> = const { RefCell::new(BTreeMap::new()) };
        static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
    }

    /// The value of `key`: the running fold's write, an earlier fold's of
    /// the batch, or the stored one.
    pub fn get(key: &str) -> Option<String> {
        if let Some(pending) = FOLD.with_borrow(|f| f.get(key).cloned()) {
            return pending;
        }
        let known = BATCH.with_borrow(|b| {
            let b = b.as_ref()?;
            b.kept.get(key).cloned().or_else(|| {
                b.recent
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            })
        });
        if let Some(known) = known {
            return known;
        }
        let stored = host::get(key);
        BATCH.with_borrow_mut(|b| {
            if let Some(b) = b {
                if b.recent.len() == RECENT {
                    b.recent.pop_front();
                }
                b.recent.push_back((key.to_owned(), stored.clone()));
            }
        });
        stored
    }

    pub fn set(key: &str, value: &str) {
        FOLD.with_borrow_mut(|f| f.insert(key.to_owned(), Some(value.to_owned())));
    }

    pub fn delete(key: &str) {
        FOLD.with_borrow_mut(|f| f.insert(key.to_owned(), None));
    }

    /// Up to `limit` entries whose keys start with `prefix`, in key order,
    /// after `after` when given: the stored ones with the batch's and the
    /// running fold's writes over them.
    pub fn scan(prefix: &str, after: Option<&str>, limit: u32) -> Vec<(String, String)> {
        let lower = match after.filter(|a| *a >= prefix) {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        let under = |layer: &Writes| {
            layer
                .range::<str, _>((lower, Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(prefix))
        };
        let pending = BATCH.with_borrow(|b| {
            b.as_ref()
                .is_some_and(|b| b.heads.may_hold(prefix) && under(&b.kept))
        }) || FOLD.with_borrow(under);
        if !pending {
            // Nothing written under the prefix: the node's entries as they
            // are.
            let mut stored = stored(prefix, after, limit);
            stored.truncate(limit as usize);
            return stored;
        }
        let in_range = |layer: &Writes| -> Vec<(String, Option<String>)> {
            layer
                .range::<str, _>((lower, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let mut pending = BATCH.with_borrow(|b| b.as_ref().map(|b| in_range(&b.kept)));
        let fold = FOLD.with_borrow(in_range);
        pending.get_or_insert_with(Vec::new).extend(fold);
        let pending = pending.unwrap_or_default();
        let deletes = pending.iter().filter(|(_, v)| v.is_none()).count() as u32;
        let stored = stored(prefix, after, limit.saturating_add(deletes));
        let mut merged: BTreeMap<String, String> = stored.into_iter().collect();
        for (key, value) in pending {
            match value {
                Some(v) => merged.insert(key, v),
                None => merged.remove(&key),
            };
        }
        merged.into_iter().take(limit as usize).collect()
    }

    /// Up to `asked` of the node's stored entries under `prefix` after
    /// `after`. In a batch they are asked of the node once and remembered
    /// (nothing else writes its store until the batch ends), found again
    /// by the hash of the arguments without building a key.
    fn stored(prefix: &str, after: Option<&str>, asked: u32) -> Vec<(String, String)> {
        use std::hash::{Hash, Hasher};
        let mut hasher = Fx::default();
        (prefix, after, asked).hash(&mut hasher);
        let hash = hasher.finish();
        let cached = BATCH.with_borrow(|b| {
            let scan = b.as_ref()?.scans.get(&hash)?;
            (scan.prefix == prefix && scan.after.as_deref() == after && scan.asked == asked)
                .then(|| scan.entries.clone())
        });
        if let Some(entries) = cached {
            return entries;
        }
        let entries = host::scan(prefix, after, asked);
        BATCH.with_borrow_mut(|b| {
            if let Some(b) = b {
                // Another scan of the same hash is replaced: the map
                // remembers scans, it never answers one without comparing.
                b.scans.insert(
                    hash,
                    Scan {
                        prefix: prefix.to_owned(),
                        after: after.map(str::to_owned),
                        asked,
                        entries: entries.clone(),
                    },
                );
            }
        });
        entries
    }

    fn hand_over(writes: Writes) {
        if writes.is_empty() {
            return;
        }
        let changes: Vec<Change> = writes
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => Change::Set((k, v)),
                None => Change::Delete(k),
            })
            .collect();
        host::write(&changes);
    }

    /// Drops the running fold's writes.
    pub(crate) fn discard() {
        FOLD.with_borrow_mut(BTreeMap::clear);
    }

    /// Starts a `fold-batch`.
    pub(crate) fn begin_batch() {
        BATCH.with_borrow_mut(|b| *b = Some(Batch::default()));
    }

    /// Keeps the running fold's writes for the rest of the batch.
    pub(crate) fn keep() {
        let fold = FOLD.with_borrow_mut(std::mem::take);
        BATCH.with_borrow_mut(|b| match b {
            Some(b) => {
                for key in fold.keys() {
                    b.heads.note(key);
                }
                b.kept.extend(fold);
            }
            None => hand_over(fold),
        });
    }

    /// Ends a `fold-batch`, handing its writes to the node in one call.
    pub(crate) fn end_batch() {
        if let Some(batch) = BATCH.with_borrow_mut(Option::take) {
            hand_over(batch.kept);
        }
    }

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
        let mut after: Option<String> = None;
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

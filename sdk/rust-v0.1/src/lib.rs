//! Rust modules against the first published contract, `weft:module@0.1.0`
//! (`sdk/wit/weft-module@0.1.0`): the activity with its whole JSON text, one
//! host call per write, no `fold-batch`. Nodes run these modules beside
//! 0.2.0 ones; new modules use `weft-guest`, which targets the newest
//! contract. The helpers that do not depend on the contract (`text`,
//! `checks`, `view`, `Json`, `fields`) are `weft-guest`'s, re-exported.
//!
//! A verb enables `verb`, implements [`verb::Guest`] and calls
//! `verb::export_verb!`; a projection enables `projection`, implements
//! [`projection::Guest`] and calls `projection::export_projection!`.

#![allow(
    unsafe_code,
    reason = "wit-bindgen's generated glue is unsafe by nature"
)]

pub use weft_guest::{
    ActivityJson, Json, JsonError, checks, fields, serde, serde_json, text, view,
};

/// The `verb` world: validate and react.
#[cfg(feature = "verb")]
#[allow(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated lifting code"
)]
pub mod verb {
    wit_bindgen::generate!({
        world: "verb",
        path: "../wit/weft-module@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_verb",
        default_bindings_module: "weft_guest_v0_1::verb",
    });
    pub use self::weft::module::log;

    impl crate::ActivityJson for Activity {
        fn json_text(&self) -> &str {
            &self.json
        }
    }

    impl From<crate::JsonError> for Rejection {
        fn from(e: crate::JsonError) -> Self {
            crate::reject(e.to_string())
        }
    }
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
        path: "../wit/weft-module@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_projection",
        default_bindings_module: "weft_guest_v0_1::projection",
    });
    pub use self::weft::module::{kv, log};

    impl crate::ActivityJson for Activity {
        fn json_text(&self) -> &str {
            &self.json
        }
    }
}

/// A rejection with `message`.
#[cfg(feature = "verb")]
pub fn reject(message: impl Into<String>) -> verb::Rejection {
    verb::Rejection {
        message: message.into(),
    }
}

/// Helpers over the projection's key-value store (each write a host call).
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

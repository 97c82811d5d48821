//! JCS canonicalisation (`weft_core::model::jcs`, RFC 8785) of any JSON text.
//!
//! Checks: canonical output is UTF-8 JSON that parses back to a value
//! with the same canonical bytes (idempotent); no whitespace between
//! tokens, and only RFC 8785's escapes in strings; the skip-list form
//! equals the canonical form of the object without those members; a
//! refusal names an integer that really is outside ±(2^53−1), or a double
//! that prints as one. It does not compare with another JCS
//! implementation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft_core::model::jcs::{self, JcsError, MAX_SAFE_INTEGER};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match jcs::to_vec(&value) {
        Ok(canonical) => {
            let text = std::str::from_utf8(&canonical).expect("canonical JSON is UTF-8");
            let again: Value = serde_json::from_str(text).expect("canonical JSON parses");
            let twice = jcs::to_vec(&again).expect("a canonical value canonicalises");
            assert_eq!(canonical, twice, "canonicalisation is not idempotent");
            check_layout(text);
            if let Value::Object(map) = &value {
                let skip: Vec<&str> = map.keys().take(2).map(String::as_str).collect();
                let mut without = map.clone();
                for name in &skip {
                    without.remove(*name);
                }
                assert_eq!(
                    jcs::object_to_vec(map, &skip).expect("a subset canonicalises"),
                    jcs::to_vec(&Value::Object(without)).expect("a subset canonicalises"),
                    "skipping members differs from removing them"
                );
            }
        }
        Err(JcsError::UnsafeInteger(n)) => {
            assert!(
                has_unsafe_integer(&value),
                "refused {n}, but no integer is unsafe"
            );
        }
        Err(JcsError::NonFinite(n)) => panic!("serde_json produced a non-finite number {n}"),
    }
});

/// Whether `value` holds an integer outside ±(2^53−1), or a double that
/// ECMAScript prints as one (from 2^53 up to 10^21).
fn has_unsafe_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.as_u64().is_some_and(|u| u > MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() > MAX_SAFE_INTEGER)
                || n.as_f64()
                    .is_some_and(|f| f.abs() > MAX_SAFE_INTEGER as f64 && f.abs() < 1e21)
        }
        Value::Array(items) => items.iter().any(has_unsafe_integer),
        Value::Object(map) => map.values().any(has_unsafe_integer),
        _ => false,
    }
}

/// RFC 8785 §3.2.1–3.2.2: no whitespace between tokens; in strings, only
/// `"` and `\` and the control characters are escaped, the five with a
/// short form by it, the others as `\u00xx` in lower-case hex.
fn check_layout(text: &str) {
    let mut chars = text.chars();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if !in_string {
            assert!(!c.is_whitespace(), "whitespace between tokens: {text:?}");
            in_string = c == '"';
            continue;
        }
        assert!(c >= ' ', "a raw control character in a string: {text:?}");
        match c {
            '"' => in_string = false,
            '\\' => match chars.next() {
                Some('"' | '\\' | 'b' | 'f' | 'n' | 'r' | 't') => {}
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).expect("four hex digits");
                    assert!(
                        hex == hex.to_ascii_lowercase()
                            && code < 0x20
                            && ![0x08, 0x09, 0x0a, 0x0c, 0x0d].contains(&code),
                        "an escape JCS does not make: \\u{hex} in {text:?}"
                    );
                }
                other => panic!("an escape JCS does not make: {other:?} in {text:?}"),
            },
            _ => {}
        }
    }
}

//! RFC 8785 JSON Canonicalization Scheme over `serde_json::Value`.
//!
//! This is what gets hashed and signed. It is not a general JSON serialiser:
//! it refuses numbers that do not survive a round trip through an IEEE-754
//! double (integers beyond ±2^53), because another implementation of JCS
//! would print them differently and the signature would not carry over,
//! and doubles that it would print as such integers (`1e16`).

use serde_json::{Map, Value};

/// Largest integer that every JCS implementation prints exactly (2^53 − 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JcsError {
    #[error(
        "number {0} is outside the range ±(2^53−1) that JSON canonicalisation can represent exactly"
    )]
    UnsafeInteger(String),
    #[error("number {0} is not finite")]
    NonFinite(String),
}

/// Canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value)?;
    Ok(out)
}

/// Canonical bytes of an object, leaving out the top-level members whose
/// names are in `skip` (the envelope leaves out `id` and `proof`).
pub fn object_to_vec(map: &Map<String, Value>, skip: &[&str]) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_object(&mut out, map, skip)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, &[])?,
    }
    Ok(())
}

fn write_object(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    skip: &[&str],
) -> Result<(), JcsError> {
    let mut entries: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    // RFC 8785 §3.2.3: members are sorted by their names as arrays of UTF-16 code units.
    entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_value(out, value)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), JcsError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(JcsError::UnsafeInteger(n.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(JcsError::UnsafeInteger(n.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n
            .as_f64()
            .ok_or_else(|| JcsError::NonFinite(n.to_string()))?;
        if !f.is_finite() {
            return Err(JcsError::NonFinite(n.to_string()));
        }
        // From 2^53 every double is an integer, and below 10^21 ECMAScript
        // prints it as one (`1e16` → `10000000000000000`): canonical text
        // that reads back as an unsafe integer, which the rule above
        // refuses. Refused here too, so canonical bytes always canonicalise.
        if f.abs() > MAX_SAFE_INTEGER as f64 && f.abs() < 1e21 {
            return Err(JcsError::UnsafeInteger(n.to_string()));
        }
        if f == 0.0 {
            out.push(b'0');
        } else {
            out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
        }
    }
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_vec(&v).expect("canonical")).expect("utf8")
    }

    #[test]
    fn sorts_members_by_utf16_code_units_not_utf8_bytes() {
        // U+FB33 sorts after U+1F600 in UTF-8 byte order but before it in UTF-16
        // (0xD83D is a surrogate, below 0xFB33). RFC 8785 wants UTF-16 order.
        let v = json!({"\u{1F600}": 1, "\u{FB33}": 2, "a": 3});
        assert_eq!(canon(v), "{\"a\":3,\"\u{1F600}\":1,\"\u{FB33}\":2}");
    }

    #[test]
    fn escapes_only_what_rfc8785_escapes() {
        let v = json!("é\u{1}\u{1f}\"\\/\u{7f}\n");
        assert_eq!(canon(v), "\"é\\u0001\\u001f\\\"\\\\/\u{7f}\\n\"");
    }

    #[test]
    fn numbers_print_like_ecmascript() {
        let v: Value =
            serde_json::from_str("[1.0, -0.0, 1e21, 1e-7, 0.1, 100, -5, 1.5e300]").expect("json");
        assert_eq!(canon(v), "[1,0,1e+21,1e-7,0.1,100,-5,1.5e+300]");
    }

    #[test]
    fn refuses_integers_beyond_double_precision() {
        let v: Value = serde_json::from_str("{\"n\": 9007199254740993}").expect("json");
        assert!(matches!(to_vec(&v), Err(JcsError::UnsafeInteger(_))));
        let ok: Value = serde_json::from_str("{\"n\": -9007199254740991}").expect("json");
        assert_eq!(canon(ok), "{\"n\":-9007199254740991}");
    }

    #[test]
    fn refuses_doubles_that_print_as_unsafe_integers() {
        // Found by fuzzing: the double nearest this prints as the integer
        // 9007199971999008, whose canonical text was then refused.
        for text in [
            "9007199971999007.171999091",
            "1e16",
            "-9.007199254740992e15",
        ] {
            let v: Value = serde_json::from_str(text).expect("json");
            assert!(
                matches!(to_vec(&v), Err(JcsError::UnsafeInteger(_))),
                "{text}"
            );
        }
        // Safe integers written as doubles, and doubles printed with an
        // exponent, stay.
        let ok: Value =
            serde_json::from_str("[9007199254740991.0, 1e21, -1.5e300, 1e-7]").expect("json");
        let canonical = canon(ok);
        assert_eq!(canonical, "[9007199254740991,1e+21,-1.5e+300,1e-7]");
        let again: Value = serde_json::from_str(&canonical).expect("json");
        assert_eq!(to_vec(&again).expect("canonical"), canonical.as_bytes());
    }

    #[test]
    fn skips_only_top_level_members() {
        let v = json!({"id": 1, "proof": 2, "b": {"id": 3}});
        let Value::Object(map) = v else {
            unreachable!()
        };
        let out = object_to_vec(&map, &["id", "proof"]).expect("canonical");
        assert_eq!(out, b"{\"b\":{\"id\":3}}");
    }
}

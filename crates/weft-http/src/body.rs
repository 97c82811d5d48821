//! Reading a request body with a size cap (a JSON object, an activity, an
//! artifact), and parsing it as JSON, strictly for an inbox; every failure
//! as a problem response.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::Problem;

/// Reads `body` as a JSON object of at most `limit` bytes:
/// 413 over the limit, 400 if it is not a JSON object.
pub async fn json_object(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Map<String, Value>, Problem> {
    parse_object(&bytes(headers, body, limit, "the body").await?)
}

/// Reads `body`, at most `limit` bytes: 413 past it (or when the declared
/// `Content-Length` is), saying that `what` (`the body`, `the artifact`)
/// is too large.
pub async fn bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<axum::body::Bytes, Problem> {
    let too_large = || {
        Problem::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is larger than the node's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// `bytes` as a JSON object: 400 if it is not one.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::bad_request("the body must be a JSON object")),
        Err(e) => Err(Problem::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// `bytes` as the JSON object an inbox takes: 400 if it is not one, if an
/// object in it names a member twice (readers disagree on which one
/// counts), or if a string in it holds U+0000 (which many stores and
/// peers cannot keep). A weft envelope (it carries a `proof`) must also
/// spell every number as JCS does, since its text is what peers keep and
/// serve while its canonical form is what is signed: see
/// [`non_canonical_number`].
pub fn parse_inbox_object(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    let map = match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(map))) => map,
        Ok(_) => return Err(Problem::bad_request("the body must be a JSON object")),
        Err(e) => {
            return Err(Problem::bad_request(format!(
                "the body is not valid JSON: {e}"
            )));
        }
    };
    if let Some(path) = nul_in(&map) {
        return Err(Problem::bad_request(format!(
            "{path} contains U+0000 (NUL), which this node does not take in an activity; remove it"
        )));
    }
    if map.contains_key("proof")
        && let Some((token, canonical)) = non_canonical_number(bytes)
    {
        return Err(Problem::bad_request(format!(
            "the number `{token}` is not written as JSON canonicalisation (RFC 8785) writes it{}: a signed activity's numbers must be spelt canonically",
            canonical.map_or(String::new(), |c| format!(" (`{c}`)"))
        )));
    }
    Ok(map)
}

/// A JSON value whose objects name each member once.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the member `{key}` appears twice in one object; name each member once"
                )));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Where a string of `map` (a member name or value) holds U+0000, as a
/// path such as `` `object.content` ``.
fn nul_in(map: &Map<String, Value>) -> Option<String> {
    fn in_map(map: &Map<String, Value>, path: &str) -> Option<String> {
        map.iter().find_map(|(k, v)| {
            let inner = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(format!("a member name in `{path}`"))
            } else {
                in_value(v, &inner)
            }
        })
    }
    fn in_value(value: &Value, path: &str) -> Option<String> {
        match value {
            Value::String(s) if s.contains('\0') => Some(format!("`{path}`")),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| in_value(v, &format!("{path}[{i}]"))),
            Value::Object(map) => in_map(map, path),
            _ => None,
        }
    }
    in_map(map, "")
}

/// The first number in the JSON text `bytes` (outside strings) that is
/// not spelt canonically, and its canonical spelling when it has one. An
/// integer is canonical without a sign on zero; a number with a fraction
/// or exponent, if its value is an integer JCS writes as one, is not, and
/// otherwise must be as JCS (or serde_json, which differs only in where it
/// starts using exponents) writes its value.
pub fn non_canonical_number(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let token = std::str::from_utf8(&bytes[start..i]).unwrap_or_default();
            if let Some(found) = check_number(token) {
                return Some(found);
            }
            continue;
        }
        i += 1;
    }
    None
}

fn check_number(token: &str) -> Option<(String, Option<String>)> {
    let integer = !token.contains(['.', 'e', 'E']);
    if integer {
        return (token == "-0").then(|| (token.to_owned(), Some("0".to_owned())));
    }
    let value: f64 = token.parse().ok()?;
    if !value.is_finite() {
        return Some((token.to_owned(), None));
    }
    let jcs = if value == 0.0 {
        "0".to_owned()
    } else {
        ryu_js::Buffer::new().format_finite(value).to_owned()
    };
    let is_integer =
        value.fract() == 0.0 && value.abs() <= weft_core::model::jcs::MAX_SAFE_INTEGER as f64;
    if is_integer {
        return Some((token.to_owned(), Some(jcs)));
    }
    let serde = serde_json::Number::from_f64(value).map(|n| n.to_string());
    (token != jcs && serde.as_deref() != Some(token)).then(|| (token.to_owned(), Some(jcs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_and_nul_are_refused_anywhere() {
        assert!(parse_inbox_object(br#"{"a": 1, "b": {"c": 2, "c": 3}}"#).is_err());
        assert!(parse_inbox_object(br#"{"a": 1, "a": 1}"#).is_err());
        assert!(parse_inbox_object(br#"{"a": ["x\u0000y"]}"#).is_err());
        assert!(parse_inbox_object(br#"{"a\u0000": 1}"#).is_err());
        // An escaped backslash before `u0000` is no NUL.
        assert!(parse_inbox_object(br#"{"a": "\\u0000"}"#).is_ok());
        assert!(parse_inbox_object(br#"{"a": {"c": 2}, "c": 3}"#).is_ok());
    }

    #[test]
    fn numbers_must_be_spelt_canonically() {
        for bad in ["-0", "1.0", "1e2", "1E2", "2.50", "0.10", "5e-1", "100e-2"] {
            let text = format!(r#"{{"n": {bad}}}"#);
            let found = non_canonical_number(text.as_bytes());
            assert!(found.is_some(), "{bad} passed");
        }
        for good in [
            "0",
            "-1",
            "1.5",
            "0.1",
            "1e-7",
            "1e+21",
            "123456789",
            "-0.5",
        ] {
            let text = format!(r#"{{"n": {good}, "s": "1.0 -0 in a string \" 1.0"}}"#);
            assert_eq!(non_canonical_number(text.as_bytes()), None, "{good}");
        }
        assert_eq!(
            non_canonical_number(br#"{"n": 3.0}"#),
            Some(("3.0".to_owned(), Some("3".to_owned())))
        );
    }
}

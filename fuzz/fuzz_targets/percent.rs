//! Query-string percent-decoding (`weft_http::modules::percent_decode`,
//! what `GET /projections/…?a=b` parameters go through) from any text.
//!
//! Checks: it agrees with the strict decoder below (`+` is a space, `%`
//! takes exactly two hex digits, the result must be UTF-8), and decoding
//! the full percent-encoding of what it decoded gives it back. It does not
//! check how a query is split into pairs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_http::modules::percent_decode;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = percent_decode(text);
    assert_eq!(
        decoded.is_ok(),
        reference(text).is_some(),
        "{text:?} → {decoded:?}"
    );
    if let Ok(decoded) = decoded {
        assert_eq!(
            Some(decoded.as_str()),
            reference(text).as_deref(),
            "{text:?}"
        );
        let encoded: String = decoded.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(percent_decode(&encoded).as_deref(), Ok(decoded.as_str()));
    }
});

/// The decoding as the WHATWG URL standard's
/// `application/x-www-form-urlencoded` parser does it, except that a `%`
/// without two hex digits is refused instead of kept.
fn reference(text: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let high = hex(bytes.next()?)?;
                let low = hex(bytes.next()?)?;
                high * 16 + low
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

//! ISO 8601 durations (`weft_duration`, shared by the host's backfill and
//! the Follow verb) from any text.
//!
//! Checks: no panic; a duration that parses has a canonical text that
//! parses back to it; only the grammar's characters were in it; `,` and
//! `.` are the same decimal sign; a lower-case text never parses; one
//! more leading zero on the first number changes nothing. It does not
//! compare with another ISO 8601 implementation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_duration::{Canonical, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(text);
    let swapped: String = text
        .chars()
        .map(|c| match c {
            ',' => '.',
            '.' => ',',
            c => c,
        })
        .collect();
    assert_eq!(parse(&swapped), parsed, "`,` and `.` differ: {text:?}");
    if let Some(rest) = text.strip_prefix("P")
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        assert_eq!(
            parse(&format!("P0{rest}")),
            parsed,
            "a leading zero matters: {text:?}"
        );
    }
    let Ok(duration) = parsed else {
        return;
    };
    assert!(
        text.bytes().all(|b| b"PYMWDTHS0123456789.,".contains(&b)),
        "{text:?} parsed with a character outside the grammar"
    );
    let canonical = Canonical(duration).to_string();
    assert_eq!(parse(&canonical), Ok(duration), "{text:?} → {canonical:?}");
    assert!(
        parse(&text.to_ascii_lowercase()).is_err(),
        "{text:?} in lower case parsed"
    );
});

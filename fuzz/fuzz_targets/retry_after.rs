//! `Retry-After` (`weft_federation::fetch::parse_retry_after`, which a
//! delivery to a peer honours) from any text.
//!
//! Checks (RFC 9110 §10.2.3): delay-seconds (1*DIGIT) is that many
//! seconds, saturating; an HTTP date is the time from now until it (0 if
//! past), read exactly as the HTTP-signature code reads `Date`
//! (`httpsig::parse_http_date`), and nothing else is accepted; a date this
//! node formats reads back. Times are compared with 2 s of slack for the
//! clock moving during a run.

#![no_main]

use std::time::{SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use weft_federation::fetch::parse_retry_after;
use weft_federation::httpsig::{format_http_date, parse_http_date};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn close(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= 2
}

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..4) {
        let ahead = u64::from(u32::from_le_bytes(bytes.try_into().expect("4 bytes")));
        let date = format_http_date(now() + ahead);
        let seconds = parse_retry_after(&date).expect("a date this node formats");
        assert!(
            close(seconds, ahead),
            "{date} is {seconds} s away, not {ahead}"
        );
    }
    // What `HeaderValue::to_str` can give: visible ASCII, spaces and tabs.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !text
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return;
    }
    let parsed = parse_retry_after(text);
    let value = text.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let expected = value.parse::<u64>().unwrap_or(u64::MAX);
        assert_eq!(parsed, Some(expected), "delay-seconds {value:?}");
    } else if let Some(at) = parse_http_date(value) {
        let expected = at.saturating_sub(now());
        let got = parsed.unwrap_or_else(|| panic!("the date {value:?} was refused"));
        assert!(
            close(got, expected),
            "{value:?} is {got} s away, not {expected}"
        );
    } else {
        assert_eq!(
            parsed, None,
            "{text:?} is neither delay-seconds nor an HTTP date"
        );
    }
});

//! The node's one wall clock: every read of the time of day in weft's
//! library and binary code (an activity's `published`, HTTP signatures'
//! `Date`/`created` and their window, delivery retry times, the
//! `published` max-ahead check, documents' fetch times) goes through
//! [`now`] or [`now_ms`].
//!
//! **Test-only skew.** The environment variable `WEFT_TEST_CLOCK_OFFSET`, a
//! signed whole number of seconds (`-90`, `3600`, `+600`), is added to the
//! system clock, so the end-to-end tests can run nodes whose clocks
//! disagree. It is read once; the `weft` binary calls [`init`] at startup,
//! which refuses a value that is not such a number. Never set it on a real
//! node: a skewed clock makes peers refuse its activities and signatures.
//!
//! Not a monotonic clock: measuring elapsed time (timeouts, deadlines,
//! rate limits) uses `std::time::Instant`, which the offset never touches.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable holding the test-only clock offset in seconds.
pub const OFFSET_VAR: &str = "WEFT_TEST_CLOCK_OFFSET";

/// The offset, in seconds, once read.
static OFFSET: OnceLock<i64> = OnceLock::new();

/// Why `WEFT_TEST_CLOCK_OFFSET` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "environment variable {OFFSET_VAR}={value:?} is not valid: it is a test-only clock offset, a signed whole number of seconds such as -90 or 3600 (at most ±{MAX_OFFSET_S})"
)]
pub struct OffsetError {
    pub value: String,
}

/// The largest offset accepted either way: 100 years, far past any test's
/// need and far from overflowing `SystemTime`.
pub const MAX_OFFSET_S: i64 = 100 * 365 * 24 * 3600;

/// Parses an offset: a signed whole number of seconds, with an optional
/// leading `+` and surrounding spaces.
pub fn parse_offset(value: &str) -> Result<i64, OffsetError> {
    // `i64`'s parser takes one optional sign, `+` or `-`, and digits.
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| s.abs() <= MAX_OFFSET_S)
        .ok_or_else(|| OffsetError {
            value: value.to_owned(),
        })
}

/// The offset from the environment: 0 when `WEFT_TEST_CLOCK_OFFSET` is
/// unset or empty.
fn offset_from_env() -> Result<i64, OffsetError> {
    match std::env::var(OFFSET_VAR) {
        Ok(v) if v.trim().is_empty() => Ok(0),
        Ok(v) => parse_offset(&v),
        Err(std::env::VarError::NotPresent) => Ok(0),
        Err(std::env::VarError::NotUnicode(v)) => Err(OffsetError {
            value: v.to_string_lossy().into_owned(),
        }),
    }
}

/// Reads `WEFT_TEST_CLOCK_OFFSET` once, at startup, and fixes the offset
/// for the life of the process; an invalid value is an error to report,
/// not a panic. Returns the offset in seconds. Calling it again returns the
/// offset already fixed.
pub fn init() -> Result<i64, OffsetError> {
    if let Some(offset) = OFFSET.get() {
        return Ok(*offset);
    }
    let offset = offset_from_env()?;
    Ok(*OFFSET.get_or_init(|| offset))
}

/// The offset in force. A process that did not call [`init`] (a library's
/// tests, the in-process API tests) reads the environment on first use and
/// takes an invalid value as no offset.
fn offset() -> i64 {
    *OFFSET.get_or_init(|| offset_from_env().unwrap_or(0))
}

/// `base` moved by `offset_s` seconds (never before the epoch).
fn shifted(base: SystemTime, offset_s: i64) -> SystemTime {
    let by = Duration::from_secs(offset_s.unsigned_abs());
    if offset_s >= 0 {
        base.checked_add(by).unwrap_or(base)
    } else {
        base.checked_sub(by)
            .filter(|t| *t >= UNIX_EPOCH)
            .unwrap_or(UNIX_EPOCH)
    }
}

/// Now, on the node's clock: the system clock plus the test-only offset.
pub fn now() -> SystemTime {
    shifted(SystemTime::now(), offset())
}

/// Milliseconds since the Unix epoch on the node's clock.
pub fn now_ms() -> u64 {
    millis(now())
}

/// Milliseconds since the Unix epoch of `t` (0 before the epoch).
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_signed_whole_seconds() {
        assert_eq!(parse_offset("0"), Ok(0));
        assert_eq!(parse_offset("-90"), Ok(-90));
        assert_eq!(parse_offset("3600"), Ok(3600));
        assert_eq!(parse_offset("+600"), Ok(600));
        assert_eq!(parse_offset(" -7200 "), Ok(-7200));
        assert_eq!(parse_offset(&MAX_OFFSET_S.to_string()), Ok(MAX_OFFSET_S));
    }

    #[test]
    fn anything_else_is_refused_with_the_variable_named() {
        for bad in [
            "",
            "+",
            "-",
            "ten",
            "1.5",
            "1h",
            "90s",
            "++5",
            "+-5",
            "9223372036854775808",
            &(MAX_OFFSET_S + 1).to_string(),
            &(-MAX_OFFSET_S - 1).to_string(),
        ] {
            let err = parse_offset(bad).expect_err(bad);
            assert_eq!(err.value, bad);
            let message = err.to_string();
            assert!(message.contains(OFFSET_VAR), "{message}");
            assert!(message.contains("seconds"), "{message}");
        }
    }

    #[test]
    fn the_offset_moves_the_clock_both_ways() {
        let base = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            shifted(base, 3600),
            UNIX_EPOCH + Duration::from_secs(1_003_600)
        );
        assert_eq!(
            shifted(base, -600),
            UNIX_EPOCH + Duration::from_secs(999_400)
        );
        assert_eq!(shifted(base, 0), base);
        assert_eq!(shifted(base, -2_000_000), UNIX_EPOCH);
        assert_eq!(millis(shifted(base, -1)), 999_999_000);
    }
}

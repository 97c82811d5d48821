//! The one ISO 8601 duration parser of weft. A Follow's
//! `backfill.duration` is checked with it by the Follow verb (a WASM guest)
//! and read with it by the host's backfill, so both take exactly the same
//! texts.
//!
//! The grammar (ISO 8601-1 durations, with weeks combinable as ISO 8601-2
//! allows):
//!
//! ```text
//! duration = "P" date [ "T" time ]      ; at least one component in all,
//!          / "P" "T" time               ; and at least one after a "T"
//! date     = [ n "Y" ] [ n "M" ] [ n "W" ] [ n "D" ]
//! time     = [ n "H" ] [ n "M" ] [ n "S" ]
//! n        = 1*DIGIT [ ( "." / "," ) 1*DIGIT ]
//! ```
//!
//! Designators are upper-case and in that order, each at most once; only
//! the last component may have a decimal fraction (`PT1,5H`, `P0.5D`, not
//! `P1.5DT2H`). A year is 365 days, a month 30 days, a week 7 days and a
//! day 86 400 seconds: a duration here is an amount of time, not a calendar
//! step. Fractions are rounded down to the nanosecond. A duration past
//! [`Duration::MAX`] is [`Error::TooLarge`]; no input panics.
//!
//! What this is not: no signs, no `PnnnnYYMMDD…` alternative format, no
//! calendar arithmetic and no intervals (`start/end`). It has no
//! dependencies and needs no allocator (`no_std`), so any guest can use it.

#![cfg_attr(not(test), no_std)]

use core::fmt;
use core::time::Duration;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * NANOS_PER_SECOND;

/// The date designators in order, with their length in nanoseconds.
const DATE: [(u8, u64); 4] = [
    (b'Y', 365 * DAY),
    (b'M', 30 * DAY),
    (b'W', 7 * DAY),
    (b'D', DAY),
];
/// The time designators in order, with their length in nanoseconds.
const TIME: [(u8, u64); 3] = [
    (b'H', 3_600 * NANOS_PER_SECOND),
    (b'M', 60 * NANOS_PER_SECOND),
    (b'S', NANOS_PER_SECOND),
];

/// Why a text is not a duration.
///
/// (`Display` is written out rather than derived with `thiserror` so that
/// this crate stays free of dependencies.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// It does not start with `P`.
    Prefix,
    /// `P` or a `T` with no component after it.
    Empty,
    /// A component has no number, or a number no designator.
    Component,
    /// A character that is not a digit, a decimal sign or a designator
    /// that may come at this place (designators are upper-case, in the
    /// order `Y M W D` then `H M S`, each at most once).
    Designator,
    /// A decimal fraction on a component that is not the last.
    Fraction,
    /// More than [`Duration::MAX`] (about 584 billion years).
    TooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prefix => "an ISO 8601 duration starts with `P`",
            Self::Empty => "`P` and `T` must each be followed by at least one component such as `7D` or `12H`",
            Self::Component => "each component is a number followed by its designator, such as `7D`",
            Self::Designator => {
                "the designators are Y, M, W, D, then T and H, M, S: upper-case, in that order, each at most once"
            }
            Self::Fraction => "only the last component may have a decimal fraction",
            Self::TooLarge => "the duration is too large",
        })
    }
}

impl core::error::Error for Error {}

/// Parses an ISO 8601 duration (see the crate documentation for the
/// grammar).
pub fn parse(text: &str) -> Result<Duration, Error> {
    let rest = text.strip_prefix('P').ok_or(Error::Prefix)?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    if time == Some("") {
        return Err(Error::Empty);
    }
    // `None` once the sum has overflowed: the rest is still checked, so
    // whether a text is a duration does not depend on its magnitude.
    let mut total = Some(0u128);
    let mut components = 0usize;
    let mut fraction = false;
    for (section, units) in [(date, &DATE[..]), (time.unwrap_or(""), &TIME[..])] {
        let mut next = 0;
        let mut rest = section.as_bytes();
        while !rest.is_empty() {
            if fraction {
                return Err(Error::Fraction);
            }
            let (number, designator, after) = component(rest)?;
            let at = units
                .get(next..)
                .and_then(|left| left.iter().position(|(d, _)| *d == designator))
                .ok_or(Error::Designator)?
                + next;
            let unit = units[at].1;
            fraction = number.fraction.is_some();
            total = total
                .zip(number.nanos(unit))
                .and_then(|(sum, part)| sum.checked_add(part));
            components += 1;
            next = at + 1;
            rest = after;
        }
    }
    if components == 0 {
        return Err(Error::Empty);
    }
    let total = total.ok_or(Error::TooLarge)?;
    let seconds =
        u64::try_from(total / u128::from(NANOS_PER_SECOND)).map_err(|_| Error::TooLarge)?;
    // The remainder is below 10^9, so it fits.
    let nanos = (total % u128::from(NANOS_PER_SECOND)) as u32;
    Ok(Duration::new(seconds, nanos))
}

/// A component's number: ASCII digits, and those after the decimal sign.
struct Number<'a> {
    whole: &'a [u8],
    fraction: Option<&'a [u8]>,
}

impl Number<'_> {
    /// The number times `unit` nanoseconds, rounded down; `None` past
    /// `u128`.
    fn nanos(&self, unit: u64) -> Option<u128> {
        let whole = self.whole.iter().try_fold(0u128, |n, d| {
            n.checked_mul(10)?.checked_add(u128::from(d - b'0'))
        })?;
        // ⌊0.d₁d₂…dₙ × unit⌋ exactly, from the last digit back:
        // ⌊(d + x)/10⌋ = ⌊(d + ⌊x⌋)/10⌋, and the partial value stays below
        // `unit`, so nothing overflows however many digits there are.
        let fraction = self
            .fraction
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0u64, |part, d| (u64::from(d - b'0') * unit + part) / 10);
        whole
            .checked_mul(u128::from(unit))?
            .checked_add(u128::from(fraction))
    }
}

/// Splits the component at the start of `text`: its number, its
/// designator and what follows.
fn component(text: &[u8]) -> Result<(Number<'_>, u8, &[u8]), Error> {
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let whole_len = digits(text);
    let (whole, rest) = text.split_at(whole_len);
    let (fraction, rest) = match rest.split_first() {
        Some((b'.' | b',', after)) => {
            let (fraction, rest) = after.split_at(digits(after));
            if fraction.is_empty() {
                return Err(Error::Component);
            }
            (Some(fraction), rest)
        }
        _ => (None, rest),
    };
    if whole.is_empty() {
        return Err(Error::Component);
    }
    let (&designator, rest) = rest.split_first().ok_or(Error::Component)?;
    Ok((Number { whole, fraction }, designator, rest))
}

/// The canonical text of a duration, `P{d}DT{h}H{m}M{s}[.{f}]S` with the
/// zero components left out (`PT0S` for zero): what [`parse`] reads back
/// to the same duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canonical(pub Duration);

impl fmt::Display for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if seconds == 0 && nanos == 0 {
            return f.write_str("PT0S");
        }
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        let (hours, minutes, seconds) = (rest / 3_600, rest % 3_600 / 60, rest % 60);
        f.write_str("P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if rest == 0 && nanos == 0 {
            return Ok(());
        }
        f.write_str("T")?;
        if hours > 0 {
            write!(f, "{hours}H")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}M")?;
        }
        if seconds == 0 && nanos == 0 {
            return Ok(());
        }
        write!(f, "{seconds}")?;
        if nanos > 0 {
            let (mut digits, mut width) = (nanos, 9);
            while digits % 10 == 0 {
                digits /= 10;
                width -= 1;
            }
            write!(f, ".{digits:0width$}")?;
        }
        f.write_str("S")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn days(n: u64) -> Duration {
        Duration::from_secs(n * 86_400)
    }

    #[test]
    fn components_add_up() {
        let cases = [
            ("P7D", days(7)),
            ("PT12H", Duration::from_secs(12 * 3_600)),
            ("P1W", days(7)),
            ("P1Y", days(365)),
            ("P1M", days(30)),
            ("PT1M", Duration::from_secs(60)),
            ("P0D", Duration::ZERO),
            ("PT0S", Duration::ZERO),
            ("P1DT1H1M1S", Duration::from_secs(86_400 + 3_661)),
            (
                "P1Y2M3DT4H5M6S",
                Duration::from_secs((365 + 60 + 3) * 86_400 + 14_706),
            ),
            // Weeks combine with the other date components (ISO 8601-2).
            ("P1W2D", days(9)),
            ("P1Y1W", days(372)),
            ("P007D", days(7)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn fractions_on_the_last_component_with_either_sign() {
        assert_eq!(parse("PT0.5S"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("P0,5D"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse("PT1,5H"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("P1DT0.25H"), Ok(Duration::from_secs(86_400 + 900)));
        // Rounded down to the nanosecond, however many digits.
        assert_eq!(parse("PT0.0000000019S"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse("PT0.99999999999999999999999999999999999999999999S"),
            Ok(Duration::from_nanos(999_999_999))
        );
        // One third of a year: 10 512 000 s, rounded down.
        assert_eq!(
            parse("P0.333333333333333333333333Y"),
            Ok(Duration::new(10_511_999, 999_999_999))
        );
        assert_eq!(parse("P1.5DT2H"), Err(Error::Fraction));
        assert_eq!(parse("PT1.5M30S"), Err(Error::Fraction));
    }

    #[test]
    fn refuses_what_is_not_the_grammar() {
        let cases = [
            ("", Error::Prefix),
            ("7D", Error::Prefix),
            ("p7d", Error::Prefix),
            ("P", Error::Empty),
            ("PT", Error::Empty),
            ("P1DT", Error::Empty),
            ("P7", Error::Component),
            ("PD", Error::Component),
            ("P1.D", Error::Component),
            ("P.5D", Error::Component),
            ("P1D2", Error::Component),
            ("P-1D", Error::Component),
            ("P1D1D", Error::Designator),
            ("P1M1Y", Error::Designator),
            ("P1H", Error::Designator),
            ("PT1D", Error::Designator),
            ("P7d", Error::Designator),
            ("P7DX", Error::Component),
            ("P1DT1HT1M", Error::Component),
            ("P1..5D", Error::Component),
            ("P\u{665}D", Error::Component),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Err(expected), "{text}");
        }
    }

    #[test]
    fn too_large_is_an_error_not_a_panic() {
        assert_eq!(parse("P99999999999999999999Y"), Err(Error::TooLarge));
        assert_eq!(
            parse(&format!("PT{}S", u64::MAX)),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse(&format!("PT{}.999999999S", u64::MAX)),
            Ok(Duration::MAX)
        );
        assert_eq!(
            parse(&format!("PT{}S", u128::from(u64::MAX) + 1)),
            Err(Error::TooLarge)
        );
        assert_eq!(
            parse(&format!("P{}Y", "9".repeat(200))),
            Err(Error::TooLarge)
        );
        // The syntax is checked even past an overflow.
        assert_eq!(parse("P99999999999999999999YX"), Err(Error::Component));
    }

    #[test]
    fn canonical_text() {
        let cases = [
            (Duration::ZERO, "PT0S"),
            (days(7), "P7D"),
            (Duration::from_secs(90), "PT1M30S"),
            (Duration::from_millis(1_500), "PT1.5S"),
            (Duration::new(86_400 + 3_600, 1), "P1DT1H0.000000001S"),
            (Duration::MAX, "P213503982334601DT7H15.999999999S"),
        ];
        for (duration, text) in cases {
            assert_eq!(Canonical(duration).to_string(), text);
            assert_eq!(parse(text), Ok(duration), "{text}");
        }
    }
}

//! Property tests of the duration parser: no input panics; a text built
//! from components parses to the sum computed here independently; the
//! canonical text of any duration parses back to it.
//!
//! They do not restate the grammar's edge cases (the unit tests in
//! `src/lib.rs` do).

use std::time::Duration;

use proptest::prelude::*;
use weft_duration::{Canonical, Error, parse};

/// Each designator in order, with its length in seconds.
const UNITS: [(&str, u128); 7] = [
    ("Y", 365 * 86_400),
    ("M", 30 * 86_400),
    ("W", 7 * 86_400),
    ("D", 86_400),
    ("H", 3_600),
    ("M", 60),
    ("S", 1),
];

/// A duration's text from up to one number per designator, the last
/// present one with an optional fraction of up to nine digits, and the
/// expected length in nanoseconds (u128 arithmetic, no overflow possible
/// for these ranges).
fn text_and_nanos(
    parts: &[Option<u32>; 7],
    fraction: Option<(u32, bool)>,
) -> Option<(String, u128)> {
    let last = parts.iter().rposition(Option::is_some)?;
    let mut text = String::from("P");
    let mut nanos = 0u128;
    for (i, (part, (designator, seconds))) in parts.iter().zip(UNITS).enumerate() {
        let Some(n) = part else { continue };
        if i >= 4 && !text.contains('T') {
            text.push('T');
        }
        text.push_str(&n.to_string());
        nanos += u128::from(*n) * seconds * 1_000_000_000;
        if i == last
            && let Some((digits, comma)) = fraction
        {
            // `digits` as a nine-digit fraction: 0.digits × 10⁻⁹ × unit.
            text.push(if comma { ',' } else { '.' });
            text.push_str(&format!("{digits:09}"));
            nanos += u128::from(digits) * seconds;
        }
        text.push_str(designator);
    }
    Some((text, nanos))
}

proptest! {
    #[test]
    fn never_panics_on_any_text(text in "\\PC{0,40}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_near_misses(text in "[PTYMWDHS0-9.,]{0,40}") {
        if let Ok(d) = parse(&text) {
            // Whatever parses has a canonical form that reads back the same.
            prop_assert_eq!(parse(&Canonical(d).to_string()), Ok(d));
        }
    }

    #[test]
    fn components_sum_exactly(
        parts in proptest::array::uniform7(proptest::option::of(0u32..100_000)),
        fraction in proptest::option::of((0u32..1_000_000_000, any::<bool>())),
    ) {
        prop_assume!(parts.iter().any(Option::is_some));
        let (text, nanos) = text_and_nanos(&parts, fraction).expect("a component is present");
        let expected = Duration::new(
            u64::try_from(nanos / 1_000_000_000).expect("small"),
            u32::try_from(nanos % 1_000_000_000).expect("below 10^9"),
        );
        prop_assert_eq!(parse(&text), Ok(expected), "{}", text);
    }

    #[test]
    fn a_fraction_before_the_last_component_is_refused(
        whole in 0u32..1000, digits in 1u32..1000, after in 0u32..1000,
    ) {
        prop_assert_eq!(parse(&format!("P{whole}.{digits}DT{after}H")), Err(Error::Fraction));
        prop_assert_eq!(parse(&format!("PT{whole},{digits}H{after}S")), Err(Error::Fraction));
    }

    #[test]
    fn canonical_text_round_trips(seconds in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let d = Duration::new(seconds, nanos);
        let text = Canonical(d).to_string();
        prop_assert_eq!(parse(&text), Ok(d), "{}", text);
    }

    #[test]
    fn past_the_maximum_is_too_large(extra in 1u64..u64::MAX) {
        let seconds = u128::from(u64::MAX) + u128::from(extra);
        prop_assert_eq!(parse(&format!("PT{seconds}S")), Err(Error::TooLarge));
    }
}

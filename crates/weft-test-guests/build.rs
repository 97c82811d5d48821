//! Builds the guests only tests load (`tests/guests/*`, and the Rust example
//! verb the end-to-end tests send between nodes) and makes components of them
//! in `OUT_DIR`, whose path the crate exports.

use weft_guest_build::build_guests;

/// (world, crate) of every test guest built against the newest contracts.
const TEST_GUESTS: &[(&str, &str)] = &[
    // Two misbehave on purpose.
    ("verb", "weft-test-misbehave"),
    ("projection", "weft-test-flaky"),
    ("verb", "weft-example-rsvp"),
    // The built-in endorsements projection as a 0.1.0 module.
    ("projection", "weft-test-endorsements-v0-1"),
    // A projection that fails on request.
    ("projection", "weft-test-batch"),
];

/// Test guests whose projections the SDK builds against 0.2.0 (its
/// `contract-0-2` switch, which would switch every projection of a cargo
/// run: they build in a run of their own).
const V0_2_GUESTS: &[(&str, &str)] = &[
    // The same projection that fails on request.
    ("projection", "weft-test-batch-v0-2"),
    // The built-in feed projection.
    ("projection", "weft-test-feed-v0-2"),
];

fn main() {
    let sources = [
        "tests/guests",
        "examples/rust-rsvp",
        // The 0.2.0 feed is the built-in feed's source.
        "projections/feed",
        "verbs/rules",
    ];
    let (out, _) = build_guests(&sources, TEST_GUESTS);
    build_guests(&sources, V0_2_GUESTS);
    println!("cargo::rustc-env=WEFT_GUEST_COMPONENTS={}", out.display());
}

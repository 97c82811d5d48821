//! Builds the guests only tests load (`tests/guests/*`, and the Rust example
//! verb the end-to-end tests send between nodes) and makes components of them
//! in `OUT_DIR`, whose path the crate exports.

use weft_guest_build::build_guests;

/// (world, crate) of every test guest.
const TEST_GUESTS: &[(&str, &str)] = &[
    // Two misbehave on purpose.
    ("verb", "weft-test-misbehave"),
    ("projection", "weft-test-flaky"),
    ("verb", "weft-example-rsvp"),
    // The built-in endorsements projection as a 0.1.0 module.
    ("projection", "weft-test-endorsements-v0-1"),
    // A 0.2.0 projection that fails on request.
    ("projection", "weft-test-batch"),
];

fn main() {
    let (out, _) = build_guests(&["tests/guests", "examples/rust-rsvp"], TEST_GUESTS);
    println!("cargo::rustc-env=WEFT_GUEST_COMPONENTS={}", out.display());
}

//! Builds the guests only tests load (`tests/guests/*`, and the Rust example
//! verb the end-to-end tests send between nodes) and makes components of them
//! in `OUT_DIR`, whose path the crate exports.

use std::path::PathBuf;

use weft_guest_build::{
    build_worlds, componentize, guest_target_dir, rerun_if_changed, workspace_root,
};

/// (world, crate) of every test guest.
const TEST_GUESTS: &[(&str, &str)] = &[
    // Two misbehave on purpose.
    ("verb", "weft-test-misbehave"),
    ("projection", "weft-test-flaky"),
    ("verb", "weft-example-rsvp"),
];

fn main() {
    let root = workspace_root();
    rerun_if_changed(
        &root,
        &[
            "tests/guests",
            "examples/rust-rsvp",
            "sdk/rust",
            "sdk/wit",
            "Cargo.toml",
            "Cargo.lock",
        ],
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = guest_target_dir(&root);
    build_worlds(&root, &target, TEST_GUESTS);
    for (_, krate) in TEST_GUESTS {
        componentize(&target, &out, krate);
    }
    println!("cargo::rustc-env=WEFT_GUEST_COMPONENTS={}", out.display());
}

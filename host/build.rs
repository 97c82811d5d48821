//! Builds the genesis bundle (and the test guests) from source: the guest
//! crates are compiled to `wasm32-unknown-unknown` with the `guest` profile
//! in one cargo run (the SDK's `verb` and `projection` features add up: each
//! crate's component has only the exports of the world it exports), each is
//! made into a component with wit-component, and embedded in the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (world, module name, crate) of every genesis module.
const GENESIS: &[(&str, &str, &str)] = &[
    ("verb", "Note", "weft-verb-note"),
    ("verb", "Announce", "weft-verb-announce"),
    ("verb", "Endorse", "weft-verb-endorse"),
    ("verb", "Follow", "weft-verb-follow"),
    ("verb", "Accept", "weft-verb-accept"),
    ("verb", "Reject", "weft-verb-reject"),
    ("verb", "Undo", "weft-verb-undo"),
    ("verb", "Like", "weft-verb-like"),
    ("verb", "Delete", "weft-verb-delete"),
    ("projection", "feed", "weft-projection-feed"),
    (
        "projection",
        "follower-graph",
        "weft-projection-follower-graph",
    ),
    ("projection", "endorsements", "weft-projection-endorsements"),
];

/// Guests that only the tests use: two misbehave on purpose.
const TEST_GUESTS: &[(&str, &str)] = &[
    ("verb", "weft-test-misbehave"),
    ("projection", "weft-test-flaky"),
    // The Rust example verb, which the end-to-end tests send between nodes.
    ("verb", "weft-example-rsvp"),
];

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ is inside the workspace")
        .to_owned();
    for dir in [
        "verbs",
        "projections",
        // Crates the guests depend on (the Follow verb's duration parser).
        "crates",
        "sdk/rust",
        "sdk/wit",
        "tests/guests",
        "examples/rust-rsvp",
        // The `guest` profile and the guests' locked dependencies.
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let guest_target = target.join("guests");

    let guests: Vec<&str> = GENESIS
        .iter()
        .map(|g| g.2)
        .chain(TEST_GUESTS.iter().map(|g| g.1))
        .collect();
    build(&root, &guest_target, &guests);

    let mut table = String::from(
        "/// (world, name, component) of each genesis module, built from source by build.rs.\npub const GENESIS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (world, name, krate) in GENESIS {
        let path = componentize(&guest_target, &out, krate);
        table.push_str(&format!(
            "    ({world:?}, {name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("genesis.rs"), table).expect("write genesis.rs");
    for (_, krate) in TEST_GUESTS {
        componentize(&guest_target, &out, krate);
    }
    println!("cargo::rustc-env=WEFT_GUEST_COMPONENTS={}", out.display());
}

fn build(root: &Path, target_dir: &Path, crates: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            "guest",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(target_dir)
        // The host build's flags are not the guests'.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Under `cargo clippy` the wrapper would lint the guests with the
        // host's flags and fingerprint them differently from a normal build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    for krate in crates {
        cmd.args(["-p", krate]);
    }
    let status = cmd.status().expect("run cargo to build the WASM guests");
    if !status.success() {
        panic!(
            "building the WASM guests {crates:?} failed (see above). If the target is missing, run \
             `rustup target add wasm32-unknown-unknown`."
        );
    }
}

fn componentize(target_dir: &Path, out: &Path, krate: &str) -> PathBuf {
    let core = target_dir
        .join("wasm32-unknown-unknown/guest")
        .join(format!("{}.wasm", krate.replace('-', "_")));
    let bytes = std::fs::read(&core).unwrap_or_else(|e| panic!("read {}: {e}", core.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| e.validate(true).encode())
        .unwrap_or_else(|e| panic!("make {krate} a component: {e:#}"));
    let path = out.join(format!("{krate}.wasm"));
    std::fs::write(&path, component).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

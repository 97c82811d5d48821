//! Build-script helper for crates that embed weft guests: compiles guest
//! crates of this workspace to `wasm32-unknown-unknown` with the `guest`
//! profile and makes WebAssembly components of them with wit-component.
//!
//! It is used by `weft-genesis` (the built-in verbs and projections) and
//! `weft-test-guests` (the modules only tests load); it is not part of the
//! node. Failures panic, which is how a build script reports them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root, from the calling build script's manifest directory
/// (every crate using this helper sits at `crates/<name>/`).
pub fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("the crate is at crates/<name>/ of the workspace")
        .to_owned()
}

/// Tells cargo to run the build script again when any of `paths` (relative
/// to the workspace root) changes, and only then.
pub fn rerun_if_changed(root: &Path, paths: &[&str]) {
    for path in paths {
        println!("cargo::rerun-if-changed={}", root.join(path).display());
    }
}

/// Where the guests are built: `guests/` of the host build's target folder.
pub fn guest_target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests")
}

/// What every guest depends on besides its own source (relative to the
/// workspace root): the SDK, the WIT, and the `guest` profile and the
/// guests' locked dependencies.
const SHARED_SOURCES: &[&str] = &[
    "sdk/rust",
    "sdk/rust-v0.1",
    "sdk/wit",
    "Cargo.toml",
    "Cargo.lock",
];

/// The whole build script of a crate that embeds guests: it runs again
/// when `sources` (the guests' own source, relative to the workspace root)
/// or what every guest shares changes; it builds `guests` ((world,
/// package) pairs) and makes a component of each in `OUT_DIR`. Answers
/// `OUT_DIR` and the components' paths, in the order of `guests`.
pub fn build_guests(sources: &[&str], guests: &[(&str, &str)]) -> (PathBuf, Vec<PathBuf>) {
    let root = workspace_root();
    let watched: Vec<&str> = sources.iter().chain(SHARED_SOURCES).copied().collect();
    rerun_if_changed(&root, &watched);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = guest_target_dir(&root);
    // The SDK's `verb` and `projection` features add up (each world's
    // exports are embedded by its export macro, in the crate that calls
    // it), so verbs and projections build together.
    let crates: Vec<&str> = guests.iter().map(|(_, krate)| *krate).collect();
    build(&root, &target, &crates);
    let components = guests
        .iter()
        .map(|(_, krate)| componentize(&target, &out, krate))
        .collect();
    (out, components)
}

/// Builds `crates` (package names) in one cargo run.
pub fn build(root: &Path, target_dir: &Path, crates: &[&str]) {
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

/// Makes a component of the built core module of `krate` and writes it to
/// `out/<krate>.wasm` (only if it changed, so that what embeds it is not
/// rebuilt for nothing); returns that path.
pub fn componentize(target_dir: &Path, out: &Path, krate: &str) -> PathBuf {
    let core = target_dir
        .join("wasm32-unknown-unknown/guest")
        .join(format!("{}.wasm", krate.replace('-', "_")));
    let bytes = std::fs::read(&core).unwrap_or_else(|e| panic!("read {}: {e}", core.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| e.validate(true).encode())
        .unwrap_or_else(|e| panic!("make {krate} a component: {e:#}"));
    let path = out.join(format!("{krate}.wasm"));
    write_if_changed(&path, &component);
    path
}

/// Writes `bytes` to `path` unless it already holds them.
pub fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

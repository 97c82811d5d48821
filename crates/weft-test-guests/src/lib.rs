//! The WebAssembly guests only tests load, built from source by this crate's
//! build script: `weft-test-misbehave` (a verb that loops, grows, overflows
//! and panics on request), `weft-test-flaky` (a projection that fails on
//! request), both `weft:module@0.1.0`; `weft-test-batch` (the same for
//! 0.2.0's `fold-batch`), `weft-test-endorsements-v0-1` (the built-in
//! endorsements projection as a 0.1.0 module) and `weft-example-rsvp` (the
//! Rust example verb).
//!
//! A dev-dependency only: nothing the node ships depends on it.

/// The folder holding `<crate>.wasm` for every test guest.
pub const DIR: &str = env!("WEFT_GUEST_COMPONENTS");

/// The path of test guest `name`'s component.
pub fn path(name: &str) -> String {
    format!("{DIR}/{name}.wasm")
}

/// The component bytes of test guest `name` (a crate name).
pub fn component(name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(path(name))
}

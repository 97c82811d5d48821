//! Compiling an artifact and checking it against the WIT contract, as
//! `weft module add` and a peer's verb do (`weft_runtime::Runtime`:
//! `compile` as a verb and as a projection, and `check_component`), with
//! the node's engine configuration and default limits.
//!
//! Checks: an artifact that passes the contract as a verb or a projection
//! is a component `check_component` accepts; compiling it fresh and then
//! loading it from the compiled-module cache give the same answer (the
//! same success, or an error of the same kind). It does not run the
//! module (the sandbox tests do). Compiling is slow (seconds for a real
//! component, instrumented): a 20 s run does little more than replay the
//! corpus; run this one for hours to fuzz it.

#![no_main]

use std::mem::discriminant;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weft_core::model::cid;
use weft_runtime::{Limits, Reuse, Runtime, RuntimeError};
use weft_store::ModuleKind;

/// The runtime, caching compiled modules in a folder of its own under the
/// temporary folder (`fuzz/run.sh` points TMPDIR into fuzz/target and
/// empties it).
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("weft-fuzz-compile-{}", std::process::id()));
        Runtime::new(Limits::default(), dir).expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let runtime = runtime();
    let id = cid::artifact_id(data);
    // Not in the cache yet: compiled here (and kept if it is a verb).
    let fresh = runtime.compile(ModuleKind::Verb, &id, data);
    // Kept now whenever it compiles.
    let checked = runtime.check_component(&id, data, Reuse::Fresh);
    // From the cache when it compiled.
    let cached = runtime.compile(ModuleKind::Verb, &id, data);
    let projection = runtime.compile(ModuleKind::Projection, &id, data);
    if fresh.is_ok() || projection.is_ok() {
        assert!(
            checked.is_ok(),
            "passes the contract but is not a component"
        );
    }
    match (&fresh, &cached) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_same_kind(a, b),
        (a, b) => panic!(
            "fresh and cached compiles disagree: {:?} vs {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
});

fn assert_same_kind(a: &RuntimeError, b: &RuntimeError) {
    assert_eq!(discriminant(a), discriminant(b), "{a} vs {b}");
}

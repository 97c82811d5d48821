//! The WASM runtime end to end on a real node: the genesis bundle, module
//! definition, sandbox limits against misbehaving modules, fold failures,
//! rebuilds, the compiled-module cache, and verbs travelling from peers.
//!
//! This file is the suite's own support: test guests, uploading and
//! defining modules, the projections' state, waiting for reactions. The
//! node is the API tests' in-process [`TestNode`], the stand-in peer and
//! the rest are `weft-test-support`'s.

#[path = "../api/support.rs"]
#[allow(
    dead_code,
    unused_imports,
    missing_debug_implementations,
    reason = "the API tests' harness, shared; this crate uses part of it"
)]
mod support;

use weft_test_support::peer;

mod contracts;
mod genesis;
mod sandbox;
mod travel;

use serde_json::Value;
use support::TestNode;

/// A component built from `tests/guests/` by build.rs.
pub fn test_guest(name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(weft_test_guests::component(name)?)
}

/// Uploads `bytes` with the admin token; returns (status, body).
pub async fn upload(node: &TestNode, bytes: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    node.api().upload(&node.admin, bytes).await
}

/// Uploads and defines a module as the service actor; returns (status, body)
/// of the definition (of the upload, when that was refused).
pub async fn define(
    node: &TestNode,
    kind: &str,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    node.api().define(&node.admin, kind, name, bytes).await
}

/// Every projection's key-value entries, to compare rebuilt with incremental state.
pub fn projection_state(node: &TestNode) -> anyhow::Result<Vec<(String, String, String)>> {
    weft_test_support::state::projection_state(node.kernel.store())
}

/// Polls `check` until it returns Some, for effects of reactions (bounded:
/// 5 s).
pub async fn eventually<T>(
    check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    weft_test_support::eventually(5, "the expected effect", check).await
}

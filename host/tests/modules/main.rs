//! The WASM runtime end to end on a real node: the genesis bundle, module
//! definition, sandbox limits against misbehaving modules, fold failures,
//! rebuilds, the compiled-module cache, and verbs travelling from peers.

#[path = "../api/support.rs"]
#[allow(
    dead_code,
    missing_debug_implementations,
    reason = "the API tests' harness, shared; this crate uses part of it"
)]
mod support;

#[path = "../api/peer.rs"]
#[allow(
    dead_code,
    reason = "the API tests' stand-in peer, shared; this crate uses part of it"
)]
mod peer;

mod genesis;
mod sandbox;
mod travel;

use anyhow::Context;
use serde_json::{Value, json};
use support::TestNode;

/// A component built from `tests/guests/` by build.rs.
pub fn test_guest(name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(format!(
        "{}/{name}.wasm",
        weft_test_guests::DIR
    ))?)
}

/// Uploads `bytes` with the admin token; returns (status, body).
pub async fn upload(node: &TestNode, bytes: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    let response = node
        .http
        .post(format!("{}/artifacts", node.base))
        .bearer_auth(&node.admin)
        .body(bytes)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Uploads and defines a module as the service actor; returns (status, body)
/// of the definition.
pub async fn define(
    node: &TestNode,
    kind: &str,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let (status, body) = upload(node, bytes).await?;
    anyhow::ensure!(status == 201, "upload: {status} {body}");
    let draft =
        json!({"type": kind, "name": name, "module": body["id"], "to": [weft_core::model::PUBLIC]});
    let response = node
        .http
        .post(format!("{}/actors/node/outbox", node.base))
        .bearer_auth(&node.admin)
        .json(&draft)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Every projection's key-value entries, to compare rebuilt with incremental state.
pub fn projection_state(node: &TestNode) -> anyhow::Result<Vec<(String, String, String)>> {
    use redb::ReadableTable;
    let txn = node.kernel.store().begin_read()?;
    let table = txn.open_table(weft_store::tables::PROJECTION_STATE)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        let (p, key) =
            weft_store::tables::split_state_key(k.value()).context("a projection state key")?;
        out.push((p.to_owned(), key.to_owned(), v.value().to_owned()));
    }
    Ok(out)
}

/// Polls `check` until it returns Some, for effects of reactions (bounded).
pub async fn eventually<T>(
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    for _ in 0..100 {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("the expected effect did not happen within 5 s")
}

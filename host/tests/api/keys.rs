//! Key rotation over HTTP: the key history in the actor document, which key
//! signs which position, and the rotations the node refuses.

use anyhow::Context;
use serde_json::{Value, json};
use weft_core::identity::IdentityError;
use weft_core::model::Signed;

use crate::support::{Req, TestNode, assert_chain, assert_http_key, note, verify, verify_err};

fn rotation(add: Value, supersede: Value) -> Value {
    json!({"type": "Update", "object": {"type": "Person", "keys": {"add": add, "supersede": supersede}}})
}

fn standard_rotation() -> Value {
    rotation(
        json!([{"purposes": ["sign-activity", "rotate-key"]}]),
        json!(["#key-1"]),
    )
}

fn key<'d>(doc: &'d Value, id: &str) -> anyhow::Result<&'d Value> {
    doc["assertionMethod"]
        .as_array()
        .context("assertionMethod")?
        .iter()
        .find(|k| k["id"] == id)
        .with_context(|| format!("{id} is not in {doc}"))
}

#[tokio::test]
async fn rotation_shows_the_whole_key_history() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    node.publish_ok(&token, &note("before")).await?;
    let before = node.doc("alice").await?;
    let rotated = node.publish_ok(&token, &standard_rotation()).await?;
    let n = rotated["seq"].as_u64().context("seq")?;
    assert_eq!(n, 3);

    let doc = node.doc("alice").await?;
    let keys = doc["assertionMethod"].as_array().context("keys")?;
    assert_eq!(keys.len(), 2);
    let key1 = key(&doc, &format!("{alice}#key-1"))?;
    assert_eq!(key1["validFromSeq"], 1);
    assert_eq!(key1["supersededAtSeq"], n);
    assert_eq!(key1["superseded"], rotated["published"]);
    let key2 = key(&doc, &format!("{alice}#key-2"))?;
    assert_eq!(key2["validFromSeq"], n + 1);
    assert_eq!(key2["addedAtSeq"], n);
    assert!(key2.get("supersededAtSeq").is_none());
    assert_eq!(key2["type"], "Multikey");
    assert_eq!(key2["controller"], alice.as_str());
    assert_eq!(key2["purposes"], json!(["sign-activity", "rotate-key"]));
    assert_ne!(key1["publicKeyMultibase"], key2["publicKeyMultibase"]);
    // The rotation itself carries the new public key (never a secret).
    let added = &rotated["object"]["keys"]["add"][0];
    assert_eq!(added["id"], format!("{alice}#key-2"));
    assert_eq!(added["publicKeyMultibase"], key2["publicKeyMultibase"]);
    assert_eq!(
        rotated["object"]["keys"]["supersede"],
        json!([format!("{alice}#key-1")])
    );
    let text = rotated.to_string();
    assert!(!text.contains("secret") && !text.contains("seed"));
    // The current log key is the last one not superseded.
    let current = keys
        .iter()
        .rfind(|k| k.get("supersededAtSeq").is_none())
        .context("a current key")?;
    assert_eq!(current["id"], format!("{alice}#key-2"));
    assert_eq!(keys.last(), Some(current));
    // What plain ActivityPub peers read is the RSA key for HTTP signatures,
    // which an Ed25519 rotation leaves alone.
    assert_http_key(&doc, &alice)?;
    assert_eq!(doc["publicKey"], before["publicKey"]);
    node.stop().await
}

#[tokio::test]
async fn activities_verify_under_the_key_valid_at_their_position() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let mut before = vec![node.publish_ok(&token, &note("one")).await?];
    before.push(node.publish_ok(&token, &note("two")).await?);
    let rotated = node.publish_ok(&token, &standard_rotation()).await?;
    let after = vec![
        node.publish_ok(&token, &note("three")).await?,
        node.publish_ok(&token, &note("four")).await?,
    ];
    let doc = node.doc("alice").await?;
    let key1 = format!("{alice}#key-1");
    let key2 = format!("{alice}#key-2");
    for activity in &before {
        assert_eq!(activity["proof"]["key"], key1.as_str());
        verify(&doc, activity)?;
    }
    assert_eq!(
        rotated["proof"]["key"],
        key1.as_str(),
        "the rotation is signed by the key it supersedes"
    );
    verify(&doc, &rotated)?;
    for activity in &after {
        assert_eq!(activity["proof"]["key"], key2.as_str());
        verify(&doc, activity)?;
    }
    let log = node.log(&alice)?;
    assert_chain(&log, &alice)?;
    for activity in &log {
        verify(&doc, activity)?;
    }
    node.stop().await
}

#[tokio::test]
async fn a_superseded_key_cannot_sign_after_its_supersession() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    node.publish_ok(&token, &standard_rotation()).await?;
    let after = node.publish_ok(&token, &note("after")).await?;
    let doc = node.doc("alice").await?;
    verify(&doc, &after)?;

    // The same activity claiming key-1: `proof` is not part of the id, so it
    // still parses, but key-1 is not valid at seq 3.
    let mut claimed = after.clone();
    claimed["proof"]["key"] = json!(format!("{alice}#key-1"));
    let signed = Signed::parse(claimed.clone())?;
    assert_eq!(signed.header.seq, 3);
    let refused = verify_err(&doc, &claimed)?;
    assert!(
        matches!(&refused, Err(IdentityError::KeyNotValid { seq: 3, .. })),
        "{refused:?}"
    );
    // And a key the actor never had is refused too.
    claimed["proof"]["key"] = json!(format!("{alice}#key-9"));
    let refused = verify_err(&doc, &claimed)?;
    assert!(
        matches!(&refused, Err(IdentityError::UnknownKey(_))),
        "{refused:?}"
    );
    node.stop().await
}

#[tokio::test]
async fn successive_rotations_keep_every_position_verifiable() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    node.publish_ok(&token, &standard_rotation()).await?; // seq 2
    node.publish_ok(&token, &note("by key-2")).await?; // seq 3
    let second = rotation(
        json!([{"purposes": ["sign-activity", "rotate-key"]}]),
        json!(["#key-2"]),
    );
    let rotated = node.publish_ok(&token, &second).await?; // seq 4
    assert_eq!(rotated["proof"]["key"], format!("{alice}#key-2"));
    let last = node.publish_ok(&token, &note("by key-3")).await?; // seq 5
    assert_eq!(last["proof"]["key"], format!("{alice}#key-3"));

    let doc = node.doc("alice").await?;
    assert_eq!(key(&doc, &format!("{alice}#key-1"))?["supersededAtSeq"], 2);
    assert_eq!(key(&doc, &format!("{alice}#key-2"))?["validFromSeq"], 3);
    assert_eq!(key(&doc, &format!("{alice}#key-2"))?["supersededAtSeq"], 4);
    assert_eq!(key(&doc, &format!("{alice}#key-3"))?["validFromSeq"], 5);
    let log = node.log(&alice)?;
    assert_chain(&log, &alice)?;
    for activity in &log {
        verify(&doc, activity)?;
    }
    // Superseding a key twice is refused.
    let again = rotation(
        json!([{"purposes": ["sign-activity", "rotate-key"]}]),
        json!(["#key-1"]),
    );
    node.assert_rejected(Req::publish(&token, &again), 422)
        .await?;
    node.stop().await
}

#[tokio::test]
async fn a_rotation_that_would_lock_the_actor_out_is_refused() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let no_rotate_key = rotation(json!([{"purposes": ["sign-activity"]}]), json!(["#key-1"]));
    let problem = node
        .assert_rejected(Req::publish(&token, &no_rotate_key), 422)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("rotate-key"),
        "{problem}"
    );
    let no_sign_key = rotation(json!([{"purposes": ["rotate-key"]}]), json!(["#key-1"]));
    node.assert_rejected(Req::publish(&token, &no_sign_key), 422)
        .await?;
    let nothing_left = rotation(json!([]), json!(["#key-1"]));
    node.assert_rejected(Req::publish(&token, &nothing_left), 422)
        .await?;

    // Key-1 is still the actor's only, current key and still signs.
    let doc = node.doc("alice").await?;
    assert_eq!(doc["assertionMethod"].as_array().map(Vec::len), Some(1));
    assert!(
        key(&doc, &format!("{alice}#key-1"))?
            .get("supersededAtSeq")
            .is_none()
    );
    let activity = node.publish_ok(&token, &note("still here")).await?;
    assert_eq!(activity["proof"]["key"], format!("{alice}#key-1"));
    node.stop().await
}

#[tokio::test]
async fn keys_are_generated_by_the_node_not_the_client() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let doc = node.doc("alice").await?;
    let mine = key(&doc, &format!("{alice}#key-1"))?["publicKeyMultibase"].clone();
    let with_key = rotation(
        json!([{"purposes": ["sign-activity", "rotate-key"], "publicKeyMultibase": mine}]),
        json!(["#key-1"]),
    );
    let problem = node
        .assert_rejected(Req::publish(&token, &with_key), 422)
        .await?;
    assert_eq!(problem["field"], "object.keys.add[0]");
    let with_id = rotation(
        json!([{"purposes": ["sign-activity", "rotate-key"], "id": format!("{alice}#mine")}]),
        json!(["#key-1"]),
    );
    let problem = node
        .assert_rejected(Req::publish(&token, &with_id), 422)
        .await?;
    assert_eq!(problem["field"], "object.keys.add[0]");
    node.stop().await
}

#[tokio::test]
async fn malformed_rotations_are_refused() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let good_add = json!([{"purposes": ["sign-activity", "rotate-key"]}]);
    let bad = [
        rotation(good_add.clone(), json!(["#key-7"])),
        rotation(json!([{"purposes": ["sign-everything"]}]), json!([])),
        rotation(json!([{"purposes": []}]), json!([])),
        rotation(json!(["key"]), json!([])),
        rotation(json!({"purposes": ["rotate-key"]}), json!([])),
        rotation(good_add.clone(), json!("#key-1")),
        json!({"type": "Update", "object": {"type": "Person", "keys": "rotate please"}}),
    ];
    for draft in &bad {
        node.assert_rejected(Req::publish(&token, draft), 422)
            .await
            .with_context(|| draft.to_string())?;
    }
    node.stop().await
}

#[tokio::test]
async fn a_rotation_that_only_adds_keeps_both_keys_valid() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let add_only = json!({"type": "Update", "object": {"type": "Person", "keys": {"add": [{}]}}});
    let rotated = node.publish_ok(&token, &add_only).await?;
    assert_eq!(
        rotated["object"]["keys"]["add"][0]["purposes"],
        json!(["sign-activity", "rotate-key"]),
        "purposes default to both"
    );
    let after = node.publish_ok(&token, &note("after")).await?;
    let doc = node.doc("alice").await?;
    assert!(
        key(&doc, &format!("{alice}#key-1"))?
            .get("supersededAtSeq")
            .is_none()
    );
    assert_eq!(key(&doc, &format!("{alice}#key-2"))?["validFromSeq"], 3);
    verify(&doc, &after)?;
    // The node signs with the newest key; key-1 was never superseded, so a
    // claim of key-1 fails on the signature, not on the key's validity.
    assert_eq!(after["proof"]["key"], format!("{alice}#key-2"));
    let mut claimed = after.clone();
    claimed["proof"]["key"] = json!(format!("{alice}#key-1"));
    let refused = verify_err(&doc, &claimed)?;
    assert!(
        matches!(&refused, Err(IdentityError::BadSignature(_))),
        "{refused:?}"
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_amid_concurrent_publishes_splits_the_log_cleanly() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..41 {
        let api = node.api();
        let token = token.clone();
        tasks.spawn(async move {
            let draft = if n == 20 {
                standard_rotation()
            } else {
                note(&format!("{n}"))
            };
            api.publish(&token, &draft).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result??;
        assert_eq!(status, 201, "{body}");
    }
    let log = node.log(&alice)?;
    assert_eq!(log.len(), 42);
    assert_chain(&log, &alice)?;
    let doc = node.doc("alice").await?;
    let r = key(&doc, &format!("{alice}#key-1"))?["supersededAtSeq"]
        .as_u64()
        .context("key-1 is superseded")?;
    assert_eq!(log[r as usize - 1]["type"], "Update");
    for activity in &log {
        let seq = activity["seq"].as_u64().context("seq")?;
        let expected = if seq <= r { "key-1" } else { "key-2" };
        assert_eq!(
            activity["proof"]["key"],
            format!("{alice}#{expected}"),
            "seq {seq}, rotation at {r}"
        );
        verify(&doc, activity)?;
    }
    node.stop().await
}

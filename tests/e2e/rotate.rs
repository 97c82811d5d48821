//! `weft actor rotate NAME`: a fresh key is added and the current one
//! superseded; old activities still verify under the key valid at their
//! position, new ones are signed with the new key.

use std::path::Path;

use serde_json::Value;

use crate::support::{Weft, activity_from, cid, failure, success};

fn assert_verifies(weft: &Weft, file: &Path, extra: &[&str]) -> anyhow::Result<()> {
    let out = success(
        weft.verify(file, extra)?,
        &format!("weft verify {} {extra:?}", file.display()),
    )?;
    assert!(out.starts_with("valid"), "{out}");
    Ok(())
}

fn publish(weft: &Weft, content: &str) -> anyhow::Result<Value> {
    activity_from(&weft.cli_stdin_ok(
        &["publish", "--actor", "alice", "-"],
        &crate::support::note(content).to_string(),
    )?)
}

/// Rotates alice's key with the node running or stopped, then checks the
/// key history and that old and new activities verify both ways.
async fn rotate(running: bool) -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    if running {
        weft.start().await?;
    }
    weft.create_actor("alice")?;
    let before = publish(&weft, "before the rotation")?;
    assert!(
        before["proof"]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("#key-1"))
    );
    let before_file = weft.write_file("before.json", &before.to_string())?;

    let rotation = activity_from(&weft.ok(&["actor", "rotate", "alice"])?)?;
    assert_eq!(rotation["type"], "Update", "{rotation}");
    assert_eq!(rotation["seq"], 3, "{rotation}");
    assert_eq!(rotation["prev"], cid(&before));
    let rotation_file = weft.write_file("rotation.json", &rotation.to_string())?;

    let after = publish(&weft, "after the rotation")?;
    assert_eq!(after["seq"], 4);
    let key = after["proof"]["key"].as_str().unwrap_or_default();
    assert!(
        key.ends_with("/actors/alice#key-2"),
        "new posts are signed with key-2: {key}"
    );
    let after_file = weft.write_file("after.json", &after.to_string())?;

    // No flag: the local node's key history (stopped or running).
    for file in [&before_file, &rotation_file, &after_file] {
        assert_verifies(&weft, file, &[])?;
    }

    if !running {
        weft.start().await?;
    }
    let doc = weft.get_ok("/actors/alice", None).await?;
    let keys = doc["assertionMethod"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(keys.len(), 2, "two keys after one rotation: {doc}");
    assert!(
        keys[0]["id"]
            .as_str()
            .is_some_and(|k| k.ends_with("#key-1"))
    );
    assert!(
        keys[1]["id"]
            .as_str()
            .is_some_and(|k| k.ends_with("#key-2"))
    );
    assert_eq!(
        keys[0]["supersededAtSeq"], 3,
        "key-1 is superseded at the rotation: {doc}"
    );
    assert!(
        keys[1].get("supersededAtSeq").is_none(),
        "key-2 is current: {doc}"
    );
    assert_ne!(keys[0]["publicKeyMultibase"], keys[1]["publicKeyMultibase"]);
    // `publicKey` is the RSA key of HTTP signatures, which no rotation of
    // the log keys touches.
    assert!(
        doc["publicKey"]["id"]
            .as_str()
            .is_some_and(|k| k.ends_with("#main-key")),
        "{doc}"
    );
    assert!(
        doc["publicKey"]["publicKeyPem"]
            .as_str()
            .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----\nMIIBIjAN")),
        "an RSA-2048 key: {doc}"
    );

    // With the document: each activity verifies under the key of its position.
    let doc_file = weft.write_file("alice.json", &doc.to_string())?;
    let doc_arg = doc_file.to_string_lossy().into_owned();
    for file in [&before_file, &rotation_file, &after_file] {
        assert_verifies(&weft, file, &["--actor-doc", &doc_arg])?;
        // No flag, with the node running now.
        assert_verifies(&weft, file, &[])?;
    }
    let key1 = keys[0]["publicKeyMultibase"].as_str().unwrap_or_default();
    let key2 = keys[1]["publicKeyMultibase"].as_str().unwrap_or_default();
    assert_verifies(&weft, &before_file, &["--key", key1])?;
    assert_verifies(&weft, &after_file, &["--key", key2])?;
    let err = failure(
        weft.verify(&after_file, &["--key", key1])?,
        "a post-rotation activity under the old key",
    )?;
    assert!(err.contains("signature does not verify"), "{err}");

    // Over HTTP too, new posts use key-2.
    let (status, body) = weft
        .http
        .post(format!("{}/actors/alice/outbox", weft.base))
        .bearer_auth(&weft.admin)
        .json(&crate::support::note("over http"))
        .send()
        .await
        .map(|r| (r.status(), r))?;
    assert_eq!(status, 201);
    let body: Value = body.json().await?;
    assert!(
        body["proof"]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("#key-2")),
        "{body}"
    );
    weft.stop()?;
    // No flag, with the node stopped now.
    for file in [&before_file, &rotation_file, &after_file] {
        assert_verifies(&weft, file, &[])?;
    }
    // key-2's secret survived the restart: the stopped CLI signs with it.
    let last = publish(&weft, "after the restart")?;
    assert!(
        last["proof"]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("#key-2")),
        "{last}"
    );
    let last_file = weft.write_file("last.json", &last.to_string())?;
    assert_verifies(&weft, &last_file, &[])?;
    Ok(())
}

#[tokio::test]
async fn rotate_with_the_node_stopped() -> anyhow::Result<()> {
    rotate(false).await
}

#[tokio::test]
async fn rotate_with_the_node_running() -> anyhow::Result<()> {
    rotate(true).await
}

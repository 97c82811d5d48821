//! `weft verify FILE`: a published activity verifies every way a user can
//! ask (actor document, Multikey, the local node stopped or running); a
//! tampered or re-signed copy fails and the message says why; the shared
//! envelope vectors from an independent implementation give the same
//! answers.

use std::path::Path;

use serde_json::Value;

use crate::support::{Weft, activity_from, cid, failure, success};

/// The shared envelope test vectors (host/tests/data/envelope.json).
const VECTORS: &str = include_str!("../../host/tests/data/envelope.json");

/// `weft verify` must accept `file` and print a line starting "valid".
fn assert_valid(weft: &Weft, file: &Path, extra: &[&str], activity: &Value) -> anyhow::Result<()> {
    let out = success(
        weft.verify(file, extra)?,
        &format!("weft verify {} {extra:?}", file.display()),
    )?;
    assert!(out.starts_with("valid"), "verify prints `valid…`: {out}");
    // By its content id (its `id` is `…/activities/{cid}`).
    let id = cid(activity);
    assert!(
        id.starts_with('b') && out.contains(&id),
        "verify names the activity {id}: {out}"
    );
    Ok(())
}

/// `weft verify` must refuse `file`; returns its stderr.
fn assert_invalid(weft: &Weft, file: &Path, extra: &[&str]) -> anyhow::Result<String> {
    let err = failure(
        weft.verify(file, extra)?,
        &format!("weft verify {} {extra:?}", file.display()),
    )?;
    assert!(
        err.contains("invalid activity"),
        "verify says the activity is invalid: {err}"
    );
    Ok(err)
}

#[tokio::test]
async fn published_activities_verify_and_tampered_copies_do_not() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.create_actor("alice")?;
    let first = activity_from(&weft.cli_stdin_ok(
        &["publish", "--actor", "alice", "-"],
        r#"{"type":"Create","object":{"type":"Note","content":"hello"},"to":["https://www.w3.org/ns/activitystreams#Public"]}"#,
    )?)?;
    let second = activity_from(&weft.cli_stdin_ok(
        &["publish", "--actor", "alice", "-"],
        r#"{"type":"Create","object":{"type":"Note","content":"again"},"to":["https://www.w3.org/ns/activitystreams#Public"]}"#,
    )?)?;
    let note = weft.write_file("note.json", &first.to_string())?;

    // Stopped: no flag checks against the local data folder.
    assert_valid(&weft, &note, &[], &first)?;

    weft.start().await?;
    // The actor document, fetched over HTTP into a file.
    let doc = weft.get_ok("/actors/alice", None).await?;
    let doc_file = weft.write_file("alice.json", &doc.to_string())?;
    let doc_arg = doc_file.to_string_lossy().into_owned();
    assert_valid(&weft, &note, &["--actor-doc", &doc_arg], &first)?;
    // The Multikey from that document.
    let key = doc["assertionMethod"][0]["publicKeyMultibase"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(key.starts_with("z6Mk"), "an Ed25519 Multikey: {key}");
    assert_valid(&weft, &note, &["--key", &key], &first)?;
    // Running: no flag fetches the history from the running node.
    assert_valid(&weft, &note, &[], &first)?;
    // `-` reads the activity from stdin.
    let out = weft.cli_stdin_ok(&["verify", "-", "--key", &key], &first.to_string())?;
    assert!(out.starts_with("valid"), "{out}");
    // The actor's own Create (seq 1) verifies as well.
    let (_, token) = weft.create_actor_http("ivy").await?;
    let create = weft.walk_log("ivy", &token).await?.remove(0);
    let create_file = weft.write_file("create.json", &create.to_string())?;
    assert_valid(&weft, &create_file, &[], &create)?;
    // And the copy the node serves verifies too.
    let served = weft
        .get_ok(&format!("/activities/{}", cid(&first)), None)
        .await?;
    let served_file = weft.write_file("served.json", &served.to_string())?;
    assert_valid(&weft, &served_file, &["--key", &key], &first)?;

    // Tampered: the content changed after signing.
    let mut tampered = first.clone();
    tampered["object"]["content"] = "goodbye".into();
    let tampered_file = weft.write_file("tampered.json", &tampered.to_string())?;
    for extra in [
        vec![],
        vec!["--key", key.as_str()],
        vec!["--actor-doc", doc_arg.as_str()],
    ] {
        let err = assert_invalid(&weft, &tampered_file, &extra)?;
        assert!(
            err.contains("`id`") && err.contains("does not match"),
            "a tampered copy is reported as an id mismatch: {err}"
        );
    }

    // Re-signed: the proof of another activity of the same actor.
    let mut resigned = first.clone();
    resigned["proof"]["signature"] = second["proof"]["signature"].clone();
    let resigned_file = weft.write_file("resigned.json", &resigned.to_string())?;
    weft.stop()?;
    for extra in [
        vec![],
        vec!["--key", key.as_str()],
        vec!["--actor-doc", doc_arg.as_str()],
    ] {
        let err = assert_invalid(&weft, &resigned_file, &extra)?;
        assert!(
            err.contains("signature does not verify"),
            "a wrong signature is reported as such: {err}"
        );
    }

    // The wrong actor document is refused rather than trusted.
    let node_doc = weft.write_file(
        "node.json",
        &serde_json::json!({"id": format!("{}/actors/node", weft.base), "assertionMethod": []})
            .to_string(),
    )?;
    let err = failure(
        weft.verify(&note, &["--actor-doc", &node_doc.to_string_lossy()])?,
        "verify with another actor's document",
    )?;
    assert!(
        err.contains("not") && err.contains("/actors/alice"),
        "says the document is not alice's: {err}"
    );

    // An activity from elsewhere, checked against a node that never saw it.
    let vectors: Value = serde_json::from_str(VECTORS)?;
    let foreign = weft.write_file("foreign.json", &vectors["valid"][0]["signed"].to_string())?;
    let err = failure(weft.verify(&foreign, &[])?, "verify a foreign activity")?;
    assert!(
        err.contains("not known") && err.contains("--key"),
        "says the actor is unknown and how to give a key: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn shared_envelope_vectors_verify_with_the_cli() -> anyhow::Result<()> {
    // No node is needed: `--key` checks offline.
    let weft = Weft::uninitialised()?;
    let vectors: Value = serde_json::from_str(VECTORS)?;
    let key = vectors["key"]["publicKeyMultibase"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let valid = vectors["valid"].as_array().cloned().unwrap_or_default();
    let invalid = vectors["invalid"].as_array().cloned().unwrap_or_default();
    assert!(
        !valid.is_empty() && !invalid.is_empty(),
        "the vector file has cases"
    );
    for case in &valid {
        let name = case["name"].as_str().unwrap_or("valid");
        let file = weft.write_file(&format!("{name}.json"), &case["signed"].to_string())?;
        assert_valid(&weft, &file, &["--key", &key], &case["signed"])?;
    }
    for case in &invalid {
        let name = case["name"].as_str().unwrap_or("invalid");
        let file = weft.write_file(&format!("{name}.json"), &case["signed"].to_string())?;
        let err = assert_invalid(&weft, &file, &["--key", &key])?;
        assert!(
            err.contains("does not match") || err.contains("signature does not verify"),
            "vector {name} ({}) fails for the stated reason: {err}",
            case["why"]
        );
    }
    // A malformed key is refused with a message, not a panic.
    let file = weft.write_file("any.json", &valid[0]["signed"].to_string())?;
    let err = failure(
        weft.verify(&file, &["--key", "z6MkNotAKey"])?,
        "verify with a bad key",
    )?;
    assert!(err.contains("--key"), "names the bad --key: {err}");
    Ok(())
}

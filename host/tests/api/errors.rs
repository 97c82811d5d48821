//! Drafts and requests the node refuses: each answer is a problem document
//! that says what to fix, and nothing in the node changes.

use anyhow::Context;
use serde_json::{Value, json};
use weft_core::model::PUBLIC;

use crate::support::{Req, TestNode, id_of, note};

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_400() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let bodies: [&[u8]; 9] = [
        b"{\"type\": \"Create\",",
        b"not json",
        b"",
        b"[]",
        b"[{\"type\": \"Create\"}]",
        b"\"Create\"",
        b"42",
        b"null",
        b"{\"type\": \"Create\"} trailing",
    ];
    for body in bodies {
        let what = String::from_utf8_lossy(body).into_owned();
        node.assert_rejected(Req::post("/activity").bearer(&token).raw(body), 400)
            .await
            .with_context(|| what.clone())?;
        node.assert_rejected(
            Req::post("/actors/alice/outbox").bearer(&token).raw(body),
            400,
        )
        .await
        .with_context(|| what.clone())?;
        node.assert_rejected(Req::post("/actors").bearer(&node.admin).raw(body), 400)
            .await
            .with_context(|| what.clone())?;
    }
    node.stop().await
}

/// A public note whose JSON text is exactly `size` bytes.
fn note_of_size(size: usize) -> anyhow::Result<Vec<u8>> {
    let mut draft = note("");
    let overhead = draft.to_string().len();
    anyhow::ensure!(size >= overhead);
    // Padding goes in `summary`: the Note verb caps `content` itself.
    draft["object"]["summary"] = json!("");
    let overhead = draft.to_string().len();
    anyhow::ensure!(size >= overhead);
    draft["object"]["summary"] = json!("x".repeat(size - overhead));
    let text = draft.to_string().into_bytes();
    anyhow::ensure!(text.len() == size);
    Ok(text)
}

#[tokio::test]
async fn bodies_over_256_kib_are_413() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let limit = 256 * 1024;
    let problem = node
        .assert_rejected(
            Req::post("/activity")
                .bearer(&token)
                .raw(note_of_size(limit + 1)?),
            413,
        )
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("262144"),
        "{problem}"
    );
    node.assert_rejected(
        Req::post("/actors/alice/outbox")
            .bearer(&token)
            .raw(note_of_size(2 * limit)?),
        413,
    )
    .await?;
    // Exactly the limit is accepted and stored whole.
    let reply = node
        .send(
            Req::post("/activity")
                .bearer(&token)
                .raw(note_of_size(limit)?),
        )
        .await?;
    assert_eq!(reply.status, 201);
    let stored = reply.json()?.to_string();
    let summary = &reply.json()?["object"]["summary"];
    assert!(
        summary.as_str().map_or(0, str::len) > limit - 200,
        "the padding was not kept: {} bytes",
        stored.len()
    );
    assert_eq!(node.log(&alice)?.len(), 2);
    node.stop().await
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let before = node.snapshot()?;
    let host = node.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "POST /activity HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    // No Content-Length to go by: the node must count while it reads. Send
    // one byte more than the limit and wait for the answer.
    let body = note_of_size(256 * 1024 + 1)?;
    for chunk in body.chunks(16 * 1024) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    let mut response = vec![0; 4096];
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read(&mut response),
    )
    .await
    .context("the node does not answer an oversized chunked body")??;
    let response = String::from_utf8_lossy(&response[..n]).into_owned();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{response}"
    );
    assert_eq!(node.snapshot()?, before);
    node.stop().await
}

#[tokio::test]
async fn the_node_computed_fields_may_not_be_drafted() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let activity = node.publish_ok(&token, &note("template")).await?;
    for field in ["id", "proof", "published"] {
        let mut draft = note("sneaky");
        draft[field] = activity[field].clone();
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await?;
        assert_eq!(problem["field"], field, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(field)
        );
        // Even null is a value the client may not set.
        draft[field] = Value::Null;
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await?;
        assert_eq!(problem["field"], field);
    }
    // Replaying a whole signed activity is refused the same way.
    let problem = node
        .assert_rejected(Req::publish(&token, &activity), 422)
        .await?;
    assert!(problem["field"].is_string());
    assert_eq!(node.log(&alice)?.len(), 2);
    node.stop().await
}

#[tokio::test]
async fn actor_must_be_the_publisher() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    for actor in [
        json!(bob),
        json!("http://127.0.0.1:9/actors/alice"),
        json!(7),
        json!(null),
    ] {
        let mut draft = note("as bob");
        draft["actor"] = actor;
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await?;
        assert_eq!(problem["field"], "actor");
    }
    assert_eq!(node.log(&bob)?.len(), 1);
    node.stop().await
}

#[tokio::test]
async fn seq_and_prev_must_be_what_the_node_would_assign() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let first = node.publish_ok(&token, &note("one")).await?; // seq 2
    let tip = id_of(&first)?;
    let create = id_of(&node.log(&alice)?[0])?;

    for seq in [
        json!(2),
        json!(4),
        json!(1),
        json!(0),
        json!(-3),
        json!("3"),
        json!(3.5),
        json!(null),
    ] {
        let mut draft = note("seq");
        draft["seq"] = seq.clone();
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await
            .with_context(|| seq.to_string())?;
        assert_eq!(problem["field"], "seq", "{seq}");
        assert!(problem["detail"].as_str().unwrap_or_default().contains('3'));
    }
    for prev in [
        json!(create),
        json!("bagaaihranotanid"),
        json!(null),
        json!(1),
    ] {
        let mut draft = note("prev");
        draft["prev"] = prev.clone();
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await
            .with_context(|| prev.to_string())?;
        assert_eq!(problem["field"], "prev", "{prev}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(&tip)
        );
    }
    // A draft that is right about one but wrong about the other is refused.
    let mut draft = note("half right");
    draft["seq"] = json!(3);
    draft["prev"] = json!(create);
    node.assert_rejected(Req::publish(&token, &draft), 422)
        .await?;
    node.stop().await
}

#[tokio::test]
async fn a_draft_needs_a_type() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    for draft in [
        json!({"object": {"type": "Note", "content": "untyped"}, "to": [PUBLIC]}),
        json!({"type": "", "to": [PUBLIC]}),
        json!({"type": 5}),
        json!({"type": ["Create"]}),
        json!({}),
    ] {
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await
            .with_context(|| draft.to_string())?;
        assert_eq!(problem["field"], "type", "{draft}");
    }
    node.stop().await
}

#[tokio::test]
async fn integers_beyond_two_to_the_53_are_refused() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    for number in [
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "18446744073709551615",
    ] {
        let body = format!(
            "{{\"type\":\"Create\",\"object\":{{\"type\":\"Note\",\"content\":\"n\",\"n\":{number}}},\"to\":[\"{PUBLIC}\"]}}"
        );
        let problem = node
            .assert_rejected(Req::post("/activity").bearer(&token).raw(body), 422)
            .await
            .with_context(|| number.to_owned())?;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(number),
            "{problem}"
        );
    }
    // The largest exact integer is fine.
    let draft: Value = serde_json::from_str(&format!(
        "{{\"type\":\"Create\",\"object\":{{\"type\":\"Note\",\"content\":\"n\",\"n\":9007199254740991}},\"to\":[\"{PUBLIC}\"]}}"
    ))?;
    let activity = node.publish_ok(&token, &draft).await?;
    assert_eq!(activity["object"]["n"], 9_007_199_254_740_991_u64);
    assert_eq!(node.log(&alice)?.len(), 2);
    node.stop().await
}

#[tokio::test]
async fn actors_are_not_created_by_publishing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    for kind in ["Person", "Service", "Group"] {
        let draft = json!({"type": "Create", "object": {"type": kind, "preferredUsername": "eve"}});
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await?;
        assert_eq!(problem["field"], "object.type");
        let draft = json!({"type": "Create", "object": {"type": kind, "id": alice}});
        node.assert_rejected(Req::publish(&token, &draft), 422)
            .await?;
    }
    let (status, _) = node.get("/actors/eve", None).await?;
    assert_eq!(status, 404);
    node.stop().await
}

#[tokio::test]
async fn unknown_things_are_404_problems() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    for path in [
        "/actors/nobody",
        "/actors/nobody/outbox",
        "/actors/nobody/outbox?page=1",
        "/activities/bagaaihranotanid",
        "/activities/",
        "/nothing/here",
        "/actors/alice/nothing",
    ] {
        node.assert_rejected(Req::get(path), 404)
            .await
            .with_context(|| path.to_owned())?;
        node.assert_rejected(Req::get(path).bearer(&token), 404)
            .await
            .with_context(|| path.to_owned())?;
    }
    node.stop().await
}

#[tokio::test]
async fn axum_rejections_are_problems_too() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    // A path parameter that is not valid UTF-8 once decoded.
    node.assert_rejected(Req::get("/activities/%FF"), 400)
        .await
        .context("/activities/%FF")?;
    for (method, path) in [
        (reqwest::Method::GET, "/activity"),
        (reqwest::Method::DELETE, "/actors/alice"),
        (reqwest::Method::PUT, "/actors/alice/outbox"),
    ] {
        node.assert_rejected(Req::new(method, path).bearer(&token), 405)
            .await
            .with_context(|| path.to_owned())?;
    }
    node.stop().await
}

//! Rate limits over real loopback HTTP: a burst past a client IP's bucket
//! gets 429 with `Retry-After` (and changes nothing) while another client
//! is served; a burst past a peer origin's bucket gets 429 while another
//! origin is served, and requests that fail verification never spend the
//! origin's tokens.

use std::net::IpAddr;

use anyhow::Context;
use serde_json::{Value, json};
use weft::config::Config;
use weft_http::ratelimit::RateLimits;

use crate::peer::FakePeer;
use crate::support::{Req, TestNode, assert_problem, note};

fn note_to(content: &str, to: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}, "to": [to]})
}

/// `POST /actors/alice/inbox` of `body` from the local address `from`:
/// answers (status, Retry-After).
async fn post_from(
    node: &TestNode,
    from: IpAddr,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Option<String>)> {
    let client = reqwest::Client::builder().local_address(from).build()?;
    let response = client
        .post(node.url(path))
        .header("content-type", "application/activity+json")
        .body(body.to_string())
        .send()
        .await?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), retry_after))
}

fn per_ip(config: &mut Config) {
    config.server.rate_limit = RateLimits {
        per_ip_per_second: 1,
        per_ip_burst: 3,
        per_origin_per_second: 0,
        per_origin_burst: 0,
        limit_loopback: true,
    };
}

#[tokio::test]
async fn a_burst_past_an_ip_bucket_is_429_while_another_client_is_served() -> anyhow::Result<()> {
    let node = TestNode::start_with(per_ip).await?;
    let (_, token) = node.actor("alice").await?;
    let before = node.snapshot()?;
    let greedy: IpAddr = "127.0.0.1".parse()?;
    let other: IpAddr = "127.0.0.2".parse()?;
    // Unsigned and unproven: each gets a 401 while the client has tokens.
    let junk = json!({"type": "Note"});
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(post_from(&node, greedy, "/actors/alice/inbox", &junk).await?);
    }
    for (n, (status, _)) in answers.iter().take(3).enumerate() {
        assert_ne!(*status, 429, "request {n} was within the burst");
    }
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "no 429 past the burst: {answers:?}");
    for (_, retry_after) in &limited {
        let seconds: u64 = retry_after
            .as_deref()
            .context("a 429 without Retry-After")?
            .parse()?;
        assert_eq!(seconds, 1, "one token a second is back within a second");
    }
    // The refusal is a problem document and changes nothing; the shared
    // inbox and publishing share the client's bucket.
    let problem = node
        .assert_rejected(Req::post("/inbox").json(&junk), 429)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("per_ip_per_second") && d.contains("127.0.0.1")),
        "{problem}"
    );
    let reply = node.send(Req::publish(&token, &note("limited"))).await?;
    assert_problem(&reply, 429)?;
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    assert!(
        node.snapshot()? == before,
        "a limited request changed the node"
    );
    // Reading is not limited, and another client still has its own bucket.
    assert_eq!(node.get("/health", None).await?.0, 200);
    let (status, _) = post_from(&node, other, "/actors/alice/inbox", &junk).await?;
    assert_eq!(status, 401, "another client is served");
    node.stop().await
}

fn per_origin(config: &mut Config) {
    config.server.rate_limit = RateLimits {
        per_ip_per_second: 0,
        per_ip_burst: 0,
        per_origin_per_second: 1,
        per_origin_burst: 2,
        limit_loopback: true,
    };
}

#[tokio::test]
async fn a_burst_past_an_origin_bucket_is_429_while_another_origin_is_served() -> anyhow::Result<()>
{
    let node = TestNode::start_with(per_origin).await?;
    let (alice, _) = node.actor("alice").await?;
    let greedy = FakePeer::start().await?;
    greedy.actor("eve")?;
    let other = FakePeer::start().await?;
    other.actor("olga")?;
    // The node signs its fetches as its service actor, whose HTTP key is
    // made on first use: make it now, so refusals below change nothing.
    node.doc("node").await?;

    // Whoever claims to be eve without her key spends nothing of her
    // origin's bucket: each is refused on its proof.
    for n in 0..5 {
        let mut forged = greedy.sign_detached("eve", note_to(&format!("forged {n}"), &alice))?;
        let other_signature = greedy.sign_detached("eve", note_to("another", &alice))?;
        forged["proof"]["signature"] = other_signature["proof"]["signature"].clone();
        node.assert_rejected(Req::post("/actors/alice/inbox").json(&forged), 401)
            .await?;
    }
    let mut statuses = Vec::new();
    let mut last = None;
    for n in 0..12 {
        let activity = greedy.sign("eve", note_to(&format!("n{n}"), &alice))?;
        let before = node.snapshot()?;
        let reply = node
            .send(Req::post("/actors/alice/inbox").json(&activity))
            .await?;
        if reply.status == 429 {
            let problem = assert_problem(&reply, 429)?;
            assert!(
                problem["detail"].as_str().is_some_and(
                    |d| d.contains(&greedy.base) && d.contains("per_origin_per_second")
                ),
                "{problem}"
            );
            assert!(reply.retry_after.is_some(), "429 without Retry-After");
            assert!(node.snapshot()? == before, "a limited activity was stored");
            last = Some(activity);
        }
        statuses.push(reply.status);
    }
    assert_eq!(
        &statuses[..2],
        &[202, 202],
        "the burst of two: {statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "no 429 past the burst: {statuses:?}"
    );
    // Another origin has its own bucket.
    let theirs = other.sign("olga", note_to("mine", &alice))?;
    let reply = node
        .send(Req::post("/actors/alice/inbox").json(&theirs))
        .await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    // A limited activity is taken once the sender comes back later.
    let last = last.context("a limited activity")?;
    let mut taken = false;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let reply = node
            .send(Req::post("/actors/alice/inbox").json(&last))
            .await?;
        if reply.status == 202 {
            taken = true;
            break;
        }
        assert_eq!(reply.status, 429, "{}", reply.text);
    }
    assert!(taken, "the origin's bucket never refilled");
    node.stop().await
}

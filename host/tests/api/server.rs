//! The server's limits against clients that hold it: a slowloris client
//! that never finishes its headers is dropped while others are served; a
//! request whose body trickles in is cut off at the request time limit;
//! past `max_concurrent_requests` a request gets 503 with `Retry-After`;
//! a client that accepts gzip gets it.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestNode;

/// The node's `host:port`.
fn authority(node: &TestNode) -> String {
    node.base.trim_start_matches("http://").to_owned()
}

/// Reads what the server sends until it closes the connection or
/// `patience` passes; answers (closed, text).
async fn drain(stream: &mut TcpStream, patience: Duration) -> (bool, String) {
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, String::from_utf8_lossy(&text).into()),
            Ok(Ok(n)) => text.extend_from_slice(&buf[..n]),
            Err(_) => return (false, String::from_utf8_lossy(&text).into()),
        }
    }
}

#[tokio::test]
async fn a_slowloris_client_is_dropped_while_others_are_served() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.server.header_timeout_ms = 300).await?;
    let mut slow = TcpStream::connect(authority(&node)).await?;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: weft\r\n")
        .await?;
    // One more header line every 50 ms, never the blank line that ends them.
    let dribble = async {
        for i in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if slow
                .write_all(format!("X-Slow-{i}: still here\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        slow
    };
    let served = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        node.get("/health", None).await
    };
    let (mut slow, served) = tokio::join!(dribble, served);
    assert_eq!(served?.0, 200, "another client is served meanwhile");
    let (closed, text) = drain(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "the slow connection is still open");
    assert!(
        !text.contains("200 OK"),
        "the slow request was served: {text}"
    );
    // The node still serves.
    assert_eq!(node.get("/health", None).await?.0, 200);
    node.stop().await
}

/// A POST whose body never finishes: the first line and headers of it.
fn trickling_post(node: &TestNode) -> String {
    format!(
        "POST /actors/node/inbox HTTP/1.1\r\nHost: {}\r\nContent-Type: application/activity+json\r\nContent-Length: 100000\r\n\r\n{{\"type\":",
        authority(node)
    )
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_at_the_request_time_limit() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.server.request_timeout_ms = 400).await?;
    let before = node.snapshot()?;
    let mut slow = TcpStream::connect(authority(&node)).await?;
    slow.write_all(trickling_post(&node).as_bytes()).await?;
    let (_, text) = drain(&mut slow, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("longer than the node allows"), "{text}");
    assert!(
        node.snapshot()? == before,
        "a cut-off request changed the node"
    );
    node.stop().await
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_get_503_with_retry_after() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.server.max_concurrent_requests = 1).await?;
    // One request holds the only place while its body trickles in…
    let mut holder = TcpStream::connect(authority(&node)).await?;
    holder.write_all(trickling_post(&node).as_bytes()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …so the next one is turned away, saying when to come back.
    let response = node.http.get(node.url("/health")).send().await?;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = response.json().await?;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("as many requests as it allows")),
        "{body}"
    );
    drop(holder);
    // Once the place is free again, requests are served.
    let mut served = false;
    for _ in 0..100 {
        if node.get("/health", None).await?.0 == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the node did not serve again after the holder left");
    node.stop().await
}

#[tokio::test]
async fn responses_are_gzipped_for_clients_that_ask() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let url = format!("{}/actors/node", node.base);
    let plain = node.http.get(&url).send().await?;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let text = plain.text().await?;
    let gzipped = node
        .http
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    assert_eq!(gzipped.status(), 200);
    assert_eq!(
        gzipped
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let body = gzipped.bytes().await?;
    // The gzip magic number, and smaller than the document it carries.
    assert_eq!(body.get(..2), Some(&[0x1f, 0x8b][..]));
    assert!(body.len() < text.len(), "{} >= {}", body.len(), text.len());
    node.stop().await
}

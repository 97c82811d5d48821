//! Integration tests of the HTTP API over a real loopback socket, against a
//! real node (redb file, key store, writer thread) in a temp folder.

mod auth;
mod errors;
mod federation;
mod fediverse;
mod inbox;
mod keys;
mod lifecycle;
mod logs;
mod outbox;
mod policies;
mod publish;
mod ratelimit;
mod server;
mod support;
mod sync;
mod visibility;

use support::{TestNode, id_of, note, url_id};
use weft_test_support::peer;

#[tokio::test]
async fn a_new_node_has_only_its_service_actor() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let names = node.kernel.store().read()?.local_names()?;
    assert_eq!(names, vec!["node".to_owned()]);
    let (status, doc) = node.get("/actors/node", None).await?;
    assert_eq!(status, 200);
    assert_eq!(doc["type"], "Service");
    node.stop().await
}

#[tokio::test]
async fn publish_then_read_back() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let (status, activity) = node.publish(&token, &note("hi")).await?;
    assert_eq!(status, 201, "{activity}");
    assert_eq!(activity["actor"], alice.as_str());
    assert_eq!(activity["seq"], 2);
    // On the wire the id is the activity's URL; it is served under its
    // content id.
    let id = id_of(&activity)?;
    assert_eq!(activity["id"], url_id(&alice, &id));
    let (status, fetched) = node.get(&format!("/activities/{id}"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(fetched, activity);
    node.stop().await
}

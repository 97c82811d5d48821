//! Several real `weft` nodes on loopback for the partition suite
//! (`partition.rs`), each behind its own fault-injecting proxy
//! ([`weft_test_support::Proxy`]) that is its inbound link: the node's
//! `public_url`, and so every actor id it makes, is the proxy's address,
//! so peers reach it only through the proxy, while the test talks to the
//! node's own port and is never cut off. Cutting a node's proxy partitions
//! it from every peer (inbound); its own requests out still reach peers
//! whose links are up.
//!
//! Also what the scenarios check with: an actor's public log as its home
//! node serves it, which of those activities another node holds, the
//! operator's sync and dead-letter views, and feeds and endorsement counts
//! (projection answers).
//!
//! Not the nodes themselves ([`Weft`] in `support.rs`) and not the proxy
//! (`weft-test-support`).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use weft_test_support::Proxy;

use super::{Weft, cid, collection, eventually, publish};

/// `[federation]` for the scenarios that need the sync of issue 23: two
/// quick retries, so a peer down a second outlasts the whole schedule and
/// its deliveries dead-letter, and a reconcile round every second.
pub const SYNC: &str = "[federation]\nretry = [\"100ms\", \"200ms\"]\nsync_interval = \"1s\"\n";

/// `[federation]` for nodes that heal by redelivery alone: retries that
/// outlast a cut of a few seconds (about 50 s in all).
pub const REDELIVERY: &str = "[federation]\nretry = [\"200ms\", \"400ms\", \"800ms\", \"1s\", \"2s\", \"3s\", \"5s\", \"10s\", \"30s\"]\n";

/// One node of a cluster: the process, the proxy in front of it, and the
/// one actor the test made there.
#[derive(Debug)]
pub struct Node {
    pub weft: Weft,
    /// The node's inbound link.
    pub proxy: Proxy,
    /// The actor's name (`alice`).
    pub name: String,
    /// The actor's id, under the proxy's address.
    pub actor: String,
    /// The actor's bearer token.
    pub token: String,
}

impl Node {
    /// Starts a node behind a new proxy, its `weft.toml` holding the
    /// proxy's address as `public_url` and then `toml` (for example
    /// [`SYNC`]), and creates the actor `name`.
    pub async fn start(name: &str, toml: &str) -> anyhow::Result<Self> {
        let mut weft = Weft::uninitialised()?;
        let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], weft.port)))?;
        weft.initialise_with(&format!("public_url = \"{}\"\n{toml}", proxy.url()))?;
        weft.start().await?;
        let (actor, token) = weft.create_actor_http(name).await?;
        ensure!(
            actor.starts_with(&proxy.url()),
            "{actor} is not under the proxy's address {}",
            proxy.url()
        );
        Ok(Self {
            weft,
            proxy,
            name: name.to_owned(),
            actor,
            token,
        })
    }

    /// Publishes `draft` as the node's actor (201 expected).
    pub async fn publish(&self, draft: Value) -> anyhow::Result<Value> {
        publish(&self.weft, &self.token, draft).await
    }

    /// GET `path` with the admin token, which must answer 200.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        self.weft.get_ok(path, Some(&self.weft.admin)).await
    }
}

/// Starts one node per name, each behind its own proxy, with `toml`.
pub async fn start(names: &[&str], toml: &str) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for name in names {
        nodes.push(Node::start(name, toml).await?);
    }
    Ok(nodes)
}

/// `follower`'s actor follows `followed`'s, and the Accept came back.
pub async fn follow(follower: &Node, followed: &Node) -> anyhow::Result<()> {
    follower
        .publish(json!({"type": "Follow", "object": followed.actor, "to": [followed.actor]}))
        .await?;
    eventually(
        60,
        &format!("{} to follow {}", follower.name, followed.name),
        || async {
            Ok(collection(&follower.weft, &follower.name, "following")
                .await?
                .contains(&json!(followed.actor))
                .then_some(()))
        },
    )
    .await
}

/// Every actor of `nodes` follows every other.
pub async fn follow_all(nodes: &[Node]) -> anyhow::Result<()> {
    for follower in nodes {
        for followed in nodes {
            if follower.actor != followed.actor {
                follow(follower, followed).await?;
            }
        }
    }
    Ok(())
}

/// `node`'s actor's log as anyone may read it from its home node (what is
/// addressed to Public, and its lifecycle), oldest first, walked with
/// `?since=&limit=200`.
pub async fn public_log(node: &Node) -> anyhow::Result<Vec<Value>> {
    let mut items: Vec<Value> = Vec::new();
    let mut since = String::new();
    loop {
        let page = node
            .weft
            .get_ok(
                &format!("/actors/{}/outbox?since={since}&limit=200", node.name),
                None,
            )
            .await?;
        let batch = page["orderedItems"]
            .as_array()
            .context("a page without orderedItems")?;
        items.extend(batch.iter().cloned());
        if page.get("next").is_none() {
            return Ok(items);
        }
        ensure!(!batch.is_empty(), "an empty page with a next link");
        since = cid(items.last().context("no last item")?);
    }
}

/// Of `activities`, the content ids `weft` does not hold as they are
/// (`GET /activities/{id}` is not 200 with the same JSON).
pub async fn missing_on(weft: &Weft, activities: &[Value]) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for activity in activities {
        let id = cid(activity);
        let (status, held) = weft.get(&format!("/activities/{id}"), None).await?;
        if status != 200 || &held != activity {
            missing.push(id);
        }
    }
    Ok(missing)
}

/// The newest activity of `node`'s actor that anyone may read, as
/// `{"seq", "id"}` with the id a content id: the head a peer compares.
pub async fn public_head(node: &Node) -> anyhow::Result<Value> {
    let log = public_log(node).await?;
    let last = log.last().context("an empty public log")?;
    Ok(json!({"seq": last["seq"], "id": cid(last)}))
}

/// `GET /admin/sync` (issue 23): one entry per remote actor the node keeps
/// in sync.
pub async fn sync_entries(node: &Node) -> anyhow::Result<Vec<Value>> {
    let body = node.admin_get("/admin/sync").await?;
    body["actors"]
        .as_array()
        .cloned()
        .with_context(|| format!("GET /admin/sync without `actors`: {body}"))
}

/// The entry of `GET /admin/sync` for `actor`, if the node has one.
pub async fn sync_entry(node: &Node, actor: &str) -> anyhow::Result<Option<Value>> {
    Ok(sync_entries(node)
        .await?
        .into_iter()
        .find(|e| e["actor"] == json!(actor)))
}

/// `POST /admin/sync`: a round now; answered when it is done.
pub async fn sync_now(node: &Node) -> anyhow::Result<Value> {
    let (status, body) = node
        .weft
        .api()
        .post_json("/admin/sync", &node.weft.admin, &json!({}))
        .await?;
    ensure!(
        (200..300).contains(&status),
        "POST /admin/sync: {status} {body}"
    );
    Ok(body)
}

/// A `{"seq", "id"}` of `GET /admin/sync` with the id as a content id, so
/// it compares with [`public_head`] whichever form the node writes.
pub fn position(value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    json!({
        "seq": value["seq"],
        "id": weft_test_support::cid_of(value["id"].as_str().unwrap_or_default()),
    })
}

/// Whether a delivery job (queued or dead) is for a recipient at
/// `origin`: its `origin`, or its recipient (an actor, or
/// `shared-inbox:URL`), names it.
fn for_origin(job: &Value, origin: &str) -> bool {
    job["origin"].as_str() == Some(origin)
        || job["recipient"].as_str().is_some_and(|r| {
            r.strip_prefix("shared-inbox:")
                .unwrap_or(r)
                .starts_with(origin)
        })
}

/// The dead letters of `node` whose recipient is under `origin`.
pub async fn dead_letters_to(node: &Node, origin: &str) -> anyhow::Result<Vec<Value>> {
    let body = node.admin_get("/admin/dead-letter").await?;
    Ok(body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| for_origin(i, origin))
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

/// The deliveries `node` still has queued for recipients under `origin`
/// (each with its `attempts` so far).
pub async fn queued_to(node: &Node, origin: &str) -> anyhow::Result<Vec<Value>> {
    let body = node.admin_get("/admin/deliveries").await?;
    Ok(body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| for_origin(i, origin))
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

/// The activities in `node`'s actor's feed (the `feed` projection),
/// newest first, every page.
pub async fn feed(node: &Node) -> anyhow::Result<Vec<Value>> {
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let body = node
            .weft
            .get_ok(
                &format!("/projections/feed?actor={}&limit=100{after}", node.actor),
                Some(&node.token),
            )
            .await?;
        for item in body["items"].as_array().into_iter().flatten() {
            ids.push(item["activity"].clone());
        }
        match body["next"].as_str() {
            Some(next) if !next.is_empty() => after = format!("&after={next}"),
            _ => return Ok(ids),
        }
    }
}

/// The `endorsements` projection's counts of `id` on `weft`:
/// `(like, share)`.
pub async fn endorsements(weft: &Weft, id: &str) -> anyhow::Result<(u64, u64)> {
    let body = weft
        .get_ok(&format!("/projections/endorsements/counts?id={id}"), None)
        .await?;
    Ok((
        body["like"].as_u64().unwrap_or_default(),
        body["share"].as_u64().unwrap_or_default(),
    ))
}

/// The content ids of the `Create{Note}`s among `activities`.
pub fn notes(activities: &[Value]) -> BTreeSet<String> {
    activities
        .iter()
        .filter(|a| a["type"] == "Create" && a["object"]["type"] == "Note")
        .map(cid)
        .collect()
}

/// The origin (`http://127.0.0.1:PORT`) of `node`'s actors, as peers know
/// them: its proxy's.
pub fn origin(node: &Node) -> String {
    node.proxy.url()
}

/// The `status` of condition `kind` in a policy status document
/// (`{"conditions": [{"type", "status", "reason", "message",
/// "lastTransitionTime"}]}`), if it has one.
pub fn condition(status: &Value, kind: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .map(str::to_owned)
}

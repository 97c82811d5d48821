//! `weft actor create NAME [--type …]` (`POST /actors`) and `weft actor
//! rotate NAME` (the actor document's current keys, then an `Update` that
//! adds a fresh key and supersedes them, published as the actor).

use serde_json::{Value, json};

use super::client::{Body, Client, segment};
use super::{ActorCommand, Output, publish};
use weft_core::identity::ActorKind;

pub async fn run(client: &Client, command: ActorCommand, out: Output) -> anyhow::Result<()> {
    match command {
        ActorCommand::Create { name, kind } => create(client, &name, kind.into(), out).await,
        ActorCommand::Rotate { name } => rotate(client, &name, out).await,
    }
}

/// Creates the actor and prints its id and bearer token (shown once).
async fn create(client: &Client, name: &str, kind: ActorKind, out: Output) -> anyhow::Result<()> {
    let body = json!({"name": name, "type": kind.as_str()});
    let created = client.post("/actors", Body::Json(body)).await?.json;
    out.print(&created, || {
        let field = |k: &str| created[k].as_str().unwrap_or_default().to_owned();
        println!("created {}", field("id"));
        println!("token (shown once; keep it secret): {}", field("token"));
    })
}

/// Adds a fresh key to the actor and supersedes its current ones; prints
/// the `Update` that does it.
async fn rotate(client: &Client, name: &str, out: Output) -> anyhow::Result<()> {
    let doc = client
        .get(&format!("/actors/{}", segment(name)))
        .await?
        .json;
    let current: Vec<Value> = doc["assertionMethod"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter(|k| k.get("supersededAtSeq").is_none())
                .map(|k| k["id"].clone())
                .collect()
        })
        .unwrap_or_default();
    let draft = json!({
        "type": "Update",
        "object": {"type": doc["type"], "keys": {"add": [{"purposes": ["sign-activity", "rotate-key"]}], "supersede": current}},
        "to": [weft_core::model::PUBLIC],
    });
    let published =
        publish::publish(client, name, draft.as_object().cloned().unwrap_or_default()).await?;
    publish::print(&published, out)
}

//! `weft actor create NAME [--type …]` (`POST /actors`), `weft actor
//! rotate NAME` (the actor document's current keys, then an `Update` that
//! adds a fresh key and supersedes them, published as the actor), `weft
//! actor list` (`GET /admin/actors`) and `weft actor token NAME` (`POST
//! /admin/actors/{name}/token`).

use serde_json::{Value, json};

use super::client::{Body, Client, segment};
use super::{ActorCommand, Output, publish};
use weft_core::identity::ActorKind;

pub async fn run(client: &Client, command: ActorCommand, out: Output) -> anyhow::Result<()> {
    match command {
        ActorCommand::Create { name, kind } => create(client, &name, kind.into(), out).await,
        ActorCommand::Rotate { name } => rotate(client, &name, out).await,
        ActorCommand::List => list(client, out).await,
        ActorCommand::Token { name } => token(client, &name, out).await,
    }
}

/// Prints the local actors, one a line.
async fn list(client: &Client, out: Output) -> anyhow::Result<()> {
    let answer = client.get("/admin/actors").await?.json;
    out.print(&answer, || {
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        let width = items
            .iter()
            .filter_map(|i| i["name"].as_str().map(str::len))
            .max()
            .unwrap_or(4);
        for item in &items {
            say!(
                "{:<width$}  {:<7}  {:>8} activities  {}",
                item["name"].as_str().unwrap_or_default(),
                item["type"].as_str().unwrap_or_default(),
                item["activities"].as_u64().unwrap_or_default(),
                item["id"].as_str().unwrap_or_default(),
            );
        }
    })
}

/// Issues a new token for the actor and prints it (shown once).
async fn token(client: &Client, name: &str, out: Output) -> anyhow::Result<()> {
    let answer = client
        .post(
            &format!("/admin/actors/{}/token", segment(name)),
            Body::Empty,
        )
        .await?
        .json;
    out.print(&answer, || {
        say!(
            "new token for {} (shown once; every earlier token of the actor is revoked): {}",
            answer["id"].as_str().unwrap_or_default(),
            answer["token"].as_str().unwrap_or_default()
        );
    })
}

/// Creates the actor and prints its id and bearer token (shown once).
async fn create(client: &Client, name: &str, kind: ActorKind, out: Output) -> anyhow::Result<()> {
    let body = json!({"name": name, "type": kind.as_str()});
    let created = client.post("/actors", Body::Json(body)).await?.json;
    out.print(&created, || {
        let field = |k: &str| created[k].as_str().unwrap_or_default().to_owned();
        say!("created {}", field("id"));
        say!("token (shown once; keep it secret): {}", field("token"));
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

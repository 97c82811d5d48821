//! `weft dead-letter list` (`GET /admin/dead-letter`) and `weft
//! dead-letter retry ID` (`POST /admin/dead-letter/{id}/retry`): deliveries
//! that gave up, and queueing one again.

use super::client::{Body, Client};
use super::{DeadLetterCommand, Output};

pub async fn run(client: &Client, command: DeadLetterCommand, out: Output) -> anyhow::Result<()> {
    match command {
        DeadLetterCommand::List => list(client, out).await,
        DeadLetterCommand::Retry { id } => retry(client, id, out).await,
    }
}

async fn list(client: &Client, out: Output) -> anyhow::Result<()> {
    let answer = client.get("/admin/dead-letter").await?.json;
    out.print(&answer, || {
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            say!("no dead letters");
        }
        for item in items {
            say!(
                "{:>6}  {}  → {}  after {} attempts: {}",
                item["id"],
                item["activity"].as_str().unwrap_or_default(),
                item["recipient"].as_str().unwrap_or_default(),
                item["attempts"],
                item["lastError"].as_str().unwrap_or("?"),
            );
        }
    })
}

async fn retry(client: &Client, id: u64, out: Output) -> anyhow::Result<()> {
    let answer = client
        .post(&format!("/admin/dead-letter/{id}/retry"), Body::Empty)
        .await?
        .json;
    out.print(&answer, || {
        if client.in_process_node() {
            // The node is stopped: its deliveries resume when it runs.
            say!("dead letter {id} queued; it is sent when the node runs");
        } else {
            say!("dead letter {id} queued");
        }
    })
}

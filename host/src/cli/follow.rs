//! `weft follow pending|approve|reject`: Follows of local actors that a
//! `follows` policy (`accept: manual` or `followed`) holds for the
//! operator (`/admin/follows/pending…`). Approving publishes what the
//! Follow verb answers (the Accept) as the followed actor; rejecting
//! publishes a Reject.
//!
//! Not the policy itself (`weft policy define … --kind follows`).

use super::client::{Body, Client, segment};
use super::{FollowCommand, Output};

pub async fn run(client: &Client, command: FollowCommand, out: Output) -> anyhow::Result<()> {
    match command {
        FollowCommand::Pending => pending(client, out).await,
        FollowCommand::Approve { id } => answer(client, &id, "approve", out).await,
        FollowCommand::Reject { id } => answer(client, &id, "reject", out).await,
    }
}

async fn pending(client: &Client, out: Output) -> anyhow::Result<()> {
    let answer = client.get("/admin/follows/pending").await?.json;
    out.print(&answer, || {
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            say!("no Follows wait for an answer");
        }
        for item in items {
            say!(
                "{}  {} → {}  {}",
                item["id"].as_str().unwrap_or_default(),
                item["follower"].as_str().unwrap_or_default(),
                item["followed"].as_str().unwrap_or_default(),
                item["published"].as_str().unwrap_or_default(),
            );
        }
    })
}

async fn answer(client: &Client, id: &str, action: &str, out: Output) -> anyhow::Result<()> {
    let answer = client
        .post(
            &format!("/admin/follows/pending/{}/{action}", segment(id)),
            Body::Empty,
        )
        .await?
        .json;
    out.print(&answer, || {
        for activity in answer["published"].as_array().into_iter().flatten() {
            say!(
                "{} published {} {}",
                activity["actor"].as_str().unwrap_or_default(),
                activity["type"].as_str().unwrap_or_default(),
                activity["id"].as_str().unwrap_or_default(),
            );
        }
    })
}

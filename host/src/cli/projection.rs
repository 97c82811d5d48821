//! `weft projection rebuild NAME`: refold a projection from the whole log
//! (`POST /admin/projections/{name}/rebuild`). The node answers once the
//! projection has caught up, which on a long log takes a while.

use super::Output;
use super::client::{Client, segment};

pub async fn rebuild(client: &Client, name: &str, out: Output) -> anyhow::Result<()> {
    let answer = client
        .post_long(&format!("/admin/projections/{}/rebuild", segment(name)))
        .await?
        .json;
    out.print(&answer, || {
        println!(
            "rebuilt `{name}` from {} activities",
            answer["folded"].as_u64().unwrap_or_default()
        );
    })
}

//! `weft publish --actor NAME [FILE|-]`: a draft activity, signed and
//! appended as a local actor (`POST /actors/{name}/outbox` with the admin
//! token). Prints the signed activity as the node answered it.

use std::io::Read;

use anyhow::Context;
use serde_json::{Map, Value};

use super::Output;
use super::client::{Answer, Body, Client, segment};

/// The draft in `file` (`-`: standard input), which must be a JSON object.
pub fn read_draft(file: &str) -> anyhow::Result<Map<String, Value>> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the draft from stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    serde_json::from_str(&text).context("the draft must be a JSON object")
}

/// Publishes `draft` as the local actor `name`; answers the signed activity.
pub async fn publish(
    client: &Client,
    name: &str,
    draft: Map<String, Value>,
) -> anyhow::Result<Answer> {
    client
        .post(
            &format!("/actors/{}/outbox", segment(name)),
            Body::Json(Value::Object(draft)),
        )
        .await
}

/// Prints a published activity: as the node signed it (one line of JSON),
/// or pretty with `--json`.
pub fn print(published: &Answer, out: Output) -> anyhow::Result<()> {
    out.print(&published.json, || say!("{}", published.text.trim_end()))
}

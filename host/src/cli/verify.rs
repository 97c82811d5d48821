//! `weft verify FILE`: checks a signed activity offline — its id, its
//! envelope, and its signature under a key valid at its position — and says
//! exactly why it fails.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Output;
use super::node::{DataDir, Node, OpenError};
use weft_core::identity::{actor, multikey};
use weft_core::model::Signed;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signed activity (JSON), or `-` for standard input.
    pub file: String,
    /// Check against this Multikey (`z6Mk…`) instead of the actor's history.
    #[arg(long, conflicts_with = "actor_doc")]
    pub key: Option<String>,
    /// Check against the key history in this actor document (a file).
    #[arg(long)]
    pub actor_doc: Option<PathBuf>,
}

pub async fn run(data: &DataDir, args: VerifyArgs, out: Output) -> anyhow::Result<()> {
    let text = if args.file == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file))?
    };
    let value: Value = serde_json::from_str(&text).context("not valid JSON")?;
    let signed = Signed::parse(value).context("invalid activity")?;
    let header = &signed.header;
    if let Some(key) = &args.key {
        let key = multikey::decode(key).context("invalid --key")?;
        signed.verify_with(&key).context("invalid activity")?;
    } else {
        let keys = match &args.actor_doc {
            Some(path) => {
                let doc: Value = serde_json::from_str(
                    &std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )
                .context("the actor document is not JSON")?;
                if doc.get("id").and_then(Value::as_str) != Some(header.actor.as_str()) {
                    bail!("the actor document is not {}'s", header.actor);
                }
                weft_core::wire::actor::keys_from_document(&doc)
                    .context("the actor document's keys are unusable")?
            }
            None => local_keys(data, &header.actor).await?,
        };
        actor::verify_with_history(&keys, &signed).context("invalid activity")?;
    }
    let answer = json!({
        "valid": true,
        "id": signed.id,
        "actor": header.actor,
        "seq": header.seq,
        "key": signed.key_id,
    });
    out.print(&answer, || {
        say!(
            "valid: {} is seq {} of {}, signed with {}",
            signed.id,
            header.seq,
            header.actor,
            signed.key_id
        );
    })
}

/// The key history of `actor` as this node knows it.
async fn local_keys(
    data: &DataDir,
    actor_id: &str,
) -> anyhow::Result<Vec<weft_core::identity::KeyRecord>> {
    let unknown = || {
        format!(
            "{actor_id} is not known to the node in {}; pass --key or --actor-doc",
            data.path.display()
        )
    };
    let config = data.config()?;
    if !data.db().exists() {
        bail!(unknown());
    }
    match Node::open(data, config.clone()) {
        Ok(node) => {
            let state = node.kernel.store().read()?.actor(actor_id)?;
            node.kernel.close();
            Ok(state.with_context(unknown)?.keys)
        }
        Err(OpenError::Running) => {
            // The running node serves the same history in the actor document.
            if !actor_id.starts_with(&config.public_url()) {
                bail!(unknown());
            }
            let doc: Value = reqwest::get(actor_id)
                .await?
                .error_for_status()
                .with_context(unknown)?
                .json()
                .await?;
            Ok(weft_core::wire::actor::keys_from_document(&doc)?)
        }
        Err(OpenError::Other(e)) => Err(e),
    }
}

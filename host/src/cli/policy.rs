//! `weft policy define|list|status`: the node's policies
//! (docs/architecture.md §10; the README's "Policies").
//!
//! - `define` publishes a `DefinePolicy` activity as the service actor (or
//!   `--as` another local actor, on the operator's behalf) through
//!   `POST /actors/{name}/outbox`; the node checks the spec and answers 422
//!   naming the field otherwise;
//! - `list` reads `GET /admin/policies`;
//! - `status` reads `GET /admin/policies/{name}/status`.
//!
//! Nothing here interprets a policy: the node does.

use anyhow::Context;
use serde_json::{Value, json};

use super::client::{Client, segment};
use super::{Output, publish};

/// What `weft policy define` publishes.
#[derive(Debug)]
pub struct Definition {
    pub name: String,
    pub kind: String,
    /// The spec as given: JSON text, or `@FILE`.
    pub spec: String,
    /// The local actor that publishes it.
    pub definer: String,
    pub description: Option<String>,
}

/// The spec `text` gives: JSON, or `@FILE` holding JSON.
pub fn read_spec(text: &str) -> anyhow::Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
        }
        None => text.to_owned(),
    };
    serde_json::from_str(&text).context("the spec must be JSON (or @FILE holding JSON)")
}

/// Publishes the definition; the node answers the signed activity.
pub async fn define(client: &Client, policy: Definition, out: Output) -> anyhow::Result<()> {
    let spec = read_spec(&policy.spec)?;
    let mut draft = json!({
        "type": "DefinePolicy",
        "name": policy.name,
        "kind": policy.kind,
        "spec": spec,
    });
    if let Some(d) = policy.description {
        draft["description"] = d.into();
    }
    let published = publish::publish(
        client,
        &policy.definer,
        draft.as_object().cloned().unwrap_or_default(),
    )
    .await?;
    let current = client
        .get(&format!("/admin/policies/{}", segment(&policy.name)))
        .await?
        .json;
    out.print(&published.json, || {
        say!(
            "defined {} policy `{}` v{} in {}",
            policy.kind,
            policy.name,
            current["version"],
            published.json["id"].as_str().unwrap_or_default()
        );
    })
}

/// Every policy's current version (and how many it has had).
pub async fn list(client: &Client, out: Output) -> anyhow::Result<()> {
    let answer = client.get("/admin/policies").await?.json;
    out.print(&answer, || {
        let policies = answer["policies"].as_array().cloned().unwrap_or_default();
        if policies.is_empty() {
            say!("no policies (the configuration's defaults apply)");
        }
        for p in policies {
            say!(
                "{:<24} {:<12} v{:<3} {}  by {}",
                p["name"].as_str().unwrap_or_default(),
                p["kind"].as_str().unwrap_or_default(),
                p["version"],
                p["published"].as_str().unwrap_or_default(),
                p["actor"].as_str().unwrap_or_default(),
            );
            if let Some(d) = p["description"].as_str() {
                say!("  {d}");
            }
            say!("  {}", p["spec"]);
        }
    })
}

/// A policy's conditions and obligations.
pub async fn status(client: &Client, name: &str, out: Output) -> anyhow::Result<()> {
    let answer = client
        .get(&format!("/admin/policies/{}/status", segment(name)))
        .await?
        .json;
    out.print(&answer, || {
        say!(
            "policy `{}` v{}",
            answer["name"].as_str().unwrap_or_default(),
            answer["version"]
        );
        for c in answer["conditions"].as_array().into_iter().flatten() {
            say!(
                "  {:<10} {:<8} {:<16} since {}  {}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default(),
                c["lastTransitionTime"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default(),
            );
        }
        let obligations = answer["obligations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if obligations.is_empty() {
            say!("  no outstanding obligations");
        }
        for o in obligations {
            match o["lagMs"].as_u64() {
                Some(lag) => say!("  {}  (lag {lag} ms)", o["obligation"]),
                None => say!("  {}", o["obligation"]),
            }
        }
    })
}

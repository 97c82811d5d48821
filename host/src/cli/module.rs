//! `weft module add|list|pending|approve|discard`: verbs and projections.
//!
//! - `add` uploads the component (`POST /artifacts`) and defines it
//!   (`DefineActivity` / `DefineProjection`, published as the service
//!   actor or `--as` another local actor);
//! - `list` reads the registry (`GET /projections/define-registry`);
//! - `pending`, `approve`, `discard`: peers' verbs awaiting admission
//!   (`/admin/modules/pending…`). Approving fetches the verb's artifact
//!   from its peer now, also with the node stopped.

use serde_json::{Value, json};

use super::client::{Body, Client, segment};
use super::{ModuleKindArg, Output, publish};

/// What `weft module add` defines.
#[derive(Debug)]
pub struct Definition {
    pub kind: ModuleKindArg,
    pub name: String,
    pub description: Option<String>,
    pub language: Option<String>,
    /// The local actor that publishes the definition.
    pub definer: String,
    pub fuel: Option<u64>,
    pub memory: Option<u64>,
}

/// Uploads `component` and defines it as `module` says.
pub async fn add(
    client: &Client,
    component: Vec<u8>,
    module: Definition,
    out: Output,
) -> anyhow::Result<()> {
    let uploaded = client
        .post(
            "/artifacts",
            Body::Bytes {
                content_type: "application/wasm",
                bytes: component,
            },
        )
        .await?
        .json;
    let artifact = uploaded["id"].as_str().unwrap_or_default().to_owned();
    let define = module.kind.define();
    let mut draft = json!({
        "type": define,
        "name": module.name,
        "module": artifact,
        "wit": weft_runtime::PACKAGE,
        "to": [weft_core::model::PUBLIC],
    });
    if let Some(d) = module.description {
        draft["description"] = d.into();
    }
    if let Some(l) = module.language {
        draft["language"] = l.into();
    }
    if let Some(f) = module.fuel {
        draft["fuel"] = f.into();
    }
    if let Some(m) = module.memory {
        draft["memory"] = m.into();
    }
    let published = publish::publish(
        client,
        &module.definer,
        draft.as_object().cloned().unwrap_or_default(),
    )
    .await?;
    let answer = json!({"artifact": uploaded, "activity": published.json});
    out.print(&answer, || {
        say!("uploaded {artifact}");
        say!(
            "defined {define} `{}` in {}",
            module.name,
            published.json["id"].as_str().unwrap_or_default()
        );
    })
}

/// Lists every verb and projection with its module id, version and metadata.
pub async fn list(client: &Client, out: Output) -> anyhow::Result<()> {
    let registry = client.get("/projections/define-registry").await?.json;
    out.print(&registry, || {
        for (title, key) in [("verbs", "verbs"), ("projections", "projections")] {
            say!("{title}:");
            for m in registry[key].as_array().into_iter().flatten() {
                say!(
                    "  {:<20} v{:<3} {}  {}{}",
                    m["name"].as_str().unwrap_or_default(),
                    m["version"],
                    m["module"].as_str().unwrap_or_default(),
                    m["language"]
                        .as_str()
                        .map(|l| format!("[{l}] "))
                        .unwrap_or_default(),
                    m["description"].as_str().unwrap_or_default(),
                );
                say!(
                    "  {:<20} wit {}, fuel {} per call, memory {} bytes, defined by {}",
                    "",
                    m["wit"].as_str().unwrap_or("?"),
                    m["budget"]["fuel"],
                    m["budget"]["memory"],
                    m["definedBy"].as_str().unwrap_or_default(),
                );
            }
        }
    })
}

/// Peers' verbs waiting for admission, and the activities parked for them.
pub async fn pending(client: &Client, out: Output) -> anyhow::Result<()> {
    let pending = client.get("/admin/modules/pending").await?.json;
    out.print(&pending, || print_pending(&pending))
}

/// Admits a peer's verb that awaits approval; its parked activities are
/// then ingested.
pub async fn approve(client: &Client, verb: &str, out: Output) -> anyhow::Result<()> {
    let answer = client
        .post(
            &format!("/admin/modules/pending/{}/approve", segment(verb)),
            Body::Empty,
        )
        .await?
        .json;
    out.print(&answer, || {
        say!(
            "admitted verb `{verb}`; {} parked activities ingested",
            answer["released"].as_u64().unwrap_or(0)
        );
    })
}

/// Drops a peer's verb that is not wanted here, with its parked activities.
pub async fn discard(client: &Client, verb: &str, out: Output) -> anyhow::Result<()> {
    let answer = client
        .delete(&format!("/admin/modules/pending/{}", segment(verb)))
        .await?
        .json;
    out.print(&answer, || {
        say!(
            "discarded verb `{verb}` and its {} parked activities",
            answer["discarded"].as_u64().unwrap_or(0)
        );
    })
}

/// Prints `weft module pending`.
fn print_pending(pending: &Value) {
    let modules = pending["modules"].as_array().cloned().unwrap_or_default();
    let activities = pending["activities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if modules.is_empty() && activities.is_empty() {
        say!("no pending modules and no parked activities");
        return;
    }
    say!("pending modules:");
    for m in &modules {
        say!(
            "  {:<20} {:<18} {} parked  module {}  by {}",
            m["verb"].as_str().unwrap_or_default(),
            m["state"].as_str().unwrap_or_default(),
            m["parked"],
            m["module"].as_str().unwrap_or("?"),
            m["definer"].as_str().unwrap_or("?"),
        );
        say!("    {}", m["reason"].as_str().unwrap_or_default());
    }
    say!("parked activities:");
    for a in &activities {
        say!(
            "  {:<20} {}  from {}  received {}",
            a["verb"].as_str().unwrap_or_default(),
            a["id"].as_str().unwrap_or_default(),
            a["actor"].as_str().unwrap_or("?"),
            a["received"].as_str().unwrap_or_default(),
        );
    }
}

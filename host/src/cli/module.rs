//! `weft module add|list|rollback|pending|approve|discard`: verbs and
//! projections.
//!
//! - `add` uploads the component (`POST /artifacts`), dry-runs a
//!   projection over the newest activities (`POST
//!   /admin/projections/dry-run`; every fold failing stops it unless
//!   `--force`), and defines it (`DefineActivity` / `DefineProjection`,
//!   published as the service actor or `--as` another local actor). What
//!   a new version does not give (description, language, budget) is
//!   carried over from the current one; a built-in is replaced only with
//!   `--replace` (the definition then names the module it replaces);
//! - `list` reads the registry (`GET /projections/define-registry`), with
//!   every version;
//! - `rollback` defines a module again as an earlier version;
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
    /// A verb defined with `"reacts": false`.
    pub no_react: bool,
    /// Replace a built-in of that name.
    pub replace: bool,
    /// Define a projection whose dry run failed every fold.
    pub force: bool,
}

/// The registry's entry for `name` (newest version's fields, `history`).
async fn current(client: &Client, name: &str) -> anyhow::Result<Option<Value>> {
    let registry = client.get("/projections/define-registry").await?.json;
    Ok(["verbs", "projections"]
        .iter()
        .flat_map(|k| registry[*k].as_array().cloned().unwrap_or_default())
        .find(|m| m["name"] == name))
}

/// The fields of a version that a new definition carries over.
const CARRIED: [&str; 5] = ["description", "language", "wit", "fuel", "memory"];

/// Uploads `component` and defines it as `module` says.
pub async fn add(
    client: &Client,
    component: Vec<u8>,
    module: Definition,
    out: Output,
) -> anyhow::Result<()> {
    if !out.json {
        eprintln!(
            "uploading the component ({:.1} MB)…",
            component.len() as f64 / 1e6
        );
    }
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
        "to": [weft_core::model::PUBLIC],
    });
    let existing = current(client, &module.name).await?;
    if let Some(existing) = &existing {
        for field in CARRIED {
            if field != "wit" && !existing[field].is_null() {
                draft[field] = existing[field].clone();
            }
        }
        if module.replace {
            draft["replaces"] = existing["module"].clone();
        }
    } else if module.replace {
        anyhow::bail!(
            "there is no module `{}` to replace: leave --replace out",
            module.name
        );
    }
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
    if module.no_react {
        draft["reacts"] = false.into();
    }
    if matches!(module.kind, super::ModuleKindArg::Projection) {
        if !out.json {
            eprintln!("dry run: folding it over the newest activities (nothing is written)…");
        }
        let run = client
            .post(
                "/admin/projections/dry-run",
                Body::Json(json!({"module": artifact, "name": module.name})),
            )
            .await?
            .json;
        let (tried, folded) = (
            run["tried"].as_u64().unwrap_or_default(),
            run["folded"].as_u64().unwrap_or_default(),
        );
        if tried > 0 && folded == 0 {
            let error = run["firstError"].as_str().unwrap_or("?");
            if !module.force {
                anyhow::bail!(
                    "`{}` failed every fold of its dry run over the newest {tried} activities, so its queries would answer nothing; the first error: {error}\n(fix the module, or add --force to define it anyway)",
                    module.name
                );
            }
            eprintln!(
                "warning: `{}` failed every fold of its dry run over the newest {tried} activities (first error: {error}); defined anyway (--force)",
                module.name
            );
        } else if !out.json {
            eprintln!("dry run: {folded} of {tried} folds succeeded");
        }
    }
    if !out.json {
        eprintln!("defining it (the node compiles it first: a large component takes a while)…");
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

/// Defines `name` again as its version `version` (by default the one
/// before the current), as `definer`: its module and metadata.
pub async fn rollback(
    client: &Client,
    name: &str,
    version: Option<u32>,
    definer: String,
    out: Output,
) -> anyhow::Result<()> {
    let Some(existing) = current(client, name).await? else {
        anyhow::bail!(
            "no verb or projection `{name}` on this node (`weft module list` shows them)"
        );
    };
    let history = existing["history"].as_array().cloned().unwrap_or_default();
    let now = existing["version"].as_u64().unwrap_or_default();
    let wanted = match version {
        Some(v) => u64::from(v),
        None if now > 1 => now - 1,
        None => anyhow::bail!("`{name}` has one version only: there is nothing to roll back to"),
    };
    if wanted == now {
        anyhow::bail!("`{name}` is at version {now} already");
    }
    let Some(target) = history
        .iter()
        .find(|v| v["version"].as_u64() == Some(wanted))
    else {
        anyhow::bail!(
            "`{name}` has no version {wanted}; its versions are 1 to {now} (`weft module list`)"
        );
    };
    let define = if client.get("/projections/define-registry").await?.json["projections"]
        .as_array()
        .is_some_and(|p| p.iter().any(|m| m["name"] == name))
    {
        super::ModuleKindArg::Projection.define()
    } else {
        super::ModuleKindArg::Verb.define()
    };
    let mut draft = json!({
        "type": define,
        "name": name,
        "module": target["module"],
        "replaces": existing["module"],
        "to": [weft_core::model::PUBLIC],
    });
    for field in CARRIED {
        if !target[field].is_null() {
            draft[field] = target[field].clone();
        }
    }
    let published = publish::publish(
        client,
        &definer,
        draft.as_object().cloned().unwrap_or_default(),
    )
    .await?;
    out.print(&published.json, || {
        say!(
            "`{name}` rolled back to version {wanted} (module {}) as version {}",
            target["module"].as_str().unwrap_or_default(),
            now + 1
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
                let history = m["history"].as_array().cloned().unwrap_or_default();
                for v in history.iter().rev().skip(1) {
                    say!(
                        "  {:<20} earlier v{:<3} {}  {}",
                        "",
                        v["version"],
                        v["module"].as_str().unwrap_or_default(),
                        v["defined"].as_str().unwrap_or_default(),
                    );
                }
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

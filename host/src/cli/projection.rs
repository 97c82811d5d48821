//! `weft projection rebuild NAME`: refold a projection from the whole log
//! (`POST /admin/projections/{name}/rebuild`), with a progress bar (rate
//! and time left) read from the projection's status while the node works;
//! the node answers once the projection has caught up. `weft projection
//! status [NAME]`: every projection's state from `GET /admin/status`, or
//! one projection's (`GET /projections/{name}/status`) with its latest
//! fold errors.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::Output;
use super::client::{Client, segment};

pub async fn rebuild(client: &Client, name: &str, out: Output) -> anyhow::Result<()> {
    let path = format!("/admin/projections/{}/rebuild", segment(name));
    let rebuild = client.post_long(&path);
    tokio::pin!(rebuild);
    // The bar draws only on a terminal (and never with --json).
    let bar = ProgressBar::with_draw_target(
        None,
        if out.json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} activities, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("rebuilding {name}"));
    let status = format!("/projections/{}/status", segment(name));
    let answer = loop {
        tokio::select! {
            answer = &mut rebuild => break answer?.json,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Ok(s) = client.get(&status).await
                    && let Some(of) = s.json["building"]["of"].as_u64()
                {
                    bar.set_length(of);
                    bar.set_position(s.json["building"]["folded"].as_u64().unwrap_or_default());
                }
            }
        }
    };
    bar.finish_and_clear();
    out.print(&answer, || {
        say!(
            "rebuilt `{name}` from {} activities",
            answer["folded"].as_u64().unwrap_or_default()
        );
    })
}

pub async fn status(client: &Client, name: Option<&str>, out: Output) -> anyhow::Result<()> {
    let n = |v: &Value| v.as_u64().unwrap_or_default();
    let Some(name) = name else {
        let answer = client.get("/admin/status").await?.json;
        let projections = answer["projections"].clone();
        return out.print(&projections, || {
            for p in projections.as_array().into_iter().flatten() {
                let state = p["state"].as_str().unwrap_or_default();
                let detail = match state {
                    "building" => format!(
                        "{} of {} folded",
                        n(&p["building"]["folded"]),
                        n(&p["building"]["of"])
                    ),
                    _ => format!("{} folded, {} failed", n(&p["folded"]), n(&p["failed"])),
                };
                say!(
                    "{:<24} {state:<9} {detail}",
                    p["name"].as_str().unwrap_or_default()
                );
            }
        });
    };
    let s = client
        .get(&format!("/projections/{}/status", segment(name)))
        .await?
        .json;
    out.print(&s, || {
        match s["building"].as_object() {
            Some(b) => say!(
                "{name}: building, {} of {} activities folded",
                b.get("folded")
                    .map_or(0, |v| v.as_u64().unwrap_or_default()),
                b.get("of").map_or(0, |v| v.as_u64().unwrap_or_default())
            ),
            None => say!(
                "{name}: {} folded, {} failed, last position {}",
                n(&s["folded"]),
                n(&s["failed"]),
                n(&s["position"])
            ),
        }
        for e in s["errors"].as_array().into_iter().flatten() {
            say!(
                "  at {} ({}): {}",
                n(&e["position"]),
                e["activity"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default()
            );
        }
    })
}

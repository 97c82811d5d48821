//! `weft status` (`GET /admin/status`): the node at a glance.

use serde_json::Value;

use super::Output;
use super::client::Client;

pub async fn run(client: &Client, out: Output) -> anyhow::Result<()> {
    let s = client.get("/admin/status").await?.json;
    out.print(&s, || print(&s))
}

fn print(s: &Value) {
    let n = |v: &Value| v.as_u64().unwrap_or_default();
    let ready = match &s["ready"] {
        Value::Bool(true) => "ready".to_owned(),
        other => format!("NOT READY: {}", other.as_str().unwrap_or("?")),
    };
    say!(
        "weft {} at {} — {ready}, up {}",
        s["version"].as_str().unwrap_or_default(),
        s["publicUrl"].as_str().unwrap_or_default(),
        humantime::format_duration(std::time::Duration::from_secs(n(&s["uptimeSeconds"])))
    );
    say!(
        "actors {}   activities {} ({} /s)   synced actors {}",
        n(&s["actors"]),
        n(&s["activities"]),
        s["activitiesPerSecond"],
        n(&s["syncedActors"])
    );
    let m = &s["memory"];
    if m.is_object() {
        let mib = |v: &Value| n(v) / (1 << 20);
        say!(
            "memory {} MiB resident (peak {} MiB), page cache {} MiB",
            mib(&m["residentBytes"]),
            mib(&m["peakResidentBytes"]),
            mib(&m["pageCacheBytes"])
        );
    }
    let d = &s["deliveries"];
    say!(
        "deliveries queued {}   dead letters {} ({} healed)   parked {}   pending verbs {}   forks {}",
        n(&d["queued"]),
        n(&d["deadLetters"]),
        n(&d["healed"]),
        n(&s["parked"]),
        n(&s["pendingModules"]),
        n(&s["forks"])
    );
    for p in s["projections"].as_array().into_iter().flatten() {
        let state = p["state"].as_str().unwrap_or_default();
        let detail = match state {
            "building" => format!(
                "{} of {}",
                n(&p["building"]["folded"]),
                n(&p["building"]["of"])
            ),
            _ => format!("{} folded, {} failed", n(&p["folded"]), n(&p["failed"])),
        };
        say!(
            "projection {:<20} {state:<9} {detail}",
            p["name"].as_str().unwrap_or_default()
        );
    }
    for p in s["policies"].as_array().into_iter().flatten() {
        say!(
            "policy {:<24} {:<12} v{}  Compliant {}",
            p["name"].as_str().unwrap_or_default(),
            p["kind"].as_str().unwrap_or_default(),
            n(&p["version"]),
            p["compliant"].as_str().unwrap_or("Unknown")
        );
    }
}

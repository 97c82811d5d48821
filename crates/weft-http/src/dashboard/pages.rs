//! The dashboard's pages as HTML (maud escapes everything interpolated):
//! one function per page, each given what its handler read. Rendering
//! only; nothing here reads the store or acts.

use std::collections::{BTreeMap, HashMap};

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Flash;
use super::chart;
use crate::status::{SAMPLE_EVERY, Sample};
use weft_federation::delivery::OriginStats;
use weft_kernel::policy::{Policy, PolicyStatus};
use weft_store::{FoldError, Job, SyncState};

const PAGES: [(&str, &str); 8] = [
    ("/admin", "Overview"),
    ("/admin/ui/peers", "Peers"),
    ("/admin/ui/deliveries", "Deliveries"),
    ("/admin/ui/forks", "Forks"),
    ("/admin/ui/parked", "Parked verbs"),
    ("/admin/ui/modules", "Modules"),
    ("/admin/ui/projections", "Projections"),
    ("/admin/ui/policies", "Policies"),
];

/// The frame of every page: navigation, the flash, the content.
fn layout(current: &str, title: &str, refresh: u32, flash: &Flash, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · weft" }
                link rel="stylesheet" href="/admin/ui/assets/app.css";
            }
            body data-refresh=(refresh) {
                header {
                    span.brand { "weft" }
                    nav {
                        @for (href, label) in PAGES {
                            a href=(href) class=[(href == current).then_some("current")] { (label) }
                        }
                    }
                    form.inline method="post" action="/admin/logout" {
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(done) = &flash.done { p.flash.done role="status" { (done) } }
                    @if let Some(error) = &flash.error { p.flash.error role="alert" { (error) } }
                    (content)
                }
                script src="/admin/ui/assets/app.js" {}
            }
        }
    }
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn ago(ms: Option<u64>, now: u64) -> String {
    match ms {
        Some(ms) if now >= ms => format!(
            "{} ago",
            humantime::format_duration(std::time::Duration::from_secs((now - ms) / 1000))
        ),
        Some(ms) => format!("at {}", time(ms)),
        None => "never".into(),
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_default()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `GET /`.
pub fn home(base: &str, actors: &[String]) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "weft node · " (base) }
                link rel="stylesheet" href="/admin/ui/assets/app.css";
            }
            body {
                main {
                    h1 { "A weft node at " code { (base) } }
                    p { "weft is a federated activity-log node: each actor's log is signed and hash-chained, and what its activities mean is defined by WebAssembly modules published in the log. It federates over ActivityPub." }
                    h2 { "Actors here (" (actors.len()) ")" }
                    @if actors.is_empty() { p.muted { "None yet." } }
                    ul #actors { @for a in actors { li { a href=(a) { code { (a) } } } } }
                    h2 { "For machines" }
                    ul {
                        li { a href="/actors" { code { "/actors" } } " — the directory of actors" }
                        li { a href="/.well-known/nodeinfo" { code { "/.well-known/nodeinfo" } } " — what this node runs" }
                        li { a href="/projections/define-registry" { code { "/projections/define-registry" } } " — its verbs and projections" }
                    }
                    p { "Operating this node? " a href="/admin" { "Open the dashboard" } "." }
                }
            }
        }
    }
}

/// `GET /admin/login`.
pub fn login(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · weft" }
                link rel="stylesheet" href="/admin/ui/assets/app.css";
            }
            body {
                form.login method="post" action="/admin/login" {
                    h1 { "weft: the operator's dashboard" }
                    @if let Some(error) = error { p.flash.error role="alert" { (error) } }
                    label for="token" { "Admin token" }
                    input #token type="password" name="token" autocomplete="current-password" required;
                    button type="submit" { "Log in" }
                    p.muted { "The token is in " code { "admin.token" } " in the node's data folder. It is checked once; the browser keeps only a session." }
                }
            }
        }
    }
}

/// `GET /admin`.
pub fn overview(flash: &Flash, summary: &Value, samples: &[Sample], now: u64) -> Markup {
    let ready = summary["ready"] == Value::Bool(true);
    let d = &summary["deliveries"];
    let span = SAMPLE_EVERY.as_secs_f64() * 360.0;
    let ago_s = |at: u64| now.saturating_sub(at) as f64 / 1000.0;
    let rate: Vec<(f64, f64)> = samples
        .iter()
        .map(|x| (ago_s(x.at_ms), x.per_second))
        .collect();
    let queue: Vec<(f64, f64)> = samples
        .iter()
        .map(|x| (ago_s(x.at_ms), x.queued as f64))
        .collect();
    let mib = |v: &Value| n(v) / (1 << 20);
    let memory = &summary["memory"];
    let tiles: [(&str, String); 10] = [
        ("Version", s(&summary["version"]).to_owned()),
        (
            "Up for",
            humantime::format_duration(std::time::Duration::from_secs(n(
                &summary["uptimeSeconds"],
            )))
            .to_string(),
        ),
        ("Actors", n(&summary["actors"]).to_string()),
        ("Activities", n(&summary["activities"]).to_string()),
        (
            "Stored per second",
            summary["activitiesPerSecond"].to_string(),
        ),
        ("Deliveries queued", n(&d["queued"]).to_string()),
        (
            "Dead letters",
            format!("{} ({} healed)", n(&d["deadLetters"]), n(&d["healed"])),
        ),
        ("Parked activities", n(&summary["parked"]).to_string()),
        ("Forks", n(&summary["forks"]).to_string()),
        (
            "Memory",
            if memory.is_object() {
                format!(
                    "{} MiB (peak {})",
                    mib(&memory["residentBytes"]),
                    mib(&memory["peakResidentBytes"])
                )
            } else {
                "—".to_owned()
            },
        ),
    ];
    layout(
        "/admin",
        "Overview",
        10,
        flash,
        html! {
            p {
                "Serving " code { (s(&summary["publicUrl"])) } " — "
                @if ready { strong.ok #readiness { "ready" } }
                @else { strong.bad #readiness { "not ready: " (summary["ready"].as_str().unwrap_or("?")) } }
            }
            div.tiles {
                @for (label, value) in &tiles {
                    div.tile { div.label { (label) } div.value { (value) } }
                }
            }
            h2 { "The last hour" }
            (chart::line("Activities stored per second", "/s", span, &rate))
            " "
            (chart::line("Deliveries queued", "jobs", span, &queue))
        },
    )
}

/// `GET /admin/ui/peers`.
pub fn peers(
    flash: &Flash,
    delivery: &[(String, OriginStats)],
    queued: &BTreeMap<String, (u64, u64)>,
    sync: &[(SyncState, Option<u64>)],
    now: u64,
) -> Markup {
    let mut origins: BTreeMap<&str, (Option<&OriginStats>, (u64, u64))> = BTreeMap::new();
    for (origin, stats) in delivery {
        origins.entry(origin).or_default().0 = Some(stats);
    }
    for (origin, counts) in queued {
        origins.entry(origin).or_default().1 = *counts;
    }
    layout(
        "/admin/ui/peers",
        "Peers",
        10,
        flash,
        html! {
            h2 { "Delivery, by peer origin" }
            @if origins.is_empty() { p.muted { "Nothing has been delivered to a peer yet." } }
            @else {
                table #delivery-peers {
                    thead { tr { th { "Origin" } th { "Delivered" } th { "Last success" } th { "Last failure" } th { "In flight" } th { "Queued" } th { "Dead letters" } th { "Paused (Retry-After)" } } }
                    tbody {
                        @for (origin, (stats, (queued, dead))) in &origins {
                            tr {
                                td.id { (origin) }
                                td.num { (stats.map_or(0, |s| s.delivered)) }
                                td { (ago(stats.and_then(|s| s.last_success_ms), now)) }
                                td {
                                    (ago(stats.and_then(|s| s.last_failure_ms), now))
                                    @if let Some(e) = stats.and_then(|s| s.last_error.as_deref()) { br; span.bad { (e) } }
                                }
                                td.num { (stats.map_or(0, |s| s.in_flight)) }
                                td.num { (queued) }
                                td.num { (dead) }
                                td { @match stats.and_then(|s| s.paused_until_ms) { Some(until) => { "until " (time(until)) }, None => { "—" } } }
                            }
                        }
                    }
                }
            }
            h2 { "Sync, by remote actor" }
            @if sync.is_empty() { p.muted { "No remote actor has been synced yet." } }
            @else {
                table #sync-peers {
                    thead { tr { th { "Actor (or origin)" } th { "Held" } th { "Head" } th { "Lag" } th { "Last sync" } th { "Last error" } th { "Offences" } } }
                    tbody {
                        @for (state, held) in sync {
                            @let head = state.head.as_ref().map(|h| h.0);
                            tr {
                                td.id { (state.actor) }
                                td.num { (held.map_or("—".to_owned(), |h| h.to_string())) }
                                td.num { (head.map_or("—".to_owned(), |h| h.to_string())) }
                                td.num { (head.unwrap_or(0).saturating_sub(held.unwrap_or(0))) }
                                td { (ago(state.last_sync_ms, now)) }
                                td.bad { (state.last_error.as_deref().unwrap_or("")) }
                                td.num { (state.offences) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /admin/ui/deliveries`.
pub fn deliveries(flash: &Flash, jobs: &[Job], dead: &[Job], healed: &HashMap<u64, u64>) -> Markup {
    layout(
        "/admin/ui/deliveries",
        "Deliveries and dead letters",
        0,
        flash,
        html! {
            h2 { "Queued (" (jobs.len()) ")" }
            @if jobs.is_empty() { p.muted { "No delivery is waiting." } }
            @else {
                table #queued {
                    thead { tr { th { "#" } th { "Activity" } th { "Recipient" } th { "Attempts" } th { "Next attempt" } th { "Last error" } } }
                    tbody {
                        @for job in jobs.iter().take(500) {
                            tr { td.num { (job.id) } td.id { (job.activity) } td.id { (job.recipient) } td.num { (job.attempts) } td { (time(job.next_at_ms)) } td.bad { (job.last_error.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
            h2 { "Dead letters (" (dead.len()) ")" }
            @if dead.is_empty() { p.muted { "No delivery has given up." } }
            @else {
                table #dead-letters {
                    thead { tr { th { "#" } th { "Activity" } th { "Recipient" } th { "Attempts" } th { "Why" } th { "" } } }
                    tbody {
                        @for job in dead.iter().take(500) {
                            tr data-dead-letter=(job.id) {
                                td.num { (job.id) }
                                td.id { (job.activity) }
                                td.id { (job.recipient) }
                                td.num { (job.attempts) }
                                td.bad { (job.last_error.as_deref().unwrap_or("")) }
                                td {
                                    @if healed.contains_key(&job.id) { span.ok { "healed: the recipient holds it" } br; }
                                    form.inline method="post" action=(format!("/admin/ui/dead-letters/{}/retry", job.id)) {
                                        button type="submit" name="retry" { "Retry" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /admin/ui/forks`.
pub fn forks(
    flash: &Flash,
    forks: &[(String, u64, String, String)],
    kept: &[Option<String>],
) -> Markup {
    layout(
        "/admin/ui/forks",
        "Forks",
        0,
        flash,
        html! {
            p.muted { "Actors that signed two different activities at one position of their log: the first one stays, the other is kept as evidence." }
            @if forks.is_empty() { p.muted { "No fork has been seen." } }
            @else {
                table #forks {
                    thead { tr { th { "Actor" } th { "Position" } th { "Kept" } th { "Refused" } } }
                    tbody {
                        @for ((actor, seq, other, _), kept) in forks.iter().zip(kept) {
                            tr { td.id { (actor) } td.num { (seq) } td.id { (kept.as_deref().unwrap_or("—")) } td.id { (other) } }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /admin/ui/parked`.
pub fn parked(flash: &Flash, pending: &Value) -> Markup {
    let modules = pending["modules"].as_array().cloned().unwrap_or_default();
    let activities = pending["activities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    layout(
        "/admin/ui/parked",
        "Parked verbs",
        0,
        flash,
        html! {
            p.muted { "Activities of verbs this node does not know wait here while the verb's definition is looked up at its author's node, or for your approval." }
            h2 { "Verbs awaiting admission" }
            @if modules.is_empty() { p.muted { "None." } }
            @else {
                table #pending-verbs {
                    thead { tr { th { "Verb" } th { "State" } th { "Parked" } th { "Module" } th { "Defined by" } th { "Why" } th { "" } } }
                    tbody {
                        @for m in &modules {
                            tr {
                                td { strong { (s(&m["verb"])) } }
                                td { (s(&m["state"])) }
                                td.num { (n(&m["parked"])) }
                                td.id { (s(&m["module"])) }
                                td.id { (s(&m["definer"])) }
                                td { (s(&m["reason"])) }
                                td {
                                    form.inline method="post" action=(format!("/admin/ui/parked/{}/approve", s(&m["verb"]))) {
                                        button type="submit" { "Approve" }
                                    }
                                    " "
                                    form.inline method="post" action=(format!("/admin/ui/parked/{}/discard", s(&m["verb"])))
                                        data-confirm=(format!("Discard the verb {} and its parked activities?", s(&m["verb"]))) {
                                        button.danger type="submit" { "Discard" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Parked activities (" (activities.len()) ")" }
            @if activities.is_empty() { p.muted { "None." } }
            @else {
                table #parked-activities {
                    thead { tr { th { "Verb" } th { "Activity" } th { "Actor" } th { "Received" } } }
                    tbody {
                        @for a in activities.iter().take(500) {
                            tr { td { (s(&a["verb"])) } td.id { (s(&a["id"])) } td.id { (s(&a["actor"])) } td { (s(&a["received"])) } }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /admin/ui/modules`.
pub fn modules(flash: &Flash, registry: &Value) -> Markup {
    let section = |key: &str, title: &str| {
        let list = registry[key].as_array().cloned().unwrap_or_default();
        html! {
            h2 { (title) " (" (list.len()) ")" }
            table id=(key) {
                thead { tr { th { "Name" } th { "Version" } th { "Module" } th { "Language" } th { "Description" } th { "Budget" } th { "History" } } }
                tbody {
                    @for m in &list {
                        @let name = s(&m["name"]);
                        @let history = m["history"].as_array().cloned().unwrap_or_default();
                        tr data-module=(name) {
                            td { strong { (name) } @if m["active"] == Value::Bool(false) { br; span.bad { "not running" } } }
                            td.num.version { (n(&m["version"])) }
                            td.id { (s(&m["module"])) }
                            td { (s(&m["language"])) }
                            td { (s(&m["description"])) }
                            td { (n(&m["budget"]["fuel"])) " fuel, " (n(&m["budget"]["memory"]) / 1024) " KiB" }
                            td {
                                @for v in history.iter().rev().skip(1) {
                                    @let version = n(&v["version"]);
                                    div {
                                        "v" (version) " " span.muted { (s(&v["defined"])) } " "
                                        form.inline method="post" action=(format!("/admin/ui/modules/{name}/rollback"))
                                            data-confirm=(format!("Define {name} again as version {version}?")) {
                                            input type="hidden" name="version" value=(version);
                                            button type="submit" name="rollback" value=(version) { "Roll back to v" (version) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(
        "/admin/ui/modules",
        "Modules",
        0,
        flash,
        html! {
            (section("verbs", "Verbs"))
            (section("projections", "Projections"))
            h2 { "Define a module" }
            form #define {
                fieldset {
                    label { "Kind " select name="kind" { option value="verb" { "verb" } option value="projection" { "projection" } } }
                    label { "Name " input name="name" required pattern="[A-Za-z][A-Za-z0-9_-]{0,63}"; }
                    label { "Component " input type="file" name="file" accept=".wasm,application/wasm" required; }
                    br;
                    label { input type="checkbox" name="replace"; " replace a built-in of that name" }
                    label { input type="checkbox" name="force"; " define anyway if its dry run fails every fold" }
                    button type="submit" { "Upload and define" }
                }
                p #define-result.muted { "A component built with an SDK (a core module: use " code { "weft module add" } "). It is defined as the node's service actor; what it does not say (description, language, budget) is carried over from the current version." }
            }
        },
    )
}

/// `GET /admin/ui/projections`.
pub fn projections(
    flash: &Flash,
    summary: &Value,
    errors: &BTreeMap<String, Vec<FoldError>>,
) -> Markup {
    let list = summary["projections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let building = list.iter().any(|p| p["state"] == "building");
    layout(
        "/admin/ui/projections",
        "Projections",
        if building { 3 } else { 0 },
        flash,
        html! {
            table #projections {
                thead { tr { th { "Name" } th { "State" } th { "Folded" } th { "Failed" } th { "Latest fold errors" } th { "" } } }
                tbody {
                    @for p in &list {
                        @let name = s(&p["name"]);
                        tr data-projection=(name) {
                            td { strong { (name) } }
                            td.state {
                                (s(&p["state"]))
                                @if let Some(b) = p["building"].as_object() {
                                    @let of = b.get("of").map_or(0, n);
                                    @let done = b.get("folded").map_or(0, n);
                                    br; progress max=(of.max(1)) value=(done) {} " " (done) " of " (of)
                                }
                            }
                            td.num { (n(&p["folded"])) }
                            td.num { (n(&p["failed"])) }
                            td {
                                @for e in errors.get(name).map(Vec::as_slice).unwrap_or_default().iter().rev().take(3) {
                                    div.bad { "at " (e.position) ": " (e.message) }
                                }
                            }
                            td {
                                form.inline method="post" action=(format!("/admin/ui/projections/{name}/rebuild"))
                                    data-confirm=(format!("Rebuild {name} from the whole log? Its queries answer 503 until it has caught up.")) {
                                    button type="submit" { "Rebuild" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /admin/ui/policies`.
pub fn policies(flash: &Flash, rows: &[(Policy, Option<PolicyStatus>)]) -> Markup {
    layout(
        "/admin/ui/policies",
        "Policies",
        10,
        flash,
        html! {
            @if rows.is_empty() { p.muted { "No policy is defined (" code { "weft policy define" } ")." } }
            @else {
                table #policies {
                    thead { tr { th { "Name" } th { "Kind" } th { "Version" } th { "Conditions" } th { "Obligations" } } }
                    tbody {
                        @for (policy, status) in rows {
                            tr {
                                td { strong { (policy.name) } }
                                td { (policy.kind.as_str()) }
                                td.num { (policy.version) }
                                td {
                                    @match status {
                                        Some(status) => {
                                            @for c in &status.conditions {
                                                @let ok = format!("{:?}", c.status) == "True";
                                                div {
                                                    (c.kind) ": " strong class=(if ok { "ok" } else { "bad" }) { (format!("{:?}", c.status)) }
                                                    " — " (c.reason) ": " (c.message) " " span.muted { "(since " (c.last_transition_time) ")" }
                                                }
                                            }
                                        }
                                        None => { span.muted { "not evaluated yet" } }
                                    }
                                }
                                td.num { (status.as_ref().map_or(0, |s| s.obligations.len())) }
                            }
                        }
                    }
                }
            }
        },
    )
}

//! The schema of a `DefinePolicy` activity and of each kind's `spec`,
//! checked by hand so that a refusal names the exact field
//! (`spec.keep[0].days`) and says what it must be. The README's
//! "Policies" section documents the same schemas.
//!
//! What it is not: what a policy obliges (that is [`super::evaluate`]).

use std::time::Duration;

use serde_json::{Map, Value};

/// A policy's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Replication,
    Modules,
    Follows,
    Sync,
}

impl Kind {
    pub const ALL: [Self; 4] = [Self::Replication, Self::Modules, Self::Follows, Self::Sync];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replication => "replication",
            Self::Modules => "modules",
            Self::Follows => "follows",
            Self::Sync => "sync",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A checked spec, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Replication(ReplicationSpec),
    Modules(ModulesSpec),
    Follows(FollowsSpec),
    Sync(SyncSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Replication(_) => Kind::Replication,
            Self::Modules(_) => Kind::Modules,
            Self::Follows(_) => Kind::Follows,
            Self::Sync(_) => Kind::Sync,
        }
    }
}

/// `replication`: mirror these actors or origins in full; keep `days` of
/// these others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationSpec {
    /// Actor URLs and origins (`https://host[:port]`).
    pub mirror: Vec<String>,
    pub keep: Vec<Keep>,
}

/// Keep `days` days of these actors' activities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    /// Actor URLs and origins.
    pub actors: Vec<String>,
    pub days: u64,
}

/// `modules`: which peers' verbs are admitted (overrides `[federation]
/// module_policy` and `module_allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulesSpec {
    pub policy: ModulePolicy,
    /// Artifact ids and definer actor URLs admitted under any policy.
    pub allow: Vec<String>,
}

/// As `[federation] module_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModulePolicy {
    Followed,
    Manual,
    Allow,
}

/// `follows`: how a Follow of a local actor is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowsSpec {
    pub accept: Accept,
}

/// Who is accepted as a follower without the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Everyone (as without a policy).
    Auto,
    /// No one: every Follow waits for `weft follow approve|reject`.
    Manual,
    /// Actors some local actor follows; others wait.
    Followed,
}

/// `sync`: how the reconcile loop catches up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSpec {
    /// Between two rounds (default 5 minutes).
    pub interval: Duration,
    /// How far behind a followed actor may be and still count as in sync
    /// (default 1 hour).
    pub max_lag: Duration,
    pub budget: Option<Budget>,
}

/// What one peer may cost per round and per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes_per_round: Option<u64>,
    pub rounds_per_hour: Option<u64>,
}

/// Why a draft or spec does not pass: the field's path and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

/// Longest URL a spec may name, and most entries in one list.
const MAX_URL: usize = 2048;
const MAX_ITEMS: usize = 10_000;

/// Checks a `DefinePolicy` draft's own fields (`name`, `kind`, `spec`, and
/// no addressing: a policy is this node's own and is never delivered) and
/// answers its name and spec.
pub fn check_draft(draft: &Map<String, Value>) -> Result<(String, Spec), SpecError> {
    for field in ["to", "cc", "bto", "bcc", "audience", "object"] {
        if draft.contains_key(field) {
            return Err(err(
                field,
                "must not be set: a policy is this node's own, never addressed or delivered",
            ));
        }
    }
    let name = match draft.get("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(err("name", "must be text")),
        None => return Err(err("name", "is required: the policy's name")),
    };
    crate::registry::check_module_name(name).map_err(|m| err("name", m))?;
    let kind = match draft.get("kind") {
        Some(Value::String(kind)) => kind,
        Some(_) | None => {
            return Err(err(
                "kind",
                "is required: one of `replication`, `modules`, `follows`, `sync`",
            ));
        }
    };
    let spec = draft
        .get("spec")
        .ok_or_else(|| err("spec", "is required: a JSON object"))?;
    if let Some(d) = draft.get("description")
        && d.as_str().is_none_or(|d| d.chars().count() > 1000)
    {
        return Err(err(
            "description",
            "must be text of at most 1000 characters",
        ));
    }
    Ok((name.clone(), check(kind, spec)?))
}

/// Checks `spec` against `kind`'s schema.
pub fn check(kind: &str, spec: &Value) -> Result<Spec, SpecError> {
    let kind = Kind::parse(kind).ok_or_else(|| {
        err(
            "kind",
            format!(
                "`{kind}` is not a policy kind: use `replication`, `modules`, `follows` or `sync`"
            ),
        )
    })?;
    let Value::Object(spec) = spec else {
        return Err(err("spec", "must be a JSON object"));
    };
    Ok(match kind {
        Kind::Replication => Spec::Replication(replication(spec)?),
        Kind::Modules => Spec::Modules(modules(spec)?),
        Kind::Follows => Spec::Follows(follows(spec)?),
        Kind::Sync => Spec::Sync(sync(spec)?),
    })
}

/// Refuses fields a kind does not have.
fn only(spec: &Map<String, Value>, kind: Kind, fields: &[&str]) -> Result<(), SpecError> {
    match spec.keys().find(|k| !fields.contains(&k.as_str())) {
        Some(k) => Err(err(
            format!("spec.{k}"),
            format!(
                "is not a field of a `{}` spec (it has {})",
                kind.as_str(),
                fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// Whether `text` is an origin: `http(s)://host[:port]`, nothing after
/// (a trailing `/` aside).
pub fn is_origin(text: &str) -> bool {
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    weft_core::model::origin(trimmed)
        .is_some_and(|o| o.eq_ignore_ascii_case(trimmed) && !trimmed.ends_with(':'))
}

/// Whether `text` is an actor URL (`http(s)://host[:port]/path`, no query
/// or fragment) or an origin.
fn is_target(text: &str) -> bool {
    if text.len() > MAX_URL || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if is_origin(text) {
        return true;
    }
    let Some(origin) = weft_core::model::origin(text) else {
        return false;
    };
    let path = &text[origin.len()..];
    path.len() > 1 && path.starts_with('/') && !path.contains(['?', '#'])
}

/// A list of actor URLs or origins at `path`.
fn targets(value: &Value, path: &str) -> Result<Vec<String>, SpecError> {
    let Value::Array(items) = value else {
        return Err(err(path, "must be a list of actor URLs or origins"));
    };
    if items.len() > MAX_ITEMS {
        return Err(err(path, format!("has more than {MAX_ITEMS} entries")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_str() {
            Some(text) if is_target(text) => Ok(text.to_owned()),
            _ => Err(err(
                format!("{path}[{i}]"),
                "is not an actor URL or origin (`https://host[:port]` or `https://host[:port]/actors/name`)",
            )),
        })
        .collect()
}

fn replication(spec: &Map<String, Value>) -> Result<ReplicationSpec, SpecError> {
    only(spec, Kind::Replication, &["mirror", "keep"])?;
    let mut out = ReplicationSpec::default();
    if let Some(mirror) = spec.get("mirror") {
        out.mirror = targets(mirror, "spec.mirror")?;
    }
    if let Some(keep) = spec.get("keep") {
        let Value::Array(rules) = keep else {
            return Err(err(
                "spec.keep",
                "must be a list of {\"actors\": [...], \"days\": N}",
            ));
        };
        if rules.len() > MAX_ITEMS {
            return Err(err(
                "spec.keep",
                format!("has more than {MAX_ITEMS} entries"),
            ));
        }
        for (i, rule) in rules.iter().enumerate() {
            let path = format!("spec.keep[{i}]");
            let Value::Object(rule) = rule else {
                return Err(err(
                    path,
                    "must be an object {\"actors\": [...], \"days\": N}",
                ));
            };
            if let Some(k) = rule
                .keys()
                .find(|k| !matches!(k.as_str(), "actors" | "days"))
            {
                return Err(err(
                    format!("{path}.{k}"),
                    "is not a field of a keep rule (it has `actors`, `days`)",
                ));
            }
            let actors = rule
                .get("actors")
                .ok_or_else(|| err(format!("{path}.actors"), "is required"))
                .and_then(|a| targets(a, &format!("{path}.actors")))?;
            let days = rule
                .get("days")
                .and_then(Value::as_u64)
                .filter(|d| (1..=36_500).contains(d))
                .ok_or_else(|| {
                    err(
                        format!("{path}.days"),
                        "must be a whole number of days from 1 to 36500",
                    )
                })?;
            out.keep.push(Keep { actors, days });
        }
    }
    if out.mirror.is_empty() && out.keep.is_empty() {
        return Err(err(
            "spec",
            "must name something to replicate: `mirror` or `keep` (or both), not empty",
        ));
    }
    Ok(out)
}

fn modules(spec: &Map<String, Value>) -> Result<ModulesSpec, SpecError> {
    only(spec, Kind::Modules, &["policy", "allow"])?;
    let policy = match spec.get("policy").and_then(Value::as_str) {
        Some("followed") => ModulePolicy::Followed,
        Some("manual") => ModulePolicy::Manual,
        Some("allow") => ModulePolicy::Allow,
        _ => {
            return Err(err(
                "spec.policy",
                "must be `followed`, `manual` or `allow`",
            ));
        }
    };
    let allow = match spec.get("allow") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_ITEMS {
                return Err(err(
                    "spec.allow",
                    format!("has more than {MAX_ITEMS} entries"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item.as_str() {
                    Some(text)
                        if weft_core::model::cid::is_artifact_id(text)
                            || (is_target(text) && !is_origin(text)) =>
                    {
                        Ok(text.to_owned())
                    }
                    _ => Err(err(
                        format!("spec.allow[{i}]"),
                        "is neither an artifact id nor a definer's actor URL",
                    )),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => {
            return Err(err(
                "spec.allow",
                "must be a list of artifact ids and definer actor URLs",
            ));
        }
    };
    Ok(ModulesSpec { policy, allow })
}

fn follows(spec: &Map<String, Value>) -> Result<FollowsSpec, SpecError> {
    only(spec, Kind::Follows, &["accept"])?;
    let accept = match spec.get("accept").and_then(Value::as_str) {
        Some("auto") => Accept::Auto,
        Some("manual") => Accept::Manual,
        Some("followed") => Accept::Followed,
        _ => {
            return Err(err("spec.accept", "must be `auto`, `manual` or `followed`"));
        }
    };
    Ok(FollowsSpec { accept })
}

/// A duration such as `5m` or `1h 30m` at `path`.
fn duration(value: Option<&Value>, path: &str, default: Duration) -> Result<Duration, SpecError> {
    let Some(value) = value else {
        return Ok(default);
    };
    value
        .as_str()
        .and_then(|text| humantime::parse_duration(text).ok())
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(365 * 86_400))
        .ok_or_else(|| {
            err(
                path,
                "must be a duration such as `30s`, `5m` or `1h` (more than 0, at most a year)",
            )
        })
}

fn sync(spec: &Map<String, Value>) -> Result<SyncSpec, SpecError> {
    only(spec, Kind::Sync, &["interval", "maxLag", "budget"])?;
    let interval = duration(
        spec.get("interval"),
        "spec.interval",
        Duration::from_secs(300),
    )?;
    let max_lag = duration(spec.get("maxLag"), "spec.maxLag", Duration::from_secs(3600))?;
    let budget = match spec.get("budget") {
        None => None,
        Some(Value::Object(budget)) => {
            if let Some(k) = budget
                .keys()
                .find(|k| !matches!(k.as_str(), "bytesPerRound" | "roundsPerHour"))
            {
                return Err(err(
                    format!("spec.budget.{k}"),
                    "is not a field of a budget (it has `bytesPerRound`, `roundsPerHour`)",
                ));
            }
            let positive = |field: &str| -> Result<Option<u64>, SpecError> {
                match budget.get(field) {
                    None => Ok(None),
                    Some(v) => v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                        err(
                            format!("spec.budget.{field}"),
                            "must be a positive whole number",
                        )
                    }),
                }
            };
            Some(Budget {
                bytes_per_round: positive("bytesPerRound")?,
                rounds_per_hour: positive("roundsPerHour")?,
            })
        }
        Some(_) => {
            return Err(err(
                "spec.budget",
                "must be an object {\"bytesPerRound\": N, \"roundsPerHour\": N}",
            ));
        }
    };
    Ok(SyncSpec {
        interval,
        max_lag,
        budget,
    })
}

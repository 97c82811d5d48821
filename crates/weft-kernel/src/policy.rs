//! Policies as data (docs/architecture.md §10): the `DefinePolicy` activity
//! and what it means.
//!
//! - **Specs** ([`Spec`], [`check`]): a policy has a `name` (as a module
//!   name), a `kind` (`replication`, `modules`, `follows`, `sync`) and a
//!   `spec`, a JSON object checked against its kind's schema when it is
//!   published; a refusal names the field's path (`spec.mirror[2]`).
//! - **Versions** ([`Policy`], [`record`]): defining a name again makes
//!   version n+1. The writer records each definition in the store's
//!   `policies` table in the transaction that appends it; [`record`] is a
//!   function of the table's row and the activity alone, so folding the
//!   log's `DefinePolicy` activities in order gives the table back.
//! - **Evaluation** ([`evaluate`]): a pure function of the policies and an
//!   [`Observed`] state (the time included: nothing here reads a clock),
//!   giving sorted, deduplicated [`Obligation`]s — the same on every node
//!   for the same inputs, whatever their order.
//! - **Status** ([`status`], [`PolicyStatus`], [`PolicyStatuses`]): each
//!   policy's conditions (`Compliant`, `InSync`) and obligations with their
//!   lag, computed purely by [`status`] and kept in memory for the reconcile
//!   loop to fill; until it does, both conditions are `Unknown` with reason
//!   `NotEvaluated`.
//!
//! What it is not: the reconcile loop (observing and acting lives above the
//! kernel, in federation), and the admission decisions themselves (module
//! travel reads the newest `modules` policy through
//! [`crate::Kernel::module_policy`]).

mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use serde::Serialize;
use serde_json::Value;

pub use spec::{
    Accept, Budget, FollowsSpec, Keep, Kind, ModulePolicy, ModulesSpec, ReplicationSpec, Spec,
    SpecError, SyncSpec, check, check_draft, is_origin,
};
use weft_core::model::Signed;
pub use weft_core::wire::policy::{Condition, ConditionStatus};
use weft_store::{PolicyRecord, PolicyVersion, StoreError, WriteTxn};

/// The two conditions every policy reports.
pub const COMPLIANT: &str = "Compliant";
pub const IN_SYNC: &str = "InSync";

/// A policy's current version, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub version: u32,
    /// The `DefinePolicy` activity's id.
    pub id: String,
    /// Its actor and `published`.
    pub actor: String,
    pub published: String,
    /// Its global position in this node's log: the newest of several
    /// policies of one kind is the one with the highest.
    pub position: u64,
    pub kind: Kind,
    pub spec: Spec,
}

impl Policy {
    /// The stored version `version` of policy `name`, parsed; `None` (and
    /// a logged error) when the stored spec no longer passes the check,
    /// which only a file altered behind the node's back can cause.
    pub fn from_version(name: &str, version: &PolicyVersion) -> Option<Self> {
        let spec = serde_json::from_str::<Value>(&version.spec)
            .ok()
            .and_then(|spec| check(&version.kind, &spec).ok());
        let Some(spec) = spec else {
            tracing::error!(
                policy = name,
                version = version.version,
                "a stored policy does not parse; it is ignored"
            );
            return None;
        };
        Some(Self {
            name: name.to_owned(),
            version: version.version,
            id: version.activity.clone(),
            actor: version.actor.clone(),
            published: version.published.clone(),
            position: version.position,
            kind: spec.kind(),
            spec,
        })
    }
}

/// Records a `DefinePolicy` activity appended at `position` as the next
/// version of its name (nothing for other activities). The kernel checked
/// the draft before it was signed.
pub fn record(txn: &WriteTxn, signed: &Signed, position: u64) -> Result<(), StoreError> {
    if signed.header.kind != crate::registry::DEFINE_POLICY {
        return Ok(());
    }
    let json = &signed.json;
    let (Some(name), Some(kind), Some(spec)) = (
        json.get("name").and_then(Value::as_str),
        json.get("kind").and_then(Value::as_str),
        json.get("spec"),
    ) else {
        return Ok(());
    };
    let mut record = txn.policy(name)?.unwrap_or_else(|| PolicyRecord {
        name: name.to_owned(),
        versions: Vec::new(),
    });
    record.versions.push(PolicyVersion {
        version: u32::try_from(record.versions.len()).unwrap_or(u32::MAX - 1) + 1,
        kind: kind.to_owned(),
        spec: spec.to_string(),
        activity: signed.id.clone(),
        actor: signed.header.actor.clone(),
        published: signed.header.published.clone(),
        position,
        description: json
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
    });
    txn.put_policy(&record)
}

/// An actor's log position: `(seq, id)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Head {
    pub seq: u64,
    pub id: String,
}

/// The head an actor's origin last showed, and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RemoteHead {
    pub head: Head,
    pub seen_ms: u64,
}

/// What this node knows of one remote actor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RemoteActor {
    /// The actor's URL.
    pub actor: String,
    /// Some local actor follows it.
    pub followed: bool,
    /// The newest of its activities this node holds.
    pub held: Option<Head>,
    /// The newest its origin was last seen to have.
    pub remote: Option<RemoteHead>,
    /// When the oldest of its activities held here was published (ms since
    /// the Unix epoch).
    pub oldest_held_ms: Option<u64>,
}

/// A peer origin (`scheme://host[:port]`) and the actors known there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PeerOrigin {
    pub origin: String,
    pub actors: Vec<String>,
}

/// A delivery that gave up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DeadLetter {
    pub id: u64,
    pub activity: String,
    pub recipient: String,
    pub origin: String,
}

/// Everything evaluation reads: observed by the reconcile loop, passed in
/// whole. The order of each list does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Now, in ms since the Unix epoch (evaluation reads no clock).
    pub now_ms: u64,
    /// Remote actors: followed ones, and any a policy names.
    pub actors: Vec<RemoteActor>,
    /// Known peer origins and their actors.
    pub peers: Vec<PeerOrigin>,
    pub dead_letters: Vec<DeadLetter>,
}

/// What the policies oblige this node to do. Ordered, so that a list of
/// them has one canonical order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Obligation {
    /// Fetch `actor`'s log from `from_seq` (the first seq not held) up to
    /// `to_seq` (the head its origin showed); it has been behind for
    /// `lag_ms`.
    Sync {
        actor: String,
        from_seq: u64,
        to_seq: u64,
        lag_ms: u64,
    },
    /// Learn which actors `origin` has (nothing is known of it yet), to
    /// mirror them.
    Mirror { origin: String },
    /// Drop `actor`'s activities published before `before_ms`.
    Prune { actor: String, before_ms: u64 },
    /// Try the dead letter again.
    Redeliver { dead_letter: u64, origin: String },
}

impl Obligation {
    /// How long it has been outstanding, when that is known.
    pub fn lag_ms(&self) -> Option<u64> {
        match self {
            Self::Sync { lag_ms, .. } => Some(*lag_ms),
            _ => None,
        }
    }
}

const DAY_MS: u64 = 86_400_000;

/// Whether `target` (an actor URL, or an origin `scheme://host[:port]`)
/// names `actor`.
fn names(target: &str, actor: &str) -> bool {
    if target == actor {
        return true;
    }
    spec::is_origin(target)
        && weft_core::model::origin(actor)
            .is_some_and(|o| o == target.trim_end_matches('/').to_ascii_lowercase())
}

/// The obligations of all `policies` in `observed`: sorted and without
/// duplicates, so the same policies and state give the same list on every
/// node, whatever order either comes in.
pub fn evaluate(policies: &[Policy], observed: &Observed) -> Vec<Obligation> {
    let mut out: BTreeSet<Obligation> = BTreeSet::new();
    for policy in policies {
        out.extend(obligations(policy, observed));
    }
    out.into_iter().collect()
}

/// The obligations of one policy (sorted, without duplicates).
pub fn obligations(policy: &Policy, observed: &Observed) -> Vec<Obligation> {
    let mut out: BTreeSet<Obligation> = BTreeSet::new();
    match &policy.spec {
        Spec::Replication(replication) => {
            replicate(replication, observed, &mut out);
        }
        Spec::Sync(_) => {
            // Followed actors are kept in sync, and what gave up is tried
            // again.
            for actor in observed.actors.iter().filter(|a| a.followed) {
                out.extend(behind(actor, observed.now_ms));
            }
            for letter in &observed.dead_letters {
                out.insert(Obligation::Redeliver {
                    dead_letter: letter.id,
                    origin: letter.origin.clone(),
                });
            }
        }
        // Admission rules, read when a module or a Follow arrives: nothing
        // to reconcile.
        Spec::Modules(_) | Spec::Follows(_) => {}
    }
    out.into_iter().collect()
}

fn replicate(replication: &ReplicationSpec, observed: &Observed, out: &mut BTreeSet<Obligation>) {
    let known: BTreeSet<&str> = observed
        .actors
        .iter()
        .map(|a| a.actor.as_str())
        .chain(
            observed
                .peers
                .iter()
                .flat_map(|p| p.actors.iter().map(String::as_str)),
        )
        .collect();
    let mirrored = |actor: &str| replication.mirror.iter().any(|t| names(t, actor));
    for target in replication.mirror.iter().filter(|t| spec::is_origin(t)) {
        if !known.iter().any(|actor| names(target, actor)) {
            out.insert(Obligation::Mirror {
                origin: target.trim_end_matches('/').to_ascii_lowercase(),
            });
        }
    }
    for actor in observed.actors.iter().filter(|a| mirrored(&a.actor)) {
        out.extend(behind(actor, observed.now_ms));
    }
    for (actor, before_ms) in kept(std::slice::from_ref(replication), observed) {
        let due = observed.actors.iter().any(|a| {
            a.actor == actor
                && a.oldest_held_ms
                    .is_some_and(|oldest| oldest.saturating_add(PRUNE_GRACE_MS) < before_ms)
        });
        if due {
            out.insert(Obligation::Prune { actor, before_ms });
        }
    }
}

/// How far past its keep an activity may get before a prune is due:
/// pruning rebuilds every projection, so it happens about once a day,
/// not each time an activity ages out.
pub const PRUNE_GRACE_MS: u64 = DAY_MS;

/// Each observed actor a `keep` rule of `replications` names and no
/// `mirror` does, with the time (ms) before which its activities go: now
/// less the longest keep naming it.
fn kept(replications: &[ReplicationSpec], observed: &Observed) -> BTreeMap<String, u64> {
    let mirrored = |actor: &str| {
        replications
            .iter()
            .any(|r| r.mirror.iter().any(|t| names(t, actor)))
    };
    let mut days: BTreeMap<String, u64> = BTreeMap::new();
    for actor in &observed.actors {
        if mirrored(&actor.actor) {
            continue;
        }
        for rule in replications.iter().flat_map(|r| r.keep.iter()) {
            if rule.actors.iter().any(|t| names(t, &actor.actor)) {
                let d = days.entry(actor.actor.clone()).or_insert(0);
                *d = (*d).max(rule.days);
            }
        }
    }
    days.into_iter()
        .map(|(actor, days)| {
            let before = observed.now_ms.saturating_sub(days.saturating_mul(DAY_MS));
            (actor, before)
        })
        .collect()
}

/// What acting on `Prune` obligations deletes: for every observed actor
/// that some `keep` rule of `policies` names and no `mirror` does, and
/// that holds something older than the longest such keep, that time
/// (ms). Taken all at once, not only for the actors whose obligation is
/// due, so that one prune (and one rebuild of the projections) brings
/// every kept actor back within its window. Pure, like [`evaluate`].
pub fn prunes(policies: &[Policy], observed: &Observed) -> Vec<(String, u64)> {
    let replications: Vec<ReplicationSpec> = policies
        .iter()
        .filter_map(|p| match &p.spec {
            Spec::Replication(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    kept(&replications, observed)
        .into_iter()
        .filter(|(actor, before_ms)| {
            observed.actors.iter().any(|a| {
                &a.actor == actor && a.oldest_held_ms.is_some_and(|oldest| oldest < *before_ms)
            })
        })
        .collect()
}

/// A Sync obligation if `actor`'s origin showed more than is held.
fn behind(actor: &RemoteActor, now_ms: u64) -> Option<Obligation> {
    let remote = actor.remote.as_ref()?;
    let held = actor.held.as_ref().map_or(0, |h| h.seq);
    (remote.head.seq > held).then(|| Obligation::Sync {
        actor: actor.actor.clone(),
        from_seq: held + 1,
        to_seq: remote.head.seq,
        lag_ms: now_ms.saturating_sub(remote.seen_ms),
    })
}

/// One obligation of a policy and its lag, as its status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObligationLag {
    pub obligation: Obligation,
    pub lag_ms: Option<u64>,
}

/// A policy's status: its conditions and outstanding obligations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    pub name: String,
    pub version: u32,
    pub conditions: Vec<Condition>,
    pub obligations: Vec<ObligationLag>,
}

impl PolicyStatus {
    /// The status of a policy no reconcile loop has evaluated yet: both
    /// conditions `Unknown`, reason `NotEvaluated`, since `now` (RFC 3339).
    pub fn not_evaluated(policy: &Policy, now: &str) -> Self {
        let unknown = |kind: &str| Condition {
            kind: kind.to_owned(),
            status: ConditionStatus::Unknown,
            reason: "NotEvaluated".into(),
            message: "no reconcile loop has evaluated this policy yet".into(),
            last_transition_time: now.to_owned(),
        };
        Self {
            name: policy.name.clone(),
            version: policy.version,
            conditions: vec![unknown(COMPLIANT), unknown(IN_SYNC)],
            obligations: Vec::new(),
        }
    }

    /// Sets condition `next` (by its type), keeping the old
    /// `lastTransitionTime` unless its status changed.
    pub fn set_condition(&mut self, next: Condition) {
        set_condition(&mut self.conditions, next);
    }

    /// The wire form (`GET /admin/policies/{name}/status`).
    pub fn to_wire(&self) -> weft_core::wire::policy::Status {
        weft_core::wire::policy::Status {
            name: self.name.clone(),
            version: self.version,
            conditions: self.conditions.clone(),
            obligations: self
                .obligations
                .iter()
                .map(|o| weft_core::wire::policy::ObligationLag {
                    obligation: serde_json::to_value(&o.obligation).unwrap_or(Value::Null),
                    lag_ms: o.lag_ms,
                })
                .collect(),
        }
    }
}

/// A policy's status after evaluating it in `observed` at `now` (RFC
/// 3339), carried on from `previous` (its last status, if any), so that a
/// condition's `lastTransitionTime` moves only when its status does. Pure:
/// the reconcile loop calls it each round and stores the result with
/// [`PolicyStatuses::set`].
///
/// - `Compliant`: `True` when the policy obliges nothing now, else `False`
///   (reason `ObligationsOutstanding`).
/// - `InSync`: for `sync`, `True` when every `Sync` obligation's lag is
///   within `maxLag` (reason `WithinMaxLag`), else `False` (`Lagging`); for
///   `replication`, `True` when no mirrored actor is behind (`CaughtUp`),
///   else `False` (`Behind`).
/// - `modules` and `follows` are admission rules, applied when a module or
///   a Follow arrives: both conditions `True`, reason `AdmissionRule`.
pub fn status(
    policy: &Policy,
    observed: &Observed,
    now: &str,
    previous: Option<&PolicyStatus>,
) -> PolicyStatus {
    let mut status = match previous {
        Some(previous) if previous.name == policy.name => PolicyStatus {
            version: policy.version,
            ..previous.clone()
        },
        _ => PolicyStatus::not_evaluated(policy, now),
    };
    let obligations = obligations(policy, observed);
    let condition = |kind: &str, ok: bool, reason: &str, message: String| Condition {
        kind: kind.to_owned(),
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.to_owned(),
        message,
        last_transition_time: now.to_owned(),
    };
    let lags: Vec<u64> = obligations.iter().filter_map(Obligation::lag_ms).collect();
    let worst = lags.iter().copied().max();
    let (compliant, in_sync) = match &policy.spec {
        Spec::Modules(_) | Spec::Follows(_) => {
            let message = "an admission rule, applied when a module or a Follow arrives".to_owned();
            (
                condition(COMPLIANT, true, "AdmissionRule", message.clone()),
                condition(IN_SYNC, true, "AdmissionRule", message),
            )
        }
        spec => {
            let compliant = if obligations.is_empty() {
                condition(
                    COMPLIANT,
                    true,
                    "NothingOutstanding",
                    "the policy obliges nothing now".into(),
                )
            } else {
                condition(
                    COMPLIANT,
                    false,
                    "ObligationsOutstanding",
                    format!("{} obligations outstanding", obligations.len()),
                )
            };
            let in_sync = match (spec, worst) {
                (Spec::Sync(sync), Some(worst)) if worst > millis(sync.max_lag) => condition(
                    IN_SYNC,
                    false,
                    "Lagging",
                    format!(
                        "{} actors behind, the furthest for {worst} ms (maxLag {} ms)",
                        lags.len(),
                        millis(sync.max_lag)
                    ),
                ),
                (Spec::Sync(sync), _) => condition(
                    IN_SYNC,
                    true,
                    "WithinMaxLag",
                    format!(
                        "every followed actor is within maxLag ({} ms)",
                        millis(sync.max_lag)
                    ),
                ),
                (_, Some(worst)) => condition(
                    IN_SYNC,
                    false,
                    "Behind",
                    format!(
                        "{} mirrored actors behind, the furthest for {worst} ms",
                        lags.len()
                    ),
                ),
                (_, None) => condition(
                    IN_SYNC,
                    true,
                    "CaughtUp",
                    "no mirrored actor is behind".into(),
                ),
            };
            (compliant, in_sync)
        }
    };
    status.set_condition(compliant);
    status.set_condition(in_sync);
    status.obligations = obligations
        .into_iter()
        .map(|obligation| ObligationLag {
            lag_ms: obligation.lag_ms(),
            obligation,
        })
        .collect();
    status
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sets `next` in `conditions` (replacing the one of its type, or added
/// last). Its `lastTransitionTime` is kept from the old one unless the
/// status changed: reason and message may change without a transition.
pub fn set_condition(conditions: &mut Vec<Condition>, mut next: Condition) {
    match conditions.iter_mut().find(|c| c.kind == next.kind) {
        Some(old) => {
            if old.status == next.status {
                next.last_transition_time = old.last_transition_time.clone();
            }
            *old = next;
        }
        None => conditions.push(next),
    }
}

/// A Follow of a local actor that waits for the operator (`weft follow
/// approve|reject`) because a `follows` policy held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFollow {
    /// The Follow's content id.
    pub id: String,
    pub follower: String,
    /// The local actor it asks to follow.
    pub followed: String,
    pub published: String,
}

impl PendingFollow {
    pub fn of(follow: &Signed) -> Self {
        Self {
            id: weft_core::model::cid::internal(&follow.id).to_owned(),
            follower: follow.header.actor.clone(),
            followed: follow
                .json
                .get("object")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            published: follow.header.published.clone(),
        }
    }

    /// The wire form (`GET /admin/follows/pending`).
    pub fn to_wire(&self) -> weft_core::wire::policy::PendingFollow {
        weft_core::wire::policy::PendingFollow {
            id: self.id.clone(),
            follower: self.follower.clone(),
            followed: self.followed.clone(),
            published: self.published.clone(),
        }
    }
}

/// The statuses the reconcile loop reports, by policy name, shared by the
/// kernel and the HTTP layer.
#[derive(Debug, Default)]
pub struct PolicyStatuses {
    map: RwLock<BTreeMap<String, PolicyStatus>>,
}

impl PolicyStatuses {
    /// Sets policy `name`'s status.
    pub fn set(&self, name: &str, status: PolicyStatus) {
        if let Ok(mut map) = self.map.write() {
            map.insert(name.to_owned(), status);
        }
    }

    /// Policy `name`'s status as last set, if it was.
    pub fn get(&self, name: &str) -> Option<PolicyStatus> {
        self.map.read().ok()?.get(name).cloned()
    }

    /// Forgets policy `name`'s status.
    pub fn remove(&self, name: &str) {
        if let Ok(mut map) = self.map.write() {
            map.remove(name);
        }
    }
}

//! The reconcile loop (docs/architecture.md §10): observe → evaluate → act,
//! on a timer (`[federation] sync_interval`) and on demand
//! (`POST /admin/sync`). It observes which remote actors local actors
//! follow, where sync stands with each and the dead letters; decides which
//! actors are due a round (not backed off, within the per-actor budget of
//! rounds per hour); runs those rounds ([`crate::sync`]); reconciles the
//! set of what each of their origins addressed here
//! ([`crate::setsync`]); and marks dead letters healed once the
//! recipient's node shows it holds the activity.
//!
//! A peer coming back (a verified activity from an origin whose actors sync
//! had backed off) wakes the loop and lifts their backoff for the next pass.
//! One pass runs at a time. This module does not fetch or verify anything
//! itself (sync does), and it never retries a delivery: a healed dead
//! letter needs none.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Budget, Federation, setsync, sync};
use weft_kernel::policy;
use weft_kernel::{FederationWrite, now_ms};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Remote actors observed (followed by a local actor).
    pub actors: usize,
    /// Rounds run.
    pub rounds: usize,
    /// Activities stored by them.
    pub stored: u64,
    /// Rounds that failed (network or offence).
    pub failed: usize,
    /// Dead letters found healed.
    pub healed: usize,
    /// Obligations of the policies still outstanding after the pass.
    pub outstanding: usize,
    /// Rounds that found something to fetch but had spent the actor's
    /// fetching rounds for the hour.
    pub deferred: usize,
    /// Peer origins (of the followed actors) reconciled with as sets.
    pub origins: usize,
    /// Set-reconciliation rounds run.
    pub set_rounds: usize,
    /// Activities set reconciliation stored (addressed here, missed).
    pub set_stored: u64,
    /// Activities a `keep` rule pruned.
    pub pruned: u64,
    /// Actors learnt from mirrored origins' directories.
    pub discovered: usize,
}

/// The loop's shared state.
#[derive(Debug, Default)]
pub struct Reconciler {
    /// Held while a pass runs.
    running: tokio::sync::Mutex<()>,
    /// Wakes the loop before its timer.
    wake: tokio::sync::Notify,
    /// Rounds per actor in the current hour: actor → (hour, count).
    rounds: Mutex<HashMap<String, (u64, u32)>>,
    /// Origins with an actor backed off after failed rounds.
    backed_off: Mutex<HashSet<String>>,
    /// Origins heard from since they were backed off: the next pass
    /// tries their actors at once.
    back: Mutex<HashSet<String>>,
    /// The newest `sync` policy's `budget.bytesPerRound` (0: none, the
    /// configuration's `sync_bytes_per_round` holds).
    bytes_per_round: std::sync::atomic::AtomicU64,
    /// Mirrored origins: when their directory was last read (ms).
    listed: Mutex<HashMap<String, u64>>,
}

impl Reconciler {
    /// Asks the loop for a pass now (a new policy, a peer back).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A verified activity came from `origin`: if sync had backed off its
    /// actors, the peer is back, so a pass tries them now.
    pub fn heard_from(&self, origin: &str) {
        let was = self.backed_off.lock().is_ok_and(|mut b| b.remove(origin));
        if was {
            if let Ok(mut back) = self.back.lock() {
                back.insert(origin.to_owned());
            }
            self.wake();
        }
    }

    /// Most bytes one round reads: the newest `sync` policy's budget, else
    /// `configured`.
    pub fn bytes_per_round(&self, configured: u64) -> u64 {
        match self
            .bytes_per_round
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => configured,
            set => set,
        }
    }

    /// Counts a fetching round with `actor` if the hour's budget allows it
    /// (comparing heads is not counted).
    fn take_round(&self, actor: &str, per_hour: u32, now: u64) -> bool {
        let hour = now / 3_600_000;
        let Ok(mut rounds) = self.rounds.lock() else {
            return false;
        };
        let entry = rounds.entry(actor.to_owned()).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        if entry.1 >= per_hour {
            return false;
        }
        entry.1 += 1;
        true
    }
}

/// Runs passes until the node stops: every `sync_interval` (or the
/// newest `sync` policy's `interval`), when woken (a peer back), and when
/// a new policy version is published.
pub fn spawn(federation: Arc<Federation>) {
    let stopped = federation.stopped();
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            let interval = sync_policy(&federation.kernel.policies().unwrap_or_default())
                .map_or(federation.sync.interval, |spec| spec.interval);
            tokio::select! {
                () = &mut stopped => break,
                () = tokio::time::sleep(interval) => {}
                () = federation.reconciler.wake.notified() => {}
                () = federation.kernel.policy_changed() => {}
            }
            let pass = pass(&federation, false).await;
            if pass.rounds > 0
                || pass.healed > 0
                || pass.set_stored > 0
                || pass.pruned > 0
                || pass.discovered > 0
            {
                tracing::info!(?pass, "reconcile pass");
            }
        }
    });
}

/// The newest `sync` policy's spec, if there is one.
fn sync_policy(policies: &[policy::Policy]) -> Option<policy::SyncSpec> {
    policies
        .iter()
        .filter(|p| p.kind == policy::Kind::Sync)
        .max_by_key(|p| p.position)
        .and_then(|p| match &p.spec {
            policy::Spec::Sync(spec) => Some(*spec),
            _ => None,
        })
}

/// The local followers of every remote actor some local actor follows.
fn followed(federation: &Federation) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let kernel = &federation.kernel;
    let Ok(locals) = kernel.local_actors() else {
        return out;
    };
    for local in locals {
        let Ok(following) = kernel.following(&local) else {
            continue;
        };
        for remote in following {
            if !kernel.is_local_url(&remote) {
                out.entry(remote).or_default().push(local.clone());
            }
        }
    }
    out
}

/// One observe → evaluate → act pass, then each policy's status. A
/// `forced` pass (the operator's `POST /admin/sync`) also tries actors
/// that are backed off.
pub async fn pass(federation: &Arc<Federation>, forced: bool) -> Pass {
    let _running = federation.reconciler.running.lock().await;
    let mut report = Pass::default();
    // Observe.
    let followed = followed(federation);
    report.actors = followed.len();
    let policies = federation.kernel.policies().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the policies; reconciling followed actors only");
        Vec::new()
    });
    let mut observed = observe(federation, &followed, &policies);
    // Learn the actors of mirrored origins (an obligation while nothing is
    // known of one; their directory again hourly), then look again.
    report.discovered = discover(federation, &policies, &observed).await;
    if report.discovered > 0 {
        observed = observe(federation, &followed, &policies);
    }
    let states: HashMap<String, weft_store::SyncState> = federation
        .kernel
        .store()
        .read()
        .and_then(|r| r.sync_states())
        .map(|all| all.into_iter().map(|s| (s.actor.clone(), s)).collect())
        .unwrap_or_default();
    // Evaluate: every followed actor is kept up (the repair path), and
    // every actor a policy obliges this node to hold in full.
    let obligations = policy::evaluate(&policies, &observed);
    let mut due: BTreeMap<String, bool> = followed.keys().map(|a| (a.clone(), false)).collect();
    for obligation in &obligations {
        if let policy::Obligation::Sync { actor, .. } = obligation {
            let whole = !followed.contains_key(actor);
            due.entry(actor.clone()).or_insert(whole);
        }
    }
    // Mirrored actors in full (a kept one is only observed: what push and
    // its followers' sync bring is kept for its days).
    for actor in policy_actors(&policies, false) {
        due.entry(actor).or_insert(true);
    }
    // Act: a round with each due actor not backed off, within its budget
    // (the newest `sync` policy's, else the configuration's), until it has
    // nothing more to fetch.
    let settings = &federation.sync;
    let budget = sync_policy(&policies).and_then(|spec| spec.budget);
    federation.reconciler.bytes_per_round.store(
        budget.and_then(|b| b.bytes_per_round).unwrap_or(0),
        std::sync::atomic::Ordering::Relaxed,
    );
    let rounds_per_hour = sync_policy(&policies)
        .and_then(|spec| spec.budget?.rounds_per_hour)
        .map_or(settings.rounds_per_hour, |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        });
    let back: HashSet<String> = federation
        .reconciler
        .back
        .lock()
        .map(|mut b| std::mem::take(&mut *b))
        .unwrap_or_default();
    let none = Vec::new();
    for (actor, whole) in &due {
        let now = now_ms();
        let origin = weft_kernel::audience_origin(actor).unwrap_or_default();
        if !forced
            && states.get(actor).is_some_and(|s| s.next_at_ms > now)
            && !back.contains(&origin)
        {
            continue;
        }
        // A due actor is tried: its own backoff, not the fetcher's memory
        // of a recent failure, decides when.
        federation.fetcher.forget_failures(&origin);
        let followers = followed.get(actor).unwrap_or(&none);
        let may_fetch = || {
            federation
                .reconciler
                .take_round(actor, rounds_per_hour, now_ms())
        };
        loop {
            report.rounds += 1;
            match sync::round(federation, actor, followers, *whole, &may_fetch).await {
                Ok(round) => {
                    report.stored += round.stored;
                    if round.deferred {
                        report.deferred += 1;
                    }
                    if !round.more || round.deferred {
                        break;
                    }
                }
                Err(_) => {
                    report.failed += 1;
                    break;
                }
            }
        }
    }
    // Set reconciliation with each origin of the followed actors: what
    // its actors addressed here that no chain covers.
    // Only weft origins serve the set endpoints: an ActivityPub server's
    // actors list no log keys.
    let origins: std::collections::BTreeSet<String> = followed
        .keys()
        .filter(|actor| {
            federation
                .peers
                .kept(actor)
                .ok()
                .flatten()
                .is_some_and(|peer| !peer.keys.is_empty())
        })
        .filter_map(|actor| weft_core::model::origin(actor))
        .collect();
    report.origins = origins.len();
    for origin in &origins {
        if !forced && states.get(origin).is_some_and(|s| s.next_at_ms > now_ms()) {
            continue;
        }
        loop {
            if !federation
                .reconciler
                .take_round(origin, rounds_per_hour, now_ms())
            {
                break;
            }
            report.set_rounds += 1;
            match setsync::reconcile_origin(federation, origin).await {
                Ok(round) => {
                    report.set_stored += round.stored;
                    tracing::debug!(%origin, ?round, "set reconciliation round");
                    if !round.more || round.stored + round.parked == 0 {
                        break;
                    }
                }
                Err(_) => {
                    report.failed += 1;
                    break;
                }
            }
        }
    }
    // Prune what `keep` rules no longer keep: every kept actor at once,
    // when one of them is due, so that one rebuild covers them all.
    if obligations
        .iter()
        .any(|o| matches!(o, policy::Obligation::Prune { .. }))
    {
        let prunes = policy::prunes(&policies, &observed);
        match federation.kernel.prune(prunes).await {
            Ok(pruned) => {
                report.pruned = pruned.activities;
                tracing::info!(
                    activities = pruned.activities,
                    bytes = pruned.bytes,
                    "pruned what replication policies keep no longer; rebuilding the projections"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune"),
        }
    }
    report.healed = heal(federation).await;
    // Which origins are backed off now, for `heard_from`.
    let now = now_ms();
    let backed_off: HashSet<String> = federation
        .kernel
        .store()
        .read()
        .and_then(|r| r.sync_states())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.failures > 0 && s.next_at_ms > now)
        .filter_map(|s| weft_kernel::audience_origin(&s.actor))
        .collect();
    if let Ok(mut b) = federation.reconciler.backed_off.lock() {
        *b = backed_off;
    }
    // Each policy's status, as things stand after acting.
    let after = observe(federation, &followed, &policies);
    let at = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(after.now_ms),
    )
    .to_string();
    let statuses = federation.kernel.policy_statuses();
    for p in &policies {
        let previous = statuses.get(&p.name);
        let status = policy::status(p, &after, &at, previous.as_ref());
        report.outstanding += status.obligations.len();
        statuses.set(&p.name, status);
    }
    report
}

/// The actor URLs policies name as mirrored (and as kept, with `kept`):
/// observed like the followed ones, so that evaluation sees them.
fn policy_actors(policies: &[policy::Policy], kept: bool) -> Vec<String> {
    let mut out = Vec::new();
    for p in policies {
        if let policy::Spec::Replication(r) = &p.spec {
            let keep = r.keep.iter().filter(|_| kept).flat_map(|k| k.actors.iter());
            out.extend(
                r.mirror
                    .iter()
                    .chain(keep)
                    .filter(|t| !policy::is_origin(t))
                    .cloned(),
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Most actors of one mirrored origin learnt, and observed.
const MIRROR_ACTORS: usize = 1000;
/// How often a mirrored origin's directory is read again for new actors.
const RELIST_MS: u64 = 3_600_000;

/// The origins `mirror` targets name (`scheme://host[:port]`, lower case).
fn mirrored_origins(policies: &[policy::Policy]) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .filter_map(|p| match &p.spec {
            policy::Spec::Replication(r) => Some(r.mirror.iter()),
            _ => None,
        })
        .flatten()
        .filter(|t| policy::is_origin(t))
        .map(|t| t.trim_end_matches('/').to_ascii_lowercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Reads the directory (`GET {origin}/actors`, a collection of actor ids)
/// of each mirrored origin nothing is known of (a `Mirror` obligation), and
/// of the others once an hour, and keeps the document of each actor listed
/// there (at most [`MIRROR_ACTORS`]), so that evaluation sees them and
/// obliges syncing them in full. How many actors were new. An origin
/// without a directory (an ActivityPub server that is not weft) leaves its
/// obligation outstanding: name its actors instead.
async fn discover(
    federation: &Arc<Federation>,
    policies: &[policy::Policy],
    observed: &policy::Observed,
) -> usize {
    let now = now_ms();
    let unknown: HashSet<String> = policy::evaluate(policies, observed)
        .into_iter()
        .filter_map(|o| match o {
            policy::Obligation::Mirror { origin } => Some(origin),
            _ => None,
        })
        .collect();
    let mut learnt = 0;
    for origin in mirrored_origins(policies) {
        let due = unknown.contains(&origin)
            || federation
                .reconciler
                .listed
                .lock()
                .map(|l| {
                    l.get(&origin)
                        .is_none_or(|at| now.saturating_sub(*at) >= RELIST_MS)
                })
                .unwrap_or(false);
        if !due {
            continue;
        }
        if let Ok(mut listed) = federation.reconciler.listed.lock() {
            listed.insert(origin.clone(), now);
        }
        match list(federation, &origin).await {
            Ok(n) => learnt += n,
            Err(e) => {
                tracing::info!(%origin, error = %e, "cannot read a mirrored origin's directory")
            }
        }
    }
    learnt
}

/// Keeps the documents of the actors `origin`'s directory lists that are
/// not known yet; how many.
async fn list(federation: &Arc<Federation>, origin: &str) -> Result<usize, String> {
    let budget = Budget::new(u32::try_from(MIRROR_ACTORS).unwrap_or(u32::MAX) + 1);
    let page = federation
        .fetcher
        .get_json(&format!("{origin}/actors"), &budget)
        .await
        .map_err(|e| e.to_string())?;
    let items = match page.get("orderedItems").or_else(|| page.get("items")) {
        Some(serde_json::Value::Array(items)) => items.clone(),
        _ => return Err(format!("{origin}/actors is not a collection of actors")),
    };
    let known: HashSet<String> = federation
        .kernel
        .store()
        .read()
        .and_then(|r| r.peers_under(origin, MIRROR_ACTORS))
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let mut learnt = 0;
    for actor in items
        .iter()
        .filter_map(serde_json::Value::as_str)
        // Only the origin's own actors: a directory vouches for no one
        // else.
        .filter(|a| weft_core::model::origin(a).as_deref() == Some(origin))
        .filter(|a| !known.contains(*a))
        .take(MIRROR_ACTORS.saturating_sub(known.len()))
    {
        match federation.peers.document(actor, &budget).await {
            Ok(_) => learnt += 1,
            Err(e) => tracing::info!(%actor, error = %e, "cannot fetch a mirrored origin's actor"),
        }
    }
    Ok(learnt)
}

/// The origins `keep` rules name (an actor's origin for an actor), each
/// with the shortest keep (days) naming it or one of its actors.
fn kept_origins(policies: &[policy::Policy]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for p in policies {
        let policy::Spec::Replication(r) = &p.spec else {
            continue;
        };
        for rule in &r.keep {
            for target in &rule.actors {
                let origin = if policy::is_origin(target) {
                    Some(target.trim_end_matches('/').to_ascii_lowercase())
                } else {
                    weft_core::model::origin(target)
                };
                if let Some(origin) = origin {
                    let days = out.entry(origin).or_insert(rule.days);
                    *days = (*days).min(rule.days);
                }
            }
        }
    }
    out
}

/// What evaluation reads: the followed actors and those policies name
/// (what is held of each, the head its origin last showed), and the dead
/// letters no sync has healed. An actor whose head was never read counts
/// as behind by one, so that a policy is not reported met before its
/// origin was asked.
fn observe(
    federation: &Federation,
    followed: &BTreeMap<String, Vec<String>>,
    policies: &[policy::Policy],
) -> policy::Observed {
    let now = now_ms();
    let mut observed = policy::Observed {
        now_ms: now,
        ..policy::Observed::default()
    };
    let Ok(reader) = federation.kernel.store().read() else {
        return observed;
    };
    let states: HashMap<String, weft_store::SyncState> = reader
        .sync_states()
        .map(|all| all.into_iter().map(|s| (s.actor.clone(), s)).collect())
        .unwrap_or_default();
    let mut actors: BTreeMap<String, bool> = followed.keys().map(|a| (a.clone(), true)).collect();
    // What `keep` rules may prune: each kept origin's authors holding
    // something older than the shortest keep naming that origin.
    let mut oldest: HashMap<String, u64> = HashMap::new();
    for (origin, days) in kept_origins(policies) {
        let before = now.saturating_sub(days.saturating_mul(86_400_000));
        match federation.kernel.held_before(&origin, before) {
            Ok(held) => oldest.extend(held),
            Err(e) => {
                tracing::warn!(%origin, error = %e, "cannot read what is held from a kept origin")
            }
        }
    }
    for actor in oldest.keys() {
        actors.entry(actor.clone()).or_insert(false);
    }
    // Mirrored origins' actors known here (their documents kept).
    for origin in mirrored_origins(policies) {
        let known = reader
            .peers_under(&origin, MIRROR_ACTORS)
            .unwrap_or_default();
        for actor in &known {
            actors.entry(actor.clone()).or_insert(false);
        }
        observed.peers.push(policy::PeerOrigin {
            origin,
            actors: known,
        });
    }
    for actor in policy_actors(policies, true)
        .into_iter()
        // Set reconciliation keeps its state under origins: not actors.
        .chain(states.keys().filter(|k| !policy::is_origin(k)).cloned())
    {
        actors.entry(actor).or_insert(false);
    }
    for (actor, is_followed) in actors {
        let held = reader
            .held_tip(&actor)
            .ok()
            .flatten()
            .map(|(seq, id)| policy::Head { seq, id });
        let state = states.get(&actor);
        let remote = match state.and_then(|s| s.head.clone()) {
            Some((seq, id)) => Some(policy::RemoteHead {
                head: policy::Head { seq, id },
                seen_ms: state
                    .and_then(|s| s.last_sync_ms.or(s.last_try_ms))
                    .unwrap_or(now),
            }),
            None => Some(policy::RemoteHead {
                head: policy::Head {
                    seq: held.as_ref().map_or(0, |h| h.seq) + 1,
                    id: String::new(),
                },
                seen_ms: state.and_then(|s| s.last_try_ms).unwrap_or(now),
            }),
        };
        let oldest_held_ms = oldest.get(&actor).copied();
        observed.actors.push(policy::RemoteActor {
            actor,
            followed: is_followed,
            held,
            remote,
            oldest_held_ms,
        });
    }
    let healed = reader.healed().unwrap_or_default();
    observed.dead_letters = reader
        .dead_letters()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| !healed.contains_key(&j.id))
        .map(|j| policy::DeadLetter {
            id: j.id,
            activity: j.activity,
            recipient: j.recipient,
            origin: j.origin,
        })
        .collect();
    observed
}

/// Marks dead letters healed whose public activity the recipient's node
/// now serves (`GET {origin}/activities/{id}`): sync, a retry by hand or a
/// later delivery covered them. A non-public activity cannot be asked
/// about this way and stays as it is.
async fn heal(federation: &Arc<Federation>) -> usize {
    let Ok(reader) = federation.kernel.store().read() else {
        return 0;
    };
    let (Ok(dead), Ok(healed)) = (reader.dead_letters(), reader.healed()) else {
        return 0;
    };
    let mut writes = Vec::new();
    let budget = Budget::new(federation.sync.heal_checks_per_pass);
    // An origin that cannot be reached is asked once a pass.
    let mut unreachable: HashSet<String> = HashSet::new();
    for job in dead.iter().filter(|j| !healed.contains_key(&j.id)) {
        if unreachable.contains(&job.origin) {
            continue;
        }
        let public = reader
            .activity(&job.activity)
            .ok()
            .flatten()
            .is_some_and(|r| r.public);
        if !public {
            continue;
        }
        let url = format!("{}/activities/{}", job.origin, job.activity);
        match federation.fetcher.probe_json(&url, &budget).await {
            Ok(value)
                if value
                    .get("id")
                    .and_then(|v| v.as_str())
                    .map(weft_core::model::cid::internal)
                    == Some(weft_core::model::cid::internal(&job.activity)) =>
            {
                writes.push(FederationWrite::Healed {
                    id: job.id,
                    at_ms: now_ms(),
                });
            }
            Err(super::FetchError::Budget(_)) => break,
            Err(e) if e.is_absent() => {}
            Err(_) => {
                unreachable.insert(job.origin.clone());
            }
            Ok(_) => {}
        }
    }
    let count = writes.len();
    if let Err(e) = federation.kernel.federation_write(writes).await {
        tracing::warn!(error = %e, "cannot record healed dead letters");
        return 0;
    }
    count
}

/// Parsed `[federation]` sync settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    pub interval: Duration,
    pub max_range: u64,
    pub pages_per_round: u32,
    pub bytes_per_round: u64,
    pub stage_memory_bytes: u64,
    pub rounds_per_hour: u32,
    pub heal_checks_per_pass: u32,
    pub frame_bytes: u64,
    pub set_messages: u32,
}

//! Set reconciliation with a peer origin (docs/architecture.md §10): the
//! repair path for what an origin's actors addressed to this node's
//! actors, which no single chain orders (a note `to` one actor here, from
//! an actor nobody here follows). Both sides key each activity by
//! `(published, id)` ([`weft_core::model::setkey`]) and run negentropy
//! range-based set reconciliation (NIP-77, protocol v1) over them: this
//! node (the initiator) from the activities it holds from that origin's
//! authors (`held_from`), the origin (the responder) from the activities
//! its actors delivered to this node's origin (`addressed`). Messages go
//! as signed `POST {origin}/sync/negentropy`; the ids this node lacks are
//! fetched with `POST {origin}/sync/fetch`, verified exactly as inbound
//! activities are, and committed a chunk at a time through
//! [`weft_kernel::Kernel::ingest_batch`], or the chunk not at all.
//!
//! Everything is bounded: frame bytes (`sync_frame_bytes`), messages and
//! bytes per round (`sync_set_messages`, `sync_bytes_per_round`),
//! activities fetched per round (`sync_max_range`), ids per fetch, and
//! rounds per origin per hour (the reconcile loop's budget). A failed
//! round backs the origin off as a chain-sync round backs off an actor.
//!
//! This module is not the HTTP endpoints (`weft_http::sync` reads the
//! requests and proves who sends them) and not the decision which
//! origins to reconcile with, or when ([`crate::reconcile`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use serde_json::Value;

use super::sync::{self, SyncError};
use super::{Budget, Federation, FetchError, InboxError};
use weft_core::model::setkey::{SetKey, id32, published_ms};
use weft_core::model::{Signed, cid};
use weft_core::wire::sync::{MAX_FETCH_IDS, SetFetch, SetMessage};
use weft_kernel::KernelError;
use weft_store::{Reader, SetIndex, StoreError};

/// Ids asked for in one `POST /sync/fetch` (at most
/// [`MAX_FETCH_IDS`]); each chunk is verified and committed on its own.
pub const FETCH_CHUNK: usize = 100;
/// Most bytes of activity JSON one fetch answer carries: ids past it are
/// left out (and asked for again next round), so an answer stays under
/// the default `max_fetch_bytes` (1 MiB) of the node that asked.
pub const FETCH_ANSWER_BYTES: usize = 768 << 10;
/// How long the responder answers from a built set while the log grows:
/// at most one build per origin in this time, however busy the node or
/// the asking peer (an activity addressed since is found next exchange).
const CACHE_FOR: Duration = Duration::from_secs(5);
/// How long a built set is kept while nothing is appended.
const KEEP_UNCHANGED: Duration = Duration::from_secs(60);
/// Most origins whose built sets are kept at once.
const CACHED_ORIGINS: usize = 8;

/// Why one side of set reconciliation cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The other side sent something that is not a negentropy v1 message
    /// (or not hex): the caller's fault (400, or an offence).
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of this node (a task that failed, a broken invariant).
    #[error("{0}")]
    Internal(String),
}

fn internal(e: negentropy::Error) -> SetError {
    SetError::Internal(format!("set reconciliation: {e}"))
}

/// One side's set, sealed: what negentropy fingerprints.
pub type SetStorage = NegentropyStorageVector;

/// The sealed set of `origin`'s rows in `index`: for the responder, what
/// its actors addressed to `origin` ([`SetIndex::Addressed`]); for the
/// initiator, what it holds from `origin`'s authors
/// ([`SetIndex::HeldFrom`], with what a `keep` rule pruned of them,
/// [`SetIndex::Pruned`]). Linear in the rows, plus a sort.
pub fn storage(reader: &Reader, index: SetIndex, origin: &str) -> Result<SetStorage, SetError> {
    let mut storage = NegentropyStorageVector::new();
    let mut failed = None;
    let mut add = |key: weft_core::model::setkey::SetKey, _| {
        if failed.is_none()
            && let Err(e) = storage.insert(key.published_ms, Id::from_byte_array(key.id))
        {
            failed = Some(e);
        }
    };
    reader.set_rows(index, origin, &mut add)?;
    // What a `keep` rule pruned counts as held: it is not fetched again.
    if index == SetIndex::HeldFrom {
        reader.set_rows(SetIndex::Pruned, origin, &mut add)?;
    }
    if let Some(e) = failed {
        return Err(internal(e));
    }
    storage.seal().map_err(internal)?;
    Ok(storage)
}

/// The responder's answer to one message `msg` over `storage`, within
/// `frame_bytes`. Stateless: each message carries all the state.
pub fn answer(storage: &SetStorage, frame_bytes: u64, msg: &[u8]) -> Result<Vec<u8>, SetError> {
    let mut negentropy = Negentropy::borrowed(storage, frame_bytes).map_err(internal)?;
    negentropy
        .reconcile(msg)
        .map_err(|e| SetError::Malformed(format!("not a negentropy protocol v1 message: {e}")))
}

/// The initiator's side of one exchange: its set, and the ids found so
/// far that only it has (`have`) or only the other side has (`need`).
pub struct Initiator {
    negentropy: Negentropy<'static, SetStorage>,
    have: Vec<Id>,
    need: Vec<Id>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("have", &self.have.len())
            .field("need", &self.need.len())
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts an exchange over `storage`: the initiator and its first
    /// message.
    pub fn start(storage: SetStorage, frame_bytes: u64) -> Result<(Self, Vec<u8>), SetError> {
        let mut negentropy = Negentropy::owned(storage, frame_bytes).map_err(internal)?;
        let first = negentropy.initiate().map_err(internal)?;
        Ok((
            Self {
                negentropy,
                have: Vec::new(),
                need: Vec::new(),
            },
            first,
        ))
    }

    /// Takes the responder's `reply`: the next message to send, or `None`
    /// when the sets are reconciled.
    pub fn step(&mut self, reply: &[u8]) -> Result<Option<Vec<u8>>, SetError> {
        self.negentropy
            .reconcile_with_ids(reply, &mut self.have, &mut self.need)
            .map_err(|e| SetError::Malformed(format!("not a negentropy protocol v1 reply: {e}")))
    }

    /// Ids only this side has, and ids only the other side has.
    pub fn into_ids(self) -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
        let bytes = |ids: Vec<Id>| ids.into_iter().map(|id| *id).collect();
        (bytes(self.have), bytes(self.need))
    }
}

/// The responder's recently built sets, by origin.
#[derive(Debug, Default)]
pub struct Responder {
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug)]
struct Cached {
    /// The store's last position when it was built.
    last_position: u64,
    built: Instant,
    storage: Arc<SetStorage>,
}

impl Responder {
    /// The set of what this node's actors addressed to `origin`, built
    /// from `reader` unless a kept one is still good: built at the same
    /// last position (within a minute), or within the last 5 s.
    fn addressed(&self, reader: &Reader, origin: &str) -> Result<Arc<SetStorage>, SetError> {
        let last_position = reader.last_position()?;
        if let Ok(cache) = self.cache.lock()
            && let Some(kept) = cache.get(origin)
            && kept.built.elapsed() < KEEP_UNCHANGED
            && (kept.last_position == last_position || kept.built.elapsed() < CACHE_FOR)
        {
            return Ok(kept.storage.clone());
        }
        let storage = Arc::new(storage(reader, SetIndex::Addressed, origin)?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, c| c.built.elapsed() < KEEP_UNCHANGED);
            if cache.len() >= CACHED_ORIGINS {
                cache.clear();
            }
            cache.insert(
                origin.to_owned(),
                Cached {
                    last_position,
                    built: Instant::now(),
                    storage: storage.clone(),
                },
            );
        }
        Ok(storage)
    }
}

impl Federation {
    /// Answers one negentropy message from `origin` (proven by the
    /// request's signature) over what this node's actors addressed to it.
    pub async fn set_answer(
        self: &Arc<Self>,
        origin: &str,
        msg: Vec<u8>,
    ) -> Result<Vec<u8>, SetError> {
        let federation = self.clone();
        let origin = origin.to_owned();
        tokio::task::spawn_blocking(move || {
            let reader = federation.kernel.store().read()?;
            let storage = federation.responder.addressed(&reader, &origin)?;
            drop(reader);
            answer(&storage, federation.sync.frame_bytes, &msg)
        })
        .await
        .map_err(|e| SetError::Internal(format!("a set-reconciliation task failed: {e}")))?
    }

    /// The JSON text of each activity of `ids` this node's actors
    /// addressed to `origin`, in the order asked, unknown ids left out, at
    /// most [`FETCH_ANSWER_BYTES`] in all.
    pub fn set_items(&self, origin: &str, ids: &[[u8; 32]]) -> Result<Vec<String>, SetError> {
        let reader = self.kernel.store().read()?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for id in ids.iter().take(MAX_FETCH_IDS) {
            let Some(record) = reader.activity(&cid::from_digest(id))? else {
                continue;
            };
            let published = serde_json::from_str::<Value>(&record.json)
                .ok()
                .and_then(|v| v.get("published").and_then(Value::as_str).map(published_ms))
                .unwrap_or(0);
            let key = SetKey {
                published_ms: published,
                id: *id,
            };
            if reader.addressed(origin, &key)?.is_none() {
                continue;
            }
            bytes += record.json.len();
            if bytes > FETCH_ANSWER_BYTES && !out.is_empty() {
                break;
            }
            out.push(record.json);
        }
        Ok(out)
    }
}

/// What one set-reconciliation round with an origin did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRound {
    /// Negentropy messages sent (each one request).
    pub messages: u32,
    /// Bytes of negentropy messages sent and received.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Ids only this node holds (the origin did not address them here, or
    /// no longer lists them): nothing to do.
    pub have: u64,
    /// Ids only the origin lists: fetched.
    pub need: u64,
    /// Activities the origin served.
    pub fetched: u64,
    /// Stored by this round.
    pub stored: u64,
    /// Already here (stored meanwhile).
    pub duplicates: u64,
    /// Kept until their verbs are admitted.
    pub parked: u64,
    /// Served, but naming no actor here any more: not stored.
    pub unaddressed: u64,
    /// The round stopped at its budget with more to do.
    pub more: bool,
}

/// Runs one round of set reconciliation with `origin` and records the
/// outcome in its sync state (keyed by the origin URL).
pub async fn reconcile_origin(
    federation: &Arc<Federation>,
    origin: &str,
) -> Result<SetRound, SyncError> {
    let mut round = SetRound::default();
    let result = run(federation, origin, &mut round).await;
    sync::record(
        federation,
        origin,
        round.stored,
        None,
        None,
        result.as_ref().err(),
    )
    .await?;
    result.map(|()| round)
}

fn fetch_error(e: FetchError) -> SyncError {
    SyncError::Transient(e.to_string())
}

fn task_failed(e: tokio::task::JoinError) -> SyncError {
    SyncError::Transient(format!("a set-reconciliation task failed: {e}"))
}

async fn run(
    federation: &Arc<Federation>,
    origin: &str,
    round: &mut SetRound,
) -> Result<(), SyncError> {
    let settings = &federation.sync;
    let max_fetches = (settings.max_range as usize).div_ceil(FETCH_CHUNK);
    let budget = Budget::new(
        settings
            .set_messages
            .saturating_add(u32::try_from(max_fetches).unwrap_or(u32::MAX)),
    );
    let transient = |e: SetError| SyncError::Transient(e.to_string());
    let (mut initiator, mut msg) = {
        let federation = federation.clone();
        let origin = origin.to_owned();
        let frame = settings.frame_bytes;
        tokio::task::spawn_blocking(move || {
            let reader = federation.kernel.store().read()?;
            let storage = storage(&reader, SetIndex::HeldFrom, &origin)?;
            Initiator::start(storage, frame)
        })
        .await
        .map_err(task_failed)?
        .map_err(transient)?
    };
    let url = format!("{origin}/sync/negentropy");
    loop {
        round.messages += 1;
        round.bytes_sent += msg.len() as u64;
        let body = serde_json::to_vec(&SetMessage {
            msg: HEXLOWER.encode(&msg),
        })
        .map_err(|e| SyncError::Transient(e.to_string()))?;
        let reply = federation
            .fetcher
            .post_json(&url, body, &budget)
            .await
            .map_err(fetch_error)?;
        let reply: SetMessage = serde_json::from_value(reply)
            .map_err(|e| SyncError::Offence(format!("{url} answered no `{{\"msg\"}}`: {e}")))?;
        let reply = HEXLOWER_PERMISSIVE
            .decode(reply.msg.as_bytes())
            .map_err(|e| {
                SyncError::Offence(format!("{url} answered a `msg` that is not hex: {e}"))
            })?;
        round.bytes_received += reply.len() as u64;
        let (back, next) = tokio::task::spawn_blocking(move || {
            let next = initiator.step(&reply);
            (initiator, next)
        })
        .await
        .map_err(task_failed)?;
        initiator = back;
        let next = next.map_err(|e| match e {
            SetError::Malformed(m) => SyncError::Offence(format!("{url}: {m}")),
            other => transient(other),
        })?;
        let Some(next) = next else {
            break;
        };
        msg = next;
        if round.messages >= settings.set_messages
            || round.bytes_sent + round.bytes_received
                >= federation
                    .reconciler
                    .bytes_per_round(settings.bytes_per_round)
        {
            round.more = true;
            break;
        }
    }
    let (have, mut need) = initiator.into_ids();
    round.have = have.len() as u64;
    need.sort_unstable();
    need.dedup();
    round.need = need.len() as u64;
    if need.len() as u64 > settings.max_range {
        need.truncate(usize::try_from(settings.max_range).unwrap_or(usize::MAX));
        round.more = true;
    }
    let mut fetched_bytes = 0u64;
    for chunk in need.chunks(FETCH_CHUNK) {
        let (signed, bytes) = fetch(federation, origin, chunk, &budget).await?;
        round.fetched += signed.len() as u64;
        fetched_bytes += bytes;
        commit(federation, signed, &budget, round).await?;
        if round.bytes_sent + round.bytes_received + fetched_bytes
            >= federation
                .reconciler
                .bytes_per_round(settings.bytes_per_round)
        {
            round.more = true;
            break;
        }
    }
    Ok(())
}

/// Asks `origin` for the activities `ids` and parses what it serves: each
/// one must be a well-formed signed activity (its id recomputed), asked
/// for, and by an author of `origin`; anything else is its offence.
async fn fetch(
    federation: &Federation,
    origin: &str,
    ids: &[[u8; 32]],
    budget: &Budget,
) -> Result<(Vec<Signed>, u64), SyncError> {
    let url = format!("{origin}/sync/fetch");
    let body = serde_json::to_vec(&SetFetch {
        ids: ids.iter().map(|id| HEXLOWER.encode(id)).collect(),
    })
    .map_err(|e| SyncError::Transient(e.to_string()))?;
    let answer = federation
        .fetcher
        .post_json(&url, body, budget)
        .await
        .map_err(fetch_error)?;
    let Some(Value::Array(items)) = answer.get("items") else {
        return Err(SyncError::Offence(format!(
            "{url} answered no `{{\"items\": [...]}}`"
        )));
    };
    let mut wanted: HashSet<[u8; 32]> = ids.iter().copied().collect();
    let mut out = Vec::with_capacity(items.len());
    let mut bytes = 0u64;
    for item in items {
        bytes += item.to_string().len() as u64;
        let signed = super::inbox::parse(item.clone()).map_err(|e| {
            SyncError::Offence(format!(
                "{url} served something that is not a signed activity: {e}"
            ))
        })?;
        if !wanted.remove(&id32(&signed.id)) {
            return Err(SyncError::Offence(format!(
                "{url} served {}, which was not asked for (or served it twice)",
                signed.id
            )));
        }
        if weft_core::model::origin(&signed.header.actor).as_deref() != Some(origin) {
            return Err(SyncError::Offence(format!(
                "{url} served {} by {}, an actor of another origin",
                signed.id, signed.header.actor
            )));
        }
        out.push(signed);
    }
    Ok((out, bytes))
}

/// Verifies a fetched chunk like inbound activities (proofs against the
/// authors' key histories, `published` against this node's clock) and
/// stores it for its local recipients in one transaction, or none of it.
async fn commit(
    federation: &Arc<Federation>,
    signed: Vec<Signed>,
    budget: &Budget,
    round: &mut SetRound,
) -> Result<(), SyncError> {
    if signed.is_empty() {
        return Ok(());
    }
    let verified = sync::verify_all(federation, signed, budget).await?;
    let mut batch = Vec::with_capacity(verified.len());
    for signed in verified {
        let recipients = match federation.local_recipients(&signed, None) {
            Ok(recipients) => recipients,
            // Addressed here once, to no one here now (an actor gone, a
            // follower who left).
            Err(InboxError::Forbidden(_)) => {
                round.unaddressed += 1;
                continue;
            }
            Err(e) => return Err(SyncError::Transient(e.to_string())),
        };
        batch.push((signed, recipients));
    }
    let mut batch = sync::park_unknown(federation, batch, false, &mut round.parked).await?;
    // Each author's activities in log order, so the writer checks their
    // links as it meets them.
    batch.sort_by(|(a, _), (b, _)| {
        (a.header.actor.as_str(), a.header.seq).cmp(&(b.header.actor.as_str(), b.header.seq))
    });
    match federation.kernel.ingest_batch(batch, false).await {
        Ok(report) => {
            round.stored += report.stored;
            round.duplicates += report.duplicates;
            Ok(())
        }
        Err(e @ KernelError::BatchRefused { .. }) => Err(SyncError::Offence(e.to_string())),
        Err(e) => Err(SyncError::Transient(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: impl IntoIterator<Item = u32>) -> SetStorage {
        let mut storage = NegentropyStorageVector::new();
        for n in ids {
            storage
                .insert(
                    1_700_000_000_000 + u64::from(n) * 1000,
                    Id::from_byte_array(id(n)),
                )
                .expect("unsealed");
        }
        storage.seal().expect("sealed once");
        storage
    }

    /// A random-looking id for `n`, as a real digest is: negentropy's
    /// fingerprints are sums of ids, so ids with a linear structure (such
    /// as `n` and `n·k` side by side) collide across ranges.
    fn id(n: u32) -> [u8; 32] {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    /// Runs an exchange to its end; (have, need, messages).
    fn reconcile(
        mine: SetStorage,
        theirs: &SetStorage,
        frame: u64,
    ) -> (Vec<[u8; 32]>, Vec<[u8; 32]>, usize) {
        let (mut initiator, mut msg) = Initiator::start(mine, frame).expect("starts");
        let mut messages = 1;
        loop {
            let reply = answer(theirs, frame, &msg).expect("answers");
            match initiator.step(&reply).expect("steps") {
                Some(next) => {
                    msg = next;
                    messages += 1;
                }
                None => break,
            }
            assert!(messages < 1000, "no end");
        }
        let (mut have, mut need) = initiator.into_ids();
        have.sort_unstable();
        need.sort_unstable();
        (have, need, messages)
    }

    #[test]
    fn two_sets_reconcile_to_exactly_their_differences() {
        // 10 000 in common; 0..50 only mine, 50..120 only theirs.
        let common = 1_000..11_000u32;
        let mine = set(common.clone().chain(0..50));
        let theirs = set(common.chain(50..120));
        let (have, need, messages) = reconcile(mine, &theirs, 64 << 10);
        let mut expect_have: Vec<_> = (0..50).map(id).collect();
        let mut expect_need: Vec<_> = (50..120).map(id).collect();
        expect_have.sort_unstable();
        expect_need.sort_unstable();
        assert_eq!(have, expect_have);
        assert_eq!(need, expect_need);
        assert!(messages <= 6, "{messages} messages");
    }

    #[test]
    fn equal_and_empty_sets() {
        let (have, need, messages) = reconcile(set(0..5000), &set(0..5000), 64 << 10);
        assert!(have.is_empty() && need.is_empty());
        assert_eq!(messages, 1);
        let (have, need, _) = reconcile(set([]), &set(0..40), 64 << 10);
        assert!(have.is_empty());
        assert_eq!(need.len(), 40);
        let (have, need, _) = reconcile(set(0..40), &set([]), 64 << 10);
        assert_eq!(have.len(), 40);
        assert!(need.is_empty());
    }

    #[test]
    fn a_small_frame_takes_more_messages_and_finds_the_same() {
        let mine = set((0..20_000).filter(|n| n % 7 != 0));
        let theirs = set((0..20_000).filter(|n| n % 11 != 0));
        let (have, need, small) = reconcile(mine.clone(), &theirs, 4096);
        let (have_big, need_big, big) = reconcile(mine, &theirs, 0);
        assert_eq!((have.len(), need.len()), (have_big.len(), need_big.len()));
        assert_eq!(have, have_big);
        assert_eq!(need, need_big);
        assert!(small > big, "{small} ≤ {big}");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let theirs = set(0..100);
        for msg in [
            &b""[..],
            b"\x61",
            b"\x61\xff\xff\xff",
            b"\x61\x00\x40",
            b"\x61\x01\x02\x03",
        ] {
            match answer(&theirs, 64 << 10, msg) {
                Err(SetError::Malformed(_)) | Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let (mut initiator, _) = Initiator::start(set(0..10), 4096).expect("starts");
        assert!(matches!(
            initiator.step(b"\x00"),
            Err(SetError::Malformed(_))
        ));
    }
}

//! Pruning: the store's side of a `replication` policy's `keep` rule
//! (docs/architecture.md §10). [`Reader::held_before`] finds, for one
//! remote origin, which of its authors have activities here older than a
//! time; [`WriteTxn::prune`] deletes one author's activities published
//! before a time from every table that holds them (record, id index, log
//! position, inboxes, evidence, pending reaction, the origin's usage) and
//! moves their rows of the `held_from` set index to `pruned`, so that set
//! reconciliation counts them as held and does not fetch them again.
//!
//! What it is not: the decision what to prune (the kernel's policy
//! evaluation) or which activities must stay (the caller's `spare`
//! predicate says), and not the projections: the kernel rebuilds them in
//! the same transaction. The in-memory id tail is told after the commit
//! ([`crate::RecentIds::forget`]).

use std::collections::{BTreeMap, HashSet};

use redb::ReadableTable;

use crate::tables::{
    ACTIVITY_IDS, EVIDENCE, HELD_FROM, INBOX, LOG, ORIGIN_USAGE, PRUNED, REACTIONS, RECORDS,
    SYNC_STATE, set_row_range, split_set_row_key,
};
use crate::{ActivityRecord, OriginUsage, Reader, StoreError, SyncState, WriteTxn};

/// What one [`WriteTxn::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Activities deleted.
    pub activities: u64,
    /// Bytes of their JSON text.
    pub bytes: u64,
    /// Their ids and, for those with a log position, (author, seq): what
    /// the id tail must forget once the transaction commits.
    pub forgotten: Vec<(String, Option<(String, u64)>)>,
}

/// The end of an origin's set rows published before `before_ms`.
fn rows_before(origin: &str, before_ms: u64) -> (Vec<u8>, Vec<u8>) {
    let (start, _) = set_row_range(origin);
    let mut end = start.clone();
    end.extend_from_slice(&before_ms.to_be_bytes());
    (start, end)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

impl Reader {
    /// The authors of `origin` with activities held here published before
    /// `before_ms`, other than those `spare` keeps, each with the oldest
    /// such `published` (ms). Reads the origin's rows before that time.
    pub fn held_before(
        &self,
        origin: &str,
        before_ms: u64,
        spare: &dyn Fn(&ActivityRecord) -> bool,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let held = self.txn.open_table(HELD_FROM)?;
        let records = self.txn.open_table(RECORDS)?;
        let (start, end) = rows_before(origin, before_ms);
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for entry in held.range(start.as_slice()..end.as_slice())? {
            let (k, v) = entry?;
            let key = split_set_row_key(k.value()).ok_or_else(|| {
                corrupt("a held_from row whose key is not (origin, published, id)")
            })?;
            let Some(bytes) = records.get(v.value())? else {
                continue;
            };
            let record: ActivityRecord = postcard::from_bytes(bytes.value())?;
            if spare(&record) {
                continue;
            }
            out.entry(record.actor)
                .and_modify(|oldest| *oldest = (*oldest).min(key.published_ms))
                .or_insert(key.published_ms);
        }
        Ok(out)
    }
}

impl WriteTxn {
    /// Deletes the activities of the remote author `actor` (of `origin`)
    /// published before `before_ms`, except those `spare` keeps, and takes
    /// them out of the inboxes of `inboxes` (local actor ids). Raises the
    /// author's sync state's `checked_through` past the highest seq
    /// deleted, so that hole filling does not fetch them back.
    pub fn prune(
        &self,
        origin: &str,
        actor: &str,
        before_ms: u64,
        inboxes: &[String],
        spare: &dyn Fn(&ActivityRecord) -> bool,
    ) -> Result<Pruned, StoreError> {
        let txn = &self.txn;
        let mut held = txn.open_table(HELD_FROM)?;
        let mut records = txn.open_table(RECORDS)?;
        let mut victims: Vec<(Vec<u8>, u64, ActivityRecord)> = Vec::new();
        {
            let (start, end) = rows_before(origin, before_ms);
            for entry in held.range(start.as_slice()..end.as_slice())? {
                let (k, v) = entry?;
                let Some(bytes) = records.get(v.value())? else {
                    continue;
                };
                let record: ActivityRecord = postcard::from_bytes(bytes.value())?;
                if record.actor == actor && !spare(&record) {
                    victims.push((k.value().to_vec(), v.value(), record));
                }
            }
        }
        let mut out = Pruned::default();
        if victims.is_empty() {
            return Ok(out);
        }
        let mut pruned = txn.open_table(PRUNED)?;
        let mut ids = txn.open_table(ACTIVITY_IDS)?;
        let mut log = txn.open_table(LOG)?;
        let mut evidence = txn.open_table(EVIDENCE)?;
        let mut reactions = txn.open_table(REACTIONS)?;
        let mut positions = HashSet::with_capacity(victims.len());
        let mut top_seq = 0;
        for (key, position, record) in &victims {
            held.remove(key.as_slice())?;
            pruned.insert(key.as_slice(), ())?;
            records.remove(*position)?;
            ids.remove(record.id.as_bytes())?;
            evidence.remove(record.id.as_str())?;
            reactions.remove(*position)?;
            let slot = (record.seq > 0).then(|| (record.actor.clone(), record.seq));
            if record.seq > 0 {
                log.remove((record.actor.as_bytes(), record.seq))?;
                top_seq = top_seq.max(record.seq);
            }
            positions.insert(*position);
            out.activities += 1;
            out.bytes += record.json.len() as u64;
            out.forgotten.push((record.id.clone(), slot));
        }
        let mut inbox = txn.open_table(INBOX)?;
        for recipient in inboxes {
            let key = recipient.as_bytes();
            let gone: Vec<u64> = inbox
                .range((key, 0)..=(key, u64::MAX))?
                .filter_map(|entry| match entry {
                    Ok((k, v)) => positions.contains(&v.value()).then(|| Ok(k.value().1)),
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()?;
            for n in gone {
                inbox.remove((key, n))?;
            }
        }
        let mut usage_table = txn.open_table(ORIGIN_USAGE)?;
        let mut usage: OriginUsage = match usage_table.get(origin)? {
            Some(v) => postcard::from_bytes(v.value())?,
            None => OriginUsage::default(),
        };
        usage.activities = usage.activities.saturating_sub(out.activities);
        usage.bytes = usage.bytes.saturating_sub(out.bytes);
        usage_table.insert(origin, postcard::to_stdvec(&usage)?.as_slice())?;
        if top_seq > 0 {
            let mut states = txn.open_table(SYNC_STATE)?;
            let mut state: SyncState = match states.get(actor)? {
                Some(v) => postcard::from_bytes(v.value())?,
                None => SyncState {
                    actor: actor.to_owned(),
                    ..SyncState::default()
                },
            };
            state.checked_through = state.checked_through.max(top_seq);
            states.insert(actor, postcard::to_stdvec(&state)?.as_slice())?;
        }
        Ok(out)
    }
}

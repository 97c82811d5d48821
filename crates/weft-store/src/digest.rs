//! A digest of what a node holds: its log, each projection's state, and
//! the tables modules live in, each as a count and a BLAKE3 hash of the
//! entries in key order. Two snapshots with equal digests hold the same
//! entries; an operator compares a node with itself before and after
//! something (a rebuild must not change a projection, a refused request
//! must not change anything), or two nodes that should agree.
//!
//! It reads everything, so it is an admin tool, not something to ask on
//! every request.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;

use super::tables::{
    ACTIVITY_IDS, ARTIFACTS, DELIVERIES, FORKS, INBOX, LOG, MODULES, PARKED, PENDING_MODULES,
    POLICIES, PUBLIC_LOG, RECORDS,
};
use super::{Reader, StoreError};

/// Entries of one table (or one projection's part of the state table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Part {
    pub entries: u64,
    /// BLAKE3 of the entries in key order, hex.
    pub blake3: String,
}

/// A node's content, part by part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    /// The activities and the indexes over them.
    pub log: BTreeMap<&'static str, Part>,
    /// Each projection's key-value state.
    pub projections: BTreeMap<String, Part>,
    /// Artifacts, module definitions, policies, parked activities and
    /// pending modules.
    pub modules: BTreeMap<&'static str, Part>,
    /// Delivery jobs and fork evidence.
    pub federation: BTreeMap<&'static str, Part>,
}

/// Hashes entries, each key and value length-prefixed so that no two
/// different sequences of entries hash alike.
#[derive(Default)]
struct Hasher {
    hasher: blake3::Hasher,
    entries: u64,
}

impl Hasher {
    fn entry(&mut self, key: &[u8], value: &[u8]) {
        for part in [key, value] {
            self.hasher.update(&(part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
        self.entries += 1;
    }

    fn finish(&self) -> Part {
        Part {
            entries: self.entries,
            blake3: self.hasher.finalize().to_hex().to_string(),
        }
    }
}

impl Reader {
    /// The digest of this snapshot.
    pub fn digest(&self) -> Result<Digest, StoreError> {
        let mut log = BTreeMap::new();
        log.insert("records", self.part(RECORDS, |k| k.to_be_bytes().to_vec())?);
        log.insert("activity_ids", self.part(ACTIVITY_IDS, <[u8]>::to_vec)?);
        log.insert("log", self.part(LOG, pair)?);
        log.insert("public_log", self.part(PUBLIC_LOG, pair)?);
        log.insert("inbox", self.part(INBOX, pair)?);
        // The generation of each projection that is served.
        let mut projections: BTreeMap<String, Hasher> = BTreeMap::new();
        crate::projections::served_state(&self.txn, |name, key, value| {
            projections
                .entry(name.to_owned())
                .or_default()
                .entry(key.as_bytes(), value.as_bytes());
        })?;
        let mut modules = BTreeMap::new();
        modules.insert(
            "artifacts",
            self.part(ARTIFACTS, |k| k.as_bytes().to_vec())?,
        );
        modules.insert("modules", self.part(MODULES, |k| k.as_bytes().to_vec())?);
        modules.insert("policies", self.part(POLICIES, |k| k.as_bytes().to_vec())?);
        modules.insert(
            "parked",
            self.part(PARKED, |(a, b)| [a, "\0", b].concat().into_bytes())?,
        );
        modules.insert(
            "pending_modules",
            self.part(PENDING_MODULES, |k| k.as_bytes().to_vec())?,
        );
        let mut federation = BTreeMap::new();
        federation.insert(
            "deliveries",
            self.part(DELIVERIES, |k| k.to_be_bytes().to_vec())?,
        );
        federation.insert(
            "forks",
            self.part(FORKS, |(a, seq, b)| {
                [a.as_bytes(), &seq.to_be_bytes(), b.as_bytes()].concat()
            })?,
        );
        Ok(Digest {
            log,
            projections: projections
                .into_iter()
                .map(|(name, h)| (name, h.finish()))
                .collect(),
            modules,
            federation,
        })
    }

    /// The part of a table whose values are bytes-like, its keys made bytes
    /// by `key`.
    fn part<K, V>(
        &self,
        table: TableDefinition<K, V>,
        key: impl Fn(K::SelfType<'_>) -> Vec<u8>,
    ) -> Result<Part, StoreError>
    where
        K: redb::Key + 'static,
        V: redb::Value + 'static,
        for<'a> V::SelfType<'a>: ToBytes,
    {
        let mut hasher = Hasher::default();
        let table = match self.txn.open_table(table) {
            Ok(table) => table,
            // A table no write has made yet is empty.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(hasher.finish()),
            Err(e) => return Err(e.into()),
        };
        for entry in table.iter()? {
            let (k, v) = entry?;
            hasher.entry(&key(k.value()), &v.value().to_bytes());
        }
        Ok(hasher.finish())
    }
}

/// A key of a two-part index as bytes.
fn pair((a, n): (&[u8], u64)) -> Vec<u8> {
    [a, &n.to_be_bytes()].concat()
}

/// Values the digest reads as bytes.
trait ToBytes {
    fn to_bytes(&self) -> Vec<u8>;
}

impl ToBytes for &[u8] {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl ToBytes for &str {
    fn to_bytes(&self) -> Vec<u8> {
        str::as_bytes(self).to_vec()
    }
}

impl ToBytes for u64 {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
}

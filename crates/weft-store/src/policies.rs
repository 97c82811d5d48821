//! The policies' area of the store: each policy name's record of versions
//! (`DefinePolicy` activities, docs/architecture.md §10), written by the
//! writer in the transaction that appends the definition, and read back
//! through [`crate::Reader`].
//!
//! What it is not: the meaning of a policy. A version's kind and spec are
//! kept as the kernel checked them (the spec as JSON text); the kernel
//! parses and evaluates them.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::tables::POLICIES;
use crate::{Reader, StoreError, WriteTxn};

/// One definition of a policy name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// 1 for the first definition of the name, then one more each time.
    pub version: u32,
    /// `replication`, `modules`, `follows` or `sync`.
    pub kind: String,
    /// The checked spec, as JSON object text.
    pub spec: String,
    /// The `DefinePolicy` activity's id.
    pub activity: String,
    /// Its actor.
    pub actor: String,
    /// Its `published`.
    pub published: String,
    /// Its global position in this node's log.
    pub position: u64,
}

/// A policy name and every version it has had (newest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub versions: Vec<PolicyVersion>,
}

impl WriteTxn {
    /// Policy `name`'s record of versions.
    pub fn policy(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        self.txn
            .open_table(POLICIES)?
            .get(name)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn put_policy(&self, record: &PolicyRecord) -> Result<(), StoreError> {
        self.txn.open_table(POLICIES)?.insert(
            record.name.as_str(),
            postcard::to_stdvec(record)?.as_slice(),
        )?;
        Ok(())
    }
}

impl Reader {
    /// Every policy with its versions, by name.
    pub fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        let table = match self.txn.open_table(POLICIES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(postcard::from_bytes(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Policy `name` with its versions.
    pub fn policy(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        let table = match self.txn.open_table(POLICIES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        table
            .get(name)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }
}

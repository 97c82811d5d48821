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
    /// Its `description`, if it has one.
    pub description: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn version(version: u32, spec: &str) -> PolicyVersion {
        PolicyVersion {
            version,
            kind: "sync".into(),
            spec: spec.into(),
            activity: format!("bdefine{version}"),
            actor: "https://n.example/actors/node".into(),
            published: "2026-01-01T00:00:00.000Z".into(),
            position: u64::from(version) + 1,
            description: None,
        }
    }

    /// A record written in a committed transaction reads back whole, in
    /// the digest too; an aborted one leaves nothing.
    #[test]
    fn policies_read_back_as_written_and_only_once_committed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("weft.redb"))?;
        assert!(store.read()?.policies()?.is_empty());
        let empty = store.read()?.digest()?;
        assert_eq!(empty.modules["policies"].entries, 0);

        let record = PolicyRecord {
            name: "catch-up".into(),
            versions: vec![version(1, "{}"), version(2, r#"{"interval":"1m"}"#)],
        };
        let txn = store.begin_write()?;
        txn.put_policy(&record)?;
        assert_eq!(txn.policy("catch-up")?, Some(record.clone()));
        txn.abort()?;
        assert!(store.read()?.policy("catch-up")?.is_none());
        assert_eq!(store.read()?.digest()?, empty);

        let txn = store.begin_write()?;
        txn.put_policy(&record)?;
        txn.commit()?;
        let reader = store.read()?;
        assert_eq!(reader.policies()?, vec![record.clone()]);
        assert_eq!(reader.policy("catch-up")?, Some(record));
        assert_eq!(reader.policy("other")?, None);
        assert_eq!(reader.digest()?.modules["policies"].entries, 1);
        Ok(())
    }
}

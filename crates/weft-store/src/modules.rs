//! The modules' area of the store, as the writer's transaction sees it:
//! artifacts (WASM components by content id) and each module's record of
//! versions. Reads outside the writer go through [`crate::Reader`].

use redb::ReadableTable;

use crate::tables::{ARTIFACTS, MODULES};
use crate::{ModuleRecord, StoreError, WriteTxn};

impl WriteTxn {
    /// The bytes of artifact `id`.
    pub fn artifact(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .txn
            .open_table(ARTIFACTS)?
            .get(id)?
            .map(|b| b.value().to_vec()))
    }

    /// Module `name`'s record of versions.
    pub fn module(&self, name: &str) -> Result<Option<ModuleRecord>, StoreError> {
        self.txn
            .open_table(MODULES)?
            .get(name)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn put_module(&self, record: &ModuleRecord) -> Result<(), StoreError> {
        self.txn.open_table(MODULES)?.insert(
            record.name.as_str(),
            postcard::to_stdvec(record)?.as_slice(),
        )?;
        Ok(())
    }
}

//! What a module can reach while it runs: the read-only log and, for a
//! projection, its own key-value store, under every contract version. Writes
//! made during a fold are buffered here and applied by the caller only if
//! the fold succeeds.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use std::sync::Arc;

use super::bindings::{v0_1, v0_2, v0_3};
use super::limiter::Meter;
use weft_store::{ActivityRecord, FoldTxn, RecentIds, Snapshot, Store, StoreError, WriteTxn};

/// Which stored activities a query's `log.get` answers: the view of whoever
/// asked (a public one for anyone, say). What it refuses reads as absent.
/// Folds and verbs see the whole log; so does a query run without one.
pub type Visible = Arc<dyn Fn(&ActivityRecord) -> bool + Send + Sync>;

/// A projection's fold session: the lent transaction, and the writes of
/// the session's successful folds, kept in memory (later folds read them)
/// and written to the store once, when the session ends. A key written by
/// many folds of a batch (a counter) reaches the store once.
pub struct WriteState {
    tables: FoldTxn,
    /// Writes of the session's successful folds: `None` is a delete.
    overlay: BTreeMap<String, Option<String>>,
    /// Values read from the store during the session. The overlay is
    /// consulted first, so an entry here is never stale: every write of
    /// the session lands in the overlay. Hashed with a seeded fast hash:
    /// std's SipHash of each key was a twentieth of a fold that reads
    /// keys it does not find.
    reads: HashMap<String, Option<String>, foldhash::fast::RandomState>,
}

impl std::fmt::Debug for WriteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteState")
            .field("overlay", &self.overlay.len())
            .finish_non_exhaustive()
    }
}

impl WriteState {
    /// Opens the fold tables in `txn`; on failure `txn` is dropped
    /// (aborted), as the batch it belongs to cannot commit.
    pub fn open(txn: WriteTxn, ids: Arc<RecentIds>) -> Result<Self, StoreError> {
        Ok(Self {
            tables: FoldTxn::open(txn, ids)?,
            overlay: BTreeMap::new(),
            reads: HashMap::default(),
        })
    }

    /// Gives the transaction back, for a session that wrote nothing (a
    /// verb's).
    pub fn release(self) -> WriteTxn {
        self.tables.into_txn()
    }

    /// Keeps a successful fold's writes.
    pub fn keep(&mut self, writes: &mut BTreeMap<String, Option<String>>) {
        if self.overlay.is_empty() {
            std::mem::swap(&mut self.overlay, writes);
        } else {
            // Entry by entry: `BTreeMap::append` rebuilds the whole map, which
            // would make a session quadratic in its folds.
            while let Some((key, value)) = writes.pop_first() {
                self.overlay.insert(key, value);
            }
        }
    }

    /// Writes the session's writes to `projection`'s store and gives the
    /// transaction back.
    pub fn finish(mut self, projection: &str) -> Result<WriteTxn, StoreError> {
        self.tables.kv_apply(projection, &self.overlay)?;
        Ok(self.tables.into_txn())
    }
}

/// Where reads come from during one call.
#[derive(Default)]
pub enum Source {
    #[default]
    None,
    /// A committed snapshot (validate, query).
    Read(Snapshot),
    /// A committed snapshot taken when the module first reads the log:
    /// most verbs never do, and a read transaction has a cost.
    Later(Arc<Store>),
    /// The writer's open transaction (fold), so a fold sees earlier
    /// activities of the same batch.
    Write(WriteState),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Read(_) => "Read",
            Self::Later(_) => "Later",
            Self::Write(_) => "Write",
        })
    }
}

/// A projection's view of its store during one call.
#[derive(Debug, Default)]
pub struct Kv {
    pub projection: String,
    /// Writes of this call: `None` is a delete.
    pub buffer: BTreeMap<String, Option<String>>,
    pub buffered_bytes: usize,
    pub writable: bool,
}

/// The data of one module instance's store.
pub struct HostState {
    pub limits: Meter,
    pub source: Source,
    pub kv: Kv,
    /// Most bytes a fold may buffer.
    pub max_write_bytes: usize,
    /// Fuel left for the work the host does in this call's imports: a
    /// second budget beside the guest's own, of the same size, so a module
    /// cannot make the host work without bound with few instructions of
    /// its own.
    pub host_fuel: u64,
    /// The JSON text of the activities the running call is about, by id,
    /// when they may not be in `source` (a `validate` before the activity
    /// is stored, a dry run's folds): what a 0.2.0 module's `log.get` of
    /// them answers.
    pub current: Option<Arc<Current>>,
    /// The asker's view, while a query runs for someone.
    pub visible: Option<Visible>,
}

/// Activities' JSON text by id: [`HostState::current`].
pub type Current = HashMap<String, Arc<str>, foldhash::fast::RandomState>;

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("kv", &self.kv)
            .finish_non_exhaustive()
    }
}

/// Longest key a module may use.
pub const MAX_KEY: usize = 1024;
/// Most entries one scan returns.
const MAX_SCAN: u32 = 1000;

/// What the host charges for an import, in fuel: a fixed cost per call
/// and one unit per byte it moves. The fixed costs follow what the calls
/// take here against what fuel takes (≈ 1 unit per nanosecond of one
/// core): a buffered write or a read ≈ 3 µs, a scan ≈ 20 µs, so a module
/// that only makes host calls is stopped about as soon as one that loops.
mod cost {
    /// A read of the log or the module's store.
    pub const READ: u64 = 3_000;
    /// A buffered write (0.1.0), or a call with a fold's writes (0.2.0),
    /// plus [`ENTRY`] for each write it carries.
    pub const WRITE: u64 = 3_000;
    /// A scan, plus [`ENTRY`] for each entry it returns.
    pub const SCAN: u64 = 20_000;
    pub const ENTRY: u64 = 500;
}

impl HostState {
    /// Takes `units` from the host budget; an exhausted budget ends the
    /// call as running out of fuel does.
    fn charge(&mut self, units: u64) -> wasmtime::Result<()> {
        match self.host_fuel.checked_sub(units) {
            Some(left) => {
                self.host_fuel = left;
                Ok(())
            }
            None => {
                self.host_fuel = 0;
                Err(wasmtime::Trap::OutOfFuel.into())
            }
        }
    }

    /// Takes a [`Source::Later`]'s snapshot, before the first read.
    fn resolve(&mut self) -> wasmtime::Result<()> {
        if let Source::Later(store) = &self.source {
            self.source = Source::Read(store.begin_read()?);
        }
        Ok(())
    }

    fn log_get(&mut self, id: &str) -> wasmtime::Result<Option<String>> {
        // A weft activity is found by its URL id as by its content id.
        let id = weft_core::model::cid::internal(id);
        self.charge(cost::READ + id.len() as u64)?;
        if let Some(json) = self.current.as_ref().and_then(|c| c.get(id)) {
            let json = json.to_string();
            self.charge(json.len() as u64)?;
            return Ok(Some(json));
        }
        self.resolve()?;
        let found = match &self.source {
            Source::None | Source::Later(_) => None,
            Source::Read(snapshot) => snapshot
                .activity(id)?
                .filter(|r| self.visible.as_ref().is_none_or(|visible| visible(r)))
                .map(|r| r.json),
            Source::Write(state) => state.tables.activity_json(id)?,
        };
        self.charge(found.as_ref().map_or(0, |j| j.len() as u64))?;
        Ok(found)
    }

    fn kv_get(&mut self, key: &str) -> wasmtime::Result<Option<String>> {
        let value = self.kv_lookup(key)?;
        self.charge(cost::READ + (key.len() + value.as_ref().map_or(0, String::len)) as u64)?;
        Ok(value)
    }

    fn kv_lookup(&mut self, key: &str) -> wasmtime::Result<Option<String>> {
        if let Some(buffered) = self.kv.buffer.get(key) {
            return Ok(buffered.clone());
        }
        self.resolve()?;
        let projection = self.kv.projection.as_str();
        Ok(match &mut self.source {
            Source::None | Source::Later(_) => None,
            Source::Read(snapshot) => snapshot.kv_get(projection, key)?,
            Source::Write(state) => match state.overlay.get(key) {
                Some(kept) => kept.clone(),
                None => match state.reads.get(key) {
                    Some(read) => read.clone(),
                    None => {
                        let read = state.tables.kv_get(projection, key)?;
                        state.reads.insert(key.to_owned(), read.clone());
                        read
                    }
                },
            },
        })
    }

    /// A 0.2.0 or 0.3.0 fold's writes, in one call: (key, value or
    /// `None` for a delete).
    fn kv_write(
        &mut self,
        count: usize,
        writes: impl Iterator<Item = (String, Option<String>)>,
    ) -> wasmtime::Result<()> {
        self.charge(cost::WRITE + cost::ENTRY * count as u64)?;
        for (key, value) in writes {
            self.kv_buffer(key, value)?;
        }
        Ok(())
    }

    /// A 0.1.0 write.
    fn kv_put(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        self.charge(cost::WRITE)?;
        self.kv_buffer(key, value)
    }

    fn kv_buffer(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        if !self.kv.writable {
            wasmtime::bail!("the key-value store is read-only during a query");
        }
        if key.len() > MAX_KEY {
            wasmtime::bail!(
                "key of {} bytes is longer than the {MAX_KEY}-byte limit",
                key.len()
            );
        }
        self.charge((key.len() + value.as_ref().map_or(0, String::len)) as u64)?;
        self.kv.buffered_bytes += key.len() + value.as_ref().map_or(0, String::len);
        if self.kv.buffered_bytes > self.max_write_bytes {
            wasmtime::bail!(
                "the fold wrote more than its {}-byte budget",
                self.max_write_bytes
            );
        }
        self.kv.buffer.insert(key, value);
        Ok(())
    }

    fn kv_scan(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        self.charge(cost::SCAN + (prefix.len() + after.map_or(0, str::len)) as u64)?;
        self.resolve()?;
        let limit = limit.min(MAX_SCAN) as usize;
        let projection = self.kv.projection.as_str();
        // An `after` before the prefix excludes nothing the prefix covers.
        let after = after.filter(|a| *a >= prefix);
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        // The session's kept writes (fold sessions only) and this call's
        // buffer lie over the stored entries, in that order.
        let empty = BTreeMap::new();
        let kept = match &self.source {
            Source::Write(state) => &state.overlay,
            _ => &empty,
        };
        let in_range = |layer: &'_ BTreeMap<String, Option<String>>| {
            layer
                .range::<str, _>((lower, Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let layers = [in_range(kept), in_range(&self.kv.buffer)];
        // Stored entries after the start, enough to fill `limit` even if
        // the layers above delete some.
        let deletes = layers.iter().flatten().filter(|(_, v)| v.is_none()).count();
        let want = limit + deletes;
        let from = after.unwrap_or(prefix);
        let mut stored: Vec<(String, String)> = Vec::new();
        let collect = |key: &str, value: &str| -> bool {
            if !key.starts_with(prefix) || stored.len() >= want {
                return false;
            }
            if after.is_none_or(|a| key > a) {
                stored.push((key.to_owned(), value.to_owned()));
            }
            true
        };
        match &self.source {
            Source::None | Source::Later(_) => {}
            Source::Read(snapshot) => snapshot.kv_scan(projection, from, collect)?,
            Source::Write(state) => state.tables.kv_scan(projection, from, collect)?,
        }
        // Upper layers win: their values replace, their deletes remove.
        let mut merged: BTreeMap<String, String> = stored.into_iter().collect();
        for (key, value) in layers.into_iter().flatten() {
            match value {
                Some(v) => merged.insert(key, v),
                None => merged.remove(&key),
            };
        }
        let found: Vec<(String, String)> = merged.into_iter().take(limit).collect();
        let moved: usize = found.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.charge(cost::ENTRY * found.len() as u64 + moved as u64)?;
        Ok(found)
    }
}

impl v0_1::types::Host for HostState {}

impl v0_1::log::Host for HostState {
    fn get(&mut self, id: String) -> wasmtime::Result<Option<String>> {
        self.log_get(&id)
    }
}

impl v0_1::projection::weft::module::kv::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.kv_get(&key)
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.kv_put(key, Some(value))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.kv_put(key, None)
    }

    fn scan(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        self.kv_scan(&prefix, after.as_deref(), limit)
    }
}

/// The imports of a contract version whose `kv` takes a fold's writes in
/// one `write` call (0.2.0 and 0.3.0: the same interfaces, generated per
/// version).
macro_rules! batched_imports {
    ($version:ident) => {
        impl $version::types::Host for HostState {}

        impl $version::log::Host for HostState {
            fn get(&mut self, id: String) -> wasmtime::Result<Option<String>> {
                self.log_get(&id)
            }
        }

        impl $version::projection::weft::module::kv::Host for HostState {
            fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
                self.kv_get(&key)
            }

            fn scan(
                &mut self,
                prefix: String,
                after: Option<String>,
                limit: u32,
            ) -> wasmtime::Result<Vec<(String, String)>> {
                self.kv_scan(&prefix, after.as_deref(), limit)
            }

            fn write(&mut self, writes: Vec<$version::types::Change>) -> wasmtime::Result<()> {
                let count = writes.len();
                self.kv_write(
                    count,
                    writes.into_iter().map(|write| match write {
                        $version::types::Change::Set((key, value)) => (key, Some(value)),
                        $version::types::Change::Delete(key) => (key, None),
                    }),
                )
            }
        }
    };
}

batched_imports!(v0_2);
batched_imports!(v0_3);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_store::Store;

    fn state(source: Source) -> HostState {
        HostState {
            limits: Meter::new(1 << 20, 1000),
            source,
            kv: Kv {
                projection: "p".into(),
                writable: true,
                ..Kv::default()
            },
            max_write_bytes: 1 << 20,
            host_fuel: u64::MAX,
            current: None,
            visible: None,
        }
    }

    fn put(state: &mut HostState, key: &str, value: Option<&str>) -> wasmtime::Result<()> {
        state.kv_put(key.into(), value.map(str::to_owned))
    }

    /// Stored entries (remembered once read), a session's kept writes and
    /// the running fold's buffer read as one store, upper layers winning;
    /// only kept writes reach the table when the session ends.
    #[test]
    fn fold_session_layers() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join(weft_store::FILE_NAME))?;
        let ids = Arc::new(RecentIds::default());
        let mut tables = FoldTxn::open(store.begin_write()?, ids.clone())?;
        let entries = |keys: &[&str], value: &str| -> BTreeMap<String, Option<String>> {
            keys.iter()
                .map(|k| ((*k).to_owned(), Some(value.to_owned())))
                .collect()
        };
        tables.kv_apply("p", &entries(&["a1", "a2", "a3", "a4", "a5"], "stored"))?;
        tables.kv_apply("q", &entries(&["a0"], "other projection"))?;
        // A projection whose name starts with `p` stays apart.
        tables.kv_apply("p2", &entries(&["a0"], "other projection"))?;
        let txn = tables.into_txn();
        let mut host = state(Source::Write(WriteState::open(
            txn,
            Arc::new(RecentIds::default()),
        )?));

        // Reads from the store are remembered for the session; the writes
        // that follow must still win over them.
        for key in ["a1", "a2", "a3"] {
            assert_eq!(host.kv_get(key)?.as_deref(), Some("stored"));
        }

        // A first fold's writes, kept by the session.
        put(&mut host, "a1", None)?;
        put(&mut host, "a2", Some("changed"))?;
        put(&mut host, "a6", Some("new"))?;
        let Source::Write(session) = &mut host.source else {
            anyhow::bail!("a write source")
        };
        session.keep(&mut host.kv.buffer);
        assert!(host.kv.buffer.is_empty());

        // A second fold's buffer, not (yet) kept.
        put(&mut host, "a3", None)?;
        put(&mut host, "a0", Some("buffered"))?;

        let keys = |entries: Vec<(String, String)>| -> Vec<String> {
            entries
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        };
        assert_eq!(
            keys(host.kv_scan("a", None, 3)?),
            ["a0=buffered", "a2=changed", "a4=stored"]
        );
        assert_eq!(
            keys(host.kv_scan("a", Some("a2"), 10)?),
            ["a4=stored", "a5=stored", "a6=new"]
        );
        // A cursor before the prefix skips nothing the prefix covers.
        assert_eq!(
            keys(host.kv_scan("a", Some("0"), 2)?),
            ["a0=buffered", "a2=changed"]
        );
        assert_eq!(host.kv_get("a1")?, None);
        assert_eq!(host.kv_get("a3")?, None);
        assert_eq!(host.kv_get("a2")?.as_deref(), Some("changed"));
        assert_eq!(host.kv_get("a5")?.as_deref(), Some("stored"));

        // The second fold fails: its buffer is dropped, and what it
        // deleted reads as stored again; the session ends.
        host.kv.buffer.clear();
        assert_eq!(host.kv_get("a3")?.as_deref(), Some("stored"));
        let Source::Write(session) = std::mem::take(&mut host.source) else {
            anyhow::bail!("a write source")
        };
        let tables = FoldTxn::open(session.finish("p")?, ids)?;
        let mut stored: Vec<String> = Vec::new();
        for projection in ["p", "p2", "q"] {
            tables.kv_scan(projection, "", |key, value| {
                stored.push(format!("{projection}/{key}={value}"));
                true
            })?;
        }
        assert_eq!(
            stored,
            [
                "p/a2=changed",
                "p/a3=stored",
                "p/a4=stored",
                "p/a5=stored",
                "p/a6=new",
                "p2/a0=other projection",
                "q/a0=other projection"
            ]
        );
        Ok(())
    }
}

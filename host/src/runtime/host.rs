//! What a module can reach while it runs: the read-only log and, for a
//! projection, its own key-value store. Writes made during a fold are
//! buffered here and applied by the caller only if the fold succeeds.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use wasmtime::StoreLimits;

use super::bindings::{projection, verb};
use crate::store::ActivityRecord;
use crate::store::tables::{ACTIVITIES, PROJECTION_KV};

/// Where reads come from during one call.
#[derive(Default)]
pub enum Source {
    #[default]
    None,
    /// A committed snapshot (validate, query).
    Read(ReadTransaction),
    /// The writer's open transaction (fold), so a fold sees earlier
    /// activities of the same batch.
    Write(Box<WriteTransaction>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Read(_) => "Read",
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
    pub limits: StoreLimits,
    pub source: Source,
    pub kv: Kv,
    /// Most bytes a fold may buffer.
    pub max_write_bytes: usize,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("kv", &self.kv)
            .finish_non_exhaustive()
    }
}

/// Longest key a module may use.
const MAX_KEY: usize = 1024;
/// Most entries one scan returns.
const MAX_SCAN: u32 = 1000;

impl HostState {
    fn log_get(&mut self, id: &str) -> wasmtime::Result<Option<String>> {
        let bytes = match &self.source {
            Source::None => return Ok(None),
            Source::Read(txn) => txn
                .open_table(ACTIVITIES)?
                .get(id)?
                .map(|v| v.value().to_vec()),
            Source::Write(txn) => txn
                .open_table(ACTIVITIES)?
                .get(id)?
                .map(|v| v.value().to_vec()),
        };
        Ok(match bytes {
            Some(b) => Some(postcard::from_bytes::<ActivityRecord>(&b)?.json),
            None => None,
        })
    }

    fn kv_get(&mut self, key: &str) -> wasmtime::Result<Option<String>> {
        if let Some(buffered) = self.kv.buffer.get(key) {
            return Ok(buffered.clone());
        }
        let k = (self.kv.projection.as_str(), key);
        Ok(match &self.source {
            Source::None => None,
            Source::Read(txn) => txn
                .open_table(PROJECTION_KV)?
                .get(k)?
                .map(|v| v.value().to_owned()),
            Source::Write(txn) => txn
                .open_table(PROJECTION_KV)?
                .get(k)?
                .map(|v| v.value().to_owned()),
        })
    }

    fn kv_put(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        if !self.kv.writable {
            wasmtime::bail!("the key-value store is read-only during a query");
        }
        if key.len() > MAX_KEY {
            wasmtime::bail!(
                "key of {} bytes is longer than the {MAX_KEY}-byte limit",
                key.len()
            );
        }
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
        let limit = limit.min(MAX_SCAN) as usize;
        let projection = self.kv.projection.as_str();
        // Committed entries after the start, enough to fill `limit` even if
        // buffered deletes remove some.
        let want = limit + self.kv.buffer.len();
        let start = after.unwrap_or(prefix);
        let mut stored: Vec<(String, String)> = Vec::new();
        {
            let mut collect = |key: &str, value: &str| -> bool {
                if !key.starts_with(prefix) || stored.len() >= want {
                    return false;
                }
                if after.is_none_or(|a| key > a) {
                    stored.push((key.to_owned(), value.to_owned()));
                }
                true
            };
            match &self.source {
                Source::None => {}
                Source::Read(txn) => {
                    for entry in txn
                        .open_table(PROJECTION_KV)?
                        .range((projection, start)..)?
                    {
                        let (k, v) = entry?;
                        let (p, key) = k.value();
                        if p != projection || !collect(key, v.value()) {
                            break;
                        }
                    }
                }
                Source::Write(txn) => {
                    for entry in txn
                        .open_table(PROJECTION_KV)?
                        .range((projection, start)..)?
                    {
                        let (k, v) = entry?;
                        let (p, key) = k.value();
                        if p != projection || !collect(key, v.value()) {
                            break;
                        }
                    }
                }
            }
        }
        // Overlay the buffer: buffered values win, buffered deletes remove.
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        let mut merged: BTreeMap<String, String> = stored.into_iter().collect();
        for (key, value) in self.kv.buffer.range::<str, _>((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            match value {
                Some(v) => merged.insert(key.clone(), v.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

impl verb::weft::module::types::Host for HostState {}

impl verb::weft::module::log::Host for HostState {
    fn get(&mut self, id: String) -> wasmtime::Result<Option<String>> {
        self.log_get(&id)
    }
}

impl projection::weft::module::types::Host for HostState {}

impl projection::weft::module::log::Host for HostState {
    fn get(&mut self, id: String) -> wasmtime::Result<Option<String>> {
        self.log_get(&id)
    }
}

impl projection::weft::module::kv::Host for HostState {
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

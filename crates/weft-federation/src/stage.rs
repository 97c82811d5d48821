//! Staging of activities fetched in bulk (docs/architecture.md §10): a
//! sync range is gathered here as the peer serves it, then read back as
//! one chain to verify whole before anything is committed. A small range
//! stays in memory; past `memory_bytes` it spills to a file under the
//! node's `staging/` folder, which [`clear`] empties at every start, so a
//! restart discards half-staged ranges and the next round fetches again.
//!
//! This is not verification of signatures (the caller does that with the
//! keys) and not storage: nothing staged is in the log until the kernel
//! commits the batch.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::backfill;
use weft_core::model::{Signed, cid};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// What the peer served is not a chain of the actor's activities.
    #[error("{0}")]
    Served(String),
}

/// Staged files get distinct names within a process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Empties `dir` (creating it): half-staged ranges of an earlier run.
pub fn clear(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)
}

/// One range being gathered.
#[derive(Debug)]
pub struct Stage {
    dir: PathBuf,
    memory_bytes: u64,
    held: Vec<String>,
    file: Option<(PathBuf, BufWriter<std::fs::File>)>,
    ids: HashSet<String>,
    bytes: u64,
    count: usize,
}

impl Stage {
    /// A stage that spills into `dir` past `memory_bytes`.
    pub fn new(dir: &Path, memory_bytes: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            memory_bytes,
            held: Vec::new(),
            file: None,
            ids: HashSet::new(),
            bytes: 0,
            count: 0,
        }
    }

    /// Adds one served item (not checked yet).
    pub fn push(&mut self, item: &Value) -> Result<(), StageError> {
        if let Some(id) = item.get("id").and_then(Value::as_str) {
            self.ids.insert(cid::internal(id).to_owned());
        }
        let text = item.to_string();
        self.bytes += text.len() as u64;
        self.count += 1;
        if self.file.is_none() && self.bytes > self.memory_bytes {
            std::fs::create_dir_all(&self.dir)?;
            let path = self.dir.join(format!(
                "{}-{}.jsonl",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut out = BufWriter::new(std::fs::File::create(&path)?);
            for line in self.held.drain(..) {
                writeln!(out, "{line}")?;
            }
            self.file = Some((path, out));
        }
        match &mut self.file {
            Some((_, out)) => writeln!(out, "{text}")?,
            None => self.held.push(text),
        }
        Ok(())
    }

    /// Whether an item with this id was staged.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(cid::internal(id))
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of JSON text staged.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the stage spilled to disk.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Everything staged as the chain of `actor`'s activities it must be
    /// (each well-formed and by `actor`, sorted by seq, repeats dropped,
    /// consecutive seqs linked through `prev`), whose first activity links
    /// to `held` (the newest one this node has) when it follows it
    /// directly. Signatures are the caller's to check.
    pub fn into_chain(
        mut self,
        actor: &str,
        held: Option<&(u64, String)>,
    ) -> Result<Vec<Signed>, StageError> {
        let mut items = Vec::with_capacity(self.count);
        let parse = |line: &str| {
            serde_json::from_str::<Value>(line)
                .map_err(|e| StageError::Served(format!("a staged item is not JSON: {e}")))
        };
        match self.file.take() {
            Some((path, mut out)) => {
                out.flush()?;
                drop(out);
                let read = (|| {
                    for line in BufReader::new(std::fs::File::open(&path)?).lines() {
                        items.push(parse(&line?)?);
                    }
                    Ok::<(), StageError>(())
                })();
                std::fs::remove_file(&path)?;
                read?;
            }
            None => {
                for line in self.held.drain(..) {
                    items.push(parse(&line)?);
                }
            }
        }
        let chain = backfill::chain(items, actor).map_err(StageError::Served)?;
        if let (Some((seq, id)), Some(first)) = (held, chain.first())
            && first.header.seq == seq + 1
            && first.header.prev.as_deref() != Some(id.as_str())
        {
            return Err(StageError::Served(format!(
                "{} at seq {} does not link through `prev` to {id}, the activity at seq {seq} this node holds",
                first.id, first.header.seq
            )));
        }
        Ok(chain)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some((path, _)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signed chain of the envelope test vectors, seq 1 to 4.
    fn vectors() -> (String, Vec<Value>) {
        let data: Value =
            serde_json::from_str(include_str!("../../../host/tests/data/envelope.json"))
                .expect("the test vectors are JSON");
        let actor = data["key"]["actor"].as_str().expect("an actor").to_owned();
        let valid = data["valid"].as_array().expect("valid vectors");
        (actor, valid.iter().map(|v| v["signed"].clone()).collect())
    }

    #[test]
    fn a_large_range_spills_to_disk_reads_back_as_the_chain_and_leaves_no_file()
    -> Result<(), StageError> {
        let dir = tempfile::tempdir()?;
        let (actor, items) = vectors();
        let mut stage = Stage::new(dir.path(), 10);
        for item in items.iter().rev() {
            stage.push(item)?;
        }
        assert!(stage.spilled());
        assert_eq!(stage.len(), 4);
        let id = items[3]["id"].as_str().expect("an id");
        assert!(stage.contains(id));
        let chain = stage.into_chain(&actor, None)?;
        let seqs: Vec<u64> = chain.iter().map(|s| s.header.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            0,
            "a staged file was left"
        );
        Ok(())
    }

    #[test]
    fn a_range_that_does_not_follow_what_is_held_is_refused() -> Result<(), StageError> {
        let dir = tempfile::tempdir()?;
        let (actor, items) = vectors();
        let mut stage = Stage::new(dir.path(), 1 << 20);
        for item in &items[2..] {
            stage.push(item)?;
        }
        assert!(!stage.spilled());
        let held = (2, "bagaaihra-not-the-one".to_owned());
        let refused = stage.into_chain(&actor, Some(&held));
        assert!(
            matches!(&refused, Err(StageError::Served(m)) if m.contains("does not link")),
            "{refused:?}"
        );
        Ok(())
    }

    #[test]
    fn clearing_empties_what_an_earlier_run_left() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging)?;
        std::fs::write(staging.join("1-0.jsonl"), "{}\n")?;
        clear(&staging)?;
        assert!(staging.is_dir());
        assert_eq!(std::fs::read_dir(&staging)?.count(), 0);
        Ok(())
    }
}

//! Reading a node's state straight from its store, as the node holds it
//! rather than as its API shows it: one actor's log (checking the log index
//! against the records), every projection's key-value entries, and a
//! snapshot of everything a request could change, to check that a refused
//! request changed nothing.
//!
//! Not a way to change the store, and not the node: the suite's harness
//! hands over its `weft_store::Store` (the in-process node's kernel holds
//! one; a stopped node's data folder can be opened).

use anyhow::{Context, ensure};
use serde_json::Value;
use weft_store::Store;

use crate::activity::id_of;

/// Every activity of `actor_id`'s log, oldest first, checking that the log
/// index and the records agree.
pub fn log(store: &Store, actor_id: &str) -> anyhow::Result<Vec<Value>> {
    let reader = store.read()?;
    let mut out = Vec::new();
    for (seq, id) in reader.log_range(actor_id, 1, u64::MAX)? {
        let record = reader.activity(&id)?.context("record of a log entry")?;
        ensure!(record.seq == seq && record.actor == actor_id);
        let value: Value = serde_json::from_str(&record.json)?;
        ensure!(
            id_of(&value)? == id,
            "log entry {seq} is {id}, but its record has id {}",
            value["id"]
        );
        out.push(value);
    }
    Ok(out)
}

/// Every projection's key-value entries as (projection, key, value), in
/// the store's order: to compare rebuilt with incremental state.
pub fn projection_state(store: &Store) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(store.begin_read()?.kv_entries()?)
}

/// Everything the node holds — every local actor's state, whole log,
/// public ranks and inbox, the delivery jobs, every projection's state — as
/// one string, to check that a rejected request changed nothing.
pub fn snapshot(store: &Store) -> anyhow::Result<String> {
    let reader = store.read()?;
    let mut out = String::new();
    for name in reader.local_names()? {
        let actor = reader.actor_by_name(&name)?.context("actor")?;
        out.push_str(&format!("{actor:?}\n"));
        for (seq, id) in reader.log_range(&actor.id, 1, u64::MAX)? {
            let record = reader.activity(&id)?.context("record")?;
            out.push_str(&format!("{seq} {id} {record:?}\n"));
        }
        out.push_str(&format!(
            "{:?}\n",
            reader.public_range(&actor.id, 1, u64::MAX)?
        ));
        for record in reader.inbox_range(&actor.id, 1, u64::MAX)? {
            out.push_str(&format!("inbox {} {}\n", actor.id, record.id));
        }
    }
    for job in reader.jobs()? {
        out.push_str(&format!("job {job:?}\n"));
    }
    for (projection, key, value) in projection_state(store)? {
        out.push_str(&format!("kv {projection} {key} = {value}\n"));
    }
    Ok(out)
}

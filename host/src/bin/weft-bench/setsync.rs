//! `weft bench --reconcile`: set reconciliation (docs/architecture.md §10)
//! between two real store files, in-process. Each gets `--items` rows of
//! the set index its side reads (the responder `addressed`, the initiator
//! `held_from`), written straight through the store's typed methods in
//! large transactions; the sets differ by `--diff` of the items, half
//! missing on each side. The exchange then runs through the functions the
//! endpoint and the initiator run (`weft_federation::setsync::{storage,
//! answer, Initiator}`), and the tool prints the bytes each way, the
//! messages, and the wall time split into building the sets and
//! reconciling; it checks that the ids found are exactly the difference.
//!
//! Not HTTP (a message costs one signed POST on top, and is sent as hex,
//! twice its bytes) and not the fetching of what is found.

use std::time::Instant;

use anyhow::{Context, ensure};
use weft_core::model::setkey::SetKey;
use weft_federation::setsync::{Initiator, answer, storage};
use weft_store::{Batch, SetIndex, Store};

/// The initiator's and the responder's origins.
const INITIATOR: &str = "https://a.example";
const RESPONDER: &str = "https://b.example";
/// Rows per write transaction.
const ROWS_PER_TXN: usize = 200_000;

/// A well-mixed 64-bit value of `n` (splitmix64).
fn mix(mut n: u64) -> u64 {
    n = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    n = (n ^ (n >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    n = (n ^ (n >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    n ^ (n >> 31)
}

/// The key of item `i`: one activity every 2.5 s (on average) from
/// 2025-01-01, with a random-looking id.
fn key(i: u64) -> SetKey {
    let mut id = [0u8; 32];
    for (n, chunk) in id.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(i * 4 + n as u64).to_le_bytes());
    }
    SetKey {
        published_ms: 1_735_689_600_000 + i * 2_500 + mix(i) % 2_000,
        id,
    }
}

/// Which side lacks item `i`, if one does: every `stride`-th item is
/// missing, alternately on the responder and on the initiator.
fn missing(i: u64, stride: u64) -> Option<bool> {
    (stride > 0 && i.is_multiple_of(stride)).then(|| (i / stride).is_multiple_of(2))
}

/// Writes the rows of one side.
fn fill(store: &Store, index: SetIndex, items: u64, stride: u64) -> anyhow::Result<u64> {
    let responder = index == SetIndex::Addressed;
    let mut written = 0;
    let mut i = 0;
    while i < items {
        let txn = store.begin_write()?;
        {
            let mut batch = Batch::open(&txn, store.recent_ids())?;
            let end = (i + ROWS_PER_TXN as u64).min(items);
            for n in i..end {
                // `Some(true)`: missing on the responder.
                if missing(n, stride) == Some(responder) {
                    continue;
                }
                let key = key(n);
                match index {
                    SetIndex::Addressed => batch.put_addressed(INITIATOR, &key, n + 1)?,
                    SetIndex::HeldFrom | SetIndex::Pruned => {
                        batch.put_held_from(RESPONDER, &key, n + 1)?;
                    }
                }
                written += 1;
            }
            i = end;
        }
        txn.commit()?;
    }
    Ok(written)
}

/// Runs the benchmark: `items` per side, differing by `diff` (a fraction),
/// frames of at most `frame` bytes.
pub fn reconcile(items: usize, diff: f64, frame: u64) -> anyhow::Result<()> {
    ensure!(items > 0, "--items must be at least 1");
    ensure!(
        (0.0..=1.0).contains(&diff),
        "--diff is a fraction between 0 and 1 (0.01 for 1%)"
    );
    let items = items as u64;
    let differences = (items as f64 * diff).round() as u64;
    let stride = items.checked_div(differences).map_or(0, |s| s.max(1));
    let dir = tempfile_dir()?;
    let responder_store = Store::open(&dir.join("responder.redb"))?;
    let initiator_store = Store::open(&dir.join("initiator.redb"))?;
    let started = Instant::now();
    let on_responder = fill(&responder_store, SetIndex::Addressed, items, stride)?;
    let on_initiator = fill(&initiator_store, SetIndex::HeldFrom, items, stride)?;
    let filled = started.elapsed();
    let (expect_need, expect_have) =
        (0..items).fold((0u64, 0u64), |(need, have), i| match missing(i, stride) {
            Some(false) => (need + 1, have),
            Some(true) => (need, have + 1),
            None => (need, have),
        });
    println!(
        "set reconciliation: {items} items, {:.4}% different ({expect_need} only on the responder, {expect_have} only on the initiator), frames of at most {frame} bytes",
        diff * 100.0
    );
    println!(
        "  rows written: responder {on_responder} (addressed), initiator {on_initiator} (held_from), in {:.1} s (not part of the measurement)",
        filled.as_secs_f64()
    );

    // Each side builds its set from its store, as the endpoint (once per
    // exchange, then kept) and the initiator do.
    let t = Instant::now();
    let theirs = storage(&responder_store.read()?, SetIndex::Addressed, INITIATOR)?;
    let build_responder = t.elapsed();
    let t = Instant::now();
    let mine = storage(&initiator_store.read()?, SetIndex::HeldFrom, RESPONDER)?;
    let build_initiator = t.elapsed();

    let t = Instant::now();
    let (mut initiator, mut msg) = Initiator::start(mine, frame)?;
    let (mut sent, mut received, mut messages) = (0u64, 0u64, 0u32);
    let (mut largest_sent, mut largest_received) = (0usize, 0usize);
    loop {
        messages += 1;
        sent += msg.len() as u64;
        largest_sent = largest_sent.max(msg.len());
        let reply = answer(&theirs, frame, &msg)?;
        received += reply.len() as u64;
        largest_received = largest_received.max(reply.len());
        match initiator.step(&reply)? {
            Some(next) => msg = next,
            None => break,
        }
        ensure!(messages < 100_000, "the exchange does not end");
    }
    let reconciling = t.elapsed();
    let (have, need) = initiator.into_ids();
    ensure!(
        need.len() as u64 == expect_need && have.len() as u64 == expect_have,
        "found {} needed and {} held only here; expected {expect_need} and {expect_have}",
        need.len(),
        have.len()
    );
    let kib = |b: u64| b as f64 / 1024.0;
    println!(
        "  messages (round trips): {messages}; largest sent {largest_sent} B, received {largest_received} B"
    );
    println!(
        "  bytes: initiator → responder {sent} ({:.1} KiB), responder → initiator {received} ({:.1} KiB), total {} ({:.1} KiB; as hex on the wire {:.1} KiB)",
        kib(sent),
        kib(received),
        sent + received,
        kib(sent + received),
        kib(2 * (sent + received)),
    );
    println!(
        "  wall time: build responder set {:.0} ms, build initiator set {:.0} ms, reconcile {:.0} ms; total {:.0} ms",
        build_responder.as_secs_f64() * 1000.0,
        build_initiator.as_secs_f64() * 1000.0,
        reconciling.as_secs_f64() * 1000.0,
        (build_responder + build_initiator + reconciling).as_secs_f64() * 1000.0,
    );
    println!(
        "  found exactly the difference: {} needed, {} held only by the initiator",
        need.len(),
        have.len()
    );
    drop(responder_store);
    drop(initiator_store);
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(())
}

/// A fresh folder for the two store files.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("weft-reconcile-bench-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

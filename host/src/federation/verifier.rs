//! Batched signature checks for inbound activities. Handlers hand their
//! (key, canonical bytes, signature) to one thread, which checks whatever
//! has queued up together with `ed25519_dalek::verify_batch` — about three
//! times the rate of one-by-one checks — and falls back to `verify_strict`
//! one by one when a batch fails, to find the bad signatures. Batching is
//! sound here because every key reaching it was refused if weak when it
//! entered the node (`identity::multikey`); a batch of one is checked with
//! `verify_strict`.
//!
//! It also keeps the keys it has been given decoded: turning 32 bytes into
//! a curve point costs as much as a third of a check, and an inbox sees the
//! same few thousand authors over and over.
//!
//! It checks signatures only; which key must have signed is decided by
//! `identity::actor`.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Mutex, RwLock};

use ed25519_dalek::{Signature, VerifyingKey};
use tokio::sync::oneshot;

use crate::identity::KeyRecord;
use crate::identity::multikey::KeyError;
use crate::model::Signed;

/// Most signatures checked in one batch.
const MAX_BATCH: usize = 256;
/// Below this many, checking one by one is as cheap as a batch.
const MIN_BATCH: usize = 4;
/// Most decoded keys kept; past it the cache starts over.
const MAX_KEYS: usize = 65_536;
/// How long the first check of a batch waits for company. Small beside an
/// inbox request's latency; long enough for concurrent requests to arrive.
/// The thread sleeps through it rather than waking for each arrival: a
/// wake-up per check cost more than the check's share of a batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

struct Check {
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
    reply: oneshot::Sender<bool>,
}

/// The batching verifier; its thread ends when it is dropped.
#[derive(Debug)]
pub struct Verifier {
    tx: Mutex<mpsc::Sender<Check>>,
    /// Public key bytes → the key, decoded and found not weak.
    keys: RwLock<HashMap<[u8; 32], VerifyingKey>>,
}

impl Verifier {
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Check>();
        std::thread::Builder::new()
            .name("weft-verify".into())
            .spawn(move || run(&rx))?;
        Ok(Self {
            tx: Mutex::new(tx),
            keys: RwLock::default(),
        })
    }

    /// `record`'s key, decoded once: refused if invalid or weak, exactly as
    /// [`KeyRecord::verifying_key`] does.
    pub fn key(&self, record: &KeyRecord) -> Result<VerifyingKey, KeyError> {
        if let Some(key) = self
            .keys
            .read()
            .ok()
            .and_then(|k| k.get(&record.public).copied())
        {
            return Ok(key);
        }
        let key = record.verifying_key()?;
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
            keys.insert(record.public, key);
        }
        Ok(key)
    }

    /// Whether `signed`'s proof verifies under `key`.
    pub async fn verify(&self, key: VerifyingKey, signed: &Signed) -> bool {
        let (reply, answer) = oneshot::channel();
        let check = Check {
            key,
            message: signed.canonical.clone(),
            signature: signed.signature,
            reply,
        };
        let sent = self
            .tx
            .lock()
            .map(|tx| tx.send(check).is_ok())
            .unwrap_or(false);
        if !sent {
            // No verifier thread: check here.
            return signed.verify_with(&key).is_ok();
        }
        answer.await.unwrap_or(false)
    }
}

fn run(rx: &mpsc::Receiver<Check>) {
    while let Ok(first) = rx.recv() {
        std::thread::sleep(LINGER);
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(MAX_BATCH - 1));
        let all_good = batch.len() >= MIN_BATCH && {
            let messages: Vec<&[u8]> = batch.iter().map(|c| c.message.as_slice()).collect();
            let signatures: Vec<Signature> = batch.iter().map(|c| c.signature).collect();
            let keys: Vec<VerifyingKey> = batch.iter().map(|c| c.key).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
        };
        for check in batch {
            let ok = all_good
                || check
                    .key
                    .verify_strict(&check.message, &check.signature)
                    .is_ok();
            // The handler may have gone away; its answer no longer matters.
            let _ = check.reply.send(ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::{Value, json};

    fn signed(content: &str, key: &SigningKey) -> Signed {
        let Value::Object(map) = json!({
            "type": "Create", "actor": "http://a/actors/x", "object": {"type": "Note", "content": content},
            "published": "2026-11-21T00:00:00.000Z", "seq": 1, "prev": null,
        }) else {
            unreachable!()
        };
        Signed::sign(map, "http://a/actors/x#key-1", key).expect("signs")
    }

    fn record(public: [u8; 32]) -> KeyRecord {
        KeyRecord {
            id: "http://a/actors/x#key-1".into(),
            public,
            purposes: Vec::new(),
            added_seq: 1,
            valid_from_seq: 1,
            added_at: "2026-11-21T00:00:00.000Z".into(),
            superseded_seq: None,
            superseded_at: None,
        }
    }

    /// Decoded keys are reused; a weak or invalid key is refused every
    /// time it is asked for, never kept.
    #[test]
    fn keys_are_decoded_once_and_weak_ones_always_refused() {
        let verifier = Verifier::start().expect("thread");
        let good = SigningKey::from_bytes(&[7; 32]).verifying_key();
        for _ in 0..2 {
            assert_eq!(verifier.key(&record(good.to_bytes())), Ok(good));
        }
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert_eq!(verifier.key(&record(identity)), Err(KeyError::Weak));
        }
        let keys = verifier.keys.read().expect("lock");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get(&good.to_bytes()), Some(&good));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_signature_in_a_batch_is_found() {
        let verifier = std::sync::Arc::new(Verifier::start().expect("thread"));
        let good = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[9; 32]);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let verifier = verifier.clone();
            let (good, other) = (good.clone(), other.clone());
            tasks.push(tokio::spawn(async move {
                let s = signed(&format!("n{i}"), &good);
                // Every tenth is checked against the wrong key.
                let key = if i % 10 == 0 {
                    other.verifying_key()
                } else {
                    good.verifying_key()
                };
                (i, verifier.verify(key, &s).await)
            }));
        }
        for task in tasks {
            let (i, ok) = task.await.expect("task");
            assert_eq!(ok, i % 10 != 0, "activity {i}");
        }
    }
}

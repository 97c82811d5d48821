//! Batched signature checks for inbound activities. Handlers hand their
//! (key, canonical bytes, signature) to one thread, which checks whatever
//! has queued up together with `ed25519_dalek::verify_batch` — about three
//! times the rate of one-by-one checks — and falls back to `verify_strict`
//! one by one when a batch fails, to find the bad signatures. A batch of
//! fewer than [`MIN_BATCH`] is checked with `verify_strict`.
//!
//! Before a check joins a batch it must pass what `verify_strict` checks
//! beside the equation: a public key and an `R` that decode to points not
//! of small order, and a canonical `S` (below the group order). A batch
//! alone would take, for instance, a signature with `R` and `S` zero under
//! the identity as a key, for every message; so whatever fails these is
//! refused on its own, and a batch never accepts what `weft verify` (which
//! uses `verify_strict`) refuses for those reasons. (What the batch
//! equation itself cannot tell apart is an `R` with a torsion component
//! beside a prime-order one, which its random coefficients cancel with
//! probability 1/2 or less; ruling that out costs a scalar multiplication
//! per signature, as much as checking it alone. Keys entering the node are
//! also refused if weak, in `identity::multikey`.)
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

use weft_core::identity::KeyRecord;
use weft_core::identity::multikey::KeyError;
use weft_core::model::Signed;

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

/// The group order ℓ = 2^252 + 27742317777372353535851937790883648493,
/// little-endian: a canonical `S` is below it.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Whether `signature` under `key` passes the checks `verify_strict`
/// makes beside its equation: `key` and `R` decode to points that are not
/// of small order, and `S` is canonical.
pub fn strict_prechecks(key: &VerifyingKey, signature: &Signature) -> bool {
    let r_ok = VerifyingKey::from_bytes(signature.r_bytes()).is_ok_and(|r| !r.is_weak());
    let s = signature.s_bytes();
    // Compare as little-endian numbers, most significant byte first.
    let s_canonical = s.iter().rev().cmp(GROUP_ORDER.iter().rev()) == std::cmp::Ordering::Less;
    !key.is_weak() && r_ok && s_canonical
}

fn run(rx: &mpsc::Receiver<Check>) {
    while let Ok(first) = rx.recv() {
        std::thread::sleep(LINGER);
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(MAX_BATCH - 1));
        // What `verify_strict` would refuse before its equation never
        // reaches the batch.
        let (batch, refused): (Vec<Check>, Vec<Check>) = batch
            .into_iter()
            .partition(|c| strict_prechecks(&c.key, &c.signature));
        for check in refused {
            let _ = check.reply.send(false);
        }
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

    /// A signature that `verify_batch` alone takes and `verify_strict`
    /// refuses: the identity (a small-order point) as the key, `R` the
    /// identity and `S` zero, which satisfies the batch equation for every
    /// message. In a batch beside good signatures it is refused, and the
    /// good ones still pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_order_key_signature_that_verify_batch_takes_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).expect("the identity decodes");
        assert!(weak.is_weak());
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let forged = Signature::from_bytes(&forged);
        let good_key = SigningKey::from_bytes(&[7; 32]);
        let good = signed("good", &good_key);
        let message = b"any message at all";
        // The hole: the batch alone accepts it, with or without company.
        assert!(ed25519_dalek::verify_batch(&[message.as_slice()], &[forged], &[weak]).is_ok());
        assert!(
            ed25519_dalek::verify_batch(
                &[message.as_slice(), good.canonical.as_slice()],
                &[forged, good.signature],
                &[weak, good_key.verifying_key()],
            )
            .is_ok()
        );
        assert!(weak.verify_strict(message, &forged).is_err());
        assert!(!strict_prechecks(&weak, &forged));
        assert!(strict_prechecks(&good_key.verifying_key(), &good.signature));

        // Through the verifier, in batches big enough to be batched.
        let verifier = std::sync::Arc::new(Verifier::start().expect("thread"));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let verifier = verifier.clone();
            let good_key = good_key.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = signed(&format!("n{i}"), &good_key);
                let key = if i % 8 == 0 {
                    s.signature = forged;
                    weak
                } else {
                    good_key.verifying_key()
                };
                (i, verifier.verify(key, &s).await)
            }));
        }
        for task in tasks {
            let (i, ok) = task.await.expect("task");
            assert_eq!(ok, i % 8 != 0, "activity {i}");
        }
    }

    /// A non-canonical `S` (S + ℓ, which the same equation holds for) and
    /// a small-order `R` are refused before any batch.
    #[test]
    fn non_canonical_s_and_small_order_r_fail_the_prechecks() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let good = signed("s", &key);
        let mut bytes = good.signature.to_bytes();
        // S + ℓ, little-endian addition.
        let mut carry = 0u16;
        for (b, l) in bytes[32..].iter_mut().zip(GROUP_ORDER) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
        let high = Signature::from_bytes(&bytes);
        assert!(!strict_prechecks(&key.verifying_key(), &high));
        let mut small_r = good.signature.to_bytes();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        small_r[..32].copy_from_slice(&identity);
        let small_r = Signature::from_bytes(&small_r);
        assert!(!strict_prechecks(&key.verifying_key(), &small_r));
        assert!(
            key.verifying_key()
                .verify_strict(&good.canonical, &small_r)
                .is_err()
        );
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

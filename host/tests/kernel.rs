//! The kernel without HTTP: group commit, ordering under concurrency,
//! restart, secrets, and the seam for verbs and projections (validate
//! before append, fold inside the append's transaction).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context;
use serde_json::{Map, Value, json};
use weft_core::identity::ActorKind;
use weft_core::model::Signed;
use weft_kernel::modules::Appended;
use weft_kernel::{Kernel, KernelError, KernelOptions, Modules, OpenVocabulary, Rejection};
use weft_store::StoreError;
use weft_store::{FoldTxn, RecentIds, WriteTxn};

fn options(dir: &std::path::Path) -> KernelOptions {
    KernelOptions {
        db_path: dir.join("weft.redb"),
        keys_path: dir.join("keys.json"),
        max_batch: 1024,
        cache_mb: weft_store::DEFAULT_CACHE_MB,
        quick_repair: true,
    }
}

async fn kernel_in(dir: &std::path::Path, modules: Arc<dyn Modules>) -> anyhow::Result<Kernel> {
    let kernel = Kernel::open(&options(dir), modules)?;
    if !kernel.is_initialised()? {
        kernel
            .bootstrap("node", "http://127.0.0.1:9999", "admin-token")
            .await?;
    }
    Ok(kernel)
}

fn note(text: &str) -> Map<String, Value> {
    let Value::Object(map) = json!({"type": "Create", "object": {"type": "Note", "content": text}, "to": [weft_core::model::PUBLIC]})
    else {
        unreachable!()
    };
    map
}

/// Checks that `actor`'s log is seq 1..=n with every `prev` linking back.
fn assert_chain(kernel: &Kernel, actor: &str, n: u64) -> anyhow::Result<()> {
    let reader = kernel.store().read()?;
    let log = reader.log_range(actor, 1, u64::MAX)?;
    assert_eq!(
        log.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    let mut prev: Option<String> = None;
    for (_, id) in log {
        let record = reader.activity(&id)?.context("record")?;
        let signed = Signed::parse(serde_json::from_str(&record.json)?)?;
        assert_eq!(signed.id, id);
        assert_eq!(signed.header.prev, prev);
        prev = Some(id);
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_publishers_share_durable_commits() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = Arc::new(kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?);
    let mut actors = Vec::new();
    for i in 0..10 {
        actors.push(
            kernel
                .create_actor(&format!("a{i}"), ActorKind::Person)
                .await?
                .id,
        );
    }
    let commits_before = kernel.metrics().commits.load(Relaxed);
    let mut tasks = Vec::new();
    for actor in &actors {
        for n in 0..30 {
            let (kernel, actor) = (kernel.clone(), actor.clone());
            tasks.push(tokio::spawn(async move {
                kernel.publish(&actor, note(&format!("n{n}"))).await
            }));
        }
    }
    for task in tasks {
        task.await??;
    }
    let commits = kernel.metrics().commits.load(Relaxed) - commits_before;
    assert!(
        commits < 300,
        "300 concurrent publishes took {commits} commits: no group commit"
    );
    assert!(kernel.metrics().largest_batch.load(Relaxed) > 1);
    for actor in &actors {
        assert_chain(&kernel, actor, 31)?;
    }
    Ok(())
}

#[tokio::test]
async fn one_actor_publishing_concurrently_gets_a_gapless_chain() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = Arc::new(kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?);
    let alice = kernel.create_actor("alice", ActorKind::Person).await?.id;
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let (kernel, alice) = (kernel.clone(), alice.clone());
            tokio::spawn(async move { kernel.publish(&alice, note(&format!("{n}"))).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await??.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=101).collect::<Vec<_>>());
    assert_chain(&kernel, &alice, 101)
}

#[tokio::test]
async fn everything_survives_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (alice, last) = {
        let kernel = kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?;
        let alice = kernel.create_actor("alice", ActorKind::Person).await?.id;
        let mut last = None;
        for n in 0..5 {
            last = Some(kernel.publish(&alice, note(&format!("{n}"))).await?);
        }
        kernel.close();
        (alice, last.context("published")?)
    };
    let kernel = kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?;
    assert_chain(&kernel, &alice, 6)?;
    let next = kernel.publish(&alice, note("after restart")).await?;
    assert_eq!(next.seq, 7);
    let parsed = Signed::parse(serde_json::from_str(&next.json)?)?;
    assert_eq!(parsed.header.prev.as_deref(), Some(last.id.as_str()));
    Ok(())
}

#[tokio::test]
async fn the_database_never_holds_secret_keys_or_tokens() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?;
    let created = kernel.create_actor("alice", ActorKind::Person).await?;
    kernel.publish(&created.id, note("secret-free")).await?;
    kernel.close();
    drop(kernel);
    let db = std::fs::read(dir.path().join("weft.redb"))?;
    let keys: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.path().join("keys.json"))?)?;
    assert_eq!(keys.len(), 2, "the node's key and alice's");
    for seed in keys.values() {
        let raw = data_encoding::HEXLOWER.decode(seed.as_bytes())?;
        assert!(
            !db.windows(32).any(|w| w == raw.as_slice()),
            "a secret key is in the database"
        );
        assert!(!db.windows(seed.len()).any(|w| w == seed.as_bytes()));
    }
    assert!(
        !db.windows(created.token.len())
            .any(|w| w == created.token.as_bytes()),
        "a token is stored in clear"
    );
    Ok(())
}

#[tokio::test]
async fn actor_names_are_unique_and_checked() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?;
    kernel.create_actor("alice", ActorKind::Person).await?;
    assert!(matches!(
        kernel.create_actor("alice", ActorKind::Group).await,
        Err(KernelError::Conflict(_))
    ));
    for bad in ["", "Alice", "-x", "a b", "é", &"x".repeat(65)] {
        assert!(
            matches!(
                kernel.create_actor(bad, ActorKind::Person).await,
                Err(KernelError::Field { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        kernel
            .bootstrap("node", "http://127.0.0.1:9999", "again")
            .await,
        Err(KernelError::Conflict(_))
    ));
    Ok(())
}

/// The stand-in projection whose state counts folds per verb.
const FOLDED: &str = "test-folded";

/// A stand-in for the WASM runtime: refuses the verb `Forbidden` and
/// counts folds per verb in its own table, inside the append transaction.
struct Recorder;

impl Modules for Recorder {
    fn validate(&self, activity: &Signed, _json: &str) -> Result<(), Rejection> {
        if activity.verb() == "Forbidden" {
            return Err(Rejection::new("Forbidden", "not on this node"));
        }
        Ok(())
    }

    fn fold(&self, txn: WriteTxn, appended: &[Appended]) -> Result<WriteTxn, StoreError> {
        let mut tables = FoldTxn::open(txn, Arc::new(RecentIds::default()))?;
        for item in appended {
            let verb = item.signed.verb();
            let count: u64 = tables
                .kv_get(FOLDED, verb)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let write = BTreeMap::from([(verb.to_owned(), Some((count + 1).to_string()))]);
            tables.kv_apply(FOLDED, &write)?;
        }
        Ok(tables.into_txn())
    }
}

#[tokio::test]
async fn verbs_validate_before_append_and_projections_fold_inside_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = kernel_in(dir.path(), Arc::new(Recorder)).await?;
    let alice = kernel.create_actor("alice", ActorKind::Person).await?.id;
    kernel.publish(&alice, note("folded")).await?;
    let before = kernel.store().read()?.actor(&alice)?;
    let Value::Object(forbidden) = json!({"type": "Forbidden", "object": "x"}) else {
        unreachable!()
    };
    let err = kernel
        .publish(&alice, forbidden)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not on this node"), "{err}");
    assert_eq!(
        kernel.store().read()?.actor(&alice)?,
        before,
        "a refused activity changed the actor"
    );
    assert_eq!(kernel.metrics().rejected.load(Relaxed), 1);
    kernel.close();
    drop(kernel);

    let store = weft_store::Store::open(&dir.path().join("weft.redb"))?;
    let read = store.begin_read()?;
    let count = |verb: &str| -> anyhow::Result<u64> {
        Ok(read.kv_get(FOLDED, verb)?.map_or(Ok(0), |v| v.parse())?)
    };
    assert_eq!(count("Note")?, 1);
    assert_eq!(count("Person")?, 1, "alice's Create folded");
    assert_eq!(count("Service")?, 1, "the node's Create folded");
    assert_eq!(count("Forbidden")?, 0);
    Ok(())
}

#[tokio::test]
async fn a_rotation_generates_and_keeps_the_new_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?;
    let alice = kernel.create_actor("alice", ActorKind::Person).await?.id;
    let Value::Object(rotate) = json!({"type": "Update", "object": {"type": "Person", "keys": {
        "add": [{"purposes": ["sign-activity", "rotate-key"]}], "supersede": ["#key-1"]}}})
    else {
        unreachable!()
    };
    let rotation = kernel.publish(&alice, rotate).await?;
    assert!(rotation.json.contains("#key-2"));
    kernel.close();
    drop(kernel);
    // After a restart the new key signs, so its secret was kept.
    let kernel = kernel_in(dir.path(), Arc::new(OpenVocabulary)).await?;
    let after = kernel.publish(&alice, note("signed by key-2")).await?;
    let signed = Signed::parse(serde_json::from_str(&after.json)?)?;
    assert_eq!(signed.key_id, format!("{alice}#key-2"));
    let state = kernel.store().read()?.actor(&alice)?.context("alice")?;
    weft_core::identity::actor::verify_with_history(&state.keys, &signed)?;
    Ok(())
}

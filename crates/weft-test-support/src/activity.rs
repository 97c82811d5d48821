//! Checks on signed activities and logs as a client sees them: the content
//! id an activity's URL names, a log's links (seq and `prev`), a whole
//! chain (its `Create`, ids, links), an activity's signature against the
//! key history of its actor's document, and the RSA key an actor document
//! offers ActivityPub servers.
//!
//! Not the node's own verification (that is `weft-core` and
//! `weft-federation`, which these checks call), and not how a log is read:
//! over HTTP ([`crate::Api`]) or from the store ([`crate::state`]).

use anyhow::{Context, ensure};
use serde_json::Value;
use weft_core::identity::IdentityError;
use weft_core::identity::actor::verify_with_history;
use weft_core::model::Signed;
use weft_core::wire::actor::keys_from_document;

/// The content id an activity id names: the `{cid}` of
/// `…/activities/{cid}`, or the id itself when it is bare (or foreign).
pub fn cid_of(id: &str) -> &str {
    weft_core::model::cid::internal(id)
}

/// The content id of a weft activity (its `id` is `…/activities/{cid}`);
/// empty when it has no id.
pub fn cid(activity: &Value) -> String {
    cid_of(activity["id"].as_str().unwrap_or_default()).to_owned()
}

/// The content id of an activity, which must have an `id`.
pub fn id_of(activity: &Value) -> anyhow::Result<String> {
    let id = activity["id"].as_str().context("id")?;
    Ok(cid_of(id).to_owned())
}

/// The URL id `{base}/activities/{cid}` a node gives the activity `cid`
/// of `actor` (`{base}/actors/{name}`) on the wire.
pub fn url_id(actor: &str, cid: &str) -> String {
    let (base, _) = actor
        .rsplit_once("/actors/")
        .expect("a local actor id is {base}/actors/{name}");
    format!("{base}/activities/{cid}")
}

/// Checks that `log`, the log of `who` from its start, links up: seqs
/// 1..=n in order, seq 1 with `prev: null`, every other `prev` the content
/// id of the activity before.
pub fn assert_linked(log: &[Value], who: &str) -> anyhow::Result<()> {
    for (i, activity) in log.iter().enumerate() {
        let seq = i as u64 + 1;
        ensure!(
            activity["seq"].as_u64() == Some(seq),
            "{who}'s log has a gap: expected seq {seq}, got {}",
            activity["seq"]
        );
        // `prev` is the content id of the activity before (the chain links
        // content ids; `id` is its URL on the wire).
        let expected_prev = match i {
            0 => Value::Null,
            _ => Value::String(id_of(&log[i - 1])?),
        };
        ensure!(
            activity["prev"] == expected_prev,
            "{who}'s seq {seq} has prev {} but seq {} is {expected_prev}",
            activity["prev"],
            seq - 1
        );
    }
    Ok(())
}

/// Checks that `log` is a well-formed log of `actor`: seq 1 its `Create`
/// of the actor, every activity by `actor`, linked ([`assert_linked`]),
/// and every id the URL `{base}/activities/{cid}` of the recomputed
/// content id.
pub fn assert_chain(log: &[Value], actor: &str) -> anyhow::Result<()> {
    ensure!(!log.is_empty(), "{actor} has an empty log");
    ensure!(
        log[0]["type"] == "Create",
        "seq 1 is not a Create: {}",
        log[0]
    );
    ensure!(
        log[0]["object"]["id"] == actor,
        "seq 1 creates another actor"
    );
    assert_linked(log, actor)?;
    for (i, activity) in log.iter().enumerate() {
        let seq = i + 1;
        ensure!(activity["actor"] == actor, "{activity}");
        let signed = Signed::parse(activity.clone()).with_context(|| format!("seq {seq}"))?;
        ensure!(
            activity["id"] == url_id(actor, &signed.id),
            "seq {seq} of {actor} has id {} for content id {}",
            activity["id"],
            signed.id
        );
    }
    Ok(())
}

/// Verifies `activity` as a client would: recompute its id, then check its
/// signature against the key history in the actor document `doc`.
pub fn verify(doc: &Value, activity: &Value) -> anyhow::Result<()> {
    let signed = Signed::parse(activity.clone()).context("not a well-formed signed activity")?;
    let keys = keys_from_document(doc).context("the actor document's keys")?;
    verify_with_history(&keys, &signed).context("does not verify")?;
    Ok(())
}

/// Like [`verify`], but returns the identity error itself.
pub fn verify_err(doc: &Value, activity: &Value) -> anyhow::Result<Result<(), IdentityError>> {
    let signed = Signed::parse(activity.clone())?;
    let keys = keys_from_document(doc)?;
    Ok(verify_with_history(&keys, &signed))
}

/// Checks the actor document `doc` of `actor` offers ActivityPub peers its
/// RSA-2048 key for HTTP signatures as `publicKey`: `{actor}#main-key`,
/// owned by the actor, an SPKI `PUBLIC KEY` PEM in 64-character lines.
pub fn assert_http_key(doc: &Value, actor: &str) -> anyhow::Result<()> {
    let key = &doc["publicKey"];
    ensure!(key["id"] == format!("{actor}#main-key"), "{key}");
    ensure!(key["owner"] == actor, "{key}");
    let pem = key["publicKeyPem"].as_str().context("publicKeyPem")?;
    let body = pem
        .strip_prefix("-----BEGIN PUBLIC KEY-----\n")
        .and_then(|p| p.strip_suffix("-----END PUBLIC KEY-----\n"))
        .with_context(|| format!("not a PUBLIC KEY PEM: {pem:?}"))?;
    ensure!(
        body.lines().all(|l| l.len() <= 64) && body.ends_with('\n'),
        "{pem:?}"
    );
    let der = data_encoding::BASE64.decode(body.replace('\n', "").as_bytes())?;
    // SubjectPublicKeyInfo of rsaEncryption with a 2048-bit modulus.
    const RSA_2048_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA";
    ensure!(
        der.len() == 294 && body.starts_with(RSA_2048_SPKI),
        "not an RSA-2048 SubjectPublicKeyInfo: {pem:?}"
    );
    Ok(())
}

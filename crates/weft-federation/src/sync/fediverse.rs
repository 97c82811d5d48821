//! Anti-entropy with an ActivityPub actor that is not weft's (Mastodon,
//! GoToSocial, a Fedify app): it has no head and no chain, so a round reads
//! its outbox newest first — the collection's inline items, or its `first`
//! page and `next` links — back to the newest activity this node holds,
//! within the round's page and activity bounds, and commits what it lacks
//! as one batch (all or nothing).
//!
//! Such an activity carries no weft proof, and one read back from an
//! outbox no HTTP signature either: it is taken on the word of its origin
//! (the origin always wins). So every item must be an object whose `id`
//! and `actor` are on the actor's origin, read from an outbox on that
//! origin, and its evidence records where and when it was read. Items given
//! only as URLs are skipped (each would cost a fetch), as are activities no
//! verb here interprets, exactly as the inbox acknowledges and drops them.

use std::sync::Arc;

use serde_json::Value;

use super::{Round, SyncError, commit, recipients};
use crate::{Budget, Federation};
use weft_core::model::Signed;
use weft_core::model::envelope::HttpEvidence;
use weft_kernel::audience_origin;

/// The evidence scheme of an activity read back from its origin's outbox.
pub const READ_FROM_ORIGIN: &str = "origin-outbox";

pub(super) async fn run(
    federation: &Arc<Federation>,
    actor: &str,
    document: &str,
    followers: &[String],
    budget: &Budget,
) -> Result<Round, SyncError> {
    let settings = &federation.sync;
    let origin = audience_origin(actor);
    let outbox = serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|d| d.get("outbox").and_then(Value::as_str).map(str::to_owned))
        .filter(|o| audience_origin(o) == origin)
        .ok_or_else(|| {
            SyncError::Transient(format!("{actor} has no outbox on its own origin to read"))
        })?;
    // No chain, so no seq: the head is the outbox as read, at seq 0.
    let mut round = Round {
        head: Some((0, String::new())),
        ..Round::default()
    };
    let mut fetched: Vec<Signed> = Vec::new();
    let mut page = get(federation, &outbox, budget).await?;
    let mut page_url = outbox.clone();
    let mut pages = 1u32;
    // The collection may carry its items inline or point at a first page.
    if page.get("orderedItems").is_none() && page.get("items").is_none() {
        match page.get("first") {
            Some(Value::String(first)) if audience_origin(first) == origin => {
                page_url = first.clone();
                page = get(federation, first, budget).await?;
                pages += 1;
            }
            Some(first @ Value::Object(_)) => page = first.clone(),
            _ => return Ok(round),
        }
    }
    let reader = federation
        .kernel
        .store()
        .read()
        .map_err(|e| SyncError::Transient(e.to_string()))?;
    'pages: loop {
        let items = page
            .get("orderedItems")
            .or_else(|| page.get("items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in items {
            let Value::Object(map) = item else {
                continue;
            };
            let Some(id) = map.get("id").and_then(Value::as_str) else {
                continue;
            };
            if reader
                .activity(id)
                .map_err(|e| SyncError::Transient(e.to_string()))?
                .is_some()
            {
                // Back to what this node holds: the rest it has, or never
                // had from push either.
                break 'pages;
            }
            if fetched.len() as u64 >= settings.max_range {
                round.more = true;
                break 'pages;
            }
            let signed = read_back(federation, actor, &page_url, map)?;
            let key = weft_core::model::setkey::SetKey::of(&signed.id, &signed.header.published);
            if let Some(author_origin) = weft_core::model::origin(actor)
                && reader
                    .was_pruned(&author_origin, &key)
                    .map_err(|e| SyncError::Transient(e.to_string()))?
            {
                // Held once, dropped by a `keep` rule: as far back as
                // this node keeps.
                break 'pages;
            }
            fetched.push(signed);
        }
        if pages >= settings.pages_per_round {
            round.more = true;
            break;
        }
        match page.get("next").and_then(Value::as_str) {
            Some(next) if audience_origin(next) == origin => {
                page_url = next.to_owned();
                page = get(federation, next, budget).await?;
                pages += 1;
            }
            _ => break,
        }
    }
    drop(reader);
    // Oldest first, as they were published.
    fetched.reverse();
    let mut batch = Vec::with_capacity(fetched.len());
    for signed in fetched {
        if federation.must_park(&signed) {
            continue;
        }
        let to = recipients(federation, actor, followers, &signed);
        batch.push((signed, to));
    }
    commit(federation, batch, &mut round).await?;
    Ok(round)
}

async fn get(federation: &Federation, url: &str, budget: &Budget) -> Result<Value, SyncError> {
    federation
        .fetcher
        .get_json(url, budget)
        .await
        .map_err(|e| SyncError::Transient(e.to_string()))
}

/// One outbox item as a foreign activity of `actor`, read from `page`.
fn read_back(
    federation: &Federation,
    actor: &str,
    page: &str,
    map: serde_json::Map<String, Value>,
) -> Result<Signed, SyncError> {
    let now = weft_core::clock::now();
    let evidence = HttpEvidence {
        scheme: READ_FROM_ORIGIN.to_owned(),
        key_id: page.to_owned(),
        signer: actor.to_owned(),
        signed: String::new(),
        signature: String::new(),
        created: now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let received = humantime::format_rfc3339_millis(now).to_string();
    let signed = Signed::foreign(map, evidence, &received)
        .map_err(|e| SyncError::Offence(format!("{page} lists an unusable activity: {e}")))?;
    if signed.header.actor != actor {
        return Err(SyncError::Offence(format!(
            "{actor}'s outbox lists {}, an activity by {}",
            signed.id, signed.header.actor
        )));
    }
    if audience_origin(&signed.id) != audience_origin(actor) {
        return Err(SyncError::Offence(format!(
            "{actor}'s outbox lists {}, which is not on the actor's origin",
            signed.id
        )));
    }
    federation
        .check_published(&signed)
        .map_err(|e| SyncError::Offence(format!("{}: {e}", signed.id)))?;
    Ok(signed)
}

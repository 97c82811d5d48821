//! The shapes of anti-entropy (docs/architecture.md §10): an actor's head
//! (`GET /actors/{name}/head`), which a peer compares with what it holds
//! before fetching anything, and the node's view of where sync stands with
//! each remote actor (`GET /admin/sync`).
//!
//! And the bodies of set reconciliation between nodes (`POST
//! /sync/negentropy`, `POST /sync/fetch`).
//!
//! This is the format only: what to fetch and when is
//! `weft_federation::sync`'s and `weft_federation::setsync`'s, and how
//! sync state is kept is the store's.

use serde::{Deserialize, Serialize};

/// Where an actor's log ends, as the reader may see it: the newest
/// activity (of the public part, for anyone but the owner) and how many
/// there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub actor: String,
    /// The newest activity's seq in the actor's log (0: none).
    pub seq: u64,
    /// Its id (absent when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// How many activities the reader may see.
    pub total_items: u64,
}

/// A (seq, id) position in an actor's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub seq: u64,
    pub id: String,
}

impl From<(u64, String)> for Position {
    fn from((seq, id): (u64, String)) -> Self {
        Self { seq, id }
    }
}

/// Where anti-entropy stands with one remote actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorSync {
    pub actor: String,
    /// The newest of its activities this node holds.
    pub held: Option<Position>,
    /// The head its origin last showed.
    pub head: Option<Position>,
    /// Seqs between the two (0 when in sync or unknown).
    pub lag: u64,
    pub last_sync_at: Option<String>,
    pub last_error: Option<String>,
    pub offences: u64,
    pub last_offence: Option<String>,
    /// Activities sync has stored from this actor.
    pub stored: u64,
}

/// Where set reconciliation stands with one peer origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginSync {
    pub origin: String,
    pub last_sync_at: Option<String>,
    pub last_error: Option<String>,
    pub offences: u64,
    pub last_offence: Option<String>,
    /// Activities set reconciliation has stored from this origin.
    pub stored: u64,
}

/// `GET /admin/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    pub actors: Vec<ActorSync>,
    /// Origins set reconciliation has tried.
    #[serde(default)]
    pub origins: Vec<OriginSync>,
}

/// Most ids one `POST /sync/fetch` may ask for.
pub const MAX_FETCH_IDS: usize = 500;

/// The body both ways of `POST /sync/negentropy`: one negentropy (NIP-77
/// protocol v1) message, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMessage {
    pub msg: String,
}

/// The body of `POST /sync/fetch`: the 32-byte set ids (lower-case hex) of
/// the activities wanted, at most [`MAX_FETCH_IDS`]. The answer is
/// `{"items": [activity…]}`, unknown ids left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFetch {
    pub ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_reads_back_and_leaves_out_a_missing_id() -> Result<(), serde_json::Error> {
        let empty = Head {
            actor: "https://a.example/actors/a".into(),
            seq: 0,
            id: None,
            total_items: 0,
        };
        let text = serde_json::to_string(&empty)?;
        assert_eq!(
            text,
            r#"{"actor":"https://a.example/actors/a","seq":0,"totalItems":0}"#
        );
        assert_eq!(serde_json::from_str::<Head>(&text)?, empty);
        Ok(())
    }
}

//! The operator's view of policies (docs/architecture.md §10):
//! `GET /admin/policies` (every policy, its current version and history),
//! `GET /admin/policies/{name}` (one of them) and
//! `GET /admin/policies/{name}/status` (its conditions, Kubernetes-style,
//! and what it obliges the node to do, with each obligation's lag).
//! `weft policy list|status` read them back with these types. Also the
//! Follows a `follows` policy holds for the operator
//! (`GET /admin/follows/pending`, `weft follow pending`).
//!
//! The format only: what a spec may say and what it obliges are the
//! kernel's (`weft_kernel::policy`), who may read it is the HTTP layer's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One version of a policy: a `DefinePolicy` activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub version: u32,
    pub kind: String,
    pub spec: Value,
    /// The `DefinePolicy` activity's id.
    pub id: String,
    pub actor: String,
    pub published: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A policy: its current version's fields and every version (`history`,
/// oldest first, the current one last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    #[serde(flatten)]
    pub current: Version,
    pub history: Vec<Version>,
}

/// `GET /admin/policies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policies {
    pub policies: Vec<Policy>,
}

/// A condition's status, as Kubernetes writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// One condition of a policy (`Compliant`, `InSync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: ConditionStatus,
    /// A CamelCase word for programs (`NotEvaluated`, `Lagging`, …).
    pub reason: String,
    /// A sentence for people.
    pub message: String,
    /// When `status` last changed, RFC 3339.
    pub last_transition_time: String,
}

/// One obligation and how far behind it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObligationLag {
    /// The obligation, as the kernel describes it (`{"type": "Sync", …}`).
    pub obligation: Value,
    /// How long it has been outstanding, in milliseconds, when known.
    pub lag_ms: Option<u64>,
}

/// `GET /admin/policies/{name}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub version: u32,
    pub conditions: Vec<Condition>,
    pub obligations: Vec<ObligationLag>,
}

/// A Follow of a local actor waiting for the operator's answer (a
/// `follows` policy held it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingFollow {
    /// The Follow's content id.
    pub id: String,
    pub follower: String,
    pub followed: String,
    pub published: String,
}

/// `GET /admin/follows/pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFollows {
    pub items: Vec<PendingFollow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_read_back_as_written() {
        let version = Version {
            version: 2,
            kind: "sync".into(),
            spec: serde_json::json!({"interval": "5m"}),
            id: "bid".into(),
            actor: "https://n.example/actors/node".into(),
            published: "2026-01-01T00:00:00.000Z".into(),
            description: None,
        };
        let policy = Policy {
            name: "catch-up".into(),
            current: version.clone(),
            history: vec![version],
        };
        let json = serde_json::to_value(&policy).unwrap_or_default();
        assert_eq!(json["name"], "catch-up");
        assert_eq!(json["version"], 2);
        assert_eq!(json["spec"]["interval"], "5m");
        assert_eq!(json["history"][0]["kind"], "sync");
        let back: Policy = serde_json::from_value(json).unwrap_or_else(|_| policy.clone());
        assert_eq!(back, policy);
        let condition = Condition {
            kind: "InSync".into(),
            status: ConditionStatus::Unknown,
            reason: "NotEvaluated".into(),
            message: "m".into(),
            last_transition_time: "t".into(),
        };
        let json = serde_json::to_value(&condition).unwrap_or_default();
        assert_eq!(json["type"], "InSync");
        assert_eq!(json["status"], "Unknown");
        assert_eq!(json["lastTransitionTime"], "t");
    }
}

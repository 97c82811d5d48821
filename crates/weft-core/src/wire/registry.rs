//! The registry view (`GET /projections/define-registry`): every verb and
//! projection a node has, each with its newest version's fields, what it
//! may use per call and its history. `weft module list` shows it, and a
//! node that meets a peer's unknown verb looks up the verb's definition in
//! the author's view (docs/architecture.md §8.4).
//!
//! The format only: which modules a node has is its registry's, and
//! whether a peer's verb is admitted is federation's.

use serde_json::{Map, Value, json};

/// One version of a module.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub version: u32,
    /// The artifact's id.
    pub module: &'a str,
    /// The id of the Define activity that made this version.
    pub defined_by: &'a str,
    pub defined: &'a str,
    /// The definition's descriptive fields (description, wit, language,
    /// fuel, memory), as JSON object text; listed beside the others.
    pub metadata: &'a str,
}

impl Version<'_> {
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "version": self.version,
            "module": self.module,
            "definedBy": self.defined_by,
            "defined": self.defined,
        });
        if let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(self.metadata) {
            for (k, val) in meta {
                entry[k] = val;
            }
        }
        entry
    }
}

/// One verb or projection.
#[derive(Debug, Clone)]
pub struct Module<'a> {
    pub name: &'a str,
    /// Whether it runs on the node.
    pub active: bool,
    /// What it may use per call.
    pub fuel: u64,
    pub memory: usize,
    /// Every version it has had, newest last.
    pub versions: Vec<Version<'a>>,
}

impl Module<'_> {
    /// The newest version's fields, with `name`, `active`, `budget` and
    /// `history` (every version).
    pub fn to_json(&self) -> Value {
        let history: Vec<Value> = self.versions.iter().map(Version::to_json).collect();
        let mut entry = history
            .last()
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        entry["budget"] = json!({"fuel": self.fuel, "memory": self.memory});
        entry["name"] = self.name.into();
        entry["active"] = self.active.into();
        entry["history"] = Value::Array(history);
        entry
    }
}

/// The view of a node's `verbs` and `projections` (each
/// [`Module::to_json`]).
pub fn view(verbs: Vec<Value>, projections: Vec<Value>) -> Value {
    json!({"verbs": verbs, "projections": projections})
}

/// What a view says of the verb `verb`: the id of its newest definition
/// (`definedBy`) and its artifact (`module`), either `None` when the entry
/// lacks it. `None` when the view lists no such verb.
pub fn verb<'v>(view: &'v Value, verb: &str) -> Option<(Option<&'v str>, Option<&'v str>)> {
    let entry = view["verbs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == verb)?;
    Some((entry["definedBy"].as_str(), entry["module"].as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verb_is_read_back_as_written() {
        let versions = |module| Version {
            version: 1,
            module,
            defined_by: "bdefine",
            defined: "2026-01-01T00:00:00.000Z",
            metadata: r#"{"language": "rust", "fuel": 5}"#,
        };
        let follow = Module {
            name: "Follow",
            active: true,
            fuel: 5,
            memory: 1 << 20,
            versions: vec![versions("bold"), versions("bnew")],
        }
        .to_json();
        assert_eq!(follow["language"], "rust");
        assert_eq!(follow["history"].as_array().map(Vec::len), Some(2));
        let view = view(vec![follow], Vec::new());
        assert_eq!(verb(&view, "Follow"), Some((Some("bdefine"), Some("bnew"))));
        assert_eq!(verb(&view, "Like"), None);
    }
}

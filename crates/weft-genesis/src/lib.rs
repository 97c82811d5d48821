//! The genesis bundle: the built-in verbs and projections, compiled from
//! `verbs/` and `projections/` by `build.rs` and embedded here. `weft init`
//! registers them as Define activities of the node's service actor.

include!(concat!(env!("OUT_DIR"), "/genesis.rs"));

/// The activity types each built-in projection that does not fold every
/// activity folds (its definition's `folds`): the node passes it nothing
/// else. Each list is what the projection's `fold` acts on.
pub const FOLDS: &[(&str, &[&str])] = &[
    ("follower-graph", &["Follow", "Accept", "Reject", "Undo"]),
    ("endorsements", &["Endorse", "Like", "Undo"]),
];

/// The built-in verbs whose `react` asks for something (the Follow verb's
/// Accept): every other built-in verb is defined with `"reacts": false`,
/// and the node does not call its `react`.
pub const REACTING: &[&str] = &["Follow"];

/// Whether `artifact` is one of this binary's built-in modules, whose
/// instances may be kept between calls (`runtime::Reuse::Warm`).
pub fn is_builtin_artifact(artifact: &str) -> bool {
    static IDS: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        GENESIS
            .iter()
            .map(|(_, _, bytes)| weft_core::model::cid::artifact_id(bytes))
            .collect()
    })
    .contains(artifact)
}

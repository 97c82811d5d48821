//! The genesis bundle: the built-in verbs and projections, compiled from
//! `verbs/` and `projections/` by `build.rs` and embedded here. `weft init`
//! registers them as Define activities of the node's service actor.

include!(concat!(env!("OUT_DIR"), "/genesis.rs"));

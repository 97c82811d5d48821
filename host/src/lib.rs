//! weft: a federated activity-log node whose vocabulary is WebAssembly
//! published in the log.
//!
//! One folder per kernel concern; see `DESIGN.md` §8.

pub mod cli;
pub mod config;
pub mod federation;
pub mod genesis;
pub mod http;
pub mod identity;
pub mod kernel;
pub mod model;
pub mod runtime;
pub mod store;

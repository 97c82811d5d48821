//! The `weft` binary's library: the node's configuration (`weft.toml`) and
//! the command line, which composes the layers (`weft-core` … `weft-http`)
//! into a running node. See `docs/architecture.md`.

pub mod cli;
pub mod config;

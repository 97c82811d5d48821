//! The built-in feed projection (`projections/feed`), its very source,
//! built against `weft:module@0.2.0` (the SDK's `contract-0-2`): the tests
//! define it beside the built-in 0.3.0 one and check that both fold a log
//! to the same state.

#[path = "../../../../projections/feed/src/lib.rs"]
mod feed;

//! The test projection `weft-test-batch`, its very source, built against
//! `weft:module@0.2.0` (the SDK's `contract-0-2`), so that the tests of a
//! run with a bad activity in it cover 0.2.0's `fold-batch` as well as
//! 0.3.0's packed `fold`.

#[path = "../../batch/src/lib.rs"]
mod batch;

//! Waiting for an effect that happens in the background (a delivery, a
//! reaction, a rebuild): poll a check until it answers `Some`, within a
//! bound, and fail saying what did not happen.
//!
//! Not a retry of requests that failed: an error from the check ends the
//! wait at once.

use std::time::{Duration, Instant};

/// How often [`eventually`] checks.
pub const EVERY: Duration = Duration::from_millis(50);

/// Polls `check` every 50 ms until it answers `Some`, for at most
/// `seconds`; `what` names the effect in the error.
pub async fn eventually<T>(
    seconds: u64,
    what: &str,
    check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    eventually_every(EVERY, seconds, what, check).await
}

/// Polls `check` every `every` until it answers `Some`, for at most
/// `seconds`; `what` names the effect in the error.
pub async fn eventually_every<T>(
    every: Duration,
    seconds: u64,
    what: &str,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

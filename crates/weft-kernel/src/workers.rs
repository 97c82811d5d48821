//! The bounded pool that runs module calls made on behalf of a request
//! (`validate`, `query`): a fixed number of threads, and a bounded number
//! of calls waiting for one. A call past that bound is refused at once
//! ([`Busy`], answered 503 with `Retry-After`) instead of queueing without
//! end, and no module call ever runs on an async worker, where a slow one
//! would stall every other connection.
//!
//! It is not the writer (folds and reactions run in the writer's
//! transaction, on its thread) and does not know what the calls do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// The pool is full: too many calls are running or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the node is busy running {running} module calls with {waiting} waiting (`[runtime] workers`, `worker_queue`); retry shortly"
)]
pub struct Busy {
    pub running: usize,
    pub waiting: usize,
}

/// Threads for module calls, and the room to wait for one.
#[derive(Debug)]
pub struct Workers {
    permits: Arc<Semaphore>,
    threads: usize,
    /// Calls admitted: running or waiting.
    admitted: Arc<AtomicUsize>,
    /// Most calls admitted at once.
    capacity: usize,
}

/// Counts a call out of the pool when it ends, or when its caller stops
/// waiting (a dropped request).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Workers {
    /// `threads` calls at once (0: one per core), `queue` more waiting.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            threads
        };
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            threads,
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: threads + queue,
        }
    }

    /// How many calls run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `call` on a pool thread, or refuses it when the pool is full.
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(self.admitted.clone());
        if before >= self.capacity {
            return Err(Busy {
                running: self.threads,
                waiting: before.saturating_sub(self.threads),
            });
        }
        let busy = Busy {
            running: self.threads,
            waiting: self.capacity - self.threads,
        };
        // The semaphore is never closed.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| busy)?;
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _admitted = admitted;
            call()
        })
        .await;
        match joined {
            Ok(value) => Ok(value),
            // A module call never panics the host (traps are values); a
            // panic here is a host bug, and it must not take the caller
            // down too.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_full_pool_refuses_and_recovers() -> anyhow::Result<()> {
        let workers = Arc::new(Workers::new(1, 1));
        let (release, wait) = mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        // One call runs (and blocks), one waits: the pool is full.
        let mut held = Vec::new();
        for _ in 0..2 {
            let (w, wait) = (workers.clone(), wait.clone());
            held.push(tokio::spawn(async move {
                w.run(move || wait.lock().map(|rx| rx.recv().is_ok()).unwrap_or(false))
                    .await
            }));
        }
        // Let both be admitted.
        while workers.admitted.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = workers.run(|| 1).await;
        assert!(
            matches!(refused, Err(Busy { running: 1, .. })),
            "{refused:?}"
        );
        release.send(())?;
        release.send(())?;
        for task in held {
            assert_eq!(task.await?, Ok(true));
        }
        assert_eq!(workers.run(|| 7).await, Ok(7));
        assert_eq!(workers.admitted.load(Ordering::Acquire), 0);
        Ok(())
    }
}

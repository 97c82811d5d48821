//! The bounded pool that runs module calls made on behalf of a request
//! (`validate`, `query`): a fixed set of threads of its own
//! (`weft-worker`), and a bounded number of calls waiting for one. A call
//! past that bound is refused at once ([`Busy`], answered 503 with
//! `Retry-After`) instead of queueing without end, and no module call ever
//! runs on an async worker, where a slow one would stall every other
//! connection.
//!
//! The threads are the pool's, not tokio's blocking pool: that one starts
//! a thread whenever none is idle at the moment a call is handed over, so
//! under a steady stream of requests it grew to dozens of threads (each
//! with its own allocator heap and stack) for two calls at a time.
//!
//! It is not the writer (folds and reactions run in the writer's
//! transaction, on its thread) and does not know what the calls do.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// The pool is full: too many calls are running or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the node is busy running {running} module calls with {waiting} waiting (`[runtime] workers`, `worker_queue`); retry shortly"
)]
pub struct Busy {
    pub running: usize,
    pub waiting: usize,
}

/// A call handed to the pool's threads.
type Job = Box<dyn FnOnce() + Send>;

/// Threads for module calls, and the room to wait for one.
#[derive(Debug)]
pub struct Workers {
    jobs: Sender<Job>,
    threads: usize,
    /// Calls admitted: running or waiting.
    admitted: Arc<AtomicUsize>,
    /// Most calls admitted at once.
    capacity: usize,
}

/// Counts a call out of the pool when it has run, or is dropped unrun.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Workers {
    /// `threads` calls at once (0: one per core), `queue` more waiting.
    /// The threads end when the pool is dropped.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            threads
        };
        let (jobs, waiting) = std::sync::mpsc::channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..threads {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name("weft-worker".into())
                .spawn(move || work(&waiting))?;
        }
        Ok(Self {
            jobs,
            threads,
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: threads + queue,
        })
    }

    /// How many calls run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `call` on a pool thread, or refuses it when the pool is full.
    /// A call whose caller stopped waiting (a dropped request) before a
    /// thread took it is not run.
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
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(call));
            // Out of the count before the caller hears back.
            drop(admitted);
            let _ = answer.send(outcome);
        });
        self.jobs.send(job).map_err(|_| busy)?;
        match answered.await {
            Ok(Ok(value)) => Ok(value),
            // A module call never panics the host (traps are values); a
            // panic here is a host bug: it reaches the caller, and the
            // pool's thread goes on.
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(busy),
        }
    }
}

/// A pool thread: runs calls until the pool is dropped.
fn work(waiting: &Mutex<Receiver<Job>>) {
    loop {
        let job = match waiting.lock() {
            Ok(waiting) => waiting.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_full_pool_refuses_and_recovers() -> anyhow::Result<()> {
        let workers = Arc::new(Workers::new(1, 1)?);
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

    /// Calls run on the pool's own threads, never more at once than it
    /// has, however many callers wait; a call that panics panics its caller
    /// and leaves the pool working.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_run_on_the_pools_own_threads_and_a_panic_reaches_its_caller()
    -> anyhow::Result<()> {
        let workers = Arc::new(Workers::new(2, 64)?);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let (w, running, most) = (workers.clone(), running.clone(), most.clone());
            calls.spawn(async move {
                w.run(move || {
                    let now = running.fetch_add(1, Ordering::AcqRel) + 1;
                    most.fetch_max(now, Ordering::AcqRel);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::AcqRel);
                    std::thread::current().name().map(str::to_owned)
                })
                .await
            });
        }
        while let Some(done) = calls.join_next().await {
            assert_eq!(done?, Ok(Some("weft-worker".to_owned())));
        }
        assert_eq!(most.load(Ordering::Acquire), 2);

        let w = workers.clone();
        let panicked = tokio::spawn(async move { w.run(|| panic!("a host bug")).await }).await;
        assert!(panicked.is_err_and(|e| e.is_panic()));
        assert_eq!(workers.run(|| 7).await, Ok(7));
        assert_eq!(workers.admitted.load(Ordering::Acquire), 0);
        Ok(())
    }

    /// A call whose caller stopped waiting before a thread took it is not
    /// run, and leaves the count.
    #[tokio::test]
    async fn a_call_given_up_while_waiting_is_not_run() -> anyhow::Result<()> {
        let workers = Arc::new(Workers::new(1, 4)?);
        let (release, wait) = mpsc::channel::<()>();
        let w = workers.clone();
        let blocker = tokio::spawn(async move { w.run(move || wait.recv().is_ok()).await });
        while workers.admitted.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicUsize::new(0));
        let (w, r) = (workers.clone(), ran.clone());
        let given_up =
            tokio::spawn(async move { w.run(move || r.fetch_add(1, Ordering::AcqRel)).await });
        while workers.admitted.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        given_up.abort();
        let _ = given_up.await;
        release.send(())?;
        assert_eq!(blocker.await?, Ok(true));
        assert_eq!(workers.run(|| 1).await, Ok(1));
        assert_eq!(ran.load(Ordering::Acquire), 0);
        assert_eq!(workers.admitted.load(Ordering::Acquire), 0);
        Ok(())
    }
}

//! The `AfterResponse` port on tokio: work left after a response (settling a stream whose
//! client left: in-flight counts, usage, spend) runs on the runtime the gateway was built in,
//! whichever thread drops the stream, and every such task is tracked so the process can wait
//! for it before it exits.
//!
//! How each native host uses it:
//! - **local server**: on SIGTERM / Ctrl-C the server stops taking connections, lets open
//!   requests finish (dropping what is still open at the grace bound, which hands their
//!   settlement here), then calls [`TrackedAfterResponse::drain`]: a settlement is never lost
//!   to a restart or a deploy.
//! - **Lambda**: core finishes a stream's bookkeeping before the streamed body ends, because
//!   the execution environment is frozen as soon as the response is complete (and may never be
//!   thawed), so nothing may be left to run after it. Only a client that leaves early hands work
//!   here; it runs on the runtime while the environment is warm (the next invocation thaws it).
//!   Lambda sends no SIGTERM to a function without extensions, so there is no drain to run; the
//!   in-flight counters' TTL (`core::router::state::IN_FLIGHT_TTL_MS`) bounds what a frozen and
//!   then discarded environment can leak.

use std::time::Duration;

use tokio_util::task::TaskTracker;
use tollgate_core::ports::{AfterResponse, Task};

pub struct TrackedAfterResponse {
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
}

impl TrackedAfterResponse {
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        TrackedAfterResponse {
            runtime,
            tasks: TaskTracker::new(),
        }
    }

    /// Tasks deferred and not finished yet.
    pub fn pending(&self) -> usize {
        self.tasks.len()
    }

    /// Waits up to `bound` for every deferred task, including any deferred while waiting.
    /// Returns how many were still running at the bound (0: all done). Call it once nothing
    /// else can defer work (every connection is gone): tasks deferred later still run, but
    /// nobody waits for them.
    pub async fn drain(&self, bound: Duration) -> usize {
        self.tasks.close();
        match tokio::time::timeout(bound, self.tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tasks.len(),
        }
    }
}

impl AfterResponse for TrackedAfterResponse {
    fn defer(&self, task: Task) {
        // `spawn_on`, not `tokio::spawn`: the stream may be dropped on a thread outside the
        // runtime (tokio::spawn would panic there).
        self.tasks.spawn_on(task, &self.runtime);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn runs_a_task_handed_over_from_a_plain_thread() {
        let runtime = runtime();
        let after = Arc::new(TrackedAfterResponse::new(runtime.handle().clone()));
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let from_thread = Arc::clone(&after);
        // Not inside the runtime: tokio::spawn would panic here, the handle does not.
        std::thread::spawn(move || {
            from_thread.defer(Box::pin(async move { flag.store(true, Ordering::SeqCst) }))
        })
        .join()
        .unwrap();
        let left = runtime.block_on(after.drain(Duration::from_secs(5)));
        assert_eq!(left, 0);
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn drain_waits_for_slow_tasks_and_those_they_defer() {
        let runtime = runtime();
        let after = Arc::new(TrackedAfterResponse::new(runtime.handle().clone()));
        let done = Arc::new(AtomicUsize::new(0));
        let (count, inner_after, inner_count) =
            (Arc::clone(&done), Arc::clone(&after), Arc::clone(&done));
        after.defer(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            count.fetch_add(1, Ordering::SeqCst);
            // Deferred while the drain is already waiting: waited for too.
            inner_after.defer(Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                inner_count.fetch_add(1, Ordering::SeqCst);
            }));
        }));
        let left = runtime.block_on(after.drain(Duration::from_secs(5)));
        assert_eq!(left, 0);
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert_eq!(after.pending(), 0);
    }

    #[test]
    fn drain_gives_up_at_its_bound() {
        let runtime = runtime();
        let after = TrackedAfterResponse::new(runtime.handle().clone());
        after.defer(Box::pin(std::future::pending()));
        let started = std::time::Instant::now();
        let left = runtime.block_on(after.drain(Duration::from_millis(100)));
        assert_eq!(left, 1, "the stuck task is reported");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

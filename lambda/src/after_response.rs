//! The `AfterResponse` port on tokio: work left after a response (settling a stream whose
//! client left) runs on the runtime the gateway was built in, whichever thread drops the
//! stream.

use tollgate_core::ports::{AfterResponse, Task};

pub struct TokioAfterResponse(tokio::runtime::Handle);

impl TokioAfterResponse {
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        TokioAfterResponse(handle)
    }
}

impl AfterResponse for TokioAfterResponse {
    fn defer(&self, task: Task) {
        self.0.spawn(task);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn runs_a_task_handed_over_from_a_plain_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let after = TokioAfterResponse::new(runtime.handle().clone());
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        // Not inside the runtime: tokio::spawn would panic here, the handle does not.
        std::thread::spawn(move || {
            after.defer(Box::pin(async move { flag.store(true, Ordering::SeqCst) }))
        })
        .join()
        .unwrap();
        runtime.block_on(async {
            for _ in 0..100 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                tokio::task::yield_now().await;
            }
        });
        assert!(done.load(Ordering::SeqCst));
    }
}

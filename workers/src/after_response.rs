//! The `AfterResponse` port on Workers, scoped to one request: work left after the response
//! is run inside the request's `ctx.wait_until`, so the runtime keeps the isolate alive for it
//! (a future merely spawned with `spawn_local` may be cut off once the response is done).
//!
//! `wait_until` is called once, when the request starts (while its context is surely live),
//! with a driver that runs every deferred task and ends when the request's last handle to this
//! port is dropped: when core's response (and its stream, if any) is gone.

use std::sync::Arc;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::StreamExt;
use tollgate_core::ports::{AfterResponse, Task};
use worker::Context;

pub struct WaitUntil {
    tasks: UnboundedSender<Task>,
}

impl WaitUntil {
    /// A port for one request; its driver is registered with `ctx.wait_until` now.
    #[allow(clippy::arc_with_non_send_sync)] // wasm32 is single-threaded
    pub fn register(ctx: &Context) -> Arc<dyn AfterResponse> {
        let (tasks, queue) = unbounded::<Task>();
        ctx.wait_until(async move {
            // Tasks run concurrently: one slow Store write does not hold back the others.
            queue.for_each_concurrent(None, |task| task).await;
        });
        Arc::new(WaitUntil { tasks })
    }
}

impl AfterResponse for WaitUntil {
    fn defer(&self, task: Task) {
        // The driver lives as long as any sender, so the queue cannot be closed here.
        let _ = self.tasks.unbounded_send(task);
    }
}

/// Unscoped fallback: the isolate's event loop, with no guarantee past the response.
pub struct SpawnLocal;

impl AfterResponse for SpawnLocal {
    fn defer(&self, task: Task) {
        wasm_bindgen_futures::spawn_local(task);
    }
}

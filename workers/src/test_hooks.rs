//! Test-only routes (`test-hooks` feature; never in a deployed build): they let a test script
//! see what the gateway wrote, through the same bindings it writes with.
//!
//! - `GET /__test/counter?key=K`: the Store counter `K` as a decimal number (e.g.
//!   `router:inflight:<deployment id>`), read from its Durable Object.
//! - request header `x-tollgate-test-defer-delay-ms: N` on any gateway request: each task the
//!   request defers to after the response starts N ms late, standing in for a slow Store, so a
//!   test can tell work the runtime keeps alive (`ctx.wait_until`) from work it cancels once
//!   the client is gone (a bare `spawn_local`), which a quick settlement cannot show.

use std::sync::Arc;

use tollgate_core::ports::{AfterResponse, Task};
use tollgate_core::store::Store;
use worker::{Env, Request, Response};

use crate::store::WorkersStore;

/// See the module docs.
pub const DEFER_DELAY_HEADER: &str = "x-tollgate-test-defer-delay-ms";

/// Every test hook's path starts with this.
pub const PREFIX: &str = "/__test/";

pub async fn handle(req: &Request, env: &Env) -> worker::Result<Response> {
    match req.path().as_str() {
        "/__test/counter" => counter(req, env).await,
        _ => Response::error("no such test hook", 404),
    }
}

async fn counter(req: &Request, env: &Env) -> worker::Result<Response> {
    let url = req.url()?;
    let Some(key) = url
        .query_pairs()
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value.into_owned())
    else {
        return Response::error("key= is required", 400);
    };
    let store = match WorkersStore::from_env(env) {
        Ok(s) => s,
        Err(e) => return Response::error(e.to_string(), 500),
    };
    match store.counter_get(&key).await {
        Ok(value) => Response::ok(value.to_string()),
        Err(e) => Response::error(e.to_string(), 500),
    }
}

/// `after`, with each deferred task started late when the request asks for it.
pub fn delay_deferred(req: &Request, after: Arc<dyn AfterResponse>) -> Arc<dyn AfterResponse> {
    let ms = req
        .headers()
        .get(DEFER_DELAY_HEADER)
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match ms {
        #[allow(clippy::arc_with_non_send_sync)] // wasm32 is single-threaded
        Some(ms) => Arc::new(Delayed { inner: after, ms }),
        None => after,
    }
}

struct Delayed {
    inner: Arc<dyn AfterResponse>,
    ms: u64,
}

impl AfterResponse for Delayed {
    fn defer(&self, task: Task) {
        let ms = self.ms;
        self.inner.defer(Box::pin(async move {
            worker::Delay::from(std::time::Duration::from_millis(ms)).await;
            task.await;
        }));
    }
}

//! Test-only routes (`test-hooks` feature; never in a deployed build): they let a test script
//! see what the gateway wrote, through the same bindings it writes with.
//!
//! - `GET /__test/counter?key=K`: the Store counter `K` as a decimal number (e.g.
//!   `router:inflight:<deployment id>`), read from its Durable Object.

use tollgate_core::store::Store;
use worker::{Env, Request, Response};

use crate::store::WorkersStore;

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

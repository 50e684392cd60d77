//! Tollgate on Cloudflare Workers: the `fetch` handler converts a Workers request to core's,
//! and core's response (full or streamed) back to a Workers `Response` whose body is a
//! `ReadableStream` fed as core produces chunks.

mod after_response;
mod clock;
mod convert;
mod entropy;
mod http_client;
pub mod store;
#[cfg(feature = "test-hooks")]
mod test_hooks;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tollgate_core::error::{ErrorKind, GatewayError};
use tollgate_core::gateway::{error_response, Ports};
use tollgate_core::store::memory::MemoryStore;
use tollgate_core::store::settings::{self, StoreChoice};
use tollgate_core::store::upstash::UpstashStore;
use tollgate_core::store::Store;
use tollgate_core::{Config, Gateway};
use worker::{event, Context, Env, Request, Response, Result};

thread_local! {
    /// Built on the isolate's first request and reused by every later one: the config is
    /// parsed once per instance, not per request.
    static GATEWAY: RefCell<Option<Rc<std::result::Result<Gateway, String>>>> = const { RefCell::new(None) };
    /// Whether this isolate has applied the config's seed (keys, users, teams it declares).
    static SEEDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    // Test builds only (`--features store-conformance`): the Store conformance suite.
    #[cfg(feature = "store-conformance")]
    if req.path() == store::conformance::ROUTE {
        return store::conformance::run(&env).await;
    }
    // Test builds only (`--features test-hooks`): read what the gateway wrote.
    #[cfg(feature = "test-hooks")]
    if req.path().starts_with(test_hooks::PREFIX) {
        return test_hooks::handle(&req, &env).await;
    }
    let gateway = instance(&env);
    let response = match gateway.as_ref() {
        Ok(gw) => {
            // The config's seed, once per isolate, before its first request is answered (the
            // keys it declares must work from that request on). Idempotent across isolates.
            if !SEEDED.with(|s| s.replace(true)) {
                if let Err(e) = tollgate_core::admin::seed::seed(gw).await {
                    SEEDED.with(|s| s.set(false));
                    worker::console_error!("config seed not applied: the store failed: {e}");
                }
            }
            // Work left after the response (a stream's settlement when its client leaves)
            // runs inside this request's ctx.wait_until: a bare spawn_local is cancelled once
            // the client is gone (tests/workers-settlement.sh shows both).
            let after = after_response::WaitUntil::register(&ctx);
            #[cfg(feature = "test-hooks")]
            let after = test_hooks::delay_deferred(&req, after);
            match convert::into_core_request(req).await {
                Ok(core_req) => gw.handle_scoped(core_req, after).await,
                Err(e) => error_response(&e),
            }
        }
        // A bad config cannot stop a Worker from starting, so every request says why.
        Err(message) => error_response(
            &GatewayError::new(ErrorKind::Api, message.clone()).with_code("invalid_config"),
        ),
    };
    convert::into_worker_response(response)
}

fn instance(env: &Env) -> Rc<std::result::Result<Gateway, String>> {
    if let Some(gw) = GATEWAY.with(|g| g.borrow().clone()) {
        return gw;
    }
    let gw = Rc::new(build(env));
    GATEWAY.with(|g| *g.borrow_mut() = Some(Rc::clone(&gw)));
    gw
}

/// The config is the `TOLLGATE_CONFIG_YAML` var (or secret); `os.environ/NAME` in it reads the
/// Worker's var or secret of that name.
fn build(env: &Env) -> std::result::Result<Gateway, String> {
    let lookup = |name: &str| -> Option<String> {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|v| v.to_string()))
            .ok()
    };
    let yaml = lookup("TOLLGATE_CONFIG_YAML").unwrap_or_default();
    let config =
        Config::from_yaml(&yaml, &lookup).map_err(|e| format!("TOLLGATE_CONFIG_YAML: {e}"))?;
    let store = open_store(&config, &lookup, env)?;
    // Without a request scope (none today: every request passes its own), work would be
    // spawned on the isolate's event loop.
    #[allow(clippy::arc_with_non_send_sync)]
    let ports = Ports {
        http: Arc::new(http_client::FetchClient),
        clock: Arc::new(clock::WorkerClock),
        store,
        after_response: Arc::new(after_response::SpawnLocal),
        entropy: Arc::new(entropy::WebCrypto),
    };
    Ok(Gateway::new(config, ports))
}

/// The Store the config and vars choose (`core::store::settings`): by default KV + Durable
/// Objects (bindings in wrangler.toml), shared by every isolate.
/// How long one Upstash REST call may take.
const UPSTASH_OP_TIMEOUT_MS: u64 = 1_000;

fn open_store(
    config: &Config,
    lookup: &dyn Fn(&str) -> Option<String>,
    env: &Env,
) -> std::result::Result<Arc<dyn Store>, String> {
    let unsupported = |name: &str| {
        format!(
            "store type {name} is not available on Workers (use the default, KV + Durable Objects)"
        )
    };
    match settings::choose(config, lookup).map_err(|e| format!("TOLLGATE_CONFIG_YAML: {e}"))? {
        StoreChoice::HostDefault => Ok(Arc::new(
            store::WorkersStore::from_env(env).map_err(|e| e.to_string())?,
        )),
        // Per isolate: tests and throw-away runs only.
        #[allow(clippy::arc_with_non_send_sync)]
        StoreChoice::Memory => Ok(Arc::new(MemoryStore::new(Arc::new(clock::WorkerClock)))),
        StoreChoice::Embedded { .. } => Err(unsupported("embedded")),
        StoreChoice::Redis { .. } => Err(unsupported("redis")),
        StoreChoice::DynamoDb { .. } => Err(unsupported("dynamodb")),
        // Upstash's REST API is reachable from Workers through fetch.
        #[allow(clippy::arc_with_non_send_sync)]
        StoreChoice::Upstash { url, token } => Ok(Arc::new(UpstashStore::new(
            Arc::new(http_client::FetchClient),
            Arc::new(clock::WorkerClock),
            url,
            token,
            UPSTASH_OP_TIMEOUT_MS,
        ))),
    }
}

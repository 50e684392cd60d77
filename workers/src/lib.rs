//! Tollgate on Cloudflare Workers: the `fetch` handler converts a Workers request to core's,
//! and core's response (full or streamed) back to a Workers `Response` whose body is a
//! `ReadableStream` fed as core produces chunks.

mod clock;
mod convert;
mod http_client;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tollgate_core::error::{ErrorKind, GatewayError};
use tollgate_core::gateway::error_response;
use tollgate_core::{Config, Gateway};
use worker::{event, Context, Env, Request, Response, Result};

thread_local! {
    /// Built on the isolate's first request and reused by every later one: the config is
    /// parsed once per instance, not per request.
    static GATEWAY: RefCell<Option<Rc<std::result::Result<Gateway, String>>>> = const { RefCell::new(None) };
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let gateway = instance(&env);
    let response = match gateway.as_ref() {
        Ok(gw) => match convert::into_core_request(req).await {
            Ok(core_req) => gw.handle(core_req).await,
            Err(e) => error_response(&e),
        },
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
    Ok(Gateway::new(
        config,
        Arc::new(http_client::FetchClient),
        Arc::new(clock::WorkerClock),
    ))
}

//! Test support shared by the provider tests: a deployment from one line of YAML, chat
//! requests from JSON, and a clock set by hand.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::config::{Config, Deployment};
use crate::openai::ChatRequest;
use crate::ports::Clock;

/// A clock that reads what it is set to; `sleep` returns at once.
pub struct FakeClock(pub AtomicU64);

#[async_trait::async_trait]
impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    async fn sleep(&self, _ms: u64) {}
}

/// The deployment of a one-model config: group `name` with `litellm_params` (a YAML value).
pub fn deployment(name: &str, litellm_params: &str) -> Deployment {
    let yaml =
        format!("model_list:\n  - model_name: {name}\n    litellm_params: {litellm_params}\n");
    let cfg = Config::from_yaml(&yaml, &|_| None).unwrap();
    (*cfg.deployments[0]).clone()
}

pub fn chat(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

/// A request to `model` with one user message plus `extra` fields.
pub fn simple(model: &str, extra: Value) -> ChatRequest {
    let mut v = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    chat(v)
}

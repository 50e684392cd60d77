//! The request pipeline, in one place:
//!
//! `authenticate → parse & validate (options read once) → model group, then its fallbacks →
//! per group the attempt loop (pick a deployment, translate, call, translate back; on a
//! transient upstream failure back off and pick again) → respond → settle the ledger`.
//!
//! The ledger is settled exactly once on every path: a stream takes it over and closes it at
//! its end; any other answer (or error) closes it here, its subscribers' work left to the
//! host's after-response port.

use std::sync::Arc;

use bytes::Bytes;

use super::options::RequestOptions;
use super::respond::{set_header, with_deployment_headers, GatewayResponse, UpstreamTime};
use super::routes::error_for;
use super::work::Work;
use super::{Gateway, RequestIds};
use crate::anthropic_ingress;
use crate::error::GatewayError;
use crate::identity::Caller;
use crate::ledger::{EndReason, Endpoint, Ledger, RouteNote};
use crate::ports::AfterResponse;
use crate::rng::Rng;
use crate::router::session::RouteSession;
use crate::validate;

/// One request's state through the pipeline.
pub(super) struct Scope {
    pub ledger: Ledger,
    pub after: Arc<dyn AfterResponse>,
    pub rng: Rng,
    pub opts: RequestOptions,
    /// Who is calling (authenticated first).
    pub caller: Caller,
    /// Milliseconds spent on providers (calls and backoff), for the overhead header.
    pub upstream_ms: u64,
}

impl Gateway {
    /// An LLM endpoint: the pipeline, then the ledger settled (unless a stream took it).
    pub(super) async fn llm(
        &self,
        endpoint: Endpoint,
        req: http::Request<Bytes>,
        ids: &RequestIds,
        ledger: Ledger,
        after: Arc<dyn AfterResponse>,
    ) -> GatewayResponse {
        let mut scope = Scope {
            ledger,
            after,
            rng: ids.rng(),
            opts: RequestOptions::default(),
            caller: Caller::Admin,
            upstream_ms: 0,
        };
        let mut resp = match self.run(endpoint, req, &mut scope).await {
            Ok(mut resp) => {
                self.stamp_spend_headers(&mut resp, &mut scope);
                // A stream has taken the ledger over; this closes only a complete answer.
                scope.ledger.close_after_response(EndReason::Completed);
                resp
            }
            Err(e) => {
                let resp = error_for(endpoint, &e);
                if let Some(entry) = scope.ledger.entry() {
                    entry.error = Some(e);
                }
                scope.ledger.close_after_response(EndReason::Failed);
                resp
            }
        };
        resp.extensions_mut()
            .insert(UpstreamTime(scope.upstream_ms));
        resp
    }

    async fn run(
        &self,
        endpoint: Endpoint,
        req: http::Request<Bytes>,
        scope: &mut Scope,
    ) -> Result<GatewayResponse, GatewayError> {
        scope.caller = self
            .directory
            .authenticate(self.master_key.as_ref(), req.headers())
            .await?;
        let end_user_header = req
            .headers()
            .get("x-litellm-end-user-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (work, requested) = parse(endpoint, req)?;
        scope.opts = RequestOptions::read(work_fields(&work), end_user_header.as_deref())?;
        // Chat's `user` is a typed field, not among the extra ones.
        if let Work::Chat(chat) = &work {
            if let Some(user) = chat.user.as_ref().filter(|u| !u.is_empty()) {
                scope.opts.end_user = Some(user.clone());
            }
        }
        if let Some(e) = scope.ledger.entry() {
            e.requested_model = Some(requested.clone());
            e.prompt_tokens_estimate = work.estimated_prompt_tokens();
        }
        scope.caller.may_use(&requested, &self.config)?;
        self.admit(&work, &requested, scope).await?;
        self.with_fallbacks(&requested, &work, scope).await
    }

    /// Runs `work` on the requested group and, when it fails after its retries, on each
    /// fallback group in turn (each gets its own retries). When all fail, the last error keeps
    /// its status and its message names the groups tried.
    async fn with_fallbacks(
        &self,
        requested: &str,
        work: &Work,
        scope: &mut Scope,
    ) -> Result<GatewayResponse, GatewayError> {
        let first = match self.on_group(work, requested, scope).await {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        // A fallback group the key may not use is skipped, as if it were not configured.
        let groups: Vec<String> = self
            .config
            .fallbacks
            .for_failure(requested, &first, scope.opts.fallbacks.as_ref())
            .into_iter()
            .filter(|g| scope.caller.may_use(g, &self.config).is_ok())
            .collect();
        let mut last = first;
        for (tried, group) in groups.iter().enumerate() {
            if let Some(e) = scope.ledger.entry() {
                e.fallbacks = tried as u32 + 1;
            }
            // A dearer group needs a larger reservation; a budget that cannot take it skips
            // the group (its refusal becomes the answer if nothing else works).
            if let Err(e) = self.top_up_for(group, work, scope).await {
                last = e;
                continue;
            }
            match self.on_group(work, group, scope).await {
                Ok(mut resp) => {
                    set_header(
                        &mut resp,
                        "x-litellm-attempted-fallbacks",
                        &(tried + 1).to_string(),
                    );
                    return Ok(resp);
                }
                Err(e) => last = e,
            }
        }
        if !groups.is_empty() {
            last.message = format!(
                "{} (model groups tried: {requested}, {})",
                last.message,
                groups.join(", ")
            );
        }
        Err(last)
    }

    /// One model group's attempt at `work`: pick a deployment by the routing strategy,
    /// translate, call; on a transient upstream failure (429, 5xx, timeouts; `retry_policy`
    /// decides per class) back off and try again, picking again (preferring deployments not
    /// yet tried). Retries happen only until the response starts: a stream is never retried
    /// once its first byte has gone to the client.
    async fn on_group(
        &self,
        work: &Work,
        group: &str,
        scope: &mut Scope,
    ) -> Result<GatewayResponse, GatewayError> {
        let mut session = RouteSession::new(
            self.config.deployments_for(group),
            self.config.route_settings(),
            self.store.as_ref(),
            &self.store_failures,
            group,
            work.estimated_prompt_tokens(),
        )?;
        let own_retries = scope
            .opts
            .num_retries
            .map(|n| self.config.retry.with_num_retries(n));
        let retry = own_retries.as_ref().unwrap_or(&self.config.retry);
        let mut attempt = 0u32;
        loop {
            let d = session.pick(self.clock.now_ms(), &mut scope.rng).await?;
            let prepared = self.prepare(work, group, &d, &scope.opts)?;
            let started = self.clock.now_ms();
            session.started(&d, started).await;
            if let Some(e) = scope.ledger.entry() {
                e.model_group = Some(group.to_string());
                e.deployment = Some(Arc::clone(&d));
                e.attempt_started_ms = Some(started);
                e.retries = attempt;
                e.route = session.figures_taken().map(|figures| RouteNote {
                    deployment_id: d.id.clone(),
                    figures,
                });
            }
            let exchanged = self.exchange(&prepared, &d).await;
            scope.upstream_ms += self.clock.now_ms().saturating_sub(started);
            // An unreadable answer is the deployment's failure (counted against it, settled),
            // but not retried: the provider did the work and may bill it.
            let (answered, retriable) = match exchanged {
                Ok(upstream) => (
                    self.answer(prepared, upstream, &d, group, scope).await,
                    false,
                ),
                Err(e) => (Err(e), true),
            };
            let e = match answered {
                Ok(resp) => return Ok(with_deployment_headers(resp, &d, group, attempt)),
                Err(e) => e.from_deployment(&d.id),
            };
            // The attempt's figures are given back now, not by the ledger.
            if let Some(entry) = scope.ledger.entry() {
                entry.route = None;
            }
            session.failed(&d, &e, self.clock.now_ms()).await;
            if !retriable || attempt >= retry.retries_for(&e) {
                return Err(e);
            }
            let wait = retry.backoff_ms(attempt, e.retry_after.as_deref(), &mut scope.rng);
            self.clock.sleep(wait).await;
            scope.upstream_ms += wait;
            attempt += 1;
        }
    }
}

impl Gateway {
    /// `x-litellm-response-cost` on a complete answer (a stream's cost is known only at its
    /// end, and recorded in its spend log), and which soft budgets the request has passed.
    fn stamp_spend_headers(&self, resp: &mut GatewayResponse, scope: &mut Scope) {
        let Some(entry) = scope.ledger.entry() else {
            return;
        };
        if let Some(plan) = entry
            .budget
            .as_ref()
            .filter(|p| !p.soft_exceeded.is_empty())
        {
            let scopes = plan.soft_exceeded.join(",");
            tracing::info!(scopes = %scopes, call_id = %entry.call_id, "soft budget passed");
            set_header(resp, "x-litellm-soft-budget-exceeded", &scopes);
        }
        if matches!(resp.body(), crate::response::ResponseBody::Full(_)) {
            let cost = self.pricing.cost(entry);
            set_header(
                resp,
                "x-litellm-response-cost",
                &crate::cost::nanos_to_usd(cost.nanos).to_string(),
            );
        }
    }
}

/// Parses a request body for `endpoint` into its work and the model it asks for.
fn parse(endpoint: Endpoint, req: http::Request<Bytes>) -> Result<(Work, String), GatewayError> {
    Ok(match endpoint {
        Endpoint::ChatCompletions => {
            let chat = validate::chat_request(req.body())?;
            let model = chat.model.clone();
            (Work::Chat(Box::new(chat)), model)
        }
        Endpoint::Completions => {
            let value = validate::json_object(req.body())?;
            let model = validate::model_name(&value)?;
            validate::completion_prompt(&value)?;
            (Work::Completion(value), model)
        }
        Endpoint::Embeddings => {
            let value = validate::json_object(req.body())?;
            let model = validate::model_name(&value)?;
            validate::embeddings_input(&value)?;
            (Work::Embeddings(value), model)
        }
        Endpoint::ImageGenerations => {
            let value = validate::json_object(req.body())?;
            let model = validate::model_name(&value)?;
            validate::image_request(&value)?;
            (Work::Images(value), model)
        }
        Endpoint::Messages => {
            let beta = req
                .headers()
                .get("anthropic-beta")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let messages = anthropic_ingress::MessagesRequest::parse(req.body(), beta)?;
            let model = messages.model.clone();
            (Work::Messages(Box::new(messages)), model)
        }
    })
}

/// The body's top-level fields, where the gateway's own options are.
fn work_fields(work: &Work) -> &serde_json::Map<String, serde_json::Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::OnceLock::new();
    let empty = || EMPTY.get_or_init(serde_json::Map::new);
    match work {
        Work::Chat(req) => &req.extra,
        Work::Completion(v) | Work::Embeddings(v) | Work::Images(v) => {
            v.as_object().unwrap_or_else(empty)
        }
        Work::Messages(m) => m.original.as_object().unwrap_or_else(empty),
    }
}

//! The request pipeline, in one place:
//!
//! `authenticate → parse & validate → resolve model group (aliases) → pick deployment →
//! translate → call upstream → translate back (per chunk when streaming) → respond`.
//!
//! Hosts call [`Gateway::handle`] with a buffered request and get back a response whose body is
//! either complete or a stream they forward chunk by chunk.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::anthropic_ingress;
use crate::auth::{authorize, MasterKey};
use crate::config::{Config, Deployment};
use crate::error::{ErrorKind, GatewayError};
use crate::ids::new_id;
use crate::openai::ChatRequest;
use crate::ports::{AfterResponse, BodyStream, Clock, Entropy, HttpClient};
use crate::providers::{mock::Mock, ProviderApi, SendContext};
use crate::rng::Rng;
use crate::router::session::{unknown_model, RouteSession};
use crate::store::Store;
use crate::stream::{ResponseStream, StreamIdentity};
use crate::validate;

/// The version reported by health endpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An upstream error body longer than this is cut: it is only read for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A response body: complete, or streamed as it is produced.
pub enum ResponseBody {
    Full(Bytes),
    Stream(ResponseStream),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseBody::Full(b) => write!(f, "Full({} bytes)", b.len()),
            ResponseBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

pub type GatewayResponse = http::Response<ResponseBody>;

/// What a host gives core: its implementations of the ports.
pub struct Ports {
    pub http: Arc<dyn HttpClient>,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn Store>,
    /// Where work left after a response goes when the host has no request-scoped place for it
    /// (see [`Gateway::handle_scoped`]).
    pub after_response: Arc<dyn AfterResponse>,
    pub entropy: Arc<dyn Entropy>,
}

/// One per instance: config parsed once, clients shared by every request.
pub struct Gateway {
    config: Config,
    master_key: Option<MasterKey>,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    /// Finishes a request's bookkeeping after its response, for hosts without a request scope.
    after_response: Arc<dyn AfterResponse>,
    entropy: Arc<dyn Entropy>,
    instance_seed: u64,
    /// When this instance started, for `/health`'s uptime.
    started_ms: u64,
}

impl Gateway {
    pub fn new(config: Config, ports: Ports) -> Self {
        let master_key = config.master_key.as_ref().map(MasterKey::from);
        let started_ms = ports.clock.now_ms();
        let mut seed = [0u8; 8];
        ports.entropy.fill(&mut seed);
        let instance_seed = u64::from_le_bytes(seed);
        Gateway {
            config,
            master_key,
            http: ports.http,
            clock: ports.clock,
            store: ports.store,
            after_response: ports.after_response,
            entropy: ports.entropy,
            instance_seed,
            started_ms,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one request. Never panics on client input; every failure is an OpenAI-style error.
    /// Work left after the response goes to the instance's [`Ports::after_response`].
    pub async fn handle(&self, req: http::Request<Bytes>) -> GatewayResponse {
        self.handle_scoped(req, Arc::clone(&self.after_response))
            .await
    }

    /// [`Gateway::handle`], with work left after the response handed to `after` (Workers: the
    /// request's `ctx.wait_until`).
    pub async fn handle_scoped(
        &self,
        req: http::Request<Bytes>,
        after: Arc<dyn AfterResponse>,
    ) -> GatewayResponse {
        let started_ms = self.clock.now_ms();
        // Anthropic's clients get their own error shape.
        let anthropic = anthropic_ingress::is_messages_path(normalise_path(req.uri().path()));
        let mut resp = match self.route(req, &after).await {
            Ok(resp) => resp,
            Err(e) if anthropic => anthropic_ingress::error_response(&e),
            Err(e) => error_response(&e),
        };
        // LiteLLM's correlation headers, on every answer (errors included). For a stream the
        // duration is the time to its first byte.
        let call_id = call_id(self.entropy.as_ref());
        let elapsed = self.clock.now_ms().saturating_sub(started_ms);
        set_header(&mut resp, "x-litellm-call-id", &call_id);
        set_header(
            &mut resp,
            "x-litellm-response-duration-ms",
            &elapsed.to_string(),
        );
        // Time not spent waiting on providers (or backing off from them): Tollgate's own.
        let upstream = resp.extensions().get::<UpstreamTime>().map_or(0, |t| t.0);
        set_header(
            &mut resp,
            "x-litellm-overhead-duration-ms",
            &elapsed.saturating_sub(upstream).to_string(),
        );
        resp
    }

    async fn route(
        &self,
        req: http::Request<Bytes>,
        after: &Arc<dyn AfterResponse>,
    ) -> Result<GatewayResponse, GatewayError> {
        let path = normalise_path(req.uri().path());
        let method = req.method().clone();
        // Probes are unauthenticated, as load balancers and Lambda health checks expect.
        match (&method, path) {
            (&Method::GET, "/health/liveliness" | "/health/liveness") => {
                return Ok(json_response(StatusCode::OK, &json!("I'm alive!")))
            }
            (&Method::GET, "/health/readiness") => return Ok(self.readiness().await),
            _ => {}
        }
        authorize(self.master_key.as_ref(), req.headers())?;
        match (method, path) {
            (Method::GET, "/health") => Ok(self.health().await),
            (Method::GET, "/models") => Ok(self.models()),
            (Method::GET, p) if p.starts_with("/models/") => self.model(&p["/models/".len()..]),
            (Method::POST, "/chat/completions") => self.chat(req.into_body(), after).await,
            (Method::POST, "/completions") => self.completions(req.into_body(), after).await,
            (Method::POST, "/embeddings") => self.embeddings(req.into_body(), after).await,
            (Method::POST, "/images/generations") => self.images(req.into_body(), after).await,
            (Method::POST, "/messages") => self.messages(req, after).await,
            (
                _,
                "/models"
                | "/chat/completions"
                | "/completions"
                | "/embeddings"
                | "/images/generations"
                | "/messages",
            ) => Err(GatewayError::new(
                ErrorKind::InvalidRequest,
                format!("Method not allowed on {path}"),
            )
            .with_status(405)),
            _ => Err(
                GatewayError::new(ErrorKind::NotFound, format!("Unknown route: {path}"))
                    .with_code("route_not_found"),
            ),
        }
    }

    /// Ready when the store answers (LiteLLM reports its database here the same way).
    async fn readiness(&self) -> GatewayResponse {
        match self.store.counter_get("tollgate:readiness").await {
            Ok(_) => json_response(
                StatusCode::OK,
                &json!({"status": "healthy", "db": "connected", "cache": null, "litellm_version": VERSION}),
            ),
            Err(e) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unhealthy", "db": e.to_string(), "cache": null, "litellm_version": VERSION}),
            ),
        }
    }

    fn models(&self) -> GatewayResponse {
        let data: Vec<Value> = self
            .config
            .public_model_names()
            .iter()
            .map(|n| model_object(n))
            .collect();
        json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
    }

    fn model(&self, name: &str) -> Result<GatewayResponse, GatewayError> {
        if self.config.deployments_for(name).is_empty() {
            return Err(unknown_model(name));
        }
        Ok(json_response(StatusCode::OK, &model_object(name)))
    }

    /// A chat request, answered by its model group or, when that fails after its retries, by
    /// the fallback groups in turn (each with its own retries).
    async fn chat(
        &self,
        body: Bytes,
        after: &Arc<dyn AfterResponse>,
    ) -> Result<GatewayResponse, GatewayError> {
        let req = validate::chat_request(&body)?;
        let requested = req.model.clone();
        let from_request = req.extra.get("fallbacks").cloned();
        self.with_fallbacks(
            after,
            &requested,
            from_request.as_ref(),
            &Work::Chat(Box::new(req)),
        )
        .await
    }

    async fn completions(
        &self,
        body: Bytes,
        after: &Arc<dyn AfterResponse>,
    ) -> Result<GatewayResponse, GatewayError> {
        let value = validate::json_object(&body)?;
        let requested = validate::model_name(&value)?;
        validate::completion_prompt(&value)?;
        let from_request = value.get("fallbacks").cloned();
        self.with_fallbacks(
            after,
            &requested,
            from_request.as_ref(),
            &Work::Completion(value),
        )
        .await
    }

    async fn embeddings(
        &self,
        body: Bytes,
        after: &Arc<dyn AfterResponse>,
    ) -> Result<GatewayResponse, GatewayError> {
        let value = validate::json_object(&body)?;
        let requested = validate::model_name(&value)?;
        validate::embeddings_input(&value)?;
        let from_request = value.get("fallbacks").cloned();
        self.with_fallbacks(
            after,
            &requested,
            from_request.as_ref(),
            &Work::Embeddings(value),
        )
        .await
    }

    /// `/v1/images/generations`: routed, retried and fallen back from like embeddings.
    async fn images(
        &self,
        body: Bytes,
        after: &Arc<dyn AfterResponse>,
    ) -> Result<GatewayResponse, GatewayError> {
        let value = validate::json_object(&body)?;
        let requested = validate::model_name(&value)?;
        validate::image_request(&value)?;
        let from_request = value.get("fallbacks").cloned();
        self.with_fallbacks(
            after,
            &requested,
            from_request.as_ref(),
            &Work::Images(value),
        )
        .await
    }

    /// An Anthropic Messages request (`/v1/messages`), on any provider.
    async fn messages(
        &self,
        req: http::Request<Bytes>,
        after: &Arc<dyn AfterResponse>,
    ) -> Result<GatewayResponse, GatewayError> {
        let beta = req
            .headers()
            .get("anthropic-beta")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let messages = anthropic_ingress::MessagesRequest::parse(req.body(), beta)?;
        let requested = messages.model.clone();
        let from_request = messages.original.get("fallbacks").cloned();
        let work = Work::Messages(Box::new(messages));
        self.with_fallbacks(after, &requested, from_request.as_ref(), &work)
            .await
    }

    /// Runs `work` on the requested group and, when it fails after its retries, on each
    /// fallback group in turn (each gets its own retries). When all fail, the last error keeps
    /// its status and its message names the groups tried.
    async fn with_fallbacks(
        &self,
        after: &Arc<dyn AfterResponse>,
        requested: &str,
        from_request: Option<&Value>,
        work: &Work,
    ) -> Result<GatewayResponse, GatewayError> {
        let first = match self.on_group(after, work, requested).await {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        let groups = self
            .config
            .fallbacks
            .for_failure(requested, &first, from_request);
        let mut last = first;
        for (tried, group) in groups.iter().enumerate() {
            match self.on_group(after, work, group).await {
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
    /// translate, call; on a transient failure (429, 5xx, timeouts; `retry_policy` decides per
    /// class) back off and try again, picking again (preferring deployments not yet tried).
    /// Retries happen only until the response starts: a stream is never retried once its
    /// first byte has gone to the client.
    async fn on_group(
        &self,
        after: &Arc<dyn AfterResponse>,
        work: &Work,
        group: &str,
    ) -> Result<GatewayResponse, GatewayError> {
        let mut session = RouteSession::new(
            &self.config,
            self.store.as_ref(),
            group,
            work.estimated_prompt_tokens(),
        )?;
        let own_retries = work
            .num_retries()?
            .map(|n| self.config.retry.with_num_retries(n));
        let retry = own_retries.as_ref().unwrap_or(&self.config.retry);
        let mut rng = Rng::for_request(self.clock.now_ms(), self.instance_seed);
        let mut attempt = 0u32;
        let mut upstream_ms = 0u64;
        loop {
            let d = session.pick(self.clock.now_ms(), &mut rng).await?;
            let prepared = self.prepare(work, group, &d)?;
            let started = self.clock.now_ms();
            session.started(&d, started).await;
            let outcome = self.exchange(&prepared, &d).await;
            upstream_ms += self.clock.now_ms().saturating_sub(started);
            match outcome {
                Ok(upstream) => {
                    let settlement = session.settlement(&d, Arc::clone(&self.store));
                    let mut resp = self
                        .answer(after, prepared, upstream, &d, group, settlement, started)
                        .await?;
                    resp.extensions_mut().insert(UpstreamTime(upstream_ms));
                    return Ok(with_deployment_headers(resp, &d, group, attempt));
                }
                Err(e) => {
                    session.failed(&d, &e, self.clock.now_ms()).await;
                    if attempt >= retry.retries_for(&e) {
                        return Err(e);
                    }
                    let wait = retry.backoff_ms(attempt, e.retry_after.as_deref(), &mut rng);
                    self.clock.sleep(wait).await;
                    upstream_ms += wait;
                    attempt += 1;
                }
            }
        }
    }

    /// For JSON bodies forwarded nearly as-is: applies defaults, strips gateway-only fields, asks
    /// for usage on streams, and picks the API (the mock when the request asks for it).
    fn prepare_passthrough(
        &self,
        value: &mut Value,
        d: &Deployment,
    ) -> Result<(&'static dyn ProviderApi, bool, bool), GatewayError> {
        let obj = value.as_object_mut().expect("validated as an object");
        let mock = obj.remove("mock_response");
        let api: &'static dyn ProviderApi = if mock.is_some() {
            &Mock
        } else {
            d.provider.api()?
        };
        validate::strip_gateway_params(obj);
        if let Some(m) = mock {
            obj.insert("mock_response".into(), m);
        }
        let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = obj
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if stream {
            obj.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Ok((api, stream, include_usage))
    }

    fn stream_identity(&self, prefix: &str, model: &str, include_usage: bool) -> StreamIdentity {
        let now = self.clock.now_ms();
        StreamIdentity {
            fallback_id: new_id(prefix, now, self.instance_seed),
            model: model.to_string(),
            fallback_created: now / 1000,
            include_usage,
        }
    }

    /// Sends `request` (or lets an in-process provider answer it), waiting at most
    /// `timeout_ms` for the response headers, and turns a non-2xx answer into the provider's
    /// error, with its status and `retry-after` kept.
    async fn call_within(
        &self,
        api: &dyn ProviderApi,
        request: http::Request<Bytes>,
        d: &Deployment,
        timeout_ms: u64,
    ) -> Result<BodyStream, GatewayError> {
        let response = match api.answer_locally(&request) {
            Some(r) => r,
            None => {
                let ctx = SendContext {
                    clock: self.clock.as_ref(),
                    http: self.http.as_ref(),
                };
                let request = api.authorize(request, d, &ctx).await?;
                self.http.send(request, timeout_ms).await?
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response.into_body());
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_all(response.into_body(), MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let mut err = api.error(status.as_u16(), &body);
        err.retry_after = retry_after;
        Err(err)
    }
}

/// `http::Request` is not `Clone`; the body is shared, not copied.
fn copy_request(req: &http::Request<Bytes>) -> http::Request<Bytes> {
    let mut copy = http::Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// `x-litellm-model-id`, `-model-group`, `-model-api-base` and `-attempted-retries`: which
/// deployment answered, after how many retries.
/// The api base is the configured or default URL, never a key.
fn with_deployment_headers(
    mut resp: GatewayResponse,
    d: &Deployment,
    group: &str,
    retries: u32,
) -> GatewayResponse {
    set_header(&mut resp, "x-litellm-model-id", &d.id);
    set_header(
        &mut resp,
        "x-litellm-attempted-retries",
        &retries.to_string(),
    );
    set_header(&mut resp, "x-litellm-model-group", group);
    if let Some(base) = d.params.api_base.as_deref().or(d.provider.default_base()) {
        set_header(&mut resp, "x-litellm-model-api-base", base);
    }
    resp
}

/// Sets a header, skipping values that are not valid header text (a group name never fails
/// a request).
fn set_header(resp: &mut GatewayResponse, name: &'static str, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// A random (version 4) UUID, as LiteLLM's call ids are.
fn call_id(entropy: &dyn Entropy) -> String {
    let mut b = [0u8; 16];
    entropy.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A validated request that can be tried on one model group after another.
enum Work {
    Chat(Box<ChatRequest>),
    Completion(Value),
    Embeddings(Value),
    Images(Value),
    Messages(Box<anthropic_ingress::MessagesRequest>),
}

impl Work {
    /// About how many tokens the prompt holds, for `max_input_tokens` checks and `tpm`
    /// estimates: a quarter of its text's bytes, rounded up (OpenAI's rule of thumb for
    /// English; no tokenizer ships in the gateway).
    fn estimated_prompt_tokens(&self) -> u64 {
        let bytes = match self {
            Work::Chat(req) => req.prompt_text_len(),
            Work::Completion(v) => text_len(v.get("prompt")),
            Work::Embeddings(v) => text_len(v.get("input")),
            Work::Images(v) => text_len(v.get("prompt")),
            Work::Messages(m) => m.prompt_text_len(),
        };
        (bytes as u64).div_ceil(4)
    }

    /// The request's own `num_retries`, if it sets one (at most [`MAX_REQUEST_RETRIES`]).
    fn num_retries(&self) -> Result<Option<u32>, GatewayError> {
        let value = match self {
            Work::Chat(req) => req.extra.get("num_retries"),
            Work::Completion(v) | Work::Embeddings(v) | Work::Images(v) => v.get("num_retries"),
            Work::Messages(m) => m.original.get("num_retries"),
        };
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) => Ok(Some(n.min(MAX_REQUEST_RETRIES) as u32)),
                None => Err(GatewayError::invalid_request(
                    "num_retries must be a non-negative integer",
                )
                .with_param("num_retries")),
            },
        }
    }
}

/// A request may ask for more (or fewer) retries than the config; this many at most.
const MAX_REQUEST_RETRIES: u64 = 10;

/// Bytes of text in a prompt or input value (a string, or arrays of them; token arrays count
/// four bytes per token).
fn text_len(v: Option<&Value>) -> usize {
    match v {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(items)) => items.iter().map(|i| text_len(Some(i))).sum(),
        Some(Value::Number(_)) => 4,
        _ => 0,
    }
}

/// Milliseconds spent on providers (calls and backoff), for the overhead header.
#[derive(Clone, Copy)]
struct UpstreamTime(u64);

fn model_object(name: &str) -> Value {
    json!({"id": name, "object": "model", "created": 1_677_610_602u64, "owned_by": "openai"})
}

/// `/v1/x`, `/x` and `/x/` are the same route.
fn normalise_path(path: &str) -> &str {
    let p = path
        .strip_prefix("/v1")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// Collects a body, up to `limit` bytes.
async fn read_all(mut body: BodyStream, limit: usize) -> Result<Bytes, GatewayError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    Ok(buf.freeze())
}

pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> GatewayResponse {
    let bytes = serde_json::to_vec(body)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"));
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(ResponseBody::Full(bytes))
        .expect("static headers are valid")
}

fn sse_response(stream: ResponseStream) -> GatewayResponse {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(ResponseBody::Stream(stream))
        .expect("static headers are valid")
}

/// The one place a [`GatewayError`] becomes an HTTP response.
pub fn error_response(e: &GatewayError) -> GatewayResponse {
    let mut resp = json_response(e.status(), &e.to_json());
    if let Some(v) = e
        .retry_after
        .as_deref()
        .and_then(|v| http::HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

mod attempt;
mod health;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod messages_tests;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod tests;

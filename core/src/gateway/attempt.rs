//! One attempt on one deployment, in three steps the group loop can tell apart:
//! [`Gateway::prepare`] translates (its errors are the request's, never retried),
//! [`Gateway::exchange`] talks to the upstream within the deployment's timeouts (its errors
//! are the deployment's: retried, cooled down, fallen back from), and [`Gateway::answer`]
//! translates back and settles the routing figures.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::options::RequestOptions;
use super::pipeline::Scope;
use super::respond::{full_json, sse_response, GatewayResponse};
use super::upstream::{copy_request, first_bytes, read_all, stream_idle_ms, within, IdleDeadline};
use super::work::Work;
use super::Gateway;
use crate::deployment::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::ids::new_id;
use crate::openai::{ChatRequest, Usage};
use crate::ports::{BodyStream, TransportError};
use crate::providers::{mock::Mock, ProviderApi};
use crate::stream::{ResponseStream, SseOutput, StreamIdentity};
use crate::validate;

mod messages;

/// A request translated for one deployment.
pub(super) struct Prepared {
    api: &'static dyn ProviderApi,
    pub(super) request: http::Request<Bytes>,
    pub(super) stream: bool,
    kind: PreparedKind,
}

enum PreparedKind {
    /// The translated chat request: reading the answer depends on how it was asked.
    Chat(Box<ChatRequest>),
    Completion {
        include_usage: bool,
    },
    Embeddings,
    /// The client's request: some providers' answers are shaped by it (`response_format`).
    Images(Value),
    /// An Anthropic Messages request: answered in Anthropic's format.
    Messages(messages::MessagesKind),
}

/// What came back from upstream: a whole body, or a stream whose first bytes have arrived.
pub(super) enum Upstream {
    Full(Bytes),
    Stream(BodyStream),
}

impl Gateway {
    /// Translates `work` for deployment `d` of `group`.
    pub(super) fn prepare(
        &self,
        work: &Work,
        group: &str,
        d: &Deployment,
        opts: &RequestOptions,
    ) -> Result<Prepared, GatewayError> {
        match work {
            Work::Chat(req) => self.prepare_chat((**req).clone(), group, d, opts),
            Work::Completion(value) => {
                let mut value = value.clone();
                let (api, stream, include_usage) = prepare_passthrough(&mut value, d, opts)?;
                Ok(Prepared {
                    api,
                    request: api.completion_request(&value, d)?,
                    stream,
                    kind: PreparedKind::Completion { include_usage },
                })
            }
            Work::Messages(m) => self.prepare_messages(m, group, d, opts),
            Work::Embeddings(value) => {
                let mut value = value.clone();
                let (api, _, _) = prepare_passthrough(&mut value, d, opts)?;
                Ok(Prepared {
                    api,
                    request: api.embeddings_request(&value, d)?,
                    stream: false,
                    kind: PreparedKind::Embeddings,
                })
            }
            Work::Images(value) => {
                let mut value = value.clone();
                let (api, _, _) = prepare_passthrough(&mut value, d, opts)?;
                Ok(Prepared {
                    api,
                    request: api.image_request(&value, d)?,
                    stream: false,
                    kind: PreparedKind::Images(value),
                })
            }
        }
    }

    pub(super) fn prepare_chat(
        &self,
        mut req: ChatRequest,
        group: &str,
        d: &Deployment,
        opts: &RequestOptions,
    ) -> Result<Prepared, GatewayError> {
        group.clone_into(&mut req.model);
        let mut req = validate::apply_defaults(req, &d.request_defaults)?;
        let api = api_for(d, opts)?;
        let drop = req
            .extra
            .get("drop_params")
            .and_then(Value::as_bool)
            .unwrap_or(d.drop_params);
        validate::strip_gateway_params(&mut req.extra);
        if let Some(supported) = api.supported_chat_params() {
            req = validate::enforce_supported_params(req, supported, drop, d.provider.prefix())?;
        }
        let refused = api.refused_chat_params(d);
        if !refused.is_empty() {
            req = validate::enforce_refused_params(req, refused, drop, d.provider.prefix())?;
        }
        keep_mock_response(&mut req.extra, opts);
        Ok(Prepared {
            api,
            request: api.chat_request(&req, d)?,
            stream: req.is_stream(),
            kind: PreparedKind::Chat(Box::new(req)),
        })
    }

    /// Sends `prepared` to `d` and waits, within the deployment's timeouts, for what decides
    /// the attempt: the whole body, or a stream's first bytes (`stream_timeout`, else
    /// `timeout`). Until then nothing has reached the client, so a failure can be retried.
    pub(super) async fn exchange(
        &self,
        prepared: &Prepared,
        d: &Deployment,
    ) -> Result<Upstream, GatewayError> {
        let budget = match (prepared.stream, d.stream_timeout_ms) {
            (true, Some(first_byte)) => first_byte,
            _ => d.timeout_ms,
        };
        let started = self.clock.now_ms();
        let request = copy_request(&prepared.request);
        // The host's client bounds the wait for headers too; this bound holds whatever the
        // client does.
        let sent = self.call_within(prepared.api, request, d, budget);
        let body = within(self.clock.as_ref(), budget, sent)
            .await
            .ok_or(GatewayError::from(TransportError::Timeout))??;
        let left = budget.saturating_sub(self.clock.now_ms().saturating_sub(started));
        if prepared.stream {
            let first = within(self.clock.as_ref(), left, first_bytes(body)).await;
            return match first {
                None => Err(TransportError::Timeout.into()),
                Some(Err(e)) => Err(GatewayError::new(ErrorKind::BadGateway, e.to_string())),
                Some(Ok(body)) => Ok(Upstream::Stream(IdleDeadline::wrap(
                    body,
                    Arc::clone(&self.clock),
                    stream_idle_ms(d),
                ))),
            };
        }
        match within(self.clock.as_ref(), left, read_all(body, usize::MAX)).await {
            None => Err(TransportError::Timeout.into()),
            Some(body) => Ok(Upstream::Full(body?)),
        }
    }

    /// Translates the upstream answer back for the client and notes in the ledger what it
    /// learnt (usage, the upstream's model name, the answer). A stream takes the ledger over
    /// and closes it at its end.
    pub(super) async fn answer(
        &self,
        prepared: Prepared,
        upstream: Upstream,
        d: &Deployment,
        group: &str,
        scope: &mut Scope,
    ) -> Result<GatewayResponse, GatewayError> {
        let api = prepared.api;
        match (upstream, prepared.kind) {
            (upstream, PreparedKind::Messages(kind)) => {
                self.answer_messages(api, kind, upstream, d, group, scope)
                    .await
            }
            (Upstream::Stream(body), kind) => {
                let stream = match kind {
                    PreparedKind::Chat(req) => {
                        let identity =
                            self.stream_identity(scope, "chatcmpl-", group, req.include_usage());
                        let out = SseOutput::new(body, api.chat_stream(&req, d), identity);
                        self.settled_at_end(out, scope)
                    }
                    PreparedKind::Completion { include_usage } => {
                        let identity = self.stream_identity(scope, "cmpl-", group, include_usage);
                        let out = SseOutput::new(body, api.completion_stream(d), identity);
                        self.settled_at_end(out, scope)
                    }
                    PreparedKind::Embeddings
                    | PreparedKind::Images(_)
                    | PreparedKind::Messages(_) => {
                        return Err(GatewayError::new(
                            ErrorKind::BadGateway,
                            "embeddings and images cannot be streamed",
                        ))
                    }
                };
                Ok(sse_response(stream))
            }
            (Upstream::Full(body), PreparedKind::Chat(req)) => {
                let mut completion = api.chat_response(&body, &req, d)?;
                note_answer(scope, completion.usage.as_ref(), Some(&completion.model));
                completion.model = group.to_string();
                let now = self.clock.now_ms();
                if completion.id.is_empty() {
                    completion.id = new_id("chatcmpl-", &mut scope.rng);
                }
                if completion.created == 0 {
                    completion.created = now / 1000;
                }
                "chat.completion".clone_into(&mut completion.object);
                Ok(respond_json(scope, &completion))
            }
            (Upstream::Full(body), PreparedKind::Completion { .. }) => {
                let answer = api.completion_response(&body, d)?;
                Ok(self.full_answer(answer, group, scope))
            }
            (Upstream::Full(body), PreparedKind::Embeddings) => {
                let answer = api.embeddings_response(&body, d)?;
                Ok(self.full_answer(answer, group, scope))
            }
            (Upstream::Full(body), PreparedKind::Images(req)) => {
                let mut answer = api.image_response(&body, &req, d)?;
                // OpenAI's images answer names no model; `created` is filled when missing.
                if let Some(o) = answer.as_object_mut() {
                    if o.get("created").and_then(Value::as_u64).is_none() {
                        o.insert("created".into(), json!(self.clock.now_ms() / 1000));
                    }
                }
                note_answer(scope, None, None);
                Ok(respond_json(scope, &answer))
            }
        }
    }

    /// A stream's output stage, given the request's ledger (closed at the stream's end). Its
    /// first bytes have arrived: that is the time to first token.
    fn settled_at_end<C: crate::providers::StreamChunk + 'static>(
        &self,
        out: SseOutput<C>,
        scope: &mut Scope,
    ) -> ResponseStream {
        let ledger = self.stream_ledger(scope);
        out.settling(ledger, Arc::clone(&scope.after)).boxed()
    }

    /// The ledger a stream takes over, with its time to first token noted.
    pub(super) fn stream_ledger(&self, scope: &mut Scope) -> crate::ledger::Ledger {
        if let Some(e) = scope.ledger.entry() {
            e.first_token_ms = Some(self.clock.now_ms());
        }
        scope.ledger.hand_over()
    }

    pub(super) fn stream_identity(
        &self,
        scope: &mut Scope,
        prefix: &str,
        model: &str,
        include_usage: bool,
    ) -> StreamIdentity {
        StreamIdentity {
            fallback_id: new_id(prefix, &mut scope.rng),
            model: model.to_string(),
            fallback_created: self.clock.now_ms() / 1000,
            include_usage,
        }
    }

    /// A JSON answer passed through nearly as is (completions, embeddings).
    fn full_answer(&self, mut answer: Value, group: &str, scope: &mut Scope) -> GatewayResponse {
        let usage: Option<Usage> = answer
            .get("usage")
            .and_then(|u| serde_json::from_value(u.clone()).ok());
        let model = answer
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string);
        note_answer(scope, usage.as_ref(), model.as_deref());
        answer["model"] = Value::String(group.to_string());
        respond_json(scope, &answer)
    }
}

/// Notes a complete answer's usage and the model the upstream says answered.
pub(super) fn note_answer(scope: &mut Scope, usage: Option<&Usage>, model: Option<&str>) {
    if let Some(e) = scope.ledger.entry() {
        e.usage = usage.cloned();
        e.response_model = model.filter(|m| !m.is_empty()).map(str::to_string);
    }
}

/// The 200 answer, its bytes kept in the ledger (shared, not copied) for whoever needs them.
fn respond_json<T: serde::Serialize>(scope: &mut Scope, body: &T) -> GatewayResponse {
    let bytes = serde_json::to_vec(body)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"));
    if let Some(e) = scope.ledger.entry() {
        e.output = Some(bytes.clone());
    }
    full_json(StatusCode::OK, bytes)
}

/// The API that answers for `d`: the built-in mock when the request brings its own
/// `mock_response` (as in LiteLLM), else the deployment's provider.
pub(super) fn api_for(
    d: &Deployment,
    opts: &RequestOptions,
) -> Result<&'static dyn ProviderApi, GatewayError> {
    match opts.mock_response {
        Some(_) => Ok(&Mock),
        None => d.provider.api(),
    }
}

/// Gateway-only parameters are stripped before a provider sees the body; the mock reads its
/// canned answer from it, so it is put back when the mock answers.
fn keep_mock_response(body: &mut serde_json::Map<String, Value>, opts: &RequestOptions) {
    if let Some(v) = &opts.mock_response {
        body.insert("mock_response".into(), v.clone());
    }
}

/// For JSON bodies forwarded nearly as-is: applies defaults, strips gateway-only fields, asks
/// for usage on streams, and picks the API (the mock when the request asks for it).
fn prepare_passthrough(
    value: &mut Value,
    d: &Deployment,
    opts: &RequestOptions,
) -> Result<(&'static dyn ProviderApi, bool, bool), GatewayError> {
    let api = api_for(d, opts)?;
    let Some(obj) = value.as_object_mut() else {
        return Err(GatewayError::invalid_request(
            "the body must be a JSON object",
        ));
    };
    validate::strip_gateway_params(obj);
    keep_mock_response(obj, opts);
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

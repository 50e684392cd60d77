//! One attempt on one deployment, in three steps the group loop can tell apart:
//! [`Gateway::prepare`] translates (its errors are the request's, never retried),
//! [`Gateway::exchange`] talks to the upstream within the deployment's timeouts (its errors
//! are the deployment's: retried, cooled down, fallen back from), and [`Gateway::answer`]
//! translates back and settles the routing figures.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use http::StatusCode;
use serde_json::Value;

use super::{json_response, read_all, sse_response, Gateway, GatewayResponse, Work};
use crate::config::Deployment;
use crate::error::{ErrorKind, GatewayError};
use crate::ids::new_id;
use crate::openai::{ChatRequest, Usage};
use crate::ports::{AfterResponse, BodyStream, Clock, Task, TransportError};
use crate::providers::{mock::Mock, ProviderApi};
use crate::router::session::Settlement;
use crate::stream::{OnStreamEnd, SseOutput};
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
    ) -> Result<Prepared, GatewayError> {
        match work {
            Work::Chat(req) => self.prepare_chat((**req).clone(), group, d),
            Work::Completion(value) => {
                let mut value = value.clone();
                let (api, stream, include_usage) = self.prepare_passthrough(&mut value, d)?;
                Ok(Prepared {
                    api,
                    request: api.completion_request(&value, d)?,
                    stream,
                    kind: PreparedKind::Completion { include_usage },
                })
            }
            Work::Messages(m) => self.prepare_messages(m, group, d),
            Work::Embeddings(value) => {
                let mut value = value.clone();
                let (api, _, _) = self.prepare_passthrough(&mut value, d)?;
                Ok(Prepared {
                    api,
                    request: api.embeddings_request(&value, d)?,
                    stream: false,
                    kind: PreparedKind::Embeddings,
                })
            }
            Work::Images(value) => {
                let mut value = value.clone();
                let (api, _, _) = self.prepare_passthrough(&mut value, d)?;
                Ok(Prepared {
                    api,
                    request: api.image_request(&value, d)?,
                    stream: false,
                    kind: PreparedKind::Images(value),
                })
            }
        }
    }

    fn prepare_chat(
        &self,
        mut req: ChatRequest,
        group: &str,
        d: &Deployment,
    ) -> Result<Prepared, GatewayError> {
        group.clone_into(&mut req.model);
        let mut req = validate::apply_defaults(req, &d.request_defaults)?;
        // A request's own mock_response is answered by the built-in mock, as in LiteLLM.
        let mock_requested = req.extra.contains_key("mock_response");
        let api: &'static dyn ProviderApi = if mock_requested {
            &Mock
        } else {
            d.provider.api()?
        };
        let drop = req
            .extra
            .get("drop_params")
            .and_then(Value::as_bool)
            .unwrap_or(d.drop_params);
        let mock_value = req.extra.remove("mock_response");
        validate::strip_gateway_params(&mut req.extra);
        if let Some(supported) = api.supported_chat_params() {
            req = validate::enforce_supported_params(req, supported, drop, d.provider.prefix())?;
        }
        let refused = api.refused_chat_params(d);
        if !refused.is_empty() {
            req = validate::enforce_refused_params(req, refused, drop, d.provider.prefix())?;
        }
        if let Some(v) = mock_value.filter(|_| mock_requested) {
            req.extra.insert("mock_response".into(), v);
        }
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
        let request = super::copy_request(&prepared.request);
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
                Some(Ok(body)) => Ok(Upstream::Stream(body)),
            };
        }
        match within(self.clock.as_ref(), left, read_all(body, usize::MAX)).await {
            None => Err(TransportError::Timeout.into()),
            Some(body) => Ok(Upstream::Full(body?)),
        }
    }

    /// Translates the upstream answer back for the client and settles the routing figures:
    /// now for a whole body, at the end of a stream.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn answer(
        &self,
        after: &Arc<dyn AfterResponse>,
        prepared: Prepared,
        upstream: Upstream,
        d: &Deployment,
        group: &str,
        settlement: Option<Settlement>,
        started_ms: u64,
    ) -> Result<GatewayResponse, GatewayError> {
        let api = prepared.api;
        match (upstream, prepared.kind) {
            (upstream, PreparedKind::Messages(kind)) => {
                let at = Attempt {
                    after,
                    d,
                    group,
                    settlement,
                    started_ms,
                };
                self.answer_messages(api, kind, upstream, at).await
            }
            (Upstream::Stream(body), kind) => {
                let on_end = self.stream_end(settlement, started_ms).await;
                let stream = match kind {
                    PreparedKind::Chat(req) => {
                        let identity =
                            self.stream_identity("chatcmpl-", group, req.include_usage());
                        let out = SseOutput::new(body, api.chat_stream(&req, d), identity);
                        match on_end {
                            Some(e) => out.on_end(e, Arc::clone(after)).boxed(),
                            None => out.boxed(),
                        }
                    }
                    PreparedKind::Completion { include_usage } => {
                        let identity = self.stream_identity("cmpl-", group, include_usage);
                        let out = SseOutput::new(body, api.completion_stream(d), identity);
                        match on_end {
                            Some(e) => out.on_end(e, Arc::clone(after)).boxed(),
                            None => out.boxed(),
                        }
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
                completion.model = group.to_string();
                let now = self.clock.now_ms();
                if completion.id.is_empty() {
                    completion.id = new_id("chatcmpl-", now, self.instance_seed);
                }
                if completion.created == 0 {
                    completion.created = now / 1000;
                }
                "chat.completion".clone_into(&mut completion.object);
                settle_now(settlement, completion.usage.as_ref(), now, started_ms).await;
                Ok(json_response(StatusCode::OK, &completion))
            }
            (Upstream::Full(body), PreparedKind::Completion { .. }) => {
                let answer = api.completion_response(&body, d)?;
                self.full_json(answer, group, settlement, started_ms).await
            }
            (Upstream::Full(body), PreparedKind::Embeddings) => {
                let answer = api.embeddings_response(&body, d)?;
                self.full_json(answer, group, settlement, started_ms).await
            }
            (Upstream::Full(body), PreparedKind::Images(req)) => {
                let mut answer = api.image_response(&body, &req, d)?;
                let now = self.clock.now_ms();
                // OpenAI's images answer names no model; `created` is filled when missing.
                if let Some(o) = answer.as_object_mut() {
                    if o.get("created").and_then(Value::as_u64).is_none() {
                        o.insert("created".into(), Value::from(now / 1000));
                    }
                }
                settle_now(settlement, None, now, started_ms).await;
                Ok(json_response(StatusCode::OK, &answer))
            }
        }
    }

    /// The bookkeeping a stream runs at its end; records the time to its first token now.
    async fn stream_end(
        &self,
        settlement: Option<Settlement>,
        started_ms: u64,
    ) -> Option<Box<dyn OnStreamEnd>> {
        let s = settlement?;
        let now = self.clock.now_ms();
        s.record_first_token(now, now.saturating_sub(started_ms))
            .await;
        Some(Box::new(SettleAtStreamEnd {
            settlement: s,
            clock: Arc::clone(&self.clock),
        }))
    }

    async fn full_json(
        &self,
        mut answer: Value,
        group: &str,
        settlement: Option<Settlement>,
        started_ms: u64,
    ) -> Result<GatewayResponse, GatewayError> {
        answer["model"] = Value::String(group.to_string());
        let usage: Option<Usage> = answer
            .get("usage")
            .and_then(|u| serde_json::from_value(u.clone()).ok());
        settle_now(settlement, usage.as_ref(), self.clock.now_ms(), started_ms).await;
        Ok(json_response(StatusCode::OK, &answer))
    }
}

async fn settle_now(settlement: Option<Settlement>, usage: Option<&Usage>, now: u64, started: u64) {
    if let Some(s) = settlement {
        let (total, output) = usage.map_or((0, 0), |u| (u.total_tokens, u.completion_tokens));
        s.settle(now, total, output, Some(now.saturating_sub(started)))
            .await;
    }
}

/// Settles a stream's routing figures once it is over (latency was sampled at its first
/// token).
struct SettleAtStreamEnd {
    settlement: Settlement,
    clock: Arc<dyn Clock>,
}

impl OnStreamEnd for SettleAtStreamEnd {
    fn end(self: Box<Self>, usage: Option<Usage>) -> Task {
        Box::pin(async move {
            let (total, output) = usage.map_or((0, 0), |u| (u.total_tokens, u.completion_tokens));
            self.settlement
                .settle(self.clock.now_ms(), total, output, None)
                .await;
        })
    }
}

/// Where an answer came from: what settling it and naming it need.
struct Attempt<'a> {
    after: &'a Arc<dyn AfterResponse>,
    d: &'a Deployment,
    group: &'a str,
    settlement: Option<Settlement>,
    started_ms: u64,
}

/// `fut`'s output, or `None` when `ms` pass first.
async fn within<F: std::future::Future>(clock: &dyn Clock, ms: u64, fut: F) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    match select(fut, clock.sleep(ms)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Waits for the body's first bytes and gives back the whole body, those bytes included. An
/// empty body is returned as is (the translator reports it as cut).
async fn first_bytes(mut body: BodyStream) -> Result<BodyStream, TransportError> {
    match body.next().await {
        None => Ok(Box::pin(futures_util::stream::empty())),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(Box::pin(
            futures_util::stream::once(async move { Ok(first) }).chain(body),
        )),
    }
}

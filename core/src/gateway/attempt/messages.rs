//! The `/v1/messages` arms of an attempt: an Anthropic deployment gets the client's body as
//! is; any other gets its OpenAI translation through the chat path, and its answer is turned
//! back into Anthropic's format.

use bytes::Bytes;
use http::StatusCode;

use super::{settle_now, Attempt, Prepared, PreparedKind, Upstream};
use crate::anthropic_ingress::passthrough::{self, PassthroughEvents};
use crate::anthropic_ingress::request::fit_to_provider;
use crate::anthropic_ingress::response::to_message;
use crate::anthropic_ingress::stream::{
    AnthropicSse, ChunkToEvents, EventSource, TranslatedEvents,
};
use crate::anthropic_ingress::MessagesRequest;
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::gateway::{sse_response, Gateway, GatewayResponse, ResponseBody};
use crate::ids::new_id;
use crate::openai::ChatRequest;
use crate::providers::{anthropic::Anthropic, ProviderApi, ProviderId};

/// How a Messages request was sent, which decides how its answer is read.
pub(in crate::gateway) enum MessagesKind {
    /// As an OpenAI chat request to a non-Anthropic provider.
    Translated(Box<ChatRequest>),
    /// As is, to an Anthropic deployment.
    Passthrough,
}

impl Gateway {
    pub(super) fn prepare_messages(
        &self,
        m: &MessagesRequest,
        group: &str,
        d: &Deployment,
    ) -> Result<Prepared, GatewayError> {
        // A request's own mock_response is answered by the built-in mock (translated path).
        let mock = m.original.get("mock_response").is_some();
        if d.provider == ProviderId::Anthropic && !mock {
            return Ok(Prepared {
                api: &Anthropic,
                request: passthrough::request(&m.original, d, m.beta.as_deref())?,
                stream: m.stream,
                kind: PreparedKind::Messages(MessagesKind::Passthrough),
            });
        }
        let mut chat = m.chat.clone()?;
        let supported = if mock {
            None
        } else {
            d.provider.api()?.supported_chat_params()
        };
        fit_to_provider(&mut chat, supported);
        let mut prepared = self.prepare_chat(chat, group, d)?;
        prepared.kind = match prepared.kind {
            PreparedKind::Chat(req) => PreparedKind::Messages(MessagesKind::Translated(req)),
            other => other,
        };
        Ok(prepared)
    }

    pub(super) async fn answer_messages(
        &self,
        api: &'static dyn ProviderApi,
        kind: MessagesKind,
        upstream: Upstream,
        at: Attempt<'_>,
    ) -> Result<GatewayResponse, GatewayError> {
        let now = self.clock.now_ms();
        match upstream {
            Upstream::Stream(body) => {
                let source: Box<dyn EventSource> = match kind {
                    MessagesKind::Translated(req) => Box::new(TranslatedEvents::new(
                        api.chat_stream(&req, at.d),
                        ChunkToEvents::new(
                            new_id("msg_", now, self.instance_seed),
                            at.group.to_string(),
                        ),
                    )),
                    MessagesKind::Passthrough => {
                        Box::new(PassthroughEvents::new(at.group.to_string()))
                    }
                };
                let on_end = self.stream_end(at.settlement, at.started_ms).await;
                let out =
                    AnthropicSse::new(body, source).on_end(on_end, std::sync::Arc::clone(at.after));
                Ok(sse_response(out.boxed()))
            }
            Upstream::Full(body) => {
                let (answer, usage) = match kind {
                    MessagesKind::Translated(req) => {
                        let completion = api.chat_response(&body, &req, at.d)?;
                        let mut answer = to_message(&completion, at.group);
                        if completion.id.is_empty() {
                            answer["id"] = new_id("msg_", now, self.instance_seed).into();
                        }
                        (Bytes::from(answer.to_string()), completion.usage)
                    }
                    MessagesKind::Passthrough => passthrough::full_answer(&body, at.group)?,
                };
                settle_now(at.settlement, usage.as_ref(), now, at.started_ms).await;
                Ok(http::Response::builder()
                    .status(StatusCode::OK)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(ResponseBody::Full(answer))
                    .expect("static headers are valid"))
            }
        }
    }
}

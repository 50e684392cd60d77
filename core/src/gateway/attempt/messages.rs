//! The `/v1/messages` arms of an attempt: an Anthropic deployment gets the client's body as
//! is; any other gets its OpenAI translation through the chat path, and its answer is turned
//! back into Anthropic's format.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use super::{api_for, note_answer, Prepared, PreparedKind, Upstream};
use crate::anthropic_ingress::passthrough::{self, PassthroughEvents};
use crate::anthropic_ingress::request::fit_to_provider;
use crate::anthropic_ingress::response::to_message;
use crate::anthropic_ingress::stream::{
    AnthropicSse, ChunkToEvents, EventSource, TranslatedEvents,
};
use crate::anthropic_ingress::MessagesRequest;
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::gateway::options::RequestOptions;
use crate::gateway::pipeline::Scope;
use crate::gateway::respond::{full_json, sse_response};
use crate::gateway::{Gateway, GatewayResponse};
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
        opts: &RequestOptions,
    ) -> Result<Prepared, GatewayError> {
        // A request's own mock_response is answered by the built-in mock (translated path).
        let mock = opts.mock_response.is_some();
        if d.provider == ProviderId::Anthropic && !mock {
            return Ok(Prepared {
                api: &Anthropic,
                request: passthrough::request(&m.original, d, m.beta.as_deref())?,
                stream: m.stream,
                kind: PreparedKind::Messages(MessagesKind::Passthrough),
            });
        }
        let mut chat = m.chat.clone()?;
        let supported = api_for(d, opts)?.supported_chat_params();
        fit_to_provider(&mut chat, supported);
        let mut prepared = self.prepare_chat(chat, group, d, opts)?;
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
        d: &Deployment,
        group: &str,
        scope: &mut Scope,
    ) -> Result<GatewayResponse, GatewayError> {
        match upstream {
            Upstream::Stream(body) => {
                let source: Box<dyn EventSource> = match kind {
                    MessagesKind::Translated(req) => Box::new(TranslatedEvents::new(
                        api.chat_stream(&req, d),
                        ChunkToEvents::new(new_id("msg_", &mut scope.rng), group.to_string()),
                    )),
                    MessagesKind::Passthrough => {
                        Box::new(PassthroughEvents::new(group.to_string()))
                    }
                };
                let ledger = self.stream_ledger(scope);
                let out =
                    AnthropicSse::new(body, source).settling(ledger, Arc::clone(&scope.after));
                Ok(sse_response(out.boxed()))
            }
            Upstream::Full(body) => {
                let (answer, usage, model) = match kind {
                    MessagesKind::Translated(req) => {
                        let completion = api.chat_response(&body, &req, d)?;
                        let mut answer = to_message(&completion, group);
                        if completion.id.is_empty() {
                            answer["id"] = new_id("msg_", &mut scope.rng).into();
                        }
                        let model = Some(completion.model.clone());
                        (Bytes::from(answer.to_string()), completion.usage, model)
                    }
                    MessagesKind::Passthrough => {
                        let (answer, usage) = passthrough::full_answer(&body, group)?;
                        (answer, usage, None)
                    }
                };
                note_answer(scope, usage.as_ref(), model.as_deref());
                if let Some(e) = scope.ledger.entry() {
                    e.output = Some(answer.clone());
                }
                Ok(full_json(StatusCode::OK, answer))
            }
        }
    }
}

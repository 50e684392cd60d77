//! Anthropic Messages API. (Being written: see the helper's work.)

use bytes::Bytes;

use super::openai_compatible::{openai_error, OpenAiChatStream};
use super::{ChatStream, ProviderApi};
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::openai::{ChatCompletion, ChatRequest};

pub struct Anthropic;

impl ProviderApi for Anthropic {
    fn chat_request(
        &self,
        _req: &ChatRequest,
        d: &Deployment,
    ) -> Result<http::Request<Bytes>, GatewayError> {
        Err(super::unsupported(d, "chat (translation in progress)"))
    }
    fn chat_response(&self, body: &[u8], _d: &Deployment) -> Result<ChatCompletion, GatewayError> {
        super::parse_json(body)
    }
    fn chat_stream(&self, _req: &ChatRequest, _d: &Deployment) -> ChatStream {
        Box::new(OpenAiChatStream::default())
    }
    fn error(&self, status: u16, body: &[u8]) -> GatewayError {
        openai_error(status, body)
    }
}

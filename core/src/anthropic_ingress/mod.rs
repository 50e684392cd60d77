//! Anthropic-format ingress: `POST /v1/messages` for any model group.
//!
//! An Anthropic deployment gets the client's body as it came (upstream model name put in,
//! gateway-only fields taken out) and its answer goes back as it came (with the requested
//! model name). Every other provider gets the request as an OpenAI [`ChatRequest`]
//! ([`request`]), sent through the normal provider translation; its OpenAI-shaped answer is
//! turned back into an Anthropic message ([`response`]) or event stream ([`stream`]).
//!
//! This is the opposite direction of [`crate::providers::anthropic`] (OpenAI in, Anthropic
//! out), kept apart because each side has its own defaults and loss rules. The choices follow
//! LiteLLM's `/v1/messages` adapter so clients see what they would behind LiteLLM.

pub mod error;
pub mod passthrough;
pub mod request;
pub mod response;
pub mod stream;

use serde_json::Value;

use crate::error::GatewayError;
use crate::openai::ChatRequest;

pub use error::error_response;

/// The route's paths after [`crate::gateway`]'s normalisation (`/v1` and a trailing `/` gone).
pub fn is_messages_path(normalised: &str) -> bool {
    normalised == "/messages"
}

/// A validated `/v1/messages` request, in both forms: the client's own body (for Anthropic
/// deployments) and its OpenAI translation (for every other provider).
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// The body as the client sent it.
    pub original: Value,
    /// The OpenAI form, or why there is none: a request using what only Anthropic has (server
    /// tools, say) is still fine for Anthropic deployments, so the error waits until a
    /// deployment of another provider is picked.
    pub chat: Result<ChatRequest, GatewayError>,
    pub model: String,
    pub stream: bool,
    /// The client's `anthropic-beta` header, forwarded to Anthropic deployments.
    pub beta: Option<String>,
}

impl MessagesRequest {
    /// Checks what every provider needs (a model, messages, max_tokens) and translates.
    pub fn parse(body: &[u8], beta: Option<String>) -> Result<Self, GatewayError> {
        let original = crate::validate::json_object(body)?;
        request::check_required(&original)?;
        let model = crate::validate::model_name(&original)?;
        let stream = original
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let chat = request::to_chat(&original);
        Ok(MessagesRequest {
            original,
            chat,
            model,
            stream,
            beta,
        })
    }

    /// Bytes of prompt text, for token estimates.
    pub fn prompt_text_len(&self) -> usize {
        match &self.chat {
            Ok(chat) => chat.prompt_text_len(),
            Err(_) => self
                .original
                .get("messages")
                .map_or(0, |m| m.to_string().len()),
        }
    }
}

//! Gemini's `generateContent` wire format, shared by Google AI Studio (`gemini/`) and Vertex
//! AI (`vertex_ai/`): the two differ only in URLs and credentials, which their own modules
//! own. Where OpenAI and Gemini differ in meaning, the choices follow LiteLLM's, so clients
//! see what they would behind LiteLLM.

mod error;
mod request;
mod response;
mod schema;
mod stream;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use error::google_error;
pub use request::{request_body, SUPPORTED_PARAMS};
pub use stream::GeminiStream;

use crate::error::GatewayError;
use crate::openai::{ChatCompletion, ChatRequest};
use crate::providers::parse_json;

/// Joins a tool call id and the thought signature of its `functionCall` part. Gemini 3 needs
/// the signature back when the call is replayed; the id is the one field clients return
/// untouched, so it carries it there (LiteLLM's convention).
pub const THOUGHT_SIGNATURE_SEPARATOR: &str = "__thought__";

/// A chat request's body and the model method it goes to: `generateContent`, or
/// `streamGenerateContent?alt=sse` to stream.
pub fn chat_body(req: &ChatRequest) -> Result<(Vec<u8>, &'static str), GatewayError> {
    let body = to_vec(&request_body(req)?)?;
    let method = if req.is_stream() {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    Ok((body, method))
}

/// A request body as bytes.
pub fn to_vec(v: &Value) -> Result<Vec<u8>, GatewayError> {
    serde_json::to_vec(v).map_err(|e| GatewayError::invalid_request(e.to_string()))
}

/// A full `generateContent` answer. A 200 whose body is an error is still an error.
pub fn chat_completion(body: &[u8]) -> Result<ChatCompletion, GatewayError> {
    let value: Value = parse_json(body)?;
    if let Some(e) = value.get("error") {
        return Err(error::error_from_value(0, e));
    }
    Ok(response::completion(response::from_upstream(value)?))
}

//! Amazon Bedrock runtime wire format: Converse, ConverseStream (binary event-stream
//! frames with real CRCs), InvokeModel for Titan / Cohere embeddings, and Bedrock's error
//! shape (`{"message"}` plus the `x-amzn-errortype` header). Requests must be SigV4-signed
//! with the test key (see [`crate::sigv4`]) or carry a Bedrock API key (`Bearer`).

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use serde_json::{json, Value};

use crate::http::{self, Resp};
use crate::logic::{
    echo_text, embedding, finalize_text, percent_decode, split_words_keep_spaces, stop_list,
    word_count, EventStream, Finish, Reply, Scenario, TOOL_ARGS, TOOL_ARG_FRAGMENTS,
};
use crate::sigv4::{self, Refusal};

pub const TOOL_USE_ID: &str = "tooluse_mock_1";

/// Top-level Converse fields the real API accepts; others are refused as it does.
const CONVERSE_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
];
const INFERENCE_FIELDS: &[&str] = &["maxTokens", "temperature", "topP", "stopSequences"];
const BLOCK_KINDS: &[&str] = &[
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "reasoningContent",
    "cachePoint",
    "guardContent",
    "citationsContent",
];

/// Which runtime operation a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Converse,
    ConverseStream,
    Invoke,
}

/// `/model/{id}/{operation}` → (decoded model id, operation).
pub fn parse_path(path: &str) -> Option<(String, Operation)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, op) = rest.rsplit_once('/')?;
    let op = match op {
        "converse" => Operation::Converse,
        "converse-stream" => Operation::ConverseStream,
        "invoke" => Operation::Invoke,
        _ => return None,
    };
    (!id.is_empty()).then(|| (percent_decode(id), op))
}

// ---------------------------------------------------------------------- errors

/// Bedrock's error: status, exception name (header), message (body).
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub exception: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, exception: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            exception,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    pub fn response(&self) -> Resp {
        let mut r = http::json(
            self.status,
            json!({ "message": self.message }).to_string().into_bytes(),
        );
        let kind = format!(
            "{}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            self.exception
        );
        if let Ok(v) = HeaderValue::from_str(&kind) {
            r.headers_mut().insert("x-amzn-errortype", v);
        }
        r
    }
}

/// Bedrock's answer to a prompt longer than the model's context window.
pub fn context_overflow() -> ApiError {
    ApiError::new(
        400,
        "ValidationException",
        "Input is too long for requested model.",
    )
}

pub fn simulated_error(status: u16) -> ApiError {
    let (exception, message) = match status {
        400 => (
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        ),
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "The requested resource could not be found.",
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        424 => ("ModelErrorException", "The model returned an error."),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => (
            "ServiceUnavailableException",
            "Service is temporarily unavailable.",
        ),
        _ => (
            "InternalServerException",
            "An internal server error occurred. Retry your request.",
        ),
    };
    ApiError::new(status, exception, message)
}

/// SigV4 with the test key, or a Bedrock API key as a bearer token.
pub fn check_auth(parts: &Parts, body: &[u8]) -> Result<(), ApiError> {
    if http::bearer(&parts.headers).is_some() {
        return Ok(());
    }
    let verdict = sigv4::verify(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        body,
    );
    match verdict {
        Ok(()) => Ok(()),
        Err(Refusal::Missing) => Err(ApiError::new(403, "MissingAuthenticationTokenException", "Missing Authentication Token")),
        Err(Refusal::UnknownKey) => Err(ApiError::new(403, "UnrecognizedClientException", "The security token included in the request is invalid.")),
        Err(Refusal::Invalid(why)) => Err(ApiError::new(
            403,
            "InvalidSignatureException",
            format!("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. ({why})"),
        )),
    }
}

// ------------------------------------------------------------------ validation

pub fn validate_converse(v: &Value) -> Result<(), ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::validation("The request body must be a JSON object."))?;
    if let Some(k) = obj.keys().find(|k| !CONVERSE_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::validation(format!(
            "Malformed input request: extraneous key [{k}] is not permitted, please reformat your input and try again."
        )));
    }
    if let Some(ic) = obj.get("inferenceConfig").and_then(Value::as_object) {
        if let Some(k) = ic.keys().find(|k| !INFERENCE_FIELDS.contains(&k.as_str())) {
            return Err(ApiError::validation(format!(
                "Malformed input request: extraneous key [{k}] is not permitted in inferenceConfig."
            )));
        }
    }
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::validation("A conversation must start with a user message."))?;
    let mut uses_tools = false;
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if role != want {
            return Err(ApiError::validation(
                "A conversation must alternate between user and assistant roles and start with a user message.",
            ));
        }
        let blocks = m
            .get("content")
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                ApiError::validation(format!("messages.{i}.content must not be empty"))
            })?;
        for b in blocks {
            let kind = block_kind(b).ok_or_else(|| {
                ApiError::validation(format!(
                    "messages.{i}.content holds an unknown or malformed block"
                ))
            })?;
            if kind == "text" && b["text"].as_str().is_none_or(|t| t.trim().is_empty()) {
                return Err(ApiError::validation(
                    "The text field in the ContentBlock object is blank. Add text to the text field, and try again.",
                ));
            }
            uses_tools |= kind == "toolUse" || kind == "toolResult";
        }
    }
    if uses_tools && obj.get("toolConfig").is_none() {
        return Err(ApiError::validation(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ));
    }
    Ok(())
}

/// A content block is an object with exactly one known member.
fn block_kind(b: &Value) -> Option<&str> {
    let o = b.as_object().filter(|o| o.len() == 1)?;
    let k = o.keys().next()?.as_str();
    BLOCK_KINDS.contains(&k).then_some(k)
}

// ----------------------------------------------------------------------- reply

fn blocks_text(blocks: &Value) -> String {
    blocks
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|x| x.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn tool_results(blocks: &Value) -> Option<String> {
    let results: Vec<String> = blocks
        .as_array()?
        .iter()
        .filter_map(|b| b.get("toolResult"))
        .map(|r| blocks_text(&r["content"]))
        .collect();
    (!results.is_empty()).then(|| results.join(" "))
}

fn tool_to_call(v: &Value) -> Option<String> {
    let config = v.get("toolConfig")?;
    let tools = config.get("tools")?.as_array().filter(|t| !t.is_empty())?;
    if let Some(name) = config["toolChoice"]["tool"]["name"].as_str() {
        return Some(name.to_owned());
    }
    tools[0]["toolSpec"]["name"].as_str().map(str::to_owned)
}

pub fn reply(v: &Value, sc: &Scenario) -> (Reply, Finish) {
    let config = &v["inferenceConfig"];
    if sc.echo_max_tokens {
        return (
            Reply::Text(echo_text("max_tokens", config.get("maxTokens"))),
            Finish::Stop,
        );
    }
    let stops = stop_list(config.get("stopSequences"));
    let max = config.get("maxTokens").and_then(Value::as_u64);
    let text_reply = |t: String| {
        let (t, f) = finalize_text(t, &stops, max);
        (Reply::Text(t), f)
    };
    let empty = Vec::new();
    let msgs = v["messages"].as_array().unwrap_or(&empty);
    if let Some(result) = msgs.last().and_then(|m| tool_results(&m["content"])) {
        return text_reply(format!("tool said: {result}"));
    }
    if let Some(name) = tool_to_call(v) {
        return (Reply::Tool(name), Finish::ToolCalls);
    }
    let user = msgs
        .last()
        .map(|m| blocks_text(&m["content"]))
        .unwrap_or_default();
    text_reply(crate::logic::reply_to(&user, sc))
}

/// Whitespace words across the system prompt and every message text, at least 1.
pub fn input_tokens(v: &Value) -> u64 {
    let empty = Vec::new();
    let msgs = v["messages"].as_array().unwrap_or(&empty);
    let words: u64 = std::iter::once(&v["system"])
        .chain(msgs.iter().map(|m| &m["content"]))
        .map(|b| word_count(&blocks_text(b)))
        .sum();
    words.max(1)
}

fn stop_reason(finish: &Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::StopSequence(_) => "stop_sequence",
        Finish::ToolCalls => "tool_use",
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({ "inputTokens": input, "outputTokens": output, "totalTokens": input + output })
}

pub fn converse_json(reply: &Reply, finish: &Finish, input: u64) -> Value {
    let content = match reply {
        Reply::Text(t) if t.is_empty() => json!([]),
        Reply::Text(t) => json!([{ "text": t }]),
        Reply::Tool(name) => json!([{ "toolUse": {
            "toolUseId": TOOL_USE_ID,
            "name": name,
            "input": serde_json::from_str::<Value>(TOOL_ARGS).unwrap_or(Value::Null),
        } }]),
    };
    json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": stop_reason(finish),
        "usage": usage(input, reply.completion_tokens()),
        "metrics": { "latencyMs": 1 },
    })
}

// ---------------------------------------------------------------- event stream

/// One event-stream message with string headers; both CRCs computed as the protocol says.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// A ConverseStream event; like Bedrock, each payload carries a `p` padding field.
fn event(kind: &str, mut payload: Value) -> Bytes {
    payload["p"] = json!("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"[..kind.len()]);
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

pub fn stream_events(reply: &Reply, finish: &Finish, input: u64) -> EventStream {
    let mut s = EventStream::default();
    s.push(event("messageStart", json!({ "role": "assistant" })));
    match reply {
        Reply::Text(t) => {
            for piece in split_words_keep_spaces(t) {
                s.push_content(event(
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": 0, "delta": { "text": piece } }),
                ));
            }
        }
        Reply::Tool(name) => {
            s.push(event(
                "contentBlockStart",
                json!({ "contentBlockIndex": 0, "start": { "toolUse": { "toolUseId": TOOL_USE_ID, "name": name } } }),
            ));
            for frag in TOOL_ARG_FRAGMENTS {
                s.push_content(event(
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": 0, "delta": { "toolUse": { "input": frag } } }),
                ));
            }
        }
    }
    s.push(event("contentBlockStop", json!({ "contentBlockIndex": 0 })));
    s.push(event(
        "messageStop",
        json!({ "stopReason": stop_reason(finish) }),
    ));
    s.push(event(
        "metadata",
        json!({ "usage": usage(input, reply.completion_tokens()), "metrics": { "latencyMs": 1 } }),
    ));
    s
}

fn eventstream_response(events: Vec<Bytes>, sc: &Scenario) -> Resp {
    let mut r = hyper::Response::new(http::stream_body(events, sc));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    r
}

pub fn converse(v: &Value, op: Operation, sc: &Scenario) -> Resp {
    let input = input_tokens(v);
    let (reply, finish) = reply(v, sc);
    if op == Operation::ConverseStream {
        let mut s = stream_events(&reply, &finish, input);
        if sc.cut_stream {
            s.cut_after_two_content_events();
        }
        eventstream_response(s.events, sc)
    } else {
        http::json(
            200,
            converse_json(&reply, &finish, input)
                .to_string()
                .into_bytes(),
        )
    }
}

// ------------------------------------------------------------------ embeddings

/// InvokeModel for Titan Text Embeddings (`inputText`) and Cohere Embed (`texts`).
pub fn invoke(v: &Value, model: &str) -> Resp {
    let vector = |t: &str| json!(embedding(t).to_vec());
    if model.contains("titan-embed") {
        let Some(text) = v.get("inputText").and_then(Value::as_str) else {
            return ApiError::validation(
                "Malformed input request: #: required key [inputText] not found",
            )
            .response();
        };
        let body =
            json!({ "embedding": vector(text), "inputTextTokenCount": word_count(text).max(1) });
        return http::json(200, body.to_string().into_bytes());
    }
    if model.contains("cohere.embed") {
        let texts: Option<Vec<&str>> = v
            .get("texts")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect());
        let (Some(texts), Some(_)) = (texts, v.get("input_type")) else {
            return ApiError::validation(
                "Malformed input request: texts and input_type are required",
            )
            .response();
        };
        let body = json!({
            "id": format!("emb-mock-{}", http::next_id()),
            "response_type": "embeddings_floats",
            "texts": texts,
            "embeddings": texts.iter().map(|t| vector(t)).collect::<Vec<_>>(),
        });
        return http::json(200, body.to_string().into_bytes());
    }
    ApiError::validation(format!("The provided model identifier is invalid: {model}")).response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::scenario;

    #[test]
    fn paths_name_model_and_operation() {
        assert_eq!(
            parse_path("/model/anthropic.claude-v2%3A1/converse-stream"),
            Some(("anthropic.claude-v2:1".into(), Operation::ConverseStream))
        );
        assert_eq!(
            parse_path(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/invoke"
            ),
            Some((
                "arn:aws:bedrock:us-east-1:1:inference-profile/us.x".into(),
                Operation::Invoke
            ))
        );
        assert_eq!(parse_path("/model//converse"), None);
        assert_eq!(parse_path("/model/x/other"), None);
    }

    fn user(text: &str) -> Value {
        json!({ "messages": [{ "role": "user", "content": [{ "text": text }] }] })
    }

    #[test]
    fn validation_follows_the_real_api() {
        assert!(validate_converse(&user("hi")).is_ok());
        assert!(validate_converse(&json!({"messages": [], "stop": 1})).is_err());
        assert!(validate_converse(
            &json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]})
        )
        .is_err());
        assert!(validate_converse(&user(" ")).is_err());
        let mut v = user("hi");
        v["inferenceConfig"] = json!({"top_k": 1});
        assert!(validate_converse(&v).is_err());
        let tools = json!({"messages": [
            {"role": "user", "content": [{"text": "hi"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "sunny"}]}}]}
        ]});
        let e = validate_converse(&tools).unwrap_err();
        assert!(e.message.contains("toolConfig"));
    }

    #[test]
    fn replies_follow_the_shared_scenarios() {
        let sc = scenario("m");
        let mut v = user("hello there");
        v["inferenceConfig"] = json!({"maxTokens": 3});
        let (r, f) = reply(&v, &sc);
        assert_eq!(r, Reply::Text("mock reply to:".into()));
        assert_eq!(f, Finish::Length);
        let (r, _) = reply(&user("x"), &scenario("max-tokens-echo"));
        assert_eq!(r, Reply::Text("max_tokens=none".into()));
        let mut v = user("weather?");
        v["toolConfig"] =
            json!({"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {}}}}]});
        assert_eq!(reply(&v, &sc).0, Reply::Tool("get_weather".into()));
        let result = json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "sunny"}]}}]}]});
        assert_eq!(
            reply(&result, &sc).0,
            Reply::Text("tool said: sunny".into())
        );
        let body = converse_json(&Reply::Text("a b".into()), &Finish::Stop, 3);
        assert_eq!(
            body["usage"],
            json!({"inputTokens": 3, "outputTokens": 2, "totalTokens": 5})
        );
        assert_eq!(body["stopReason"], "end_turn");
    }

    /// Decodes frames back (prelude, CRCs, headers) to check the encoder byte for byte.
    fn decode(mut bytes: &[u8]) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
            let hlen = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
            let prelude_crc = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
            assert_eq!(crc32fast::hash(&bytes[..8]), prelude_crc);
            let msg_crc = u32::from_be_bytes(bytes[total - 4..total].try_into().unwrap());
            assert_eq!(crc32fast::hash(&bytes[..total - 4]), msg_crc);
            let headers = &bytes[12..12 + hlen];
            let name_len = headers[0] as usize;
            assert_eq!(&headers[1..1 + name_len], b":event-type");
            let vlen = u16::from_be_bytes([headers[2 + name_len], headers[3 + name_len]]) as usize;
            let kind =
                String::from_utf8(headers[4 + name_len..4 + name_len + vlen].to_vec()).unwrap();
            let payload: Value = serde_json::from_slice(&bytes[12 + hlen..total - 4]).unwrap();
            out.push((kind, payload));
            bytes = &bytes[total..];
        }
        out
    }

    #[test]
    fn stream_frames_are_valid_event_stream_messages() {
        let s = stream_events(&Reply::Tool("f".into()), &Finish::ToolCalls, 2);
        let bytes: Vec<u8> = s.events.iter().flat_map(|b| b.to_vec()).collect();
        let events = decode(&bytes);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "messageStart",
                "contentBlockStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        let args: String = events
            .iter()
            .filter_map(|(_, p)| p["delta"]["toolUse"]["input"].as_str())
            .collect();
        assert_eq!(args, TOOL_ARGS);
        assert_eq!(events[6].1["stopReason"], "tool_use");
        // The empty message from aws-c-event-stream's test suite.
        assert_eq!(
            frame(&[], b"").to_vec(),
            [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]
        );
    }

    #[test]
    fn embeddings_for_titan_and_cohere() {
        let titan = invoke(&json!({"inputText": "a b"}), "amazon.titan-embed-text-v2:0");
        assert_eq!(titan.status(), 200);
        let cohere = invoke(
            &json!({"texts": ["a"], "input_type": "search_document"}),
            "cohere.embed-english-v3",
        );
        assert_eq!(cohere.status(), 200);
        assert_eq!(
            invoke(&json!({"texts": ["a"]}), "amazon.titan-embed-text-v1").status(),
            400
        );
        assert_eq!(invoke(&json!({}), "meta.llama").status(), 400);
    }

    #[test]
    fn errors_carry_the_exception_header() {
        let r = simulated_error(429).response();
        assert_eq!(r.status(), 429);
        assert_eq!(
            r.headers()["x-amzn-errortype"],
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
        assert_eq!(r.headers()["retry-after"], "1");
    }
}

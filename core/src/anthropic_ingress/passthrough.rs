//! `/v1/messages` to an Anthropic deployment: the client's body goes as it came (the upstream
//! model name put in, gateway-only fields out) and the answer comes back as it came, with the
//! requested model name. Only `message_start` (for the model) is re-serialised in a stream;
//! every other event is re-framed from its original data text.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{json, Value};

use super::error::put_event;
use super::stream::EventSource;
use crate::deployment::Deployment;
use crate::error::GatewayError;
use crate::openai::{PromptTokensDetails, Usage};
use crate::providers::anthropic::{anthropic_error, messages_request};
use crate::providers::{parse_json, stream_cut};
use crate::sse::{SseDecoder, SseEvent};

/// The upstream request: the client's body for deployment `d`.
pub fn request(
    original: &Value,
    d: &Deployment,
    beta: Option<&str>,
) -> Result<http::Request<bytes::Bytes>, GatewayError> {
    let mut body = original.clone();
    let obj = body.as_object_mut().expect("validated as an object");
    // `metadata` is Anthropic's own field too: only its `user_id` is Anthropic's.
    let user_id = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .cloned()
        .filter(|u| !u.is_null());
    crate::validate::strip_gateway_params(obj);
    if let Some(u) = user_id {
        obj.insert("metadata".into(), json!({ "user_id": u }));
    }
    obj.insert("model".into(), Value::String(d.upstream_model.clone()));
    let bytes =
        serde_json::to_vec(&body).map_err(|e| GatewayError::invalid_request(e.to_string()))?;
    messages_request(bytes, d, beta)
}

/// A whole answer, reported under `model` and otherwise byte for byte the upstream's, with
/// its usage for the routing figures.
pub fn full_answer(body: &[u8], model: &str) -> Result<(Bytes, Option<Usage>), GatewayError> {
    let mut value: Value = parse_json(body)?;
    if value.get("type").and_then(Value::as_str) == Some("error") || !value.is_object() {
        return Err(anthropic_error(502, body));
    }
    let usage = value.get("usage").map(to_usage);
    let text = std::str::from_utf8(body).ok();
    let old = value.get("model").and_then(Value::as_str);
    let renamed = match (text, old) {
        (Some(text), Some(old)) => rename_model(text, old, model),
        _ => None,
    };
    let body = match renamed {
        Some(text) => Bytes::from(text),
        // No model where expected: the answer is rebuilt with one (key order may change).
        None => {
            value["model"] = Value::String(model.to_string());
            Bytes::from(value.to_string())
        }
    };
    Ok((body, usage))
}

/// `text` with the first `"model": "<old>"` member's value replaced by `new`, leaving every
/// other byte as it was; `None` when there is no such member. A raw `"model"` followed by a
/// colon can only be a key (quotes inside JSON strings are escaped); the first one whose
/// value is `old` is the message's own, which Anthropic puts before the content.
pub fn rename_model(text: &str, old: &str, new: &str) -> Option<String> {
    let old_token = serde_json::to_string(old).ok()?;
    let mut from = 0;
    while let Some(found) = text[from..].find("\"model\"") {
        let key_end = from + found + "\"model\"".len();
        let rest = &text[key_end..];
        let after_ws = rest.trim_start();
        if let Some(value) = after_ws.strip_prefix(':').map(str::trim_start) {
            if value.starts_with(&old_token) {
                let start = text.len() - value.len();
                let new_token = serde_json::to_string(new).ok()?;
                let mut out = String::with_capacity(text.len() + new_token.len());
                out.push_str(&text[..start]);
                out.push_str(&new_token);
                out.push_str(&text[start + old_token.len()..]);
                return Some(out);
            }
        }
        from = key_end;
    }
    None
}

/// Anthropic's usage in OpenAI's terms: prompt tokens include cache reads and writes.
fn to_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let read = n("cache_read_input_tokens");
    let write = n("cache_creation_input_tokens");
    let prompt = n("input_tokens").unwrap_or(0) + read.unwrap_or(0) + write.unwrap_or(0);
    let mut usage = Usage::new(prompt, n("output_tokens").unwrap_or(0));
    if read.is_some() || write.is_some() {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: read.unwrap_or(0),
            cache_creation_tokens: write,
            ..Default::default()
        });
    }
    usage
}

/// An Anthropic stream, forwarded event by event.
pub struct PassthroughEvents {
    model: String,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    /// The latest usage object (message_start's, then message_delta's fields over it).
    usage: Value,
    seen_usage: bool,
    /// `message_stop` or an `error` event: the upstream ended the stream itself.
    ended: bool,
}

impl PassthroughEvents {
    pub fn new(model: String) -> Self {
        PassthroughEvents {
            model,
            decoder: SseDecoder::new(),
            events: Vec::new(),
            usage: json!({}),
            seen_usage: false,
            ended: false,
        }
    }

    fn merge_usage(&mut self, u: Option<&Value>) {
        if let (Some(Value::Object(newer)), Value::Object(current)) = (u, &mut self.usage) {
            for (k, v) in newer.iter().filter(|(_, v)| !v.is_null()) {
                current.insert(k.clone(), v.clone());
            }
            self.seen_usage = true;
        }
    }

    fn forward(&mut self, out: &mut BytesMut) {
        for ev in std::mem::take(&mut self.events) {
            let name = ev.event.as_deref().unwrap_or("");
            match name {
                "message_start" => {
                    if let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) {
                        self.merge_usage(v.get("message").and_then(|m| m.get("usage")));
                        let old = v
                            .get("message")
                            .and_then(|m| m.get("model"))
                            .and_then(Value::as_str);
                        if let Some(text) = old.and_then(|o| rename_model(&ev.data, o, &self.model))
                        {
                            put_raw(out, name, &text);
                            continue;
                        }
                        if let Some(m) = v.get_mut("message").filter(|m| m.is_object()) {
                            m["model"] = Value::String(self.model.clone());
                        }
                        put_event(out, name, &v);
                        continue;
                    }
                }
                "message_delta" => {
                    if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                        self.merge_usage(v.get("usage"));
                    }
                }
                "message_stop" | "error" => self.ended = true,
                _ => {}
            }
            put_raw(out, name, &ev.data);
        }
    }
}

/// Frames an event from its name and original data text.
fn put_raw(out: &mut BytesMut, name: &str, data: &str) {
    if !name.is_empty() {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_slice(b"\n");
    }
    for line in data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_slice(b"\n");
    }
    out.put_slice(b"\n");
}

impl EventSource for PassthroughEvents {
    fn feed(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.forward(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut BytesMut) -> Result<(), GatewayError> {
        self.decoder.finish(&mut self.events);
        self.forward(out);
        if self.ended {
            Ok(())
        } else {
            Err(stream_cut())
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.seen_usage.then(|| to_usage(&self.usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20240620\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hé\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    fn run(bytes: &[u8], split: usize) -> (String, Result<(), GatewayError>, Option<Usage>) {
        let mut p = PassthroughEvents::new("my-claude".into());
        let mut out = BytesMut::new();
        let r = p
            .feed(&bytes[..split], &mut out)
            .and_then(|_| p.feed(&bytes[split..], &mut out))
            .and_then(|_| p.finish(&mut out));
        (String::from_utf8(out.to_vec()).unwrap(), r, p.usage())
    }

    #[test]
    fn stream_is_forwarded_with_the_model_renamed_at_every_split() {
        let bytes = STREAM.as_bytes();
        let (whole, r, usage) = run(bytes, 0);
        r.unwrap();
        assert!(whole.contains("\"model\":\"my-claude\""), "{whole}");
        assert!(!whole.contains("claude-3-5-sonnet"));
        // Everything after message_start is byte for byte what came.
        let tail = &STREAM[STREAM.find("event: ping").unwrap()..];
        assert!(whole.ends_with(tail), "{whole}");
        assert_eq!(usage, Some(Usage::new(12, 15)));
        for split in 1..bytes.len() {
            let (s, r, u) = run(bytes, split);
            assert!(r.is_ok(), "split {split}");
            assert_eq!(s, whole, "split {split}");
            assert_eq!(u, usage, "split {split}");
        }
    }

    #[test]
    fn a_cut_stream_is_an_error_but_an_error_event_is_the_end() {
        let cut = &STREAM[..STREAM.find("event: message_delta").unwrap()];
        assert!(run(cut.as_bytes(), 0).1.is_err());
        let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let (s, r, _) = run(err.as_bytes(), 0);
        r.unwrap();
        assert_eq!(s, err);
    }

    #[test]
    fn rename_touches_only_the_model_member() {
        let text =
            r#"{"id":"msg_\"model\":","model" : "a\"b","content":[{"input":{"model":"a\"b"}}]}"#;
        assert_eq!(
            rename_model(text, "a\"b", "g").unwrap(),
            r#"{"id":"msg_\"model\":","model" : "g","content":[{"input":{"model":"a\"b"}}]}"#
        );
        assert_eq!(rename_model(r#"{"model":"other"}"#, "x", "g"), None);
    }

    #[test]
    fn full_answer_renames_and_reads_usage() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":2,"cache_read_input_tokens":4}}"#;
        let (v, usage) = full_answer(body, "g").unwrap();
        let want = String::from_utf8(body.to_vec())
            .unwrap()
            .replace("claude-x", "g");
        assert_eq!(v, want.as_bytes());
        let usage = usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (9, 2));
        let e = full_answer(
            br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
            "g",
        )
        .unwrap_err();
        assert_eq!(e.message, "boom");
        assert_eq!(
            full_answer(b"nope", "g").unwrap_err().status().as_u16(),
            502
        );
    }
}

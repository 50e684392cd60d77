//! An OpenAI chat completion as an Anthropic message:
//! `{"id": "msg_…", "type": "message", "role": "assistant", "model", "content": [thinking…,
//! text, tool_use…], "stop_reason", "stop_sequence", "usage"}`.

use serde_json::{json, Map, Value};

use crate::openai::{ChatCompletion, Usage};

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`, as LiteLLM maps it. A turn that
/// called tools is `tool_use` whatever the provider said (some say `stop`), since that is
/// what Anthropic clients loop on.
pub fn stop_reason(finish: Option<&str>, called_tools: bool) -> &'static str {
    if called_tools {
        return "tool_use";
    }
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        // stop, content_filter (LiteLLM reports it as a normal end too) and anything new.
        _ => "end_turn",
    }
}

/// Anthropic's usage: input tokens exclude cache reads and writes, which OpenAI's
/// `prompt_tokens` (and LiteLLM's) include.
pub fn usage_json(usage: Option<&Usage>) -> Value {
    let Some(u) = usage else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let details = u.prompt_tokens_details.as_ref();
    let read = details.map_or(0, |d| d.cached_tokens);
    let write = details.and_then(|d| d.cache_creation_tokens).unwrap_or(0);
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(read + write),
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    })
}

/// `msg_…`: the provider's id under Anthropic's prefix.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        return id.to_string();
    }
    let bare = id.strip_prefix("chatcmpl-").unwrap_or(id);
    format!("msg_{bare}")
}

/// Thinking as LiteLLM reports it: `thinking_blocks` (with signatures) when the provider gave
/// them, else the `reasoning_content` text as one block.
fn thinking_blocks(extra: &Map<String, Value>) -> Vec<Value> {
    if let Some(Value::Array(blocks)) = extra.get("thinking_blocks") {
        return blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("thinking") => Some(json!({
                    "type": "thinking",
                    "thinking": b.get("thinking").and_then(Value::as_str).unwrap_or(""),
                    "signature": b.get("signature").and_then(Value::as_str).unwrap_or(""),
                })),
                Some("redacted_thinking") => Some(json!({
                    "type": "redacted_thinking",
                    "data": b.get("data").and_then(Value::as_str).unwrap_or(""),
                })),
                _ => None,
            })
            .collect();
    }
    match extra.get("reasoning_content").and_then(Value::as_str) {
        Some(text) if !text.is_empty() => {
            vec![json!({"type": "thinking", "thinking": text, "signature": ""})]
        }
        _ => Vec::new(),
    }
}

/// A tool call's arguments as the `input` object (arguments that are not a JSON object,
/// which a model may produce, become an empty input rather than a broken message).
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// The Anthropic message for `completion`, reported under `model`.
pub fn to_message(completion: &ChatCompletion, model: &str) -> Value {
    let choice = completion.choices.first();
    let mut content = Vec::new();
    let mut called_tools = false;
    if let Some(m) = choice.map(|c| &c.message) {
        content.extend(thinking_blocks(&m.extra));
        if let Some(text) = m.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in m.tool_calls.iter().flatten() {
            called_tools = true;
            content.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": tool_input(&call.function.arguments),
            }));
        }
    }
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    json!({
        "id": message_id(&completion.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(finish, called_tools),
        "stop_sequence": null,
        "usage": usage_json(completion.usage.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(v: Value) -> ChatCompletion {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn text_answer() {
        let c = completion(json!({
            "id": "chatcmpl-abc", "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hi!"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
        }));
        assert_eq!(
            to_message(&c, "my-group"),
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "my-group",
                "content": [{"type": "text", "text": "Hi!"}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 3,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            })
        );
    }

    #[test]
    fn tool_calls_become_tool_use_blocks() {
        let c = completion(json!({
            "id": "x", "choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": "Let me look.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "not json"}}
                ]}}]
        }));
        let m = to_message(&c, "g");
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["content"][0]["text"], "Let me look.");
        assert_eq!(
            m["content"][1],
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
        );
        assert_eq!(m["content"][2]["input"], json!({}));
        assert_eq!(m["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
    }

    #[test]
    fn reasoning_becomes_thinking_blocks_first() {
        let c = completion(json!({"choices": [{"finish_reason": "stop", "message": {
            "role": "assistant", "content": "42", "reasoning_content": "let me think"}}]}));
        let m = to_message(&c, "g");
        assert_eq!(
            m["content"][0],
            json!({"type": "thinking", "thinking": "let me think", "signature": ""})
        );
        assert_eq!(m["content"][1]["text"], "42");
        let c = completion(
            json!({"choices": [{"message": {"role": "assistant", "content": null,
            "reasoning_content": "x",
            "thinking_blocks": [{"type": "thinking", "thinking": "x", "signature": "s1"},
                                {"type": "redacted_thinking", "data": "enc"}]}}]}),
        );
        let m = to_message(&c, "g");
        assert_eq!(m["content"][0]["signature"], "s1");
        assert_eq!(
            m["content"][1],
            json!({"type": "redacted_thinking", "data": "enc"})
        );
        assert_eq!(m["content"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn finish_reasons_map_as_litellm_does() {
        assert_eq!(stop_reason(Some("stop"), false), "end_turn");
        assert_eq!(stop_reason(Some("length"), false), "max_tokens");
        assert_eq!(stop_reason(Some("tool_calls"), false), "tool_use");
        assert_eq!(stop_reason(Some("content_filter"), false), "end_turn");
        assert_eq!(stop_reason(None, false), "end_turn");
        assert_eq!(stop_reason(Some("stop"), true), "tool_use");
    }

    #[test]
    fn cached_tokens_leave_input_tokens() {
        let u: Usage = serde_json::from_value(json!({
            "prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_creation_tokens": 30}
        }))
        .unwrap();
        assert_eq!(
            usage_json(Some(&u)),
            json!({"input_tokens": 10, "output_tokens": 5,
                   "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60})
        );
    }

    #[test]
    fn ids_get_anthropic_prefix() {
        assert_eq!(message_id("msg_01"), "msg_01");
        assert_eq!(message_id("chatcmpl-9"), "msg_9");
        assert_eq!(message_id("gen-1"), "msg_gen-1");
    }
}

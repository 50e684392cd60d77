//! Pure, provider-independent logic: scenario selection from the model name,
//! text extraction, token counting, reply truncation, SSE framing, embeddings.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// Arguments of the mock tool call, exactly.
pub const TOOL_ARGS: &str = "{\"city\": \"Paris\"}";
/// `TOOL_ARGS` split into the fragments sent when streaming.
pub const TOOL_ARG_FRAGMENTS: [&str; 3] = ["{\"city\"", ": \"Par", "is\"}"];
/// Upper bound for `slow-NNN`, so a typo cannot hang a test run forever.
const MAX_SLOW_MS: u64 = 120_000;
/// Upper bound for the pause of `drip-NNN` (600 events × 10 s is already far too long).
const MAX_DRIP_MS: u64 = 10_000;
/// Words a `drip-NNN` reply adds after `mock reply to: ...`: one content event each, so a
/// stream stays open for about `DRIP_WORDS × NNN` ms.
pub const DRIP_WORDS: usize = 600;

/// What the upstream `model` string asks the mock to do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// `error-NNN`: answer with this status and the provider's error shape.
    pub error_status: Option<u16>,
    /// `cut-stream`: abort a streamed body after two content events.
    pub cut_stream: bool,
    /// `slow-NNN`: sleep this long before sending headers.
    pub slow_ms: Option<u64>,
    /// `drip-NNN`: a long reply ([`DRIP_WORDS`] more words), streamed one event every NNN ms,
    /// so a test can hold a stream open and cut it.
    pub drip_ms: Option<u64>,
    /// `max-tokens-echo`: reply with the received max_tokens.
    pub echo_max_tokens: bool,
    /// `content-filter` (Azure only): refuse with Azure's content-filter error.
    pub content_filter: bool,
    /// `context-overflow`: refuse with the provider's own "prompt too long" 400.
    pub context_overflow: bool,
}

/// `flaky`: the 1st, 3rd, 5th... request for the model (since its recording was last
/// cleared) fails with a 503, the others succeed, so one retry always recovers.
pub fn flaky_fails(model: &str, nth: u64) -> bool {
    model.contains("flaky") && nth % 2 == 1
}

pub fn scenario(model: &str) -> Scenario {
    Scenario {
        error_status: number_after(model, "error-")
            .filter(|n| (100..=599).contains(n))
            .map(|n| n as u16),
        cut_stream: model.contains("cut-stream"),
        slow_ms: number_after(model, "slow-").map(|n| n.min(MAX_SLOW_MS)),
        drip_ms: number_after(model, "drip-").map(|n| n.min(MAX_DRIP_MS)),
        echo_max_tokens: model.contains("max-tokens-echo"),
        content_filter: model.contains("content-filter"),
        context_overflow: model.contains("context-overflow"),
    }
}

impl Scenario {
    /// The pause between a stream's events (`drip-NNN`), if any.
    pub fn drip(&self) -> Option<std::time::Duration> {
        self.drip_ms.map(std::time::Duration::from_millis)
    }
}

/// The mock's answer to a user text: `mock reply to: <text>`, and for `drip-NNN`
/// [`DRIP_WORDS`] more words (` drip1 drip2 ...`), so the stream has that many more events.
pub fn reply_to(user: &str, sc: &Scenario) -> String {
    let mut text = format!("mock reply to: {user}");
    if sc.drip_ms.is_some() {
        for i in 1..=DRIP_WORDS {
            text.push_str(" drip");
            text.push_str(&i.to_string());
        }
    }
    text
}

/// The decimal number right after the first `marker` in `s`.
fn number_after(s: &str, marker: &str) -> Option<u64> {
    let idx = s.find(marker)?;
    let rest = &s[idx + marker.len()..];
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > 9 {
        return None;
    }
    rest[..len].parse().ok()
}

/// Text of a message `content`: a string as is, or the text parts of a content
/// array joined with a single space. Anything else gives "".
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(part_text)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn part_text(part: &Value) -> Option<&str> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") | Some("input_text") => part.get("text")?.as_str(),
        _ => None,
    }
}

/// Text of the tool result(s) in an Anthropic content array (or a string).
pub fn tool_result_text(content: &Value) -> String {
    match content {
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|b| b.get("content").map(content_text).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" "),
        other => content_text(other),
    }
}

/// Does an Anthropic message content hold a `tool_result` block?
pub fn has_tool_result(content: &Value) -> bool {
    content.as_array().is_some_and(|blocks| {
        blocks
            .iter()
            .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
    })
}

/// Whitespace-separated words of every text found in a content value:
/// strings, text parts, and the content of `tool_result` blocks.
pub fn count_words(v: &Value) -> usize {
    match v {
        Value::String(s) => s.split_whitespace().count(),
        Value::Array(items) => items.iter().map(count_words).sum(),
        Value::Object(o) => {
            if let Some(Value::String(t)) = o.get("text") {
                t.split_whitespace().count()
            } else if o.get("type").and_then(Value::as_str) == Some("tool_result") {
                o.get("content").map(count_words).unwrap_or(0)
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// Prompt tokens: words across the given contents, at least 1.
pub fn prompt_tokens<'a>(contents: impl Iterator<Item = &'a Value>) -> u64 {
    (contents.map(count_words).sum::<usize>() as u64).max(1)
}

pub fn word_count(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Split into one piece per word, keeping whitespace (attached in front of the
/// word that follows it) so that the pieces concatenate to `s` exactly.
pub fn split_words_keep_spaces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_is_word = false;
    for (i, c) in s.char_indices() {
        let ws = c.is_whitespace();
        if ws && prev_is_word && i > start {
            out.push(&s[start..i]);
            start = i;
        }
        prev_is_word = !ws;
    }
    let tail = &s[start..];
    if !tail.is_empty() {
        if tail.trim().is_empty() && !out.is_empty() {
            let last = out.pop().unwrap_or("");
            out.push(&s[start - last.len()..]);
        } else {
            out.push(tail);
        }
    }
    out
}

/// Why generation ended (provider-neutral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    StopSequence(String),
    ToolCalls,
}

/// What the mock "generates".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text(String),
    /// A single call of the named tool with `TOOL_ARGS`.
    Tool(String),
}

impl Reply {
    pub fn completion_tokens(&self) -> u64 {
        match self {
            Reply::Text(t) => word_count(t),
            Reply::Tool(_) => word_count(TOOL_ARGS),
        }
    }
}

/// Apply stop sequences (earliest match wins, text cut before it) and then
/// max_tokens (counted in words) to a generated text.
pub fn finalize_text(text: String, stops: &[&str], max_tokens: Option<u64>) -> (String, Finish) {
    let mut text = text;
    let mut finish = Finish::Stop;
    let earliest = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s).map(|i| (i, *s)))
        .min_by_key(|(i, _)| *i);
    if let Some((i, s)) = earliest {
        text.truncate(i);
        finish = Finish::StopSequence(s.to_string());
    }
    if let Some(max) = max_tokens {
        let pieces = split_words_keep_spaces(&text);
        let words = word_count(&text) as usize;
        if words > max as usize {
            let end: usize = pieces.iter().take(max as usize).map(|p| p.len()).sum();
            text.truncate(end);
            finish = Finish::Length;
        }
    }
    (text, finish)
}

/// Split `v` (a string or an array of strings) into stop sequences.
pub fn stop_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `max_tokens=<value>` for the max-tokens-echo scenario.
pub fn echo_text(name: &str, v: Option<&Value>) -> String {
    match v {
        Some(v) if !v.is_null() => format!("{name}={v}"),
        _ => format!("{name}=none"),
    }
}

// ---------------------------------------------------------------- SSE framing

/// `data: JSON\n\n` (OpenAI style).
pub fn sse_data(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 8);
    b.put_slice(b"data: ");
    b.put_slice(json);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// `event: NAME\ndata: JSON\n\n` (Anthropic style).
pub fn sse_event(name: &str, json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(name.len() + json.len() + 16);
    b.put_slice(b"event: ");
    b.put_slice(name.as_bytes());
    b.put_slice(b"\ndata: ");
    b.put_slice(json);
    b.put_slice(b"\n\n");
    b.freeze()
}

pub const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

/// A framed event stream plus the positions of its content events (for cuts).
#[derive(Default)]
pub struct EventStream {
    pub events: Vec<Bytes>,
    pub content_idx: Vec<usize>,
}

impl EventStream {
    pub fn push(&mut self, b: Bytes) {
        self.events.push(b);
    }
    pub fn push_content(&mut self, b: Bytes) {
        self.content_idx.push(self.events.len());
        self.events.push(b);
    }
    /// Keep everything up to and including the second content event.
    /// (With fewer content events: up to the last one, or just the first event.)
    pub fn cut_after_two_content_events(&mut self) {
        let keep = match (self.content_idx.get(1), self.content_idx.last()) {
            (Some(&i), _) | (None, Some(&i)) => i + 1,
            (None, None) => self.events.len().min(1),
        };
        self.events.truncate(keep);
    }
}

// ------------------------------------------------------------------ embeddings

/// Deterministic unit vector of length 8 derived from `text` (FNV-1a seed,
/// splitmix64 stream).
pub fn embedding(text: &str) -> [f32; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut v = [0f32; 8];
    let mut x = h;
    for slot in v.iter_mut() {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        *slot = ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
    }
    let norm = v.iter().map(|f| f * f).sum::<f32>().sqrt();
    if norm > 0.0 {
        for f in v.iter_mut() {
            *f /= norm;
        }
    }
    v
}

/// Standard base64 (with padding) of the little-endian f32s, as OpenAI sends
/// for `encoding_format: "base64"`.
pub fn embedding_base64(v: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for f in v {
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    base64(&bytes)
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decode `%XX` escapes and `+` in a query-string component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Value of query parameter `name` (decoded), if present.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flaky_fails_every_other_request() {
        let fails: Vec<bool> = (1..=4).map(|n| flaky_fails("gpt-flaky", n)).collect();
        assert_eq!(fails, [true, false, true, false]);
        assert!(!flaky_fails("gpt-4o", 1));
    }

    #[test]
    fn scenario_parsing() {
        assert_eq!(scenario("gpt-4o"), Scenario::default());
        assert_eq!(scenario("gpt-error-429").error_status, Some(429));
        assert_eq!(scenario("claude-error-529").error_status, Some(529));
        assert_eq!(scenario("x-error-999").error_status, None);
        assert_eq!(scenario("x-error-").error_status, None);
        assert!(scenario("gpt-cut-stream").cut_stream);
        assert_eq!(scenario("m-slow-250").slow_ms, Some(250));
        assert_eq!(scenario("m-slow-99999999").slow_ms, Some(MAX_SLOW_MS));
        assert!(scenario("claude-max-tokens-echo").echo_max_tokens);
        assert!(scenario("gemini-context-overflow").context_overflow);
        assert!(!scenario("gemini-context").context_overflow);
        let s = scenario("gpt-slow-10-cut-stream");
        assert_eq!(s.slow_ms, Some(10));
        assert!(s.cut_stream);
        assert_eq!(scenario("gpt-drip-50").drip_ms, Some(50));
        assert_eq!(scenario("gpt-drip-99999").drip_ms, Some(MAX_DRIP_MS));
        assert_eq!(scenario("gpt-drip-").drip_ms, None);
        assert_eq!(scenario("gpt-4o").drip(), None);
    }

    #[test]
    fn drip_replies_are_long() {
        assert_eq!(reply_to("hi", &scenario("m")), "mock reply to: hi");
        let long = reply_to("hi", &scenario("m-drip-5"));
        assert!(long.starts_with("mock reply to: hi drip1 drip2 "));
        assert!(long.ends_with(" drip600"));
        assert_eq!(word_count(&long), 4 + DRIP_WORDS as u64);
    }

    #[test]
    fn text_of_content() {
        assert_eq!(content_text(&json!("hi there")), "hi there");
        let parts = json!([
            {"type": "text", "text": "look at"},
            {"type": "image_url", "image_url": {"url": "data:x"}},
            {"type": "text", "text": "this"}
        ]);
        assert_eq!(content_text(&parts), "look at this");
        assert_eq!(content_text(&json!(null)), "");
    }

    #[test]
    fn tool_results() {
        let c = json!([{"type": "tool_result", "tool_use_id": "t", "content": "22C"}]);
        assert!(has_tool_result(&c));
        assert_eq!(tool_result_text(&c), "22C");
        let c2 = json!([{"type": "tool_result", "tool_use_id": "t",
                         "content": [{"type": "text", "text": "sunny"}]}]);
        assert_eq!(tool_result_text(&c2), "sunny");
        assert!(!has_tool_result(&json!("plain")));
    }

    #[test]
    fn word_counting() {
        assert_eq!(count_words(&json!("one two  three\nfour")), 4);
        assert_eq!(
            count_words(&json!([{"type": "text", "text": "a b"}, {"type": "image"}])),
            2
        );
        assert_eq!(
            count_words(&json!([{"type": "tool_result", "content": "x y z"}])),
            3
        );
        let msgs = [json!(""), json!("   ")];
        assert_eq!(prompt_tokens(msgs.iter()), 1, "minimum of 1");
        let msgs = [json!("be brief"), json!("hello world again")];
        assert_eq!(prompt_tokens(msgs.iter()), 5);
    }

    #[test]
    fn split_keeps_text() {
        let s = "mock reply to: hello  world";
        let parts = split_words_keep_spaces(s);
        assert_eq!(parts, vec!["mock", " reply", " to:", " hello", "  world"]);
        assert_eq!(parts.concat(), s);
        assert_eq!(split_words_keep_spaces("a "), vec!["a "]);
        assert_eq!(split_words_keep_spaces("  a b"), vec!["  a", " b"]);
        assert!(split_words_keep_spaces("").is_empty());
        let odd = " ünï  cödé\tx \n";
        assert_eq!(split_words_keep_spaces(odd).concat(), odd);
        assert_eq!(split_words_keep_spaces(odd).len(), 3);
    }

    #[test]
    fn finalize_applies_stop_then_length() {
        let (t, f) = finalize_text("mock reply to: a END b".into(), &["END"], None);
        assert_eq!(t, "mock reply to: a ");
        assert_eq!(f, Finish::StopSequence("END".into()));
        let (t, f) = finalize_text("one two three four".into(), &[], Some(2));
        assert_eq!(t, "one two");
        assert_eq!(f, Finish::Length);
        let (t, f) = finalize_text("one two".into(), &["zzz"], Some(2));
        assert_eq!(t, "one two");
        assert_eq!(f, Finish::Stop);
    }

    #[test]
    fn echo_and_stops() {
        assert_eq!(
            echo_text("max_tokens", Some(&json!(1024))),
            "max_tokens=1024"
        );
        assert_eq!(echo_text("max_tokens", None), "max_tokens=none");
        assert_eq!(stop_list(Some(&json!("x"))), vec!["x"]);
        assert_eq!(stop_list(Some(&json!(["a", "b"]))), vec!["a", "b"]);
    }

    #[test]
    fn sse_frames() {
        assert_eq!(&sse_data(b"{\"a\":1}")[..], b"data: {\"a\":1}\n\n");
        assert_eq!(
            &sse_event("ping", b"{\"type\":\"ping\"}")[..],
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        let mut s = EventStream::default();
        s.push(Bytes::from_static(b"start"));
        for w in ["a", "b", "c"] {
            s.push_content(Bytes::from(w));
        }
        s.push(Bytes::from_static(b"end"));
        s.cut_after_two_content_events();
        assert_eq!(s.events.len(), 3);
        assert_eq!(&s.events[2][..], b"b");
    }

    #[test]
    fn tool_fragments_join() {
        assert_eq!(TOOL_ARG_FRAGMENTS.concat(), TOOL_ARGS);
        let v: Value = serde_json::from_str(TOOL_ARGS).unwrap();
        assert_eq!(v, json!({"city": "Paris"}));
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding("hello");
        assert_eq!(a, embedding("hello"));
        assert_ne!(a, embedding("hello!"));
        let norm: f32 = a.iter().map(|f| f * f).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(a.iter().all(|f| f.is_finite()));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(embedding_base64(&[1.0]), "AACAPw==");
    }

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
        assert_eq!(
            query_param(Some("x=1&model=claude%3Av1"), "model").as_deref(),
            Some("claude:v1")
        );
        assert_eq!(query_param(Some("x=1"), "model"), None);
        assert_eq!(query_param(None, "model"), None);
    }
}

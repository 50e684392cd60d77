//! Test support shared by the stream translators: bytes fed in two pieces split at every
//! position must give the same chunks, result and usage as the whole body in one piece.

use serde_json::Value;

use super::{StreamChunk, StreamTranslator};
use crate::error::GatewayError;
use crate::openai::Usage;

/// What one run of a translator produced.
pub struct Run {
    pub chunks: Vec<Value>,
    pub result: Result<(), GatewayError>,
    pub usage: Option<Usage>,
}

/// Feeds `bytes` split at `split`, then finishes.
pub fn run<C: StreamChunk>(
    mut t: Box<dyn StreamTranslator<Chunk = C>>,
    bytes: &[u8],
    split: usize,
) -> Run {
    let mut out = Vec::new();
    let result = t
        .feed(&bytes[..split], &mut out)
        .and_then(|_| t.feed(&bytes[split..], &mut out))
        .and_then(|_| t.finish(&mut out));
    let chunks = out
        .iter()
        .map(|c| serde_json::to_value(c).expect("chunks serialise"))
        .collect();
    Run {
        chunks,
        result,
        usage: t.usage(),
    }
}

/// Every split point gives the same chunks and usage as the whole stream; returns them.
pub fn assert_split_invariant<C: StreamChunk>(
    new: impl Fn() -> Box<dyn StreamTranslator<Chunk = C>>,
    stream: impl AsRef<[u8]>,
) -> (Vec<Value>, Option<Usage>) {
    let bytes = stream.as_ref();
    let whole = run(new(), bytes, 0);
    whole.result.as_ref().expect("the whole stream translates");
    for split in 1..=bytes.len() {
        let r = run(new(), bytes, split);
        assert!(r.result.is_ok(), "split {split}: {:?}", r.result);
        assert_eq!(r.chunks, whole.chunks, "split {split}");
        assert_eq!(r.usage, whole.usage, "split {split}");
    }
    (whole.chunks, whole.usage)
}

/// The concatenated `delta.content` of chat chunks.
pub fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Every finish reason, in order.
pub fn finishes(chunks: &[Value]) -> Vec<&str> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect()
}

/// The concatenated arguments streamed for OpenAI tool call `index`.
pub fn tool_arguments(chunks: &[Value], index: u64) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .filter(|c| c["index"] == index)
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect()
}

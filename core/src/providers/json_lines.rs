//! Line framing for streams that carry one JSON object per line: Ollama's NDJSON, and Cohere's
//! v2 events (SSE `data:` lines, which some proxies forward as bare JSON lines).
//! Bytes arrive split anywhere, even inside a UTF-8 character, so a partial line waits for the
//! next feed.

/// Turns raw bytes into complete, non-blank lines (without their `\r\n` / `\n`).
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Pushes every line `bytes` completes onto `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(rel) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + rel;
            push_line(&self.pending[start..end], out);
            start = end + 1;
        }
        self.pending.drain(..start);
    }

    /// The body ended: a last line without its newline still counts.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        let rest = std::mem::take(&mut self.pending);
        push_line(&rest, out);
    }
}

fn push_line(line: &[u8], out: &mut Vec<String>) {
    // The line is complete, so lossy decoding only ever touches invalid input.
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if !text.is_empty() {
        out.push(text.to_string());
    }
}

/// The JSON payload of one stream line: the line itself, or what follows `data:`. SSE field
/// lines that carry no payload (`event:`, `id:`, `retry:`, `:` comments) and `[DONE]` give
/// `None`.
pub fn json_payload(line: &str) -> Option<&str> {
    let payload = match line.strip_prefix("data:") {
        Some(rest) => rest.trim(),
        None if line.starts_with('{') => line,
        None => return None,
    };
    if payload.is_empty() || payload == "[DONE]" {
        None
    } else {
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_any_split() {
        let body = "{\"a\":\"é\"}\r\n\n{\"b\":2}\n{\"c\":3}";
        for split in 0..=body.len() {
            let mut buf = LineBuffer::default();
            let mut out = Vec::new();
            buf.feed(&body.as_bytes()[..split], &mut out);
            buf.feed(&body.as_bytes()[split..], &mut out);
            buf.finish(&mut out);
            assert_eq!(
                out,
                ["{\"a\":\"é\"}", "{\"b\":2}", "{\"c\":3}"],
                "split {split}"
            );
        }
    }

    #[test]
    fn payloads_of_sse_and_bare_lines() {
        assert_eq!(json_payload("data: {\"x\":1}"), Some("{\"x\":1}"));
        assert_eq!(json_payload("data:{}"), Some("{}"));
        assert_eq!(json_payload("{\"x\":1}"), Some("{\"x\":1}"));
        assert_eq!(json_payload("event: message-start"), None);
        assert_eq!(json_payload(": keep-alive"), None);
        assert_eq!(json_payload("data: [DONE]"), None);
    }
}

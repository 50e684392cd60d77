//! Server-sent events: an incremental decoder for upstream streams (bytes arrive split
//! anywhere, even inside a UTF-8 character) and the framing for what we send.

use bytes::{BufMut, Bytes, BytesMut};

/// One decoded event: its `event:` name, if any, and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Turns raw bytes into events, keeping any partial line for the next feed.
#[derive(Debug, Default)]
pub struct SseDecoder {
    pending: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `bytes`, pushing every event completed by them onto `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(rel) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + rel;
            let mut line = &self.pending[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            // Lines are complete here, so lossy decoding only ever touches invalid input.
            let line = String::from_utf8_lossy(line).into_owned();
            self.take_line(&line, out);
            start = end + 1;
        }
        self.pending.drain(..start);
    }

    /// The upstream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.pending.is_empty() {
            let line = String::from_utf8_lossy(&self.pending)
                .trim_end_matches('\r')
                .to_string();
            self.pending.clear();
            self.take_line(&line, out);
        }
        self.dispatch(out);
    }

    fn take_line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {} // id, retry: nothing we need
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

/// `data: <payload>\n\n`.
pub fn data_frame(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + 8);
    b.put_slice(b"data: ");
    b.put_slice(payload);
    b.put_slice(b"\n\n");
    b.freeze()
}

/// The terminator OpenAI clients wait for.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: ping\r\ndata: {\"b\":\"é\"}\r\n\r\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n";

    fn decode_in_pieces(split: usize) -> Vec<SseEvent> {
        let bytes = STREAM.as_bytes();
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(&bytes[..split], &mut out);
        d.feed(&bytes[split..], &mut out);
        d.finish(&mut out);
        out
    }

    #[test]
    fn same_events_whatever_the_split() {
        let whole = decode_in_pieces(0);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[1].data, "{\"b\":\"é\"}");
        assert_eq!(whole[2].data, "line1\nline2");
        assert_eq!(whole[3].data, "[DONE]");
        for split in 1..STREAM.len() {
            assert_eq!(decode_in_pieces(split), whole, "split at {split}");
        }
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"data: tail", &mut out);
        assert!(out.is_empty());
        d.finish(&mut out);
        assert_eq!(out[0].data, "tail");
    }

    #[test]
    fn frame_is_data_line_and_blank_line() {
        assert_eq!(&data_frame(b"{}")[..], b"data: {}\n\n");
    }
}

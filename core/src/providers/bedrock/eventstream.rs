//! AWS event stream framing (`application/vnd.amazon.eventstream`), the binary body of
//! Bedrock's ConverseStream.
//!
//! A message is `total length (u32) | headers length (u32) | prelude CRC32 | headers |
//! payload | message CRC32`, all big-endian, the CRCs being CRC-32 (IEEE) over everything
//! before them. Headers are `name length (u8) | name | type (u8) | value`. Bytes arrive split
//! anywhere, so the decoder buffers until a whole message is in, and checks both CRCs before
//! trusting a single length: a corrupt stream is an error, never a panic or a huge allocation.

/// The smallest message: prelude (12) and message CRC (4), no headers, no payload.
const MIN_MESSAGE: usize = 16;
/// The protocol's limit on a whole message (16 MiB); larger is corrupt.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
const PRELUDE: usize = 12;

/// Why a stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A header value, by the protocol's type tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header (`:event-type`, `:message-type`...), if present with that type.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Incremental decoder: feed bytes as they arrive, take whole messages out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes` and pushes every message they complete onto `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(len) = complete_message_len(&self.buf[start..])? {
            out.push(decode_message(&self.buf[start..start + len])?);
            start += len;
        }
        // One drain per feed, not per message, so many small messages stay linear.
        self.buf.drain(..start);
        Ok(())
    }

    /// Whether bytes of an unfinished message are still buffered (a cut stream).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// The length of the message at the start of `buf` once all of it is there; checks the
/// prelude CRC before believing the length.
fn complete_message_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if buf.len() < PRELUDE {
        return Ok(None);
    }
    let total = be_u32(&buf[0..4]) as usize;
    let headers = be_u32(&buf[4..8]) as usize;
    let crc = be_u32(&buf[8..12]);
    if crc32fast::hash(&buf[0..8]) != crc {
        return Err(FrameError("event stream prelude checksum mismatch".into()));
    }
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) || headers > total - MIN_MESSAGE {
        return Err(FrameError(format!(
            "event stream message has impossible lengths (total {total}, headers {headers})"
        )));
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Decodes one whole message (`bytes` is exactly its length, prelude already checked).
fn decode_message(bytes: &[u8]) -> Result<Message, FrameError> {
    let total = bytes.len();
    let crc = be_u32(&bytes[total - 4..]);
    if crc32fast::hash(&bytes[..total - 4]) != crc {
        return Err(FrameError("event stream message checksum mismatch".into()));
    }
    let headers_len = be_u32(&bytes[4..8]) as usize;
    let headers_end = PRELUDE + headers_len;
    let headers = decode_headers(&bytes[PRELUDE..headers_end])?;
    Ok(Message {
        headers,
        payload: bytes[headers_end..total - 4].to_vec(),
    })
}

fn decode_headers(mut buf: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut headers = Vec::new();
    while !buf.is_empty() {
        let name_len = usize::from(take(&mut buf, 1)?[0]);
        let name = utf8(take(&mut buf, name_len)?)?;
        let tag = take(&mut buf, 1)?[0];
        let value = decode_value(tag, &mut buf)?;
        headers.push((name, value));
    }
    Ok(headers)
}

fn decode_value(tag: u8, buf: &mut &[u8]) -> Result<HeaderValue, FrameError> {
    let fixed = |buf: &mut &[u8], n: usize| -> Result<u64, FrameError> {
        Ok(take(buf, n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    Ok(match tag {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(fixed(buf, 1)? as u8 as i8),
        3 => HeaderValue::Short(fixed(buf, 2)? as u16 as i16),
        4 => HeaderValue::Int(fixed(buf, 4)? as u32 as i32),
        5 => HeaderValue::Long(fixed(buf, 8)? as i64),
        6 | 7 => {
            let len = fixed(buf, 2)? as usize;
            let data = take(buf, len)?;
            if tag == 6 {
                HeaderValue::Bytes(data.to_vec())
            } else {
                HeaderValue::String(utf8(data)?)
            }
        }
        8 => HeaderValue::Timestamp(fixed(buf, 8)? as i64),
        9 => {
            let mut id = [0u8; 16];
            id.copy_from_slice(take(buf, 16)?);
            HeaderValue::Uuid(id)
        }
        other => {
            return Err(FrameError(format!(
                "event stream header has unknown type {other}"
            )))
        }
    })
}

/// Splits `n` bytes off the front of `buf`, or fails if the headers are shorter than they say.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if buf.len() < n {
        return Err(FrameError("event stream headers are truncated".into()));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn utf8(bytes: &[u8]) -> Result<String, FrameError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| FrameError("event stream header is not UTF-8".into()))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Encodes a message with string headers (tests build upstream streams with it).
#[cfg(test)]
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (MIN_MESSAGE + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod differential_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, FrameError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(bytes, &mut out)?;
        assert!(!d.has_partial());
        Ok(out)
    }

    /// awslabs/aws-c-event-stream `message_deserializer_test.c`: an empty message.
    #[test]
    fn empty_message_vector() {
        let m = decode_all(&hex("00000010 00000000 05c248eb 7d98c8ff")).unwrap();
        assert_eq!(
            m,
            vec![Message {
                headers: vec![],
                payload: vec![]
            }]
        );
    }

    /// The same suite: a payload without headers.
    #[test]
    fn payload_without_headers_vector() {
        let bytes = hex("0000001d 00000000 fd528c5a 7b27666f6f273a27626172277d c3653936");
        let m = decode_all(&bytes).unwrap();
        assert!(m[0].headers.is_empty());
        assert_eq!(m[0].payload, b"{'foo':'bar'}");
    }

    /// The same suite: one string header and a payload.
    #[test]
    fn string_header_vector() {
        let mut bytes = hex("0000003d 00000020 07fd8396 0c");
        bytes.extend_from_slice(b"content-type");
        bytes.extend_from_slice(&[0x07, 0x00, 0x10]);
        bytes.extend_from_slice(b"application/json");
        bytes.extend_from_slice(b"{'foo':'bar'}");
        bytes.extend_from_slice(&hex("8d9c08b1"));
        let m = decode_all(&bytes).unwrap();
        assert_eq!(m[0].header_str("content-type"), Some("application/json"));
        assert_eq!(m[0].payload, b"{'foo':'bar'}");
        // Our encoder writes the same bytes.
        assert_eq!(
            encode(&[("content-type", "application/json")], b"{'foo':'bar'}"),
            bytes
        );
    }

    #[test]
    fn typed_headers_decode() {
        let mut h = vec![
            1u8, b'a', 0, 1, b'b', 3, 0xff, 0xfe, 1, b'c', 4, 0, 0, 0xa0, 0x0c,
        ];
        h.extend_from_slice(&[1, b'd', 6, 0, 2, 9, 8]);
        let total = (MIN_MESSAGE + h.len()) as u32;
        let mut m = total.to_be_bytes().to_vec();
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m.extend_from_slice(&h);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        let got = decode_all(&m).unwrap();
        let values: Vec<&HeaderValue> = got[0].headers.iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                &HeaderValue::Bool(true),
                &HeaderValue::Short(-2),
                &HeaderValue::Int(40972),
                &HeaderValue::Bytes(vec![9, 8])
            ]
        );
    }

    #[test]
    fn round_trip_at_every_split() {
        let mut stream = encode(&[(":event-type", "a"), (":message-type", "event")], b"{}");
        stream.extend(encode(&[(":event-type", "b")], "héllo".as_bytes()));
        let whole = decode_all(&stream).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].header_str(":event-type"), Some("a"));
        assert_eq!(whole[1].payload, "héllo".as_bytes());
        for split in 0..=stream.len() {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.feed(&stream[..split], &mut out).unwrap();
            d.feed(&stream[split..], &mut out).unwrap();
            assert_eq!(out, whole, "split {split}");
            assert!(!d.has_partial());
        }
    }

    #[test]
    fn partial_message_is_reported() {
        let stream = encode(&[(":event-type", "a")], b"{}");
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(&stream[..stream.len() - 1], &mut out).unwrap();
        assert!(out.is_empty());
        assert!(d.has_partial());
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let good = encode(&[(":event-type", "a")], b"{\"x\":1}");
        // Every single flipped bit is caught by one of the two checksums.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(decode_all(&bad).is_err(), "byte {i}");
        }
        // A valid prelude announcing an absurd length is refused before any allocation.
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32fast::hash(&huge);
        huge.extend_from_slice(&crc.to_be_bytes());
        assert!(decode_all(&huge).is_err());
        // Headers claiming more bytes than they hold.
        let mut lying = Vec::new();
        let headers = [5u8, b'a', b'b'];
        let total = (MIN_MESSAGE + headers.len()) as u32;
        lying.extend_from_slice(&total.to_be_bytes());
        lying.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&lying);
        lying.extend_from_slice(&crc.to_be_bytes());
        lying.extend_from_slice(&headers);
        let crc = crc32fast::hash(&lying);
        lying.extend_from_slice(&crc.to_be_bytes());
        assert!(decode_all(&lying).is_err());
    }
}

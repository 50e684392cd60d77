//! Our incremental decoder against AWS's own framing (`aws-smithy-eventstream`, host-only
//! dev-dependency): streams it encodes must decode to the same messages whatever the split
//! points, and frames either side refuses (bad checksums, lying lengths, bad headers under
//! good checksums) must be refused by the other too.

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue as AwsValue, Message as AwsMessage};
use aws_smithy_types::str_bytes::StrBytes;
use aws_smithy_types::DateTime;
use bytes::Bytes;

use super::{Decoder, HeaderValue, Message};
use crate::rng::Rng;

/// Generated streams per test.
const STREAMS: usize = 400;

fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn text(rng: &mut Rng, max: usize) -> String {
    const PIECES: &[&str] = &["a", "Z", ":", "-", "é", "😀", " ", "{\"", "\\n", "\u{0}"];
    let mut s = String::new();
    for _ in 0..rng.below(max + 1) {
        s.push_str(PIECES[rng.below(PIECES.len())]);
    }
    s
}

/// A header value of any type; `big` allows byte arrays of the largest size (64 KiB - 1).
fn header_value(rng: &mut Rng, big: bool) -> AwsValue {
    match rng.below(10) {
        0 => AwsValue::Bool(true),
        1 => AwsValue::Bool(false),
        2 => AwsValue::Byte(rng.next_u64() as i8),
        3 => AwsValue::Int16(rng.next_u64() as i16),
        4 => AwsValue::Int32(rng.next_u64() as i32),
        5 => AwsValue::Int64(rng.next_u64() as i64),
        6 => {
            let largest = if big { 65_535 } else { 300 };
            let len = [0, 1, rng.below(300), largest][rng.below(4)];
            AwsValue::ByteArray(Bytes::from(bytes(rng, len)))
        }
        7 => AwsValue::String(StrBytes::from(text(rng, 40))),
        // Any millisecond count a signed 64-bit field holds within DateTime's range.
        8 => AwsValue::Timestamp(DateTime::from_millis(
            (rng.next_u64() % 8_000_000_000_000_000) as i64 - 4_000_000_000_000_000,
        )),
        _ => AwsValue::Uuid(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())),
    }
}

fn message(rng: &mut Rng) -> AwsMessage {
    let names = [
        ":event-type",
        ":message-type",
        ":content-type",
        "",
        "x",
        "ünï",
    ];
    let headers: Vec<Header> = (0..rng.below(7))
        .map(|_| {
            let name = match rng.below(4) {
                0 => "n".repeat(255),
                _ => names[rng.below(names.len())].to_string(),
            };
            Header::new(name, header_value(rng, true))
        })
        .collect();
    let len = match rng.below(6) {
        0 => 0,
        1 => 1,
        2 => rng.below(64),
        3 => 64 * 1024 + rng.below(8 * 1024),
        _ => rng.below(4096),
    };
    AwsMessage::new_from_parts(headers, bytes(rng, len))
}

fn encode(m: &AwsMessage) -> Vec<u8> {
    let mut out = Vec::new();
    write_message_to(m, &mut out).unwrap();
    out
}

/// AWS's message in our decoder's terms.
fn expected(m: &AwsMessage) -> Message {
    let headers = m
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                AwsValue::Bool(b) => HeaderValue::Bool(*b),
                AwsValue::Byte(b) => HeaderValue::Byte(*b),
                AwsValue::Int16(v) => HeaderValue::Short(*v),
                AwsValue::Int32(v) => HeaderValue::Int(*v),
                AwsValue::Int64(v) => HeaderValue::Long(*v),
                AwsValue::ByteArray(b) => HeaderValue::Bytes(b.to_vec()),
                AwsValue::String(s) => HeaderValue::String(s.as_str().to_string()),
                AwsValue::Timestamp(t) => HeaderValue::Timestamp(t.to_millis().unwrap()),
                AwsValue::Uuid(u) => HeaderValue::Uuid(u.to_be_bytes()),
                other => panic!("a header type this test does not generate: {other:?}"),
            };
            (h.name().as_str().to_string(), value)
        })
        .collect();
    Message {
        headers,
        payload: m.payload().to_vec(),
    }
}

/// Feeds `stream` in pieces cut at random points (empty and one-byte pieces included).
fn decode_split(rng: &mut Rng, stream: &[u8]) -> (Result<Vec<Message>, String>, bool) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let step = match rng.below(4) {
            0 => 0,
            1 => 1,
            2 => rng.below(16),
            _ => rng.below(stream.len() - at + 1),
        };
        let end = (at + step).min(stream.len());
        if let Err(e) = d.feed(&stream[at..end], &mut out) {
            return (Err(e.0), d.has_partial());
        }
        at = end;
    }
    (Ok(out), d.has_partial())
}

#[test]
fn aws_encoded_streams_decode_identically_at_any_split() {
    let mut rng = Rng::seeded(0xe7e7_57a3);
    let mut total_messages = 0;
    for i in 0..STREAMS {
        let messages: Vec<AwsMessage> = (0..rng.below(6)).map(|_| message(&mut rng)).collect();
        let stream: Vec<u8> = messages.iter().flat_map(encode).collect();
        let want: Vec<Message> = messages.iter().map(expected).collect();
        // AWS reads back what it wrote (the comparison below is then against AWS's reading).
        let mut rest = Bytes::from(stream.clone());
        for m in &messages {
            assert_eq!(&read_message_from(&mut rest).unwrap(), m);
        }
        for _ in 0..3 {
            let (got, partial) = decode_split(&mut rng, &stream);
            assert_eq!(got.as_ref(), Ok(&want), "stream {i}");
            assert!(!partial, "stream {i}");
        }
        total_messages += messages.len();
    }
    assert!(total_messages > STREAMS, "the generator makes streams");
}

/// Whether AWS's reader accepts `frame` as exactly one message.
fn aws_accepts(frame: &[u8]) -> Option<AwsMessage> {
    let mut buf = Bytes::copy_from_slice(frame);
    let m = read_message_from(&mut buf).ok()?;
    buf.is_empty().then_some(m)
}

fn ours_whole(frame: &[u8]) -> Result<Vec<Message>, String> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    d.feed(frame, &mut out).map_err(|e| e.0)?;
    if d.has_partial() {
        return Err("cut short".into());
    }
    Ok(out)
}

#[test]
fn corrupt_frames_are_errors_in_both() {
    let mut rng = Rng::seeded(0xbad_c0de);
    for i in 0..STREAMS {
        let good = encode(&message(&mut rng));
        let len = good.len();
        // One flipped bit anywhere: one of the two CRCs catches it.
        let mut flipped = good.clone();
        flipped[rng.below(len)] ^= 1 << rng.below(8);
        // The prelude CRC, and the message CRC, replaced.
        let mut prelude = good.clone();
        prelude[8 + rng.below(4)] ^= 0xff;
        let mut trailer = good.clone();
        trailer[len - 1 - rng.below(4)] ^= 0xff;
        for (what, bad) in [
            ("bit flip", &flipped),
            ("prelude crc", &prelude),
            ("message crc", &trailer),
        ] {
            assert!(aws_accepts(bad).is_none(), "{i} {what}: AWS accepted");
            assert!(ours_whole(bad).is_err(), "{i} {what}: we accepted");
            let (split, _) = decode_split(&mut rng, bad);
            assert!(split.is_err(), "{i} {what}: we accepted it fed in pieces");
        }
        // A bad prelude is named as such, before any length is believed.
        assert!(ours_whole(&prelude).unwrap_err().contains("prelude"));
        // Cut short: AWS's reader refuses it; ours yields nothing and reports a partial
        // message, which the Bedrock stream turns into an error at the end of the body.
        let cut = 1 + rng.below(len - 1);
        assert!(
            aws_accepts(&good[..cut]).is_none(),
            "{i}: AWS accepted a cut frame"
        );
        let (got, partial) = decode_split(&mut rng, &good[..cut]);
        assert_eq!(got, Ok(vec![]), "{i}: cut at {cut}");
        assert!(partial, "{i}: cut at {cut} not reported");
    }
}

/// Frames with good checksums around random header bytes: both decoders accept the same
/// ones, with the same content (unknown types, lengths past the header block, bad UTF-8).
#[test]
fn checksummed_garbage_headers_are_judged_alike() {
    let mut rng = Rng::seeded(0x6a7b_a6e5);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..20 * STREAMS {
        let headers = match rng.below(3) {
            // Random bytes.
            0 => {
                let len = rng.below(24);
                bytes(&mut rng, len)
            }
            // A real header block, one byte changed.
            _ => {
                let m = AwsMessage::new_from_parts(
                    (0..1 + rng.below(3))
                        .map(|_| Header::new(text(&mut rng, 3), header_value(&mut rng, false)))
                        .collect(),
                    Bytes::new(),
                );
                let frame = encode(&m);
                let mut h = frame[12..frame.len() - 4].to_vec();
                if !h.is_empty() {
                    let at = rng.below(h.len());
                    h[at] = rng.next_u64() as u8;
                }
                h
            }
        };
        let len = rng.below(8);
        let payload = bytes(&mut rng, len);
        let frame = frame_with(&headers, &payload);
        let theirs = aws_accepts(&frame);
        let ours = ours_whole(&frame);
        match (&theirs, &ours) {
            (Some(m), Ok(got)) => {
                assert_eq!(got, &vec![expected(m)], "case {i}: {frame:02x?}");
                accepted += 1;
            }
            (None, Err(_)) => refused += 1,
            _ => panic!("case {i}: AWS {theirs:?}, ours {ours:?} for {frame:02x?}"),
        }
    }
    assert!(accepted > 100 && refused > 100, "{accepted} / {refused}");
}

/// A frame around `headers` and `payload` with correct lengths and checksums.
fn frame_with(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

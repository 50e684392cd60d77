//! Our signer against AWS's own (`aws-sigv4`, host-only dev-dependency) over generated
//! requests: both must produce the same `authorization`, `x-amz-date` and
//! `x-amz-security-token`, and neither sends `x-amz-content-sha256`.
//!
//! `aws-sigv4` is configured as our signer works for a non-S3 service such as Bedrock:
//! double-encoded, normalized paths; the payload hash in the canonical request only (no
//! `x-amz-content-sha256` header); the session token signed in `x-amz-security-token`; and
//! the same headers left unsigned.
//!
//! Requests vary the method, paths with characters to encode and dot segments, query
//! strings with repeated, unsorted, empty and `+` parameters, header names in any case with
//! runs of spaces, repeated headers, bodies from empty to 64 KiB, session tokens, moments,
//! regions and service names, ports.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign as aws_sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody,
    SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;

use super::{sign, Credentials, UNSIGNED_HEADERS};
use crate::rng::Rng;

/// How many generated requests each run compares.
const CASES: usize = 3_000;

/// One generated signing problem.
struct Case {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    access_key_id: String,
    secret: String,
    session_token: Option<String>,
    region: &'static str,
    service: &'static str,
    now_ms: u64,
}

/// The case without its body (which can be 64 KiB), for failure messages.
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("session_token", &self.session_token)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len())]
}

/// Characters a path or query may hold as sent (already valid URI text), weighted towards
/// those that need encoding in the canonical form.
const URI_CHARS: &[&str] = &[
    "a", "Z", "0", "-", "_", ".", "~", "%3A", "%2F", "%20", "%25", "%C3%A9", ":", "@", "!", "$",
    "'", "(", ")", "*", "+", ",", ";", "=", "%", "%zz",
];

fn uri_text(rng: &mut Rng, max: usize) -> String {
    (0..rng.below(max + 1))
        .map(|_| pick(rng, URI_CHARS))
        .collect()
}

fn path(rng: &mut Rng) -> String {
    let segments = rng.below(6);
    let mut p = String::new();
    for _ in 0..segments {
        p.push('/');
        match rng.below(10) {
            0 => p.push('.'),
            1 => p.push_str(".."),
            2 => {} // an empty segment: `//`
            3 => p.push_str("model"),
            _ => p.push_str(&uri_text(rng, 8)),
        }
    }
    if rng.below(4) == 0 {
        p.push('/');
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

fn query(rng: &mut Rng) -> Option<String> {
    if rng.below(3) == 0 {
        return None;
    }
    let keys = ["a", "A", "b", "Param1", "param1", "x-y", "", "k%20s", "é"];
    let mut parts = Vec::new();
    for _ in 0..rng.below(6) {
        let key = pick(rng, &keys).replace('é', "%C3%A9");
        match rng.below(5) {
            0 => parts.push(key),
            1 => parts.push(String::new()),
            _ => parts.push(format!(
                "{key}={}",
                uri_text(rng, 6).replace(['=', '&'], "")
            )),
        }
    }
    Some(parts.join("&"))
}

/// Header values with runs of spaces, leading and trailing spaces (tabs are handled apart:
/// see `header_tabs_are_whitespace_as_in_botocore`).
fn header_value(rng: &mut Rng) -> String {
    let words = [
        "a",
        "b c",
        "application/json",
        "x=1;y=2",
        "",
        "\"q\"",
        "UPPER",
    ];
    let mut v = String::new();
    for _ in 0..rng.below(4) {
        v.push_str(&" ".repeat(rng.below(3)));
        v.push_str(pick(rng, &words));
    }
    v.push_str(&" ".repeat(rng.below(3)));
    v
}

fn headers(rng: &mut Rng) -> Vec<(String, String)> {
    let names = [
        "Content-Type",
        "content-type",
        "X-Amz-Target",
        "accept",
        "X-Custom",
        "x-custom",
        "x-amz-meta-Thing",
        "user-agent",
        "content-length",
        "x-amzn-trace-id",
        "expect",
        "connection",
        "authorization",
    ];
    (0..rng.below(6))
        .map(|_| {
            let name = pick(rng, &names);
            let value = match name {
                "content-length" => rng.below(100).to_string(),
                _ => header_value(rng),
            };
            (name.to_string(), value)
        })
        .collect()
}

fn body(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(50) {
        0..=9 => 0,
        10..=19 => rng.below(16),
        20..=34 => rng.below(1024),
        35 => 64 * 1024,
        _ => rng.below(8 * 1024),
    };
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn case(rng: &mut Rng) -> Case {
    let host = pick(
        rng,
        &[
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "https://bedrock-runtime.eu-central-1.amazonaws.com:443",
            "http://127.0.0.1:4010",
            "http://localhost:80",
            "https://proxy.example:8443",
        ],
    );
    let q = query(rng).map(|q| format!("?{q}")).unwrap_or_default();
    let secret_chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    let secret: String = (0..40)
        .map(|_| char::from(pick(rng, secret_chars)))
        .collect();
    Case {
        method: pick(rng, &["POST", "GET", "PUT", "DELETE", "HEAD"]),
        url: format!("{host}{}{q}", path(rng)),
        headers: headers(rng),
        body: body(rng),
        access_key_id: format!("AKIA{:016X}", rng.next_u64()),
        secret,
        session_token: (rng.below(2) == 0)
            .then(|| format!("IQoJb3JpZ2luX2VjE{}/+=", rng.next_u64())),
        region: pick(
            rng,
            &[
                "us-east-1",
                "us-west-2",
                "eu-central-1",
                "ap-south-1",
                "us-gov-west-1",
            ],
        ),
        service: pick(rng, &["bedrock", "bedrock-runtime", "service"]),
        // 2001-09-09 .. 2033-05-18, with a sub-second part both must drop.
        now_ms: 1_000_000_000_000 + rng.next_u64() % 1_000_000_000_000,
    }
}

/// What we send: the signed headers of our signer's request.
fn ours(c: &Case) -> http::Request<Bytes> {
    let mut b = http::Request::builder().method(c.method).uri(&c.url);
    for (k, v) in &c.headers {
        b = b.header(k, v);
    }
    let mut req = b.body(Bytes::from(c.body.clone())).unwrap();
    let creds = Credentials {
        access_key_id: &c.access_key_id,
        secret_access_key: &c.secret,
        session_token: c.session_token.as_deref(),
    };
    sign(&mut req, &creds, c.region, c.service, c.now_ms).unwrap();
    req
}

/// `aws-sigv4`'s headers for the same request, set up as our signer works.
fn theirs(c: &Case) -> Vec<(String, String)> {
    let identity = AwsCredentials::new(
        &c.access_key_id,
        &c.secret,
        c.session_token.clone(),
        None,
        "differential-test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.signature_location = SignatureLocation::Headers;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    settings.session_token_mode = SessionTokenMode::Include;
    settings.excluded_headers = Some(UNSIGNED_HEADERS.iter().map(|h| (*h).into()).collect());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(c.region)
        .name(c.service)
        .time(UNIX_EPOCH + Duration::from_millis(c.now_ms))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let signable = SignableRequest::new(
        c.method,
        c.url.clone(),
        headers,
        SignableBody::Bytes(&c.body),
    )
    .unwrap();
    let (instructions, _) = aws_sign(signable, &params).unwrap().into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn signatures_match_aws_sigv4() {
    let mut rng = Rng::seeded(0x5167_4a11);
    for i in 0..CASES {
        let c = case(&mut rng);
        let req = ours(&c);
        let expected = theirs(&c);
        let get = |name: &str| {
            expected
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        for name in [
            "authorization",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-content-sha256",
        ] {
            assert_eq!(
                header(&req, name),
                get(name),
                "case {i}: {name} differs for {c:#?}\nour canonical request:\n{}",
                super::canonical_request(&req).1
            );
        }
    }
}

//! AWS Signature Version 4 for one request, written out because the `aws-sigv4` crate drags
//! the Smithy runtime into the Worker bundle for what is a few hashes. The hashes themselves
//! come from `sha2` and `hmac`; `sigv4/differential_tests.rs` checks the result against
//! `aws-sigv4` over many generated requests.
//!
//! Rules that matter here (non-S3 services such as Bedrock):
//! - the canonical URI is the path *as sent*, URI-encoded once more: a model id sent as
//!   `anthropic.claude-v2%3A1` is signed as `anthropic.claude-v2%253A1`;
//! - `host` is signed with the value the HTTP client will send (port only when not the
//!   scheme's default), and is not added to the request (clients and `fetch` set it);
//! - time comes from the caller (the host's clock), never from the system.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, GatewayError};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers left unsigned: set or rewritten by clients and proxies after signing.
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "user-agent",
    "content-length",
    "expect",
    "transfer-encoding",
    "connection",
    "x-amzn-trace-id",
];

/// Long-term or temporary (session) AWS credentials.
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Adds `x-amz-date`, `x-amz-security-token` (temporary credentials) and `authorization`.
pub fn sign(
    request: &mut http::Request<Bytes>,
    creds: &Credentials<'_>,
    region: &str,
    service: &str,
    now_ms: u64,
) -> Result<(), GatewayError> {
    let amz_date = amz_date(now_ms / 1000);
    set_header(request, "x-amz-date", &amz_date)?;
    if let Some(token) = creds.session_token {
        set_header(request, "x-amz-security-token", token)?;
    }
    let (signed_headers, canonical) = canonical_request(request);
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(creds.secret_access_key, &amz_date[..8], region, service)?;
    let signature = hex(&hmac_sha256(&key, to_sign.as_bytes())?);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    );
    set_header(request, "authorization", &authorization)
}

fn set_header(
    request: &mut http::Request<Bytes>,
    name: &'static str,
    value: &str,
) -> Result<(), GatewayError> {
    // The value may be a secret (session token): the error must not quote it.
    let value = HeaderValue::from_str(value).map_err(|_| {
        GatewayError::invalid_request(format!(
            "cannot sign the Bedrock request: the {name} value holds characters not allowed in a header"
        ))
    })?;
    request
        .headers_mut()
        .insert(HeaderName::from_static(name), value);
    Ok(())
}

/// The signed header list and the canonical request text.
fn canonical_request(request: &http::Request<Bytes>) -> (String, String) {
    let uri = request.uri();
    let mut headers: Vec<(String, String)> = vec![("host".into(), host_header(uri))];
    for name in request.headers().keys() {
        let lower = name.as_str();
        if lower == "host" || UNSIGNED_HEADERS.contains(&lower) {
            continue;
        }
        let values: Vec<String> = request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        headers.push((lower.to_string(), values.join(",")));
    }
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        request.method(),
        canonical_uri(uri.path()),
        canonical_query(uri.query().unwrap_or(""))
    );
    for (name, value) in &headers {
        canonical.push_str(&format!("{name}:{value}\n"));
    }
    canonical.push_str(&format!(
        "\n{signed}\n{}",
        hex(&Sha256::digest(request.body()))
    ));
    (signed, canonical)
}

/// What the HTTP client sends as `Host`: the port only when it is not the scheme's default.
fn host_header(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("");
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    match uri.port_u16() {
        Some(p) if Some(p) != default_port => format!("{host}:{p}"),
        _ => host.to_string(),
    }
}

/// Trims a header value and collapses inner runs of spaces, as the canonical form requires.
fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path as sent, normalized and encoded again (non-S3 services sign the normalized,
/// double-encoded path).
fn canonical_uri(path: &str) -> String {
    uri_encode(&normalize_path(path), false)
}

/// Every service but S3 checks the signature against the path with dot segments resolved
/// (RFC 3986 §5.2.4) and empty segments dropped, so `/a/./b`, `/a//b` and `/x/../a/b` are all
/// signed as `/a/b`; a trailing `/` (or a trailing `.`/`..` segment) keeps one. `aws-sigv4`
/// and botocore do the same.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = ["/", "/.", "/.."].iter().any(|t| path.ends_with(t));
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// Parameters decoded then encoded once, sorted by name then value. A `+` is a space, as
/// AWS services read query strings (form encoding) and as `aws-sigv4` signs it; a literal
/// plus travels as `%2B`.
fn canonical_query(query: &str) -> String {
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k), true), uri_encode(&decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// AWS's URI encoding: every byte but `A-Za-z0-9-_.~` as `%XX` (upper-case hex); `/` is kept
/// in paths. Also how a model id becomes a path segment.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !encode_slash);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Result<[u8; 32], GatewayError> {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes())?;
    let k_region = hmac_sha256(&k_date, region.as_bytes())?;
    let k_service = hmac_sha256(&k_region, service.as_bytes())?;
    hmac_sha256(&k_service, b"aws4_request")
}

/// HMAC-SHA256. HMAC takes keys of any length (RFC 2104), so the crate's key-length error
/// cannot happen here; it is still mapped, never unwrapped, so signing has no panic path.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<[u8; 32], GatewayError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| {
        GatewayError::new(
            ErrorKind::Api,
            "cannot sign the Bedrock request: HMAC key refused",
        )
    })?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (UTC).
fn amz_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod differential_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS SigV4 test suite's credentials, region, service and moment.
    const SUITE_CREDS: Credentials<'static> = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };
    /// 2015-08-30T12:36:00Z
    const SUITE_MS: u64 = 1_440_938_160_000;

    fn suite(method: &str, url: &str, headers: &[(&str, &str)], body: &'static [u8]) -> String {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(Bytes::from_static(body)).unwrap();
        sign(&mut req, &SUITE_CREDS, "us-east-1", "service", SUITE_MS).unwrap();
        assert!(req.headers().get("host").is_none());
        assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
        req.headers()["authorization"].to_str().unwrap().to_string()
    }

    fn signature(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap()
    }

    #[test]
    fn get_vanilla() {
        assert_eq!(
            suite("GET", "https://example.amazonaws.com/", &[], b""),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn post_vanilla() {
        let auth = suite("POST", "https://example.amazonaws.com/", &[], b"");
        assert_eq!(
            signature(&auth),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let auth = suite(
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            &[],
            b"",
        );
        assert_eq!(
            signature(&auth),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        let auth = suite(
            "POST",
            "https://example.amazonaws.com/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"Param1=value1",
        );
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date,"));
        assert_eq!(
            signature(&auth),
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let creds = Credentials {
            session_token: Some("tok"),
            ..SUITE_CREDS
        };
        let mut req = http::Request::post("https://example.amazonaws.com/")
            .body(Bytes::new())
            .unwrap();
        sign(&mut req, &creds, "us-east-1", "service", SUITE_MS).unwrap();
        assert_eq!(req.headers()["x-amz-security-token"], "tok");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    }

    #[test]
    fn encoded_model_ids_are_signed_double_encoded() {
        let req =
            http::Request::post("http://127.0.0.1:4010/model/anthropic.claude-v2%3A1/converse")
                .header("content-type", "application/json")
                .body(Bytes::from_static(b"{}"))
                .unwrap();
        let (signed, canonical) = canonical_request(&req);
        assert_eq!(signed, "content-type;host");
        let lines: Vec<&str> = canonical.lines().collect();
        assert_eq!(lines[1], "/model/anthropic.claude-v2%253A1/converse");
        assert_eq!(lines[3], "content-type:application/json");
        assert_eq!(lines[4], "host:127.0.0.1:4010");
        // The default port is not part of Host.
        let req = http::Request::post("https://h.example:443/x")
            .body(Bytes::new())
            .unwrap();
        assert!(canonical_request(&req).1.contains("\nhost:h.example\n"));
    }

    /// Found by the differential test: `/a/../b` was signed as sent, so AWS (which resolves
    /// dot segments and drops empty ones before checking) refused the signature.
    #[test]
    fn dot_segments_and_empty_segments_are_normalized_before_signing() {
        for (path, canonical) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a/./b", "/a/b"),
            ("/a//b", "/a/b"),
            ("/x/../a/b", "/a/b"),
            ("/../a", "/a"),
            ("/a/..", "/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/b/", "/a/b/"),
            ("/a/b//", "/a/b/"),
            ("/a.b/..c/...", "/a.b/..c/..."),
            (
                "/m/anthropic.claude-v2%3A1/x",
                "/m/anthropic.claude-v2%253A1/x",
            ),
        ] {
            assert_eq!(canonical_uri(path), canonical, "{path}");
        }
    }

    /// Found by the differential test: a `+` in a query was signed as a literal plus
    /// (`%2B`) where AWS reads a space (`%20`).
    #[test]
    fn plus_in_a_query_is_signed_as_a_space() {
        assert_eq!(
            canonical_query("b=x+y&a=1%2B1&c+d"),
            "a=1%2B1&b=x%20y&c%20d="
        );
    }

    /// Tabs count as whitespace in header values, as botocore's `' '.join(value.split())`
    /// has it (the HTTP parser on AWS's side strips leading and trailing tabs anyway).
    /// `aws-sigv4` trims and collapses spaces only, so the differential test uses spaces.
    #[test]
    fn header_tabs_are_whitespace_as_in_botocore() {
        let req = http::Request::post("https://h.example/")
            .header("x-t", "\ta \t b\t")
            .body(Bytes::new())
            .unwrap();
        assert!(canonical_request(&req).1.contains("\nx-t:a b\n"));
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved() {
        assert_eq!(
            uri_encode("arn:aws:bedrock:us-east-1:1:x/y z~", true),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ax%2Fy%20z~"
        );
        assert_eq!(uri_encode("a/b", false), "a/b");
        assert_eq!(percent_decode("a%3Ab%zz%"), "a:b%zz%");
    }

    /// RFC 4231 test case 2, and case 6 (a key longer than the block).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )
            .unwrap()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn dates_format_in_utc() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_825_600), "20000229T120000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }
}

//! Verifies AWS Signature Version 4 on Bedrock requests, for real: the signature is
//! recomputed from what arrived on the wire with the mock's fixed test secret, so an
//! end-to-end test passing through here proves the gateway signs correctly (double-encoded
//! path, signed headers, body hash, derived key). Written independently of Tollgate's
//! signer, with the RustCrypto `hmac` crate.

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

/// The only access key id the mock knows.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDTOLLGATETEST";
/// Its secret (documented in README.md; test-only).
pub const TEST_SECRET_ACCESS_KEY: &str = "tollgate/mock+SECRET/0123456789abcdefghijklm";
/// The service every Bedrock runtime request must be signed for.
pub const SERVICE: &str = "bedrock";

/// Why a request is refused, as Bedrock names it (all answered with 403).
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Missing,
    UnknownKey,
    Invalid(&'static str),
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return None;
    };
    Some(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

/// Checks the request's SigV4 signature against the test secret.
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(Refusal::Missing)?;
    let auth =
        parse_authorization(value).ok_or(Refusal::Invalid("malformed Authorization header"))?;
    if auth.access_key_id != TEST_ACCESS_KEY_ID {
        return Err(Refusal::UnknownKey);
    }
    if auth.service != SERVICE {
        return Err(Refusal::Invalid("credential scope names the wrong service"));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(Refusal::Invalid("x-amz-date header is missing"))?;
    if !amz_date.starts_with(auth.date) || amz_date.len() != 16 {
        return Err(Refusal::Invalid(
            "x-amz-date does not match the credential scope",
        ));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(Refusal::Invalid("host and x-amz-date must be signed"));
        }
    }
    let canonical = canonical_request(method, path, query, headers, &auth.signed_headers, body)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let expected = signature(
        TEST_SECRET_ACCESS_KEY,
        auth.date,
        auth.region,
        auth.service,
        &string_to_sign,
    );
    if expected == auth.signature {
        Ok(())
    } else {
        Err(Refusal::Invalid("signature mismatch"))
    }
}

fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed: &[&str],
    body: &[u8],
) -> Result<String, Refusal> {
    let mut out = format!(
        "{method}\n{}\n{}\n",
        encode(path, false),
        canonical_query(query)
    );
    for name in signed {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(Refusal::Invalid(
                "a signed header is missing from the request",
            ));
        }
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    out.push_str(&format!(
        "\n{}\n{}",
        signed.join(";"),
        hex(&Sha256::digest(body))
    ));
    Ok(out)
}

/// Query parameters sorted (they arrive already encoded; Bedrock requests carry none).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.contains('=') {
                p.to_string()
            } else {
                format!("{p}=")
            }
        })
        .collect();
    pairs.sort();
    pairs.join("&")
}

/// RFC 3986 unreserved characters stay; everything else (including the `%` of an already
/// encoded path, hence the double encoding) becomes `%XX`.
fn encode(s: &str, encode_slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b'/' if !encode_slash => "/".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex(&hmac(&k, string_to_sign.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS SigV4 test suite, post-vanilla, through the same derivation.
    #[test]
    fn signature_matches_the_aws_suite() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let canonical =
            canonical_request("POST", "/", "", &headers, &["host", "x-amz-date"], b"").unwrap();
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830",
                "us-east-1",
                "service",
                &sts
            ),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    fn signed_headers(path: &str, body: &[u8], secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:9".parse().unwrap());
        headers.insert("x-amz-date", "20250101T000000Z".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let signed = ["content-type", "host", "x-amz-date"];
        let canonical = canonical_request("POST", path, "", &headers, &signed, body).unwrap();
        let sts = format!(
            "AWS4-HMAC-SHA256\n20250101T000000Z\n20250101/us-east-1/bedrock/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let sig = signature(secret, "20250101", "us-east-1", "bedrock", &sts);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
        );
        headers.insert("authorization", auth.parse().unwrap());
        headers
    }

    #[test]
    fn good_signatures_pass_and_tampering_fails() {
        let path = "/model/a.b-v1%3A0/converse";
        let h = signed_headers(path, b"{}", TEST_SECRET_ACCESS_KEY);
        assert_eq!(verify("POST", path, "", &h, b"{}"), Ok(()));
        assert!(matches!(
            verify("POST", path, "", &h, b"{ }"),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            verify("POST", "/model/a.b-v1:0/converse", "", &h, b"{}"),
            Err(Refusal::Invalid(_))
        ));
        let wrong = signed_headers(path, b"{}", "not-the-secret");
        assert!(matches!(
            verify("POST", path, "", &wrong, b"{}"),
            Err(Refusal::Invalid(_))
        ));
        assert_eq!(
            verify("POST", path, "", &HeaderMap::new(), b"{}"),
            Err(Refusal::Missing)
        );
        let mut other = h.clone();
        let auth = h["authorization"]
            .to_str()
            .unwrap()
            .replace(TEST_ACCESS_KEY_ID, "AKIDOTHER");
        other.insert("authorization", auth.parse().unwrap());
        assert_eq!(
            verify("POST", path, "", &other, b"{}"),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn paths_are_double_encoded() {
        assert_eq!(encode("/model/a%3A0/x y", false), "/model/a%253A0/x%20y");
    }
}

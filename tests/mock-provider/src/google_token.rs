//! A fake Google OAuth token endpoint (`POST /token`) for the JWT bearer grant that
//! service accounts use. It checks the form and the assertion's shape and claims (not its
//! signature: the mock knows no public keys) and hands out `ya29.mock-N` tokens.

use serde_json::Value;

use crate::http::{self, next_id, Resp};
use crate::json::Obj;
use crate::logic::query_param;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google refuses assertions that are valid for longer than an hour.
const MAX_LIFETIME_SECS: u64 = 3600;

/// `{"error": "...", "error_description": "..."}` with a 400, as Google's endpoint answers.
fn refused(error: &str, description: &str) -> Resp {
    http::json(
        400,
        Obj::new()
            .str("error", error)
            .str("error_description", description)
            .finish(),
    )
}

pub fn token(body: &[u8]) -> Resp {
    match check_grant(body) {
        Ok(()) => http::json(
            200,
            Obj::new()
                .str("access_token", &format!("ya29.mock-{}", next_id()))
                .num("expires_in", 3599)
                .str("token_type", "Bearer")
                .finish(),
        ),
        Err((error, description)) => refused(error, &description),
    }
}

fn check_grant(body: &[u8]) -> Result<(), (&'static str, String)> {
    let form = std::str::from_utf8(body).unwrap_or("");
    let grant = query_param(Some(form), "grant_type").unwrap_or_default();
    if grant != JWT_BEARER {
        return Err((
            "unsupported_grant_type",
            format!("Invalid grant_type: {grant}"),
        ));
    }
    let assertion = query_param(Some(form), "assertion").unwrap_or_default();
    let pieces: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = pieces[..] else {
        return Err(("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.".into()));
    };
    let header = decode_json(header).ok_or(("invalid_grant", "Invalid JWT header".to_string()))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(("invalid_grant", "Invalid JWT: alg must be RS256".into()));
    }
    if signature.is_empty() || base64url_decode(signature).is_none() {
        return Err(("invalid_grant", "Invalid JWT Signature.".into()));
    }
    let claims = decode_json(claims).ok_or(("invalid_grant", "Invalid JWT claims".to_string()))?;
    check_claims(&claims).map_err(|why| ("invalid_grant", why))
}

fn check_claims(claims: &Value) -> Result<(), String> {
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    for k in ["iss", "scope", "aud"] {
        if text(k).is_none() {
            return Err(format!("Invalid JWT: missing claim {k}"));
        }
    }
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_u64),
        claims.get("exp").and_then(Value::as_u64),
    ) else {
        return Err("Invalid JWT: iat and exp must be numbers".into());
    };
    if exp <= iat || exp - iat > MAX_LIFETIME_SECS {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.".into());
    }
    Ok(())
}

fn decode_json(piece: &str) -> Option<Value> {
    serde_json::from_slice(&base64url_decode(piece)?).ok()
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use; `None` on any other character.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unpadded base64url of `data` (the mock's own encoder pads and uses + and /).
    fn encode(data: &str) -> String {
        crate::logic::base64(data.as_bytes())
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    }

    fn form(claims: &str) -> String {
        let jwt = format!(
            "{}.{}.{}",
            encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            encode(claims),
            encode("sig")
        );
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}")
    }

    const CLAIMS: &str = r#"{"iss":"sa@p.iam.gserviceaccount.com","scope":"https://www.googleapis.com/auth/cloud-platform","aud":"http://127.0.0.1/token","iat":1700000000,"exp":1700003600}"#;

    #[test]
    fn base64url_round_trip() {
        assert_eq!(base64url_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64url_decode("Zm8").unwrap(), b"fo");
        assert_eq!(base64url_decode(&encode("ÿ?>")).unwrap(), "ÿ?>".as_bytes());
        assert!(base64url_decode("a+b").is_none());
    }

    #[test]
    fn valid_grant_gets_a_token() {
        assert!(check_grant(form(CLAIMS).as_bytes()).is_ok());
        assert_eq!(token(form(CLAIMS).as_bytes()).status(), 200);
    }

    #[test]
    fn bad_grants_are_refused() {
        assert_eq!(
            check_grant(b"grant_type=password").unwrap_err().0,
            "unsupported_grant_type"
        );
        let long = CLAIMS.replace("1700003600", "1700090000");
        assert_eq!(
            check_grant(form(&long).as_bytes()).unwrap_err().0,
            "invalid_grant"
        );
        let no_scope = CLAIMS.replace("\"scope\"", "\"nope\"");
        assert!(check_grant(form(&no_scope).as_bytes())
            .unwrap_err()
            .1
            .contains("scope"));
        let bare = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=abc";
        assert_eq!(check_grant(bare.as_bytes()).unwrap_err().0, "invalid_grant");
        assert_eq!(token(bare.as_bytes()).status(), 400);
    }
}

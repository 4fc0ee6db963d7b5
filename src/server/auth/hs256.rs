//! Server only: compact JWS signed HMAC-SHA256 (RFC 7515), the one form access tokens take —
//! signing a payload, and the strict check of a token's shape, signature and header. What the
//! payload says (the claims) is [`jwt`](super::jwt)'s.
//!
//! Our own, and small on purpose: only HS256 exists here, so no header can pick another
//! algorithm, a key, or a place to fetch one from. The signature is checked (in constant time)
//! before any JSON of the token is parsed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::Sha256;

/// Longest token checked: anything longer is refused before it is decoded.
pub(super) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The header of every token we sign, as `jsonwebtoken` wrote it (so tokens stay byte-identical).
const HEADER_JSON: &[u8] = br#"{"typ":"JWT","alg":"HS256"}"#;

/// Why a token is not a well-formed HS256 JWS signed with our secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum TokenError {
    #[error("the access token is too long")]
    TooLong,
    #[error("the access token is not three base64url parts")]
    Malformed,
    #[error("the access token's signature does not match")]
    BadSignature,
    #[error("the access token's header is not valid JSON with an `alg`")]
    BadHeader,
    #[error("the access token is not signed HS256")]
    Algorithm,
    #[error("the access token's `typ` is not JWT")]
    Type,
    #[error("the access token's header names critical extensions (`crit`)")]
    Critical,
}

/// The header fields we read. Every other one (`kid`, `jku`, `x5u`, `jwk`, ...) is ignored: the
/// key is ours, never named or fetched by a token.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    /// Extensions the signer says a verifier must understand (RFC 7515 §4.1.11): this one
    /// understands none, so a header that has the member at all is refused.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// An HMAC-SHA256 key, ready to sign and verify. Cloning copies the keyed state, not a secret
/// string; `Debug` is left to the owner (which redacts it).
#[derive(Clone)]
pub(super) struct Hs256 {
    mac: Hmac<Sha256>,
}

impl Hs256 {
    pub(super) fn new(secret: &[u8]) -> Hs256 {
        Hs256 {
            // HMAC takes a key of any length (a long one is hashed first): this cannot fail.
            mac: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
        }
    }

    /// `header.payload.signature` for `payload` (the claims' JSON).
    pub(super) fn sign(&self, payload: &[u8]) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(HEADER_JSON);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        let signature = mac.finalize().into_bytes();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }

    /// The payload of `token` once its length, shape, signature and header pass. The header
    /// must say `alg: HS256` exactly (`none` and every other algorithm are refused) and, if it
    /// has a `typ`, `JWT` (RFC 7519 §5.1: compared without regard to case); a header with `crit`
    /// is refused (no extension is understood here, RFC 7515 §4.1.11).
    pub(super) fn verify(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = decode(signature)?;
        let mut mac = self.mac.clone();
        mac.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let header: JoseHeader =
            json_object(&decode(header)?).map_err(|_| TokenError::BadHeader)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        if header
            .typ
            .is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT"))
        {
            return Err(TokenError::Type);
        }
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        decode(payload)
    }
}

/// A JWS header or JWT claims set: one JSON object (RFC 7519 §7.2), each member once. A derived
/// `Deserialize` alone would also take an array of the fields in order.
pub(super) fn json_object<T: DeserializeOwned>(json: &[u8]) -> Result<T, String> {
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    serde_json::from_slice(json).map_err(|err| err.to_string())
}

/// Unpadded base64url, canonical (the only form RFC 7515 allows).
fn decode(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-of-some-length";

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// `header.payload`, signed with `key` whatever the header says.
    fn signed(key: &[u8], header: &str, payload: &str) -> String {
        let message = format!("{}.{}", b64(header), b64(payload));
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(message.as_bytes());
        format!("{message}.{}", b64u(&mac.finalize().into_bytes()))
    }

    fn b64u(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    const PAYLOAD: &str = r#"{"sub":"alice"}"#;

    #[test]
    fn a_signed_payload_verifies_and_comes_back() {
        let key = Hs256::new(SECRET);
        let token = key.sign(PAYLOAD.as_bytes());
        assert_eq!(key.verify(&token).unwrap(), PAYLOAD.as_bytes());
        assert_eq!(
            token,
            signed(SECRET, r#"{"typ":"JWT","alg":"HS256"}"#, PAYLOAD)
        );
    }

    #[test]
    fn another_secret_does_not_verify() {
        let token = Hs256::new(b"another-secret").sign(PAYLOAD.as_bytes());
        assert_eq!(
            Hs256::new(SECRET).verify(&token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_changed_payload_does_not_verify() {
        let key = Hs256::new(SECRET);
        let token = key.sign(PAYLOAD.as_bytes());
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!("{head}.{}.{signature}", b64(r#"{"sub":"admin"}"#));
        assert_eq!(key.verify(&forged), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused_signed_or_not() {
        let key = Hs256::new(SECRET);
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(PAYLOAD));
        assert_eq!(key.verify(&unsigned), Err(TokenError::BadSignature));
        for alg in ["none", "None", "NONE"] {
            let token = signed(SECRET, &format!(r#"{{"alg":"{alg}"}}"#), PAYLOAD);
            assert_eq!(key.verify(&token), Err(TokenError::Algorithm), "{alg}");
        }
    }

    #[test]
    fn other_algorithms_are_refused_even_over_a_valid_hmac() {
        let key = Hs256::new(SECRET);
        for alg in [
            "HS512", "HS384", "RS256", "ES256", "EdDSA", "hs256", "HS256 ",
        ] {
            let token = signed(
                SECRET,
                &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
                PAYLOAD,
            );
            assert_eq!(key.verify(&token), Err(TokenError::Algorithm), "{alg}");
        }
        for header in [
            r#"{"typ":"JWT"}"#,
            r#"{"alg":256}"#,
            r#"["HS256"]"#,
            "HS256",
        ] {
            let token = signed(SECRET, header, PAYLOAD);
            assert_eq!(key.verify(&token), Err(TokenError::BadHeader), "{header}");
        }
        let twice = signed(SECRET, r#"{"alg":"HS256","alg":"none"}"#, PAYLOAD);
        assert_eq!(key.verify(&twice), Err(TokenError::BadHeader), "alg twice");
    }

    #[test]
    fn a_critical_extension_is_refused() {
        let key = Hs256::new(SECRET);
        for crit in [r#"["exp"]"#, r#"["b64"]"#, "[]"] {
            let token = signed(
                SECRET,
                &format!(r#"{{"alg":"HS256","typ":"JWT","crit":{crit}}}"#),
                PAYLOAD,
            );
            assert_eq!(key.verify(&token), Err(TokenError::Critical), "{crit}");
        }
    }

    #[test]
    fn typ_if_present_says_jwt() {
        let key = Hs256::new(SECRET);
        for header in [
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"jwt"}"#,
        ] {
            assert!(
                key.verify(&signed(SECRET, header, PAYLOAD)).is_ok(),
                "{header}"
            );
        }
        for typ in ["JOSE", "at+jwt", "JWS"] {
            let token = signed(
                SECRET,
                &format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#),
                PAYLOAD,
            );
            assert_eq!(key.verify(&token), Err(TokenError::Type), "{typ}");
        }
    }

    #[test]
    fn key_hints_are_ignored_and_never_fetched() {
        // A `kid`, `jku`, `x5u` or `jwk` names no key here: the signature is checked with our
        // secret alone (nothing in this module can fetch), so a valid one passes...
        let key = Hs256::new(SECRET);
        let header = r#"{"alg":"HS256","typ":"JWT","kid":"other","jku":"http://127.0.0.1:9/jwks","x5u":"http://127.0.0.1:9/x5u","jwk":{"kty":"oct","k":"AAAA"}}"#;
        assert_eq!(
            key.verify(&signed(SECRET, header, PAYLOAD)).unwrap(),
            PAYLOAD.as_bytes()
        );
        // ...and a token signed with the key it points at does not.
        assert_eq!(
            key.verify(&signed(&[0, 0, 0], header, PAYLOAD)),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused_before_anything_is_parsed() {
        let key = Hs256::new(SECRET);
        let good = key.sign(PAYLOAD.as_bytes());
        let (head, rest) = good.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        for token in [
            String::new(),
            "a.b".into(),
            format!("{good}.extra"),
            format!("{head}.{payload}.{signature}="),
            format!("{head}.{payload}.{signature}!"),
            format!(
                "{head}.{payload}.{}",
                signature.replace('_', "/").replace('-', "+")
            ),
        ] {
            let refused = key.verify(&token).unwrap_err();
            assert!(
                matches!(refused, TokenError::Malformed | TokenError::BadSignature),
                "{token}: {refused:?}"
            );
        }
        // Base64 that is not base64url, in a part the signature covers: the signature holds, the
        // part is still refused.
        let bad_payload = {
            let message = format!("{head}.{}+/", &payload[..payload.len() - 2]);
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
            mac.update(message.as_bytes());
            format!("{message}.{}", b64u(&mac.finalize().into_bytes()))
        };
        assert_eq!(key.verify(&bad_payload), Err(TokenError::Malformed));
        let bad_signature = format!("{head}.{payload}.*{}", &signature[1..]);
        assert_eq!(key.verify(&bad_signature), Err(TokenError::Malformed));
    }

    #[test]
    fn a_token_beyond_the_limit_is_refused_unread() {
        let key = Hs256::new(SECRET);
        let (mut at, mut over) = (false, false);
        // base64 makes 4 characters of 3 bytes: around 3/4 of the limit in payload bytes.
        for n in MAX_TOKEN_LEN * 3 / 4 - 100..MAX_TOKEN_LEN * 3 / 4 {
            let token = key.sign(format!(r#"{{"p":"{}"}}"#, "x".repeat(n)).as_bytes());
            if token.len() == MAX_TOKEN_LEN {
                assert!(key.verify(&token).is_ok(), "exactly the limit");
                at = true;
            } else if token.len() == MAX_TOKEN_LEN + 1 {
                assert_eq!(key.verify(&token), Err(TokenError::TooLong));
                over = true;
            }
        }
        assert!(at && over, "the fixtures reach both sides of the limit");
    }
}

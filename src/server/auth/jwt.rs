//! Server only: the ready [`Authorizer`]: signed access tokens (JWT, HS256 only) with the claims
//! `sub`, `exp` and `topics`, read from the `sse_access` cookie or `Authorization: Bearer`, never
//! from the query string. The secret never appears in `Debug` output or logs.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};

use super::hook::{AuthFuture, Authorizer, Denied, Grant, RequestParts};
use super::hs256::{json_object, Hs256, TokenError};
use crate::protocol::TopicPattern;

/// The cookie a browser's `EventSource` carries the access token in (HttpOnly, `SameSite=Lax`).
pub const ACCESS_COOKIE: &str = "sse_access";

/// Seconds a token is still taken after its `exp`, and before its `nbf`: none.
const LEEWAY_SECS: u64 = 0;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The subject (who reads).
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Topic patterns the subject may read (`/*` for a prefix).
    #[serde(default)]
    pub topics: Vec<String>,
}

/// The claims a token is checked for: [`AccessClaims`] and an optional `nbf` (unix seconds, like
/// `exp`). Any other claim is ignored; a claim named twice refuses the token.
#[derive(Deserialize)]
struct CheckedClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    topics: Vec<String>,
}

/// Why [`JwtAuthorizer::issue`] could not sign a token.
///
/// ```
/// use std::time::Duration;
/// use sse_status::server::{IssueError, JwtAuthorizer};
///
/// let tokens = JwtAuthorizer::new("a-secret-of-some-length");
/// assert!(tokens.issue("alice", &["users/alice"], Duration::from_secs(600)).is_ok());
/// match tokens.issue("alice", &[], Duration::MAX) {
///     Err(IssueError::TtlTooLong) => {} // no clock reaches that far: no `exp` can say it
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// `ttl` reaches past what the system clock can represent.
    #[error("the access token's lifetime is too long for the clock to represent")]
    TtlTooLong,
    /// The claims could not be written as JSON.
    #[error("the access token's claims could not be encoded: {0}")]
    Encode(String),
}

/// Why [`JwtAuthorizer::check`] refused a token (each becomes [`Denied::Invalid`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refused {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the access token's claims are not valid: {0}")]
    Claims(String),
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token has no subject")]
    NoSubject,
    #[error("the access token grants a bad topic: {0}")]
    BadTopic(String),
}

/// Checks access tokens signed HS256 with one secret and mints them. Refused: `alg: none` and
/// every other algorithm, a `typ` other than `JWT`, a token longer than 8 KiB, a missing or
/// non-numeric `exp`, an `exp` in the past or an `nbf` in the future (no leeway on either),
/// an empty `sub`, `topics` that is not an array of valid topic patterns. Header fields that
/// name a key (`kid`, `jku`, `x5u`, `jwk`) are ignored: the key is this secret, never fetched.
/// Cheap to share; `Debug` shows no secret.
#[derive(Clone)]
pub struct JwtAuthorizer {
    key: Hs256,
}

impl fmt::Debug for JwtAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthorizer")
            .field("algorithm", &"HS256")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl JwtAuthorizer {
    /// An authorizer for tokens signed with `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> JwtAuthorizer {
        JwtAuthorizer {
            key: Hs256::new(secret.as_ref()),
        }
    }

    /// Sign an access token for `sub`, valid for `ttl`, granting `topics` (an app's sign-in or
    /// refresh endpoint mints these, e.g. into the `sse_access` cookie).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sse_status::server::JwtAuthorizer;
    ///
    /// let tokens = JwtAuthorizer::new("a-secret-of-some-length");
    /// let token = tokens.issue("alice", &["users/alice", "docs/*"], Duration::from_secs(600))?;
    /// let grant = tokens.check(&token).expect("just issued");
    /// assert_eq!(grant.subject.as_deref(), Some("alice"));
    /// # Ok::<(), sse_status::server::IssueError>(())
    /// ```
    pub fn issue(&self, sub: &str, topics: &[&str], ttl: Duration) -> Result<String, IssueError> {
        let exp = SystemTime::now()
            .checked_add(ttl)
            .ok_or(IssueError::TtlTooLong)?
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = AccessClaims {
            sub: sub.to_owned(),
            exp,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        let payload =
            serde_json::to_vec(&claims).map_err(|err| IssueError::Encode(err.to_string()))?;
        Ok(self.key.sign(&payload))
    }

    /// Check a token: its grant, or why not.
    pub fn check(&self, token: &str) -> Result<Grant, Denied> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.check_at(token, now)
            .map_err(|refused| Denied::Invalid(refused.to_string()))
    }

    /// [`check`](Self::check) with the clock as an input (unix seconds).
    fn check_at(&self, token: &str, now: u64) -> Result<Grant, Refused> {
        let payload = self.key.verify(token)?;
        let claims: CheckedClaims = json_object(&payload).map_err(Refused::Claims)?;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(Refused::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(Refused::NotYetValid);
        }
        if claims.sub.is_empty() {
            return Err(Refused::NoSubject);
        }
        let topics = claims
            .topics
            .iter()
            .map(|t| TopicPattern::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| Refused::BadTopic(err.to_string()))?;
        Ok(Grant {
            subject: Some(claims.sub),
            topics,
            // Beyond what the clock can say: never (it is signed, so that is the issuer's call).
            expires_at: UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp)),
        })
    }
}

impl Authorizer for JwtAuthorizer {
    fn authorize<'a>(&'a self, parts: &'a RequestParts) -> AuthFuture<'a> {
        let result = match access_token(&parts.headers) {
            Some(token) => self.check(token),
            None => Err(Denied::NoCredentials),
        };
        Box::pin(std::future::ready(result))
    }
}

/// The access token of a request: `Authorization: Bearer` first (other clients), else the
/// `sse_access` cookie (browsers). Never the query string.
pub fn access_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    {
        return Some(token);
    }
    cookie(headers, ACCESS_COOKIE)
}

/// The value of cookie `name` in a request's `Cookie` headers (quotes around it dropped);
/// `None` when absent or empty.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive and
/// may be followed by any number of spaces (RFC 9110 §11.1, §11.4); whitespace around the whole
/// value is not part of the token (hyper trims it already). Anything else — another scheme, no
/// token, a token with spaces inside — is not a bearer token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    (!token.is_empty() && !token.contains([' ', '\t'])).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "test-secret-of-some-length";

    fn b64(s: &str) -> String {
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn tokens_are_checked_strictly() {
        let auth = JwtAuthorizer::new(SECRET);
        let token = auth
            .issue(
                "alice",
                &["users/alice", "public", "docs/*"],
                Duration::from_secs(60),
            )
            .unwrap();
        let grant = auth.check(&token).unwrap();
        assert_eq!(grant.subject.as_deref(), Some("alice"));
        assert_eq!(grant.topics.len(), 3);
        assert!(grant.expires_at.unwrap() > SystemTime::now());

        let other = JwtAuthorizer::new("another-secret");
        assert!(
            matches!(other.check(&token), Err(Denied::Invalid(_))),
            "wrong secret"
        );
        let mut chars: Vec<char> = token.chars().collect();
        let at = chars.len() - 10;
        chars[at] = if chars[at] == 'x' { 'y' } else { 'x' };
        let forged: String = chars.into_iter().collect();
        assert!(
            matches!(auth.check(&forged), Err(Denied::Invalid(_))),
            "forged"
        );
        // A minute past its `exp` (no leeway; minted, not waited for: `exp` has whole seconds,
        // so a token issued to expire now is still good within its second).
        let a_minute_ago = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 60;
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &AccessClaims {
                sub: "alice".into(),
                exp: a_minute_ago,
                topics: vec![],
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(
            matches!(auth.check(&expired), Err(Denied::Invalid(_))),
            "expired"
        );
        // alg: none, unsigned
        let claims = format!(
            r#"{{"sub":"alice","exp":{},"topics":["users/bob"]}}"#,
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 60
        );
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
        assert!(
            matches!(auth.check(&none), Err(Denied::Invalid(_))),
            "alg none"
        );
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &AccessClaims {
                sub: "alice".into(),
                exp: u64::MAX / 2,
                topics: vec![],
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(
            matches!(auth.check(&hs512), Err(Denied::Invalid(_))),
            "HS512"
        );
        let far = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &AccessClaims {
                sub: "alice".into(),
                exp: u64::MAX,
                topics: vec![],
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(auth.check(&far).is_ok(), "a far expiry does not overflow");
        let bad_topic = auth
            .issue("alice", &["a b"], Duration::from_secs(60))
            .unwrap();
        assert!(matches!(auth.check(&bad_topic), Err(Denied::Invalid(_))));
        assert!(!format!("{auth:?}").contains(SECRET));
    }

    #[test]
    fn the_token_comes_from_bearer_or_the_cookie_never_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(access_token(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("lang=en; sse_access=abc.def.ghi"),
        );
        assert_eq!(access_token(&h), Some("abc.def.ghi"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer x.y.z"),
        );
        assert_eq!(access_token(&h), Some("x.y.z"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("sse_accessx=1; xsse_access=2"),
        );
        assert_eq!(access_token(&h), None);
        assert_eq!(bearer_token("bearer   t"), Some("t"));
        assert_eq!(bearer_token("Basic t"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }
    /// A fixed clock (unix seconds) for the rules that are about time.
    const NOW: u64 = 1_900_000_000;

    /// `claims` signed HS256 with `SECRET` under the header `issue` writes.
    fn signed(claims: &serde_json::Value) -> String {
        Hs256::new(SECRET.as_bytes()).sign(claims.to_string().as_bytes())
    }

    /// `claims` signed HS256 with `SECRET`, whatever `header` says.
    fn signed_with_header(header: &serde_json::Value, claims: &serde_json::Value) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key(), Algorithm::HS256).unwrap();
        format!("{message}.{signature}")
    }

    fn key() -> EncodingKey {
        EncodingKey::from_secret(SECRET.as_bytes())
    }

    fn check(token: &str, now: u64) -> Result<Grant, Refused> {
        JwtAuthorizer::new(SECRET).check_at(token, now)
    }

    fn claims_refused(token: &str, now: u64, mentioning: &str) {
        match check(token, now) {
            Err(Refused::Claims(why)) => assert!(why.contains(mentioning), "{why}"),
            other => panic!("{mentioning}: {other:?}"),
        }
    }

    #[test]
    fn issue_then_check_round_trips_and_speaks_plain_jwt() {
        let auth = JwtAuthorizer::new(SECRET);
        let token = auth
            .issue(
                "alice",
                &["users/alice", "docs/*"],
                Duration::from_secs(600),
            )
            .unwrap();
        let grant = auth.check(&token).unwrap();
        assert_eq!(grant.subject.as_deref(), Some("alice"));
        let want: Vec<TopicPattern> = ["users/alice", "docs/*"]
            .iter()
            .map(|t| TopicPattern::parse(t).unwrap())
            .collect();
        assert_eq!(grant.topics, want);
        // Another implementation reads our tokens, and writes the very same bytes for the
        // same claims: tokens minted before this implementation still check, and vice versa.
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        let theirs = jsonwebtoken::decode::<AccessClaims>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(theirs.sub, "alice");
        assert_eq!(theirs.topics, ["users/alice", "docs/*"]);
        assert_eq!(
            grant.expires_at,
            UNIX_EPOCH.checked_add(Duration::from_secs(theirs.exp))
        );
        let again = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &theirs, &key()).unwrap();
        assert_eq!(again, token);
    }

    #[test]
    fn a_lifetime_beyond_the_clock_is_an_issue_error() {
        let auth = JwtAuthorizer::new(SECRET);
        assert_eq!(
            auth.issue("alice", &[], Duration::MAX),
            Err(IssueError::TtlTooLong)
        );
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let token = JwtAuthorizer::new("another-secret")
            .issue("alice", &[], Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            JwtAuthorizer::new(SECRET).check(&token),
            Err(Denied::Invalid(
                Refused::Token(TokenError::BadSignature).to_string()
            ))
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = json!({"sub": "alice", "exp": NOW + 60, "topics": ["users/bob"]});
        // Unsigned, as `none` means.
        let unsigned = {
            let signed = signed_with_header(&json!({"alg": "none"}), &claims);
            let end = signed.rfind('.').unwrap();
            signed[..=end].to_owned()
        };
        assert_eq!(
            check(&unsigned, NOW),
            Err(Refused::Token(TokenError::BadSignature))
        );
        for alg in ["none", "HS512", "HS384", "RS256", "ES256"] {
            // HMAC-SHA256 over the token with our secret: only the header's word is wrong.
            let token = signed_with_header(&json!({"alg": alg, "typ": "JWT"}), &claims);
            assert_eq!(
                check(&token, NOW),
                Err(Refused::Token(TokenError::Algorithm)),
                "{alg}"
            );
        }
        // A real HS512 token with our secret.
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key()).unwrap();
        assert_eq!(
            check(&hs512, NOW),
            Err(Refused::Token(TokenError::BadSignature))
        );
    }

    #[test]
    fn key_hints_in_the_header_are_ignored() {
        let claims = json!({"sub": "alice", "exp": NOW + 60});
        let header = json!({
            "alg": "HS256",
            "typ": "JWT",
            "kid": "someone-elses",
            "jku": "https://attacker.invalid/jwks.json",
        });
        let grant = check(&signed_with_header(&header, &claims), NOW).unwrap();
        assert_eq!(grant.subject.as_deref(), Some("alice"));
    }

    #[test]
    fn exp_is_required_and_numeric() {
        claims_refused(
            &signed(&json!({"sub": "alice"})),
            NOW,
            "missing field `exp`",
        );
        for exp in [
            json!((NOW + 60).to_string()),
            json!(null),
            json!(-1),
            json!(1.9e9),
            json!([NOW + 60]),
        ] {
            claims_refused(&signed(&json!({"sub": "alice", "exp": exp})), NOW, "");
        }
        let twice = format!(r#"{{"sub":"alice","exp":{},"exp":{}}}"#, NOW + 60, NOW + 60);
        let twice = Hs256::new(SECRET.as_bytes()).sign(twice.as_bytes());
        claims_refused(&twice, NOW, "duplicate field `exp`");
    }

    #[test]
    fn an_expired_token_is_refused_from_the_second_after_exp_plus_leeway() {
        let token = signed(&json!({"sub": "alice", "exp": NOW}));
        assert!(check(&token, NOW).is_ok(), "exp itself");
        assert!(check(&token, NOW + LEEWAY_SECS).is_ok(), "the leeway's end");
        assert_eq!(check(&token, NOW + LEEWAY_SECS + 1), Err(Refused::Expired));
        assert_eq!(check(&token, u64::MAX), Err(Refused::Expired));
        let far = signed(&json!({"sub": "alice", "exp": u64::MAX}));
        assert!(check(&far, NOW).is_ok(), "a far expiry does not overflow");
    }

    #[test]
    fn nbf_in_the_future_is_refused_in_the_past_taken() {
        let at =
            |nbf: serde_json::Value| signed(&json!({"sub": "alice", "exp": NOW + 60, "nbf": nbf}));
        assert_eq!(
            check(&at(json!(NOW + LEEWAY_SECS + 1)), NOW),
            Err(Refused::NotYetValid)
        );
        assert_eq!(check(&at(json!(u64::MAX)), NOW), Err(Refused::NotYetValid));
        assert!(
            check(&at(json!(NOW + LEEWAY_SECS)), NOW).is_ok(),
            "the leeway's end"
        );
        assert!(check(&at(json!(NOW)), NOW).is_ok(), "from now");
        assert!(check(&at(json!(NOW - 3600)), NOW).is_ok(), "past");
        assert!(check(&at(json!(null)), NOW).is_ok(), "null: absent");
        claims_refused(&at(json!(NOW.to_string())), NOW, "");
        claims_refused(&at(json!(-1)), NOW, "");
    }

    #[test]
    fn topics_must_be_an_array_of_topic_patterns() {
        let with = |topics: serde_json::Value| {
            signed(&json!({"sub": "alice", "exp": NOW + 60, "topics": topics}))
        };
        for topics in [
            json!("users/alice"),
            json!(null),
            json!({"users/alice": true}),
            json!([1]),
            json!([["users/alice"]]),
        ] {
            claims_refused(&with(topics.clone()), NOW, "");
        }
        assert!(matches!(
            check(&with(json!(["users/alice", "a b"])), NOW),
            Err(Refused::BadTopic(_))
        ));
        let none = check(&signed(&json!({"sub": "alice", "exp": NOW + 60})), NOW).unwrap();
        assert!(none.topics.is_empty(), "no topics claim: no topics");
    }

    #[test]
    fn the_subject_is_a_non_empty_string() {
        claims_refused(
            &signed(&json!({"exp": NOW + 60})),
            NOW,
            "missing field `sub`",
        );
        claims_refused(&signed(&json!({"sub": 42, "exp": NOW + 60})), NOW, "");
        assert_eq!(
            check(&signed(&json!({"sub": "", "exp": NOW + 60})), NOW),
            Err(Refused::NoSubject)
        );
    }

    #[test]
    fn malformed_and_oversized_tokens_are_denied_with_their_reason() {
        let auth = JwtAuthorizer::new(SECRET);
        let good = auth.issue("alice", &[], Duration::from_secs(60)).unwrap();
        let huge = format!("{good}{}", "A".repeat(8 * 1024));
        for (token, refused) in [
            ("not.a-token", TokenError::Malformed),
            ("%%%.%%%.%%%", TokenError::Malformed),
            (huge.as_str(), TokenError::TooLong),
        ] {
            assert_eq!(
                auth.check(token),
                Err(Denied::Invalid(Refused::Token(refused).to_string())),
                "{token:.40}"
            );
        }
    }
}

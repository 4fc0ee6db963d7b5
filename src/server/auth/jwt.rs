//! Server only: the ready [`Authorizer`]: signed access tokens (JWT, HS256 only) with the claims
//! `sub`, `exp` and `topics`, read from the `sse_access` cookie or `Authorization: Bearer`, never
//! from the query string. The secret never appears in `Debug` output or logs.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::hook::{AuthFuture, Authorizer, Denied, Grant, RequestParts};
use crate::protocol::TopicPattern;

/// The cookie a browser's `EventSource` carries the access token in (HttpOnly, `SameSite=Lax`).
pub const ACCESS_COOKIE: &str = "sse_access";

/// Longest token read from a request.
const MAX_TOKEN_LEN: usize = 8 * 1024;

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

/// Checks access tokens signed HS256 with one secret (`alg: none` and every other algorithm
/// are refused; no leeway on `exp`). Cheap to share; `Debug` shows no secret.
#[derive(Clone)]
pub struct JwtAuthorizer {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
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
        let secret = secret.as_ref();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtAuthorizer {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
        }
    }

    /// Sign an access token for `sub`, valid for `ttl`, granting `topics` (an app's sign-in or
    /// refresh endpoint mints these, e.g. into the `sse_access` cookie).
    pub fn issue(
        &self,
        sub: &str,
        topics: &[&str],
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let exp = SystemTime::now()
            .checked_add(ttl)
            .unwrap_or(SystemTime::now())
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = AccessClaims {
            sub: sub.to_owned(),
            exp,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Check a token: its grant, or why not.
    pub fn check(&self, token: &str) -> Result<Grant, Denied> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Denied::Invalid("the access token is too long".into()));
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| Denied::Invalid(format!("access token refused ({err})")))?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(Denied::Invalid("the access token has no subject".into()));
        }
        let topics = claims
            .topics
            .iter()
            .map(|t| TopicPattern::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                Denied::Invalid(format!("the access token grants a bad topic: {err}"))
            })?;
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
            &auth.encoding,
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
}

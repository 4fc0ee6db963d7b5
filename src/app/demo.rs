//! Server only (feature `app-server`): the dashboard's demo sign-in (`--demo-users`), off unless
//! set. Signing in as a demo user sets two HttpOnly `SameSite=Lax` cookies signed with the
//! `--auth-secret`: `sse_access`, the short-lived access token the stream is authorized with
//! (topics `users/<user>` and `public`), and `sse_demo_session`, a long-lived session the
//! refresh endpoint re-mints the access token from (what the hook's `refresh_url` calls after a
//! `reauth`). A small publish form targets one topic, so a reader sees whose events reach whom.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::app::access::PUBLIC_TOPIC;
use crate::server::auth::cookie;
use crate::server::error::ApiError;
use crate::server::{JwtAuthorizer, LiveHub, ACCESS_COOKIE};

/// The session cookie the refresh endpoint reads.
pub(crate) const SESSION_COOKIE: &str = "sse_demo_session";
/// How long a demo session lasts.
const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The demo's settings: its users, how long an access token lives, the signer.
#[derive(Clone, Debug)]
pub(crate) struct Demo {
    pub(crate) users: Vec<String>,
    pub(crate) token_ttl: Duration,
    pub(crate) tokens: JwtAuthorizer,
}

/// The topics a demo user is granted.
pub(crate) fn topics_of(user: &str) -> Vec<String> {
    vec![format!("users/{user}"), PUBLIC_TOPIC.to_owned()]
}

fn set_cookie(name: &str, value: &str, max_age: Duration) -> (header::HeaderName, HeaderValue) {
    let cookie = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    );
    (
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("")),
    )
}

impl Demo {
    /// The user a request's demo session names, if it is valid and still a demo user.
    pub(crate) fn session_user(&self, headers: &HeaderMap) -> Option<String> {
        let grant = self.tokens.check(cookie(headers, SESSION_COOKIE)?).ok()?;
        grant.subject.filter(|user| self.users.contains(user))
    }

    /// A fresh access token for `user`, as a cookie.
    fn access_cookie(&self, user: &str) -> Result<(header::HeaderName, HeaderValue), ApiError> {
        let topics = topics_of(user);
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let token = self
            .tokens
            .issue(user, &topics, self.token_ttl)
            .map_err(|err| ApiError::BadRequest {
                reason: format!("cannot sign a token: {err}"),
            })?;
        // The cookie outlives the token: an expired token is still sent, so the stream gets a
        // clear 401 (signed out) instead of silently turning anonymous.
        Ok(set_cookie(ACCESS_COOKIE, &token, SESSION_TTL))
    }

    /// `/demo/*`: sign-in, refresh, sign-out and the publish form's endpoint.
    pub(crate) fn router(&self, hub: &LiveHub) -> Router {
        Router::new()
            .route("/demo/sign-in", post(sign_in))
            .route("/demo/refresh", post(refresh))
            .route("/demo/sign-out", post(sign_out))
            .route("/demo/publish", post(publish))
            .with_state((self.clone(), hub.clone()))
    }
}

type DemoState = State<(Demo, LiveHub)>;

#[derive(Deserialize)]
struct SignIn {
    user: String,
}

async fn sign_in(State((demo, _)): DemoState, Json(body): Json<SignIn>) -> Response {
    if !demo.users.contains(&body.user) {
        return ApiError::BadRequest {
            reason: format!("{:?} is not a demo user", body.user),
        }
        .into_response();
    }
    let session = match demo.tokens.issue(&body.user, &[], SESSION_TTL) {
        Ok(token) => set_cookie(SESSION_COOKIE, &token, SESSION_TTL),
        Err(err) => {
            return ApiError::BadRequest {
                reason: format!("cannot sign a token: {err}"),
            }
            .into_response()
        }
    };
    match demo.access_cookie(&body.user) {
        // Two `Set-Cookie` headers: appended, not replaced.
        Ok(access) => (StatusCode::NO_CONTENT, AppendHeaders([session, access])).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn refresh(State((demo, _)): DemoState, headers: HeaderMap) -> Response {
    let Some(user) = demo.session_user(&headers) else {
        return ApiError::StreamUnauthorized {
            reason: "no demo session: sign in again".into(),
        }
        .into_response();
    };
    match demo.access_cookie(&user) {
        Ok(access) => (StatusCode::NO_CONTENT, [access]).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn sign_out() -> Response {
    (
        StatusCode::NO_CONTENT,
        AppendHeaders([
            set_cookie(SESSION_COOKIE, "", Duration::ZERO),
            set_cookie(ACCESS_COOKIE, "", Duration::ZERO),
        ]),
    )
        .into_response()
}

#[derive(Deserialize)]
struct DemoPublish {
    topic: String,
    text: String,
}

async fn publish(
    State((demo, hub)): DemoState,
    headers: HeaderMap,
    Json(body): Json<DemoPublish>,
) -> Response {
    let Some(user) = demo.session_user(&headers) else {
        return ApiError::StreamUnauthorized {
            reason: "sign in to publish".into(),
        }
        .into_response();
    };
    let allowed =
        body.topic == PUBLIC_TOPIC || demo.users.iter().any(|u| topics_of(u)[0] == body.topic);
    if !allowed {
        return ApiError::BadRequest {
            reason: format!("{:?} is not a demo topic", body.topic),
        }
        .into_response();
    }
    let data = serde_json::json!({ "from": user, "topic": body.topic, "text": body.text });
    match hub.publish_to(&[body.topic.as_str()], "demo", &data).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(serde_json::json!({ "id": id }))).into_response(),
        Err(err) => ApiError::BadRequest {
            reason: err.to_string(),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sse_demo_session=tok; sse_demo_session_x=no"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn a_demo_user_reads_their_own_topic_and_public() {
        assert_eq!(topics_of("alice"), ["users/alice", "public"]);
    }
}

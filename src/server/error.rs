//! Server only: the HTTP API's errors, each with its status and a JSON body
//! `{"error": "<code>", "message": "<sentence>"}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every error an API route can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The stream limit is reached.
    #[error("the server holds its maximum of {max} streams; retry shortly")]
    TooManyConnections {
        /// The configured limit.
        max: usize,
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The server is shutting down.
    #[error("the server is shutting down; reconnect to its successor shortly")]
    Draining {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The event log (Redis) cannot be reached: nothing was stored.
    #[error(
        "the event log is unreachable, so the event was not stored; retry shortly \
         (streams stay open and get every stored event once the log is back)"
    )]
    StoreUnavailable {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// No publish token is configured, so publishing is off.
    #[error(
        "publishing is disabled on this server: start it with --publish-token <token> \
         (or SSE_PUBLISH_TOKEN) to enable POST /api/publish"
    )]
    PublishDisabled,
    /// Missing or wrong bearer token.
    #[error("missing or wrong token: send 'Authorization: Bearer <token>'")]
    Unauthorized,
    /// The body is over the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not the expected JSON.
    #[error("invalid JSON body: {reason}")]
    BadJson {
        /// The parser's reason.
        reason: String,
    },
    /// The event name is not allowed.
    #[error("invalid event name: {reason}")]
    BadEventName {
        /// What is wrong with it.
        reason: String,
    },
    /// No such API route (this repo's app answers it under `/api/`).
    #[cfg_attr(not(feature = "app-server"), allow(dead_code))]
    #[error("no API route {path}")]
    NotFound {
        /// The requested path.
        path: String,
    },
    /// A stream request without valid credentials (none while asking for topics, or forged,
    /// expired, wrongly signed).
    #[error(
        "no valid access credentials ({reason}): sign in again (the sse_access cookie or \
         'Authorization: Bearer <token>')"
    )]
    StreamUnauthorized {
        /// Why the credentials were refused.
        reason: String,
    },
    /// A requested topic is outside the stream's grant.
    #[error("your access does not include the topic {topic}")]
    ForbiddenTopic {
        /// The first requested topic (pattern) outside the grant.
        topic: String,
    },
    /// A topic, a topic list or a subject is not acceptable.
    #[error("invalid topics: {reason}")]
    BadTopic {
        /// What is wrong.
        reason: String,
    },
    /// The request is not one this server can answer (bad target, framing or query).
    #[error("bad request: {reason}")]
    BadRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The request head or body did not arrive in time.
    #[error("the request did not arrive within {timeout_ms} ms")]
    RequestTimeout {
        /// The deadline that passed.
        timeout_ms: u64,
    },
    /// The request head is over the limit.
    #[error("the request head is larger than {limit} bytes")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Every socket the process may hold is in use.
    #[error("the server holds its maximum of {max} connections; retry shortly")]
    TooManySockets {
        /// The configured socket cap.
        max: usize,
        /// Suggested wait.
        retry_after: Duration,
    },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
}

impl ApiError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::TooManyConnections { .. } => "too_many_connections",
            ApiError::Draining { .. } => "draining",
            ApiError::StoreUnavailable { .. } => "store_unavailable",
            ApiError::PublishDisabled => "publish_disabled",
            ApiError::Unauthorized | ApiError::StreamUnauthorized { .. } => "unauthorized",
            ApiError::ForbiddenTopic { .. } => "forbidden_topic",
            ApiError::BadTopic { .. } => "bad_topic",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BadJson { .. } => "bad_json",
            ApiError::BadEventName { .. } => "bad_event_name",
            ApiError::NotFound { .. } => "not_found",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::TooManySockets { .. } => "too_many_sockets",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::TooManyConnections { .. }
            | ApiError::Draining { .. }
            | ApiError::TooManySockets { .. }
            | ApiError::StoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PublishDisabled | ApiError::ForbiddenTopic { .. } => StatusCode::FORBIDDEN,
            ApiError::Unauthorized | ApiError::StreamUnauthorized { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadJson { .. }
            | ApiError::BadEventName { .. }
            | ApiError::BadTopic { .. }
            | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::TooManyConnections { retry_after, .. }
            | ApiError::TooManySockets { retry_after, .. }
            | ApiError::Draining { retry_after }
            | ApiError::StoreUnavailable { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            topic: match self {
                ApiError::ForbiddenTopic { topic } => Some(topic),
                _ => None,
            },
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The whole HTTP/1.1 response, for answers written straight to a socket before (or
    /// instead of) hyper: same status, headers and JSON body as [`IntoResponse`], and
    /// `connection: close` (the connection ends after it).
    pub fn to_http1_bytes(&self) -> Vec<u8> {
        let body = self.body();
        let status = self.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
        if let Some(wait) = self.retry_after() {
            out.push_str(&format!("retry-after: {}\r\n", wait.as_secs().max(1)));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }
}

impl From<crate::protocol::ResumeError> for ApiError {
    fn from(err: crate::protocol::ResumeError) -> Self {
        ApiError::BadRequest {
            reason: err.to_string(),
        }
    }
}

impl From<crate::protocol::TopicError> for ApiError {
    fn from(err: crate::protocol::TopicError) -> Self {
        ApiError::BadTopic {
            reason: err.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body(),
        )
            .into_response();
        if matches!(
            self,
            ApiError::Unauthorized | ApiError::StreamUnauthorized { .. }
        ) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sse-status\""),
            );
        }
        if let Some(wait) = self.retry_after() {
            let secs = wait.as_secs().max(1);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).unwrap_or(HeaderValue::from_static("1")),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_contract() {
        let cases = [
            (ApiError::PublishDisabled, 403, "publish_disabled"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (
                ApiError::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (ApiError::BadJson { reason: "x".into() }, 400, "bad_json"),
            (
                ApiError::BadEventName { reason: "x".into() },
                400,
                "bad_event_name",
            ),
            (
                ApiError::NotFound {
                    path: "/api/x".into(),
                },
                404,
                "not_found",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.code(), code);
        }
        assert!(ApiError::PublishDisabled
            .to_string()
            .contains("--publish-token"));
    }

    #[test]
    fn too_many_connections_is_503_with_retry_after_and_json() {
        let response = ApiError::TooManyConnections {
            max: 3,
            retry_after: Duration::from_secs(2),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn raw_answers_match_the_axum_ones() {
        let err = ApiError::TooManySockets {
            max: 7,
            retry_after: Duration::from_secs(1),
        };
        let raw = String::from_utf8(err.to_http1_bytes()).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "too_many_sockets");
        assert!(json["message"].as_str().unwrap().contains("7 connections"));
        let raw = ApiError::ForbiddenTopic {
            topic: "users/bob".into(),
        }
        .to_http1_bytes();
        let body = String::from_utf8(raw).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(body.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert!(body.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert_eq!(
            (json["error"].as_str(), json["topic"].as_str()),
            (Some("forbidden_topic"), Some("users/bob"))
        );
        let raw = ApiError::HeadersTooLarge { limit: 16 }.to_http1_bytes();
        assert!(raw.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let raw = ApiError::RequestTimeout { timeout_ms: 5 }.to_http1_bytes();
        assert!(raw.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    }
}

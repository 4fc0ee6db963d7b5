//! Server only: the HTTP API's errors, each with its status and a JSON body
//! `{"error": "<code>", "message": "<sentence>"}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
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
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl ApiError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::TooManyConnections { .. } => "too_many_connections",
            ApiError::Draining { .. } => "draining",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::TooManyConnections { .. } | ApiError::Draining { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::TooManyConnections { retry_after, .. }
            | ApiError::Draining { retry_after } => Some(*retry_after),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
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
}

//! Server only: `POST /api/publish` — authenticated, validated publishing of application events.

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::server::auth::bearer_token;
use crate::server::error::ApiError;
use crate::server::stream::state::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest event name.
/// How long a publisher should wait after a 503 because the event log is unreachable.
const STORE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The SSE `event:` name.
    pub event: String,
    /// Any JSON value; sent as the event's data.
    pub data: serde_json::Value,
    /// The topics it is published to (1–64); absent: a broadcast to every stream.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
}

/// The answer to a successful publish.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishResponse {
    /// The id the event got (what `Last-Event-ID` will carry).
    pub id: String,
    /// The event name.
    pub event: String,
}

/// Parse and validate a request body.
pub fn parse_body(bytes: &[u8]) -> Result<PublishRequest, ApiError> {
    let request: PublishRequest = serde_json::from_slice(bytes).map_err(|e| ApiError::BadJson {
        reason: e.to_string(),
    })?;
    crate::protocol::validate_event_name(&request.event).map_err(|err| ApiError::BadEventName {
        reason: err.to_string(),
    })?;
    if let Some(topics) = &request.topics {
        crate::protocol::validate_topics(topics)?;
    }
    Ok(request)
}

/// Check the publish token (`Authorization: Bearer`, compared in constant time): what every
/// publisher route (`/api/publish`, `/api/revoke`, `/api/presence`) requires.
pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.publish_token.as_deref() else {
        return Err(ApiError::PublishDisabled);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(ApiError::Unauthorized)?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Read the whole body: refused at once when its declared length is over the limit, and
/// within the body timeout (a client that declares a body and trickles or withholds it gets 408,
/// instead of holding the request open).
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let timeout = state.config.body_timeout();
    let timed_out = ApiError::RequestTimeout {
        timeout_ms: state.config.body_timeout_ms,
    };
    match tokio::time::timeout(timeout, to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => {
            let over_limit = std::error::Error::source(&err)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
                || err.to_string().contains("length limit");
            Err(if over_limit { too_large } else { timed_out })
        }
        Err(_) => Err(timed_out),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<PublishResponse, ApiError> {
    authorize(state, headers)?;
    let bytes = read_body(state, headers, body).await?;
    let request = parse_body(&bytes)?;
    let topics = match &request.topics {
        Some(topics) => crate::protocol::validate_topics(topics)?,
        None => Vec::new(),
    };
    let id = append(state, &request.event, request.data.to_string(), &topics).await?;
    Ok(PublishResponse {
        id,
        event: request.event,
    })
}

/// Publish an already validated event name with its JSON `data` to validated `topics` (empty:
/// a broadcast): what `POST /api/publish` and [`LiveHub::publish`](crate::server::live::LiveHub::publish)
/// share. Returns the event's id once the log has stored it (with Redis: after `XADD`
/// succeeded).
pub(crate) async fn append(
    state: &AppState,
    event: &str,
    data: String,
    topics: &[String],
) -> Result<String, ApiError> {
    if data.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let id = state
        .log
        .append(event.to_owned(), data, topics)
        .await
        .map_err(|err| {
            tracing::warn!(%err, "publish refused: the event log is unreachable");
            ApiError::StoreUnavailable {
                retry_after: STORE_RETRY_AFTER,
            }
        })?;
    state.metrics.events_published.inc();
    tracing::debug!(%id, %event, topics = topics.len(), "published");
    Ok(id)
}

/// `POST /api/publish`: 202 with the event's id, or a JSON error.
pub async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PublishResponse>), ApiError> {
    match handle(&state, &headers, body).await {
        Ok(response) => Ok((StatusCode::ACCEPTED, Json(response))),
        Err(err) => {
            state
                .metrics
                .publish_errors
                .with_label_values(&[err.status().as_str()])
                .inc();
            tracing::info!(error = err.code(), "publish refused: {err}");
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let cases = [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER   abc", Some("abc")),
            ("  Bearer abc  ", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearer a b", None),
            ("Basic abc", None),
            ("Bearerabc", None),
            ("Token abc", None),
        ];
        for (value, want) in cases {
            assert_eq!(bearer_token(value), want, "{value:?}");
        }
    }

    #[test]
    fn body_parsing_gives_the_parsers_reason() {
        let err = parse_body(b"{\"event\": \"x\"").unwrap_err();
        assert!(matches!(err, ApiError::BadJson { .. }));
        assert!(err.to_string().contains("EOF"), "{err}");
        let err = parse_body(b"{\"event\": \"x\"}").unwrap_err();
        assert!(err.to_string().contains("missing field `data`"), "{err}");
        let err = parse_body(b"{\"event\": \"x\", \"data\": 1, \"extra\": 2}").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let ok = parse_body(br#"{"event":"update","data":{"n":[1,2]}}"#).unwrap();
        assert_eq!(ok.data.to_string(), r#"{"n":[1,2]}"#);
        assert_eq!(ok.topics, None);
        let ok = parse_body(br#"{"event":"update","data":1,"topics":["users/42"]}"#).unwrap();
        assert_eq!(ok.topics, Some(vec!["users/42".to_owned()]));
        for bad in [
            r#"{"event":"x","data":1,"topics":[]}"#,
            r#"{"event":"x","data":1,"topics":["a\nb"]}"#,
            r#"{"event":"x","data":1,"topics":["users/*"]}"#,
        ] {
            let err = parse_body(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, ApiError::BadTopic { .. }), "{bad}: {err}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let body = serde_json::json!({"event": "x", "data": 1, "topics": many}).to_string();
        assert!(matches!(
            parse_body(body.as_bytes()),
            Err(ApiError::BadTopic { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn the_body_parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_body(&bytes);
        }

        #[test]
        fn json_shaped_bodies_never_panic(event in proptest::prelude::any::<String>(), data in proptest::prelude::any::<String>()) {
            let body = serde_json::json!({ "event": event, "data": data }).to_string();
            let _ = parse_body(body.as_bytes());
        }
    }
}

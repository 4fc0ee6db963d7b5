//! Server only: the publisher's access controls — `POST /api/revoke` (end every stream of a
//! subject, on every instance) and `GET /api/presence?topic=` (how many streams a topic
//! reaches, across the fleet). Both take the publish token.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::server::api::publish::{authorize, MAX_BODY_BYTES};
use crate::server::error::ApiError;
use crate::server::stream::state::AppState;

/// How long a caller should wait after a 503 because the event log is unreachable.
const STORE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest subject accepted.
pub const MAX_SUBJECT_LEN: usize = 256;

/// The body of `POST /api/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    subject: String,
}

/// The answer to `POST /api/revoke`.
#[derive(Debug, Serialize)]
struct RevokeResponse {
    subject: String,
}

/// How many streams an event to a topic reaches right now: the answer of
/// `GET /api/presence?topic=` and [`LiveHub::presence`](crate::server::LiveHub::presence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The topic asked about.
    pub topic: String,
    /// Open streams subscribed to it (exactly, or by a prefix pattern), on every instance.
    pub subscribers: u64,
    /// Instances counted (1 with the embedded log).
    pub instances: u32,
}

/// A subject to revoke: 1–256 characters, no control characters.
pub(crate) fn check_subject(subject: &str) -> Result<(), ApiError> {
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || subject.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest {
            reason: "subject must be 1–256 characters without control characters".into(),
        });
    }
    Ok(())
}

/// End every stream of `subject`: here at once, and on every instance of a Redis fleet.
pub(crate) async fn revoke_subject(state: &AppState, subject: &str) -> Result<(), ApiError> {
    check_subject(subject)?;
    tracing::info!(%subject, "revoking every stream of a subject");
    state.log.revoke(subject).await.map_err(|err| {
        tracing::warn!(%err, "revocation not sent to the fleet: the event log is unreachable");
        ApiError::StoreUnavailable {
            retry_after: STORE_RETRY_AFTER,
        }
    })
}

/// Count the streams an event to `topic` reaches.
pub(crate) async fn count(state: &AppState, topic: &str) -> Result<Presence, ApiError> {
    crate::protocol::validate_topic(topic)?;
    let (subscribers, instances) = state.log.presence(topic).await.map_err(|err| {
        tracing::warn!(%err, "presence not counted: the event log is unreachable");
        ApiError::StoreUnavailable {
            retry_after: STORE_RETRY_AFTER,
        }
    })?;
    Ok(Presence {
        topic: topic.to_owned(),
        subscribers,
        instances,
    })
}

/// `POST /api/revoke {"subject": "..."}`: 202 once every instance was told.
pub async fn revoke(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (parts, body) = request.into_parts();
    authorize(&state, &parts.headers)?;
    let bytes = tokio::time::timeout(state.config.body_timeout(), to_bytes(body, MAX_BODY_BYTES))
        .await
        .map_err(|_| ApiError::RequestTimeout {
            timeout_ms: state.config.body_timeout_ms,
        })?
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    let request: RevokeRequest = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadJson {
        reason: e.to_string(),
    })?;
    revoke_subject(&state, &request.subject).await?;
    let answer = RevokeResponse {
        subject: request.subject,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(answer).unwrap_or_default()),
    ))
}

/// `GET /api/presence?topic=T`: `{topic, subscribers, instances}`.
pub async fn presence(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Presence>, ApiError> {
    let (parts, _) = request.into_parts();
    authorize(&state, &parts.headers)?;
    let mut topics = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == crate::protocol::TOPIC_PARAM)
        .map(|(_, v)| v.into_owned());
    let (Some(topic), None) = (topics.next(), topics.next()) else {
        return Err(ApiError::BadTopic {
            reason: "give exactly one ?topic=".into(),
        });
    };
    Ok(Json(count(&state, &topic).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_bounded() {
        assert!(check_subject("alice").is_ok());
        for bad in ["", "a\nb", "nul\0", &"x".repeat(257)] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
    }
}

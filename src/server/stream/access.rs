//! Server only: what one stream may read. A stream request is admitted here, on every path
//! (axum and the direct writer): its `?topic=` list is checked, the hub's [`Authorizer`](crate::server::auth::Authorizer) decides,
//! and the topics must lie inside the grant (plus the embedder's public topics). The result is
//! an [`Access`] the stream's feed filters by, live and in replay.

use std::time::SystemTime;

use crate::protocol::{topics_from_query, TopicPattern};
use crate::server::auth::{Denied, Grant, RequestParts};
use crate::server::stream::error::StreamError;
use crate::server::stream::ring::Frame;
use crate::server::stream::state::AppState;

/// What one stream reads: its subject, the topics it subscribed to (all inside its grant) and
/// when its grant ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Who reads (`None`: anonymous).
    pub subject: Option<String>,
    /// Subscribed patterns, each covered by the grant.
    pub topics: Vec<TopicPattern>,
    /// When the grant ends (the stream then says `reauth` and ends).
    pub expires_at: Option<SystemTime>,
}

impl Access {
    /// Whether this stream gets `frame`: broadcasts always, a topic-targeted event only if one
    /// of its topics matches a subscription.
    pub fn sees(&self, frame: &Frame) -> bool {
        match &frame.topics {
            None => true,
            Some(topics) => topics
                .iter()
                .any(|t| self.topics.iter().any(|p| p.matches(t))),
        }
    }
}

/// Admit a stream request: 400 for a bad `?topic=` list, 401 without valid credentials (none
/// at all is fine for a stream that asks for no topics: it gets the broadcasts), 403
/// `forbidden_topic` for a topic outside the grant.
pub async fn admit(state: &AppState, parts: &RequestParts) -> Result<Access, StreamError> {
    let admitted = decide(state, parts).await;
    if let Err(err) = &admitted {
        state
            .metrics
            .streams_denied
            .with_label_values(&[err.code()])
            .inc();
        tracing::debug!(error = err.code(), "stream refused: {err}");
    }
    admitted
}

async fn decide(state: &AppState, parts: &RequestParts) -> Result<Access, StreamError> {
    let requested = topics_from_query(parts.uri.query().unwrap_or(""))?;
    let grant = match state.auth.authorizer.authorize(parts).await {
        Ok(grant) => grant,
        Err(Denied::NoCredentials) if requested.is_empty() => Grant::anonymous(),
        Err(Denied::NoCredentials) => {
            return Err(StreamError::Unauthorized {
                reason: "no access token".into(),
            })
        }
        Err(Denied::Invalid(reason)) => return Err(StreamError::Unauthorized { reason }),
    };
    if grant.expires_at.is_some_and(|at| at <= SystemTime::now()) {
        return Err(StreamError::Unauthorized {
            reason: "the access grant has expired".into(),
        });
    }
    let public = &state.auth.public_topics;
    for topic in &requested {
        let allowed = grant
            .topics
            .iter()
            .chain(public.iter())
            .any(|g| g.covers(topic));
        if !allowed {
            return Err(StreamError::ForbiddenTopic {
                topic: topic.to_string(),
            });
        }
    }
    Ok(Access {
        subject: grant.subject,
        topics: requested,
        expires_at: grant.expires_at,
    })
}

//! Server only: why the stream core refuses a stream — its own error type, with no HTTP in it;
//! `api/` maps each to an HTTP answer.

use crate::protocol::TopicError;

/// Why a stream was not opened.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The `?topic=` list is not acceptable.
    #[error("invalid topics: {0}")]
    BadTopics(#[from] TopicError),
    /// No valid credentials (none while asking for topics, or forged, expired, wrongly signed).
    #[error("no valid access credentials ({reason})")]
    Unauthorized {
        /// Why the credentials were refused.
        reason: String,
    },
    /// A requested topic is outside the grant.
    #[error("the access does not include the topic {topic}")]
    ForbiddenTopic {
        /// The first requested topic (pattern) outside the grant.
        topic: String,
    },
    /// The hub is draining.
    #[error("the server is draining")]
    Draining,
    /// Every stream slot is taken.
    #[error("the stream cap ({max}) is reached")]
    TooManyStreams {
        /// The cap.
        max: usize,
    },
    /// The missed events would have to come from an event log that cannot be reached.
    #[error("the event log is unreachable")]
    StoreUnavailable,
}

impl StreamError {
    /// Stable machine-readable code (the API's `error` field and the metrics' reason).
    pub fn code(&self) -> &'static str {
        match self {
            StreamError::BadTopics(_) => "bad_topic",
            StreamError::Unauthorized { .. } => "unauthorized",
            StreamError::ForbiddenTopic { .. } => "forbidden_topic",
            StreamError::Draining => "draining",
            StreamError::TooManyStreams { .. } => "too_many_connections",
            StreamError::StoreUnavailable => "store_unavailable",
        }
    }

    /// The reason label of `sse_connections_rejected_total` (refused after admission checks).
    pub fn refusal(&self) -> &'static str {
        match self {
            StreamError::Draining => "draining",
            StreamError::StoreUnavailable => "store",
            _ => "limit",
        }
    }
}

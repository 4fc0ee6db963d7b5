//! Server only: the event log's one error — the store (Redis) did not answer.

/// The event log could not store or read events (Redis unreachable).
#[derive(Debug, thiserror::Error)]
#[error("the event log is unreachable: {0}")]
pub struct StoreError(pub String);

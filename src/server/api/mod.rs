//! Server only: the HTTP API's handlers — the `/events` stream through axum, publishing, and the
//! operators' endpoints (health, readiness, metrics).

pub(crate) mod control;
pub(crate) mod events;
pub(crate) mod ops;
pub(crate) mod publish;

//! Server only: the stream core — the one log (a ring read by cursors), the hub around it
//! (topics, admission, the signals every stream reads), the fleet view, the event log behind it
//! (embedded or Redis), one feed per stream, the state every handler shares, metrics, and the
//! stream/socket budget. Its errors are its own; `api/` makes them HTTP answers.

pub(crate) mod access;
pub(crate) mod error;
pub(crate) mod feed;
pub(crate) mod fleet;
// Parts of the hub, the log seam and the metrics are driven only by the Redis log: unused in a
// build without the `redis` feature.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod hub;
pub(crate) mod limits;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod log;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod metrics;
pub(crate) mod ratelog;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod ring;
pub(crate) mod state;
pub(crate) mod topics;

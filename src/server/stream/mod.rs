//! Server only: the stream core — the fan-out hub, the event log behind it (embedded or Redis),
//! one feed per stream, the state every handler shares, metrics, and the stream/socket budget.

pub(crate) mod access;
// Parts of the fan-out, the log seam and the metrics are driven only by the Redis log: unused in
// a build without the `redis` feature.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod fanout;
pub(crate) mod feed;
pub(crate) mod limits;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod log;
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod metrics;
pub(crate) mod ratelog;
pub(crate) mod state;

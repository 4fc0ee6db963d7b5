//! Server only (ssr): configuration, shared state, the `/events` stream, health endpoints,
//! routing, graceful shutdown and telemetry.

pub mod config;
mod conn;
pub mod error;
mod events;
mod fastpath;
pub mod feed;
mod head;
mod health;
pub mod hub;
pub mod limits;
pub mod listener;
mod live;
pub mod log;
pub mod metrics;
pub mod publish;
#[cfg(feature = "app")]
mod routes;
pub mod shutdown;
pub mod state;
pub mod telemetry;

pub use config::Config;
pub use live::{LiveHub, PublishError};
#[cfg(feature = "app")]
pub use routes::site_router;
pub use shutdown::serve;
pub use state::AppState;

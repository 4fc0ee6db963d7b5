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
pub mod log;
pub mod metrics;
pub mod publish;
mod routes;
pub mod shutdown;
pub mod state;
pub mod telemetry;

pub use config::Config;
pub use routes::router;
pub use shutdown::serve;
pub use state::AppState;

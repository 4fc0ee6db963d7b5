//! Server only (feature `ssr`): the library's server. [`LiveHub`] is what an app embeds: built
//! from a validated [`HubConfig`], it publishes from Rust, hands out axum routers, and shuts
//! down without being held by open streams; [`serve`] is an optional lean serving loop.
//!
//! Inside, four rooms that import [`protocol`](crate::protocol) and nothing above it:
//! - `stream`: the stream core — the ring (one log read by cursors) and the hub around it, the
//!   event log (embedded or Redis), each stream's feed, the shared state, metrics and the
//!   stream/socket budget;
//! - `api`: the HTTP API on top of it — `/events`, `/api/publish`, `/api/revoke`,
//!   `/api/presence`, health and metrics handlers;
//! - `auth`: who may read which topics — the [`Authorizer`] hook and the ready [`JwtAuthorizer`];
//! - `transport`: the optional serving loop — listener, request heads, the keep-alive loop and
//!   the writers that hold streams on their sockets.

mod api;
pub(crate) mod auth;
mod config;
pub(crate) mod error;
mod live;
mod stream;
mod transport;

pub use api::control::Presence;
pub use auth::{
    access_token, AccessClaims, AuthFuture, Authorizer, Denied, Grant, IssueError, JwtAuthorizer,
    NoAuthorizer, RequestParts, ACCESS_COOKIE,
};
pub use config::{ConfigError, HubConfig};
pub use live::{LiveHub, LiveHubBuilder, PublishError};
pub use stream::limits::raise_fd_limit;
pub use transport::gate::bind;
pub use transport::serve::{serve, shutdown_signal};

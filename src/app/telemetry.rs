//! Server only (feature `app-server`): this app's logging — the global `tracing` subscriber
//! (`RUST_LOG`, default `info`). The library never installs one; its users choose their own.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global `tracing` subscriber. Safe to call twice (the second call is a no-op).
pub(crate) fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}

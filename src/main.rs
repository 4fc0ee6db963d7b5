//! Server only: the `sse-status` binary — read config, start telemetry, serve until signalled.

use anyhow::Context;
use clap::Parser;
use sse_status::server::{self, AppState, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    server::telemetry::init();
    let mut leptos = leptos::config::get_configuration(None)
        .context("reading the Leptos site configuration (LEPTOS_* env or Cargo.toml)")?
        .leptos_options;
    leptos.site_addr = config.addr;
    let listener = server::listener::bind_with(config.addr, config.reuse_port)
        .with_context(|| format!("binding {}", config.addr))?;
    tracing::info!(
        addr = %config.addr,
        heartbeat_ms = config.heartbeat_ms,
        log = if config.redis_url.is_some() { "redis" } else { "embedded" },
        "listening on http://{}",
        config.addr
    );
    let state = AppState::new(config, leptos);
    server::serve(listener, state, server::shutdown::signal())
        .await
        .context("serving")
}

//! Server only: the `sse-status` binary — read config, start telemetry, serve until signalled.

use anyhow::Context;
use clap::Parser;
use sse_status::server::{self, Config, LiveHub};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    server::telemetry::init();
    // Every socket is a descriptor: take what the hard limit allows before sizing the caps.
    match server::limits::raise_fd_limit() {
        Ok((before, after)) if before != after => {
            tracing::info!(
                before,
                after,
                "raised the open-file limit to the hard limit"
            )
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "cannot raise the open-file limit"),
    }
    let mut leptos = leptos::config::get_configuration(None)
        .context("reading the Leptos site configuration (LEPTOS_* env or Cargo.toml)")?
        .leptos_options;
    leptos.site_addr = config.addr;
    let listener = server::listener::bind_with(config.addr, config.reuse_port)
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = config.addr;
    let hub = LiveHub::new(config);
    let app = server::site_router(&hub, leptos);
    let state = hub.state();
    tracing::info!(
        %addr,
        heartbeat_ms = state.config.heartbeat_ms,
        max_streams = state.budget.max_streams,
        max_sockets = state.budget.max_sockets,
        fd_limit = state.budget.fd_limit,
        log = if state.log.is_shared() { "redis" } else { "embedded" },
        "listening on http://{addr}"
    );
    server::serve(listener, hub.clone(), app, server::shutdown::signal())
        .await
        .context("serving")
}

//! Server only (feature `app-server`): `main`'s wiring — read the command line, start logging,
//! raise the open-file limit, build the hub and serve the site until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;

use crate::app::cli::Args;
use crate::app::routes::site_router_with;
use crate::server::{self, LiveHub};

/// The `sse-status` binary.
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    crate::app::telemetry::init();
    // Every socket is a descriptor: take what the hard limit allows before sizing the caps.
    match server::raise_fd_limit() {
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
    let config = args.hub_config().map_err(anyhow::Error::msg)?;
    let authorizer = args.authorizer().map_err(anyhow::Error::msg)?;
    let demo = args.demo(authorizer.as_ref()).map_err(anyhow::Error::msg)?;
    let mut leptos = leptos::config::get_configuration(None)
        .context("reading the Leptos site configuration (LEPTOS_* env or Cargo.toml)")?
        .leptos_options;
    leptos.site_addr = args.addr;
    let listener = server::bind(args.addr, args.reuse_port)
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = args.addr;
    let private_topics = authorizer.is_some();
    let mut builder = LiveHub::builder(config);
    if let Some(authorizer) = authorizer {
        builder = builder.authorizer(authorizer);
    }
    let hub = builder
        .build()
        .map_err(|err| anyhow::Error::msg(crate::app::cli::flag_error(&err)))?;
    let app = site_router_with(&hub, leptos, demo, !args.no_page_cache);
    let state = hub.state();
    tracing::info!(
        %addr,
        heartbeat_ms = state.config.heartbeat_ms,
        max_streams = state.budget.max_streams,
        max_sockets = state.budget.max_sockets,
        fd_limit = state.budget.fd_limit,
        log = if state.log.is_shared() { "redis" } else { "embedded" },
        topics = if private_topics { "access tokens" } else { "none granted" },
        "listening on http://{addr}"
    );
    if args.axum_serve {
        // For side-by-side benchmarks: the same router under plain `axum::serve`.
        let draining = hub.clone();
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            server::shutdown_signal().await;
            draining.shutdown().await;
        })
        .await
        .context("serving");
    }
    server::serve(listener, hub.clone(), app, server::shutdown_signal())
        .await
        .context("serving")
}

//! Server only: serving with a graceful, bounded shutdown. Open SSE streams would keep axum's
//! graceful shutdown waiting forever (axum #2673), so shutdown first drains and then ends every
//! stream through control frames on the hub, then waits at most `--shutdown-timeout-ms`.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use tokio::net::TcpListener;

use super::fastpath;
use super::listener::Peer;
use super::routes::router;
use super::state::AppState;

/// Serve `state` on `listener` until `signal` completes, then shut down within the configured
/// timeout. Returns when the server has stopped.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    signal: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    let timeout = state.config.shutdown_timeout();
    let heartbeat = tokio::spawn(
        state
            .hub
            .clone()
            .run_heartbeat(state.config.heartbeat(), token.clone()),
    );
    state.start_log();
    let listener = fastpath::route(listener, state.clone())?;
    let app = router(state.clone()).into_make_service_with_connect_info::<Peer>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(token.clone().cancelled_owned())
        .into_future();
    let mut server = tokio::spawn(server);

    tokio::select! {
        result = &mut server => {
            return result.map_err(std::io::Error::other)?;
        }
        () = signal => {}
    }

    tracing::info!(
        open_streams = state.hub.open_connections(),
        timeout_ms = timeout.as_millis() as u64,
        "shutting down: draining streams"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    // Every stream sends `draining` (with its own reconnect hint) and ends; give them up to half
    // the timeout to flush, then end whatever is left.
    state.start_draining();
    wait_for_streams(&state, tokio::time::Instant::now() + timeout / 2).await;
    state.close_streams();
    token.cancel();
    let _ = heartbeat.await;
    // Directly served streams end on the close frame; wait for them (bounded) as axum does for
    // its own connections.
    wait_for_streams(&state, deadline).await;
    match tokio::time::timeout_at(deadline, &mut server).await {
        Ok(result) => {
            tracing::info!("shut down cleanly");
            result.map_err(std::io::Error::other)?
        }
        Err(_) => {
            tracing::warn!(
                open_streams = state.hub.open_connections(),
                "shutdown timeout reached; exiting with connections still open"
            );
            server.abort();
            Ok(())
        }
    }
}

/// Wait until no stream is open, or until `until`.
async fn wait_for_streams(state: &AppState, until: tokio::time::Instant) {
    while state.hub.open_connections() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

//! Server only: serving with a graceful, bounded shutdown. Open SSE streams would keep a graceful
//! shutdown waiting forever (axum #2673), so shutdown first drains and then ends every stream
//! through control frames on the hub, stops accepting, and waits for the connection tasks (a
//! `TaskTracker`) at most `--shutdown-timeout-ms`.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use super::conn;
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
    let connections = TaskTracker::new();
    let mut accepting = tokio::spawn(conn::accept_loop(
        listener,
        state.clone(),
        router(state.clone()),
        connections.clone(),
    ));

    tokio::select! {
        result = &mut accepting => {
            // The accept loop only ends when the token is cancelled; anything else is a bug.
            return result.map_err(std::io::Error::other);
        }
        () = signal => {}
    }

    tracing::info!(
        open_streams = state.hub.open_connections(),
        open_sockets = state.sockets.open(),
        timeout_ms = timeout.as_millis() as u64,
        "shutting down: draining streams"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    // Every stream sends `draining` (with its own reconnect hint) and ends; give them up to half
    // the timeout to flush, then end whatever is left.
    state.start_draining();
    wait_for_streams(&state, tokio::time::Instant::now() + timeout / 2).await;
    state.close_streams();
    // Stop accepting; idle keep-alive connections close, requests in flight finish.
    token.cancel();
    let _ = heartbeat.await;
    let _ = accepting.await;
    connections.close();
    if tokio::time::timeout_at(deadline, connections.wait())
        .await
        .is_ok()
    {
        tracing::info!("shut down cleanly");
    } else {
        tracing::warn!(
            open_streams = state.hub.open_connections(),
            open_sockets = state.sockets.open(),
            "shutdown timeout reached; exiting with connections still open"
        );
    }
    Ok(())
}

/// Wait until no stream is open, or until `until`. Streams end on their own once they have
/// written `draining`; this only decides when to stop waiting for the slow ones.
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

//! Server only: serving with a graceful, bounded shutdown. Open SSE streams would keep a graceful
//! shutdown waiting forever (axum #2673), so shutdown first drains and then ends every stream
//! through control frames on the hub, stops accepting, and waits for the connection tasks (a
//! `TaskTracker`) at most `--shutdown-timeout-ms`. [`serve`] is the optional serving helper;
//! an app with its own `axum::serve` only needs [`LiveHub::shutdown`].

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::server::live::LiveHub;
use crate::server::transport::conn;
use crate::server::transport::writers::Writers;

/// The optional serving helper: serve `app` on `listener` with this crate's own HTTP/1.1
/// connection loop until `signal` completes, then shut down within the configured timeout.
/// Returns when the server has stopped.
///
/// What it adds over `axum::serve`: a stream is written straight to the socket (no HTTP stack,
/// no per-connection buffers: the lean path for many held streams), every request is under the
/// header, idle and body timeouts of the hub's [`HubConfig`](crate::server::config::HubConfig),
/// and open sockets are capped. Every request goes through `app` and its layers (usually a
/// router that contains [`LiveHub::router`]); a `GET` of the hub's
/// [`stream_path`](LiveHub::stream_path) does so without hyper, and when the hub's handler
/// opens a stream there, the stream is written directly. Nest the stream elsewhere with
/// [`LiveHubBuilder::mounted_at`](crate::server::LiveHubBuilder::mounted_at). Upgrades (WebSocket
/// routes) work as under `axum::serve`; handlers get axum's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    hub: LiveHub,
    app: Router,
    signal: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let state = hub.state().clone();
    let timeout = state.config.shutdown_timeout();
    let connections = TaskTracker::new();
    let writers = Writers::start(&state, &connections)?;
    let mut accepting = tokio::spawn(conn::accept_loop(
        listener,
        state.clone(),
        app,
        connections.clone(),
        writers,
    ));

    tokio::select! {
        result = &mut accepting => {
            // The accept loop only ends when the token is cancelled; anything else is a bug.
            return result.map_err(std::io::Error::other);
        }
        () = signal => {}
    }

    tracing::info!(
        open_streams = state.hub.open_streams(),
        open_sockets = state.sockets.open(),
        timeout_ms = timeout.as_millis() as u64,
        "shutting down: draining streams"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    // Every stream sends `draining` (with its own reconnect hint) and ends; streams still open
    // after half the timeout are ended. Then the token stops the accept loop and the heartbeat;
    // idle keep-alive connections close, requests in flight finish.
    hub.shutdown().await;
    let _ = accepting.await;
    connections.close();
    if tokio::time::timeout_at(deadline, connections.wait())
        .await
        .is_ok()
    {
        tracing::info!("shut down cleanly");
    } else {
        tracing::warn!(
            open_streams = state.hub.open_streams(),
            open_sockets = state.sockets.open(),
            "shutdown timeout reached; exiting with connections still open"
        );
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what docker, Kubernetes and systemd send to stop a process):
/// pass it to [`serve`], or await it in `axum::serve(..).with_graceful_shutdown(..)` before
/// [`LiveHub::shutdown`], so a restart says "restarting" to every page.
pub async fn shutdown_signal() {
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

//! Server only: the example's server — the app's own axum router with sse-status's stream
//! nested under `/live`, served by plain `axum::serve`.

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::{get, post};
    use axum::Router;
    use embed::app::shell;
    use leptos::prelude::*;
    use sse_status::server::{shutdown_signal, HubConfig, LiveHub};

    let options = get_configuration(None)
        .map_err(std::io::Error::other)?
        .leptos_options;
    let addr = options.site_addr;
    // Leptos renders spawn tasks: run them on tokio (`leptos_routes` would do this for a router
    // app; this one-page app renders `/` with `render_app_to_stream_with_context`).
    let _ = any_spawner::Executor::init_tokio();

    // The hub: heartbeat, event log and fan-out (the embedded log; `redis_url` for a fleet).
    let hub = LiveHub::new(HubConfig::default()).map_err(std::io::Error::other)?;
    // Server functions (and the render) find the hub in context.
    let context = {
        let hub = hub.clone();
        move || provide_context(hub.clone())
    };
    let render = leptos_axum::render_app_to_stream_with_context(context.clone(), {
        let options = options.clone();
        move || shell(options.clone())
    });
    let server_fns =
        move |req: Request<Body>| leptos_axum::handle_server_fns_with_context(context.clone(), req);

    let app = Router::new()
        .route("/", get(render))
        .route("/api/{*fn_name}", post(server_fns))
        // GET /live/events: the stream the page's hook opens; /live/healthz, /live/readyz and
        // /live/metrics for operators. (`hub.publish_router()` would add POST /live/api/publish
        // for publishers outside the process; this app publishes from a server function.)
        .nest("/live", hub.stream_router().merge(hub.ops_router()))
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    leptos::logging::log!("listening on http://{addr}");
    let stopping = hub.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // Ctrl-C, or SIGTERM (docker, Kubernetes, systemd): pages say "restarting".
            shutdown_signal().await;
            // Open streams would hold the graceful shutdown forever: end them first.
            stopping.shutdown().await;
        })
        .await
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser side starts in `embed::hydrate`.
}

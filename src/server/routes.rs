//! Server only: the router — API routes, the Leptos app, static files and the 404 page.

use axum::routing::{any, get, post};
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use super::state::AppState;
use super::{error, events, health, metrics, publish};
use crate::app::{not_found_shell, shell};

/// Every route of the server. Compression uses tower-http's default predicate, which skips
/// `text/event-stream` (a compressor would hold SSE frames in its buffer).
pub fn router(state: AppState) -> Router {
    // Leptos renders spawn tasks; run them on tokio (a second call is a harmless no-op).
    let _ = any_spawner::Executor::init_tokio();
    let options = state.leptos_options.clone();
    Router::new()
        .route("/events", get(events::stream))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/publish", post(publish::publish))
        .route("/api/{*rest}", any(error::api_not_found))
        .route(
            "/",
            get(leptos_axum::render_app_to_stream(move || {
                shell(options.clone())
            })),
        )
        // Static files (the site's pkg/ and assets), else the 404 page with status 404.
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            not_found_shell,
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

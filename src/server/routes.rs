//! Server only: the router — API routes, the Leptos app, static files and the 404 page.

use axum::routing::{any, get, post};
use axum::Router;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use super::state::AppState;
use super::{error, events, health, metrics, publish};
use crate::app::{shell, App};

/// Every route of the server. Compression uses tower-http's default predicate, which skips
/// `text/event-stream` (a compressor would hold SSE frames in its buffer).
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .route("/events", get(events::stream))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/publish", post(publish::publish))
        .route("/api/{*rest}", any(error::api_not_found))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

//! Server only: the router — API routes, the Leptos app, static files and the 404 page.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tower_http::classify::StatusInRangeAsFailures;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use super::error::{self, ApiError};
use super::state::AppState;
use super::{events, health, metrics, publish};
use crate::app::{not_found_shell, shell};

/// Requests whose target is not a path (authority-form `host:port`, `*`) get 400 here, before
/// any handler: the static-file fallback assumes a path. Our connection loop refuses them first;
/// this guard keeps the router safe when something else serves it.
async fn require_path(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with('/') || req.uri().path_and_query().is_none() {
        return ApiError::BadRequest {
            reason: "the request target must be a path such as /events".into(),
        }
        .into_response();
    }
    next.run(req).await
}

/// Every route of the server. Compression uses tower-http's default predicate, which skips
/// `text/event-stream` (a compressor would hold SSE frames in its buffer). Only 500–502 count as
/// failures in the request log: a 503 (full, draining) is a deliberate answer, counted in
/// `/metrics`, and under a flood an ERROR line per refusal would flood the log too.
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
        .layer(TraceLayer::new(
            StatusInRangeAsFailures::new(500..=502).into_make_classifier(),
        ))
        .layer(middleware::from_fn(require_path))
        .with_state(state)
}

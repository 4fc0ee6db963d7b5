//! Server only: the operators' endpoints — liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::server::stream::state::AppState;

/// `GET /healthz`: 200 while the process serves.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "server_id": state.hub.server_id() }))
}

/// `GET /readyz`: 200, or 503 while draining for shutdown or while the event log (Redis) is
/// unreachable (`store_unavailable`: pages and streams are still served, publishes are not).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
    } else if !state.hub.store_ok() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "store_unavailable" })),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "connections": state.hub.open_streams() })),
        )
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let open = state.hub.open_streams() as i64;
    state.metrics.connections_open.set(open);
    if !state.log.is_shared() {
        state.metrics.fleet_connections_open.set(open);
    }
    state.metrics.sockets_open.set(state.sockets.open() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

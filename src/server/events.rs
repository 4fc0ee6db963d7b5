//! Server only: `GET /events` through axum — used with `--no-fast-path` (A/B benchmarks) and when
//! the router is served by something else than our connection loop. Normally `conn.rs` sends
//! every `/events` request to the direct writer in `fastpath.rs`; both parse the request with
//! the same function and send exactly what [`feed`](super::feed) produces.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use futures::stream;

use super::error::ApiError;
use super::feed;
use super::listener::Peer;
use super::state::AppState;

/// `GET /events`.
pub async fn stream(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let resume = feed::resume_point(
        headers
            .get_all("last-event-id")
            .iter()
            .map(|v| v.as_bytes()),
        uri.query().unwrap_or(""),
    )?;
    let feed = feed::open(&state, peer, resume)?;
    let body = Body::from_stream(stream::unfold(feed, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((Ok::<_, Infallible>(bytes), feed))
    }));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}

//! Server only: `GET /events` through axum — for requests that arrive on a connection hyper
//! already serves (a reused keep-alive connection). New connections asking for `/events` take the
//! lean direct path in `fastpath.rs`; both send exactly what [`feed`](super::feed) produces.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::stream;

use super::error::ApiError;
use super::feed::{self, StreamQuery};
use super::listener::Peer;
use super::state::AppState;

/// `GET /events`.
pub async fn stream(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let header_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let resume = feed::resume_point(header_id, query.last_event_id.as_deref());
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

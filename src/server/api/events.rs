//! Server only: `GET /events` through axum — what an app gets when it mounts
//! [`LiveHub::router`](crate::server::live::LiveHub::router) in its own axum server (and what our own server
//! uses with `--no-fast-path`, for A/B benchmarks). Our connection loop (`conn.rs`) normally
//! sends `/events` to the direct writer in `fastpath.rs`; both parse the request with the same
//! function and send exactly what [`feed`](crate::server::stream::feed) produces.

use std::convert::Infallible;

use axum::body::Body;
use std::net::{Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Extensions, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use futures::stream;

use crate::server::error::ApiError;
use crate::server::stream::state::AppState;
use crate::server::stream::{access, feed};

/// The client's address for logs: axum's standard `ConnectInfo<SocketAddr>` (our serving loop
/// provides it, as does `into_make_service_with_connect_info::<SocketAddr>()`), or unknown
/// (`0.0.0.0:0`) when the embedding server provides none.
fn peer_of(extensions: &Extensions) -> SocketAddr {
    if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return *peer;
    }
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
}

/// The head of every stream response.
fn stream_headers() -> [(header::HeaderName, HeaderValue); 3] {
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
    ]
}

/// `GET /events` (and `HEAD /events`: the same checks and head, no stream opened): the hub's
/// access policy decides first (400 / 401 / 403), then the stream opens.
pub async fn stream(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, _body) = request.into_parts();
    let peer = peer_of(&parts.extensions);
    let resume = crate::protocol::resume_point(
        parts
            .headers
            .get_all("last-event-id")
            .iter()
            .map(|v| v.as_bytes()),
        parts.uri.query().unwrap_or(""),
    )?;
    let access = access::admit(&state, &parts).await?;
    if parts.method == Method::HEAD {
        // A HEAD learns what a stream would look like; it holds no stream slot.
        return Ok((stream_headers(), Body::empty()).into_response());
    }
    let feed = feed::open(&state, peer, resume, access)?;
    let body = Body::from_stream(stream::unfold(feed, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((Ok::<_, Infallible>(bytes), feed))
    }));
    Ok((stream_headers(), body).into_response())
}

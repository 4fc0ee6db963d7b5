//! Server only: `GET /events` through axum — what an app gets when it mounts
//! [`LiveHub::router`](crate::server::live::LiveHub::router) in its own axum server (and what our own server
//! uses with `--no-fast-path`, for A/B benchmarks). Our connection loop (`conn.rs`) normally
//! sends `/events` to the direct writer in `fastpath.rs`; both parse the request with the same
//! function and send exactly what [`feed`](crate::server::stream::feed) produces.

use std::convert::Infallible;

use axum::body::Body;
use std::net::{Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Extensions, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::stream;

use crate::server::error::ApiError;
use crate::server::stream::state::AppState;
use crate::server::stream::{access, feed};
use crate::server::transport::listener::Peer;

/// The client's address for logs: from our connection loop (`Peer`), from axum's
/// `into_make_service_with_connect_info::<SocketAddr>()`, or unknown (`0.0.0.0:0`) when the
/// embedding server provides neither.
fn peer_of(extensions: &Extensions) -> SocketAddr {
    if let Some(ConnectInfo(Peer(peer))) = extensions.get::<ConnectInfo<Peer>>() {
        return *peer;
    }
    if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return *peer;
    }
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
}

/// `GET /events`: the hub's access policy decides first (400 / 401 / 403), then the stream
/// opens.
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
    let feed = feed::open(&state, peer, resume, access)?;
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

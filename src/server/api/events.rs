//! Server only: the `GET /events` handler — on every path a stream can take. Under any axum
//! server its body is the feed; under our own connection loop (`conn.rs`) the request carries a
//! [`DirectSlot`] and the handler leaves the opened feed there instead, so the loop writes it
//! straight to the socket (`writers.rs`) after the app's router and layers have answered.
//! Either way the request passes the same checks and the same access policy.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use std::net::{Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Extensions, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::server::error::ApiError;
use crate::server::stream::error::StreamError;
use crate::server::stream::feed::Feed;
use crate::server::stream::state::AppState;
use crate::server::stream::{access, feed};

/// Put in a request's extensions by our connection loop: a stream handler that opens a feed
/// leaves it here (and answers with the stream's head and an empty body) so the loop can write
/// the feed to the socket itself.
#[derive(Clone, Default)]
pub(crate) struct DirectSlot(Arc<Mutex<Option<Box<Feed>>>>);

impl DirectSlot {
    /// The feed a handler left, if any.
    pub(crate) fn take(&self) -> Option<Box<Feed>> {
        self.0.lock().ok()?.take()
    }

    fn put(&self, feed: Box<Feed>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(feed);
        }
    }
}

/// How long a refused stream client should wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The stream core's refusals as HTTP answers.
impl From<StreamError> for ApiError {
    fn from(err: StreamError) -> Self {
        match err {
            StreamError::BadTopics(err) => err.into(),
            StreamError::Unauthorized { reason } => ApiError::StreamUnauthorized { reason },
            StreamError::ForbiddenTopic { topic } => ApiError::ForbiddenTopic { topic },
            StreamError::Draining => ApiError::Draining {
                retry_after: RETRY_AFTER,
            },
            StreamError::TooManyStreams { max } => ApiError::TooManyConnections {
                max,
                retry_after: RETRY_AFTER,
            },
            StreamError::StoreUnavailable => ApiError::StoreUnavailable {
                retry_after: RETRY_AFTER,
            },
        }
    }
}

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
    if let Some(slot) = parts.extensions.get::<DirectSlot>() {
        slot.put(Box::new(feed));
        return Ok((stream_headers(), Body::empty()).into_response());
    }
    let body = Body::from_stream(feed.map(Ok::<_, Infallible>));
    Ok((stream_headers(), body).into_response())
}

//! Server only: `GET /events`, the SSE stream — `connected` first, then the hub's frames, until
//! the client leaves or the server shuts down. Frames are built with axum's `Event` from the
//! shared protocol types.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiError;
use super::hub::{unix_ms, Admission, Frame, Slot};
use super::state::AppState;
use crate::connection::protocol::{self, Connected, EventId};

/// How long a refused client should wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Query parameters of `/events`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// Resume point of a reopened `EventSource` (which cannot set the header itself).
    last_event_id: Option<String>,
}

/// Build an SSE event from a protocol type.
fn event(name: &str, data: &impl Serialize) -> Event {
    let event = Event::default().event(name);
    match event.clone().json_data(data) {
        Ok(e) => e,
        Err(err) => {
            // Our own types always serialise; never take the stream down over it.
            tracing::error!(%err, name, "could not encode event");
            event.comment("encode error")
        }
    }
}

fn frame_event(frame: &Frame) -> Event {
    match frame {
        Frame::Ping(ping) => event(protocol::EVENT_PING, ping),
    }
}

/// The client's resume point: the `Last-Event-ID` header, else the query parameter. Malformed
/// values are ignored (a fresh start), never an error.
fn resume_point(headers: &HeaderMap, query: &StreamQuery) -> Option<EventId> {
    let raw = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.last_event_id.clone())?;
    match raw.parse::<EventId>() {
        Ok(id) => Some(id),
        Err(err) => {
            tracing::debug!(%err, value = %raw.escape_debug(), "ignoring malformed Last-Event-ID");
            None
        }
    }
}

/// `GET /events`.
pub async fn stream(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::Draining {
            retry_after: RETRY_AFTER,
        });
    }
    let Some(admission) = state.hub.admit() else {
        tracing::warn!(%peer, max = state.config.max_connections, "stream refused: limit reached");
        return Err(ApiError::TooManyConnections {
            max: state.config.max_connections,
            retry_after: RETRY_AFTER,
        });
    };
    let resume = resume_point(&headers, &query);
    let server_id = state.hub.server_id().to_owned();
    let hello = Connected {
        connection_id: admission.connection_id.clone(),
        server_id: server_id.clone(),
        heartbeat_ms: state.config.heartbeat_ms,
        retry_ms: state.config.retry_ms,
        server_time: unix_ms(),
    };
    // The resume point of this stream: nothing is buffered yet, so it is this server's start.
    let cursor = EventId {
        epoch: server_id,
        seq: 0,
    };
    let first = event(protocol::EVENT_CONNECTED, &hello)
        .id(cursor.to_string())
        .retry(Duration::from_millis(state.config.retry_ms));

    tracing::info!(
        connection_id = %admission.connection_id,
        %peer,
        resume = ?resume.as_ref().map(ToString::to_string),
        open = state.hub.open_connections(),
        "stream connected"
    );

    let Admission {
        slot,
        connection_id,
        rx,
    } = admission;
    let mut log = StreamLog {
        connection_id,
        peer,
        started: Instant::now(),
        sent: 0,
        _slot: slot,
    };
    let live = BroadcastStream::new(rx).filter_map(|frame| async move {
        // A lagging stream skips missed pings: harmless, the next one comes.
        frame.ok().map(|f| frame_event(&f))
    });
    let events = stream::once(async { first })
        .chain(live)
        .take_until(state.shutdown.clone().cancelled_owned())
        .map(move |e| {
            log.count_one();
            Ok::<_, Infallible>(e)
        });

    Ok((
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(events),
    ))
}

/// Lives as long as the stream: logs its end when dropped (client left, or shutdown) and
/// holds its slot under the connection limit.
struct StreamLog {
    connection_id: String,
    peer: SocketAddr,
    started: Instant,
    sent: u64,
    _slot: Slot,
}

impl StreamLog {
    fn count_one(&mut self) {
        self.sent += 1;
    }
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        tracing::info!(
            connection_id = %self.connection_id,
            peer = %self.peer,
            duration_ms = self.started.elapsed().as_millis() as u64,
            events_sent = self.sent,
            "stream disconnected"
        );
    }
}

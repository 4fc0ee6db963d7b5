//! Server only: `GET /events`, the SSE stream — `connected` first, then a `resync` if the resume
//! point was lost, the missed events, and the live frames until the client leaves, falls too far
//! behind, or the server drains. Frames are built with axum's `Event` from the shared protocol
//! types.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use futures::stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::hub::{unix_ms, Frame, Hub, Slot};
use super::listener::Peer;
use super::metrics::Metrics;
use super::state::AppState;
use crate::connection::protocol::{self, Connected, Draining, EventId, Resync};

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

fn frame_event(hub: &Hub, frame: &Frame) -> Event {
    match frame {
        Frame::Ping(ping) => event(protocol::EVENT_PING, ping),
        Frame::App(app) => Event::default()
            .event(&app.name)
            .id(hub.event_id(app.seq).to_string())
            .data(&app.data),
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
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if state.is_draining() {
        state
            .metrics
            .connections_rejected
            .with_label_values(&["draining"])
            .inc();
        return Err(ApiError::Draining {
            retry_after: RETRY_AFTER,
        });
    }
    let Some(slot) = state.hub.admit() else {
        state
            .metrics
            .connections_rejected
            .with_label_values(&["limit"])
            .inc();
        tracing::warn!(%peer, max = state.config.max_connections, "stream refused: limit reached");
        return Err(ApiError::TooManyConnections {
            max: state.config.max_connections,
            retry_after: RETRY_AFTER,
        });
    };
    state.metrics.connections_total.inc();

    let resume = resume_point(&headers, &query);
    let sub = state.hub.subscribe(resume.as_ref());
    let hub = Arc::clone(&state.hub);
    let hello = Connected {
        connection_id: slot.connection_id.clone(),
        server_id: hub.server_id().to_owned(),
        heartbeat_ms: state.config.heartbeat_ms,
        retry_ms: state.config.retry_ms,
        server_time: unix_ms(),
        replayed: sub.replay.len() as u64,
    };
    let mut head = VecDeque::new();
    head.push_back(
        event(protocol::EVENT_CONNECTED, &hello)
            .id(hub.event_id(sub.cursor).to_string())
            .retry(Duration::from_millis(state.config.retry_ms)),
    );
    if let (Some(reason), Some(requested)) = (sub.resync, resume.as_ref()) {
        state.metrics.resyncs.inc();
        head.push_back(event(
            protocol::EVENT_RESYNC,
            &Resync {
                reason: reason.as_str().to_owned(),
                requested_id: requested.to_string(),
                first_id: sub.replay.first().and_then(|f| match &**f {
                    Frame::App(e) => Some(hub.event_id(e.seq).to_string()),
                    Frame::Ping(_) => None,
                }),
            },
        ));
    }

    tracing::info!(
        connection_id = %slot.connection_id,
        %peer,
        resume = ?resume.as_ref().map(ToString::to_string),
        replay = sub.replay.len(),
        resync = ?sub.resync.map(|r| r.as_str()),
        open = hub.open_connections(),
        "stream connected"
    );

    let conn = StreamState {
        head,
        replay: sub.replay.into(),
        rx: sub.rx,
        hub,
        metrics: state.metrics.clone(),
        drain: state.drain.clone(),
        shutdown: state.shutdown.clone(),
        reconnect_after: (state.config.retry_ms, state.config.drain_window_ms),
        finished: false,
        log: StreamLog {
            peer,
            started: Instant::now(),
            sent: 0,
            slot,
        },
    };
    let events = stream::unfold(conn, |mut conn| async move {
        let event = conn.next().await?;
        conn.log.sent += 1;
        Some((Ok::<_, Infallible>(event), conn))
    });

    Ok((
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(events),
    ))
}

/// One stream's progress.
struct StreamState {
    /// `connected` and maybe `resync`, sent first.
    head: VecDeque<Event>,
    /// Missed events, sent next.
    replay: VecDeque<Arc<Frame>>,
    rx: Receiver<Arc<Frame>>,
    hub: Arc<Hub>,
    metrics: Metrics,
    drain: CancellationToken,
    shutdown: CancellationToken,
    /// `(retry_ms, drain_window_ms)` for the `draining` hint.
    reconnect_after: (u64, u64),
    finished: bool,
    log: StreamLog,
}

impl StreamState {
    async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.head.pop_front() {
            return Some(e);
        }
        if let Some(frame) = self.replay.pop_front() {
            self.metrics.events_replayed.inc();
            self.metrics.events_delivered.inc();
            return Some(frame_event(&self.hub, &frame));
        }
        if self.finished {
            return None;
        }
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            () = self.drain.cancelled() => {
                self.finished = true;
                let (floor, window) = self.reconnect_after;
                let jitter = if window == 0 { 0 } else { rand::random_range(0..window) };
                Some(event(protocol::EVENT_DRAINING, &Draining { reconnect_after_ms: floor + jitter }))
            }
            frame = self.rx.recv() => match frame {
                Ok(frame) => {
                    if matches!(*frame, Frame::App(_)) {
                        self.metrics.events_delivered.inc();
                    }
                    Some(frame_event(&self.hub, &frame))
                }
                Err(RecvError::Lagged(missed)) => {
                    // Skipping would lose events silently: end the stream; the client resumes
                    // by Last-Event-ID and gets the missed events from the replay buffer.
                    self.metrics.slow_clients_dropped.inc();
                    tracing::warn!(
                        connection_id = %self.log.slot.connection_id,
                        peer = %self.log.peer,
                        missed,
                        "stream fell behind its send queue; dropping it"
                    );
                    None
                }
                Err(RecvError::Closed) => None,
            },
        }
    }
}

/// Lives as long as the stream: logs its end when dropped (client left, fell behind, or
/// shutdown) and holds its slot under the connection limit.
struct StreamLog {
    peer: std::net::SocketAddr,
    started: Instant,
    sent: u64,
    slot: Slot,
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        tracing::info!(
            connection_id = %self.slot.connection_id,
            peer = %self.peer,
            duration_ms = self.started.elapsed().as_millis() as u64,
            events_sent = self.sent,
            "stream disconnected"
        );
    }
}

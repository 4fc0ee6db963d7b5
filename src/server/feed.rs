//! Server only: what one `/events` stream sends, whatever carries it — `connected`, a `resync` if
//! the resume point was lost, the missed events, then the shared live frames until the client
//! leaves, falls too far behind, or the server drains. Frames come out as ready-to-write bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::error::ApiError;
use super::hub::{unix_ms, Frame, FrameKind, Slot};
use super::metrics::Metrics;
use super::state::AppState;
use crate::connection::protocol::{self, Connected, Draining, EventId, Resync};

/// How long a refused client should wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Query parameters of `/events`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// Resume point of a reopened `EventSource` (which cannot set the header itself).
    pub last_event_id: Option<String>,
}

/// The client's resume point: the `Last-Event-ID` header, else the query parameter. Malformed
/// values are ignored (a fresh start), never an error.
pub fn resume_point(header: Option<&str>, query: Option<&str>) -> Option<EventId> {
    let raw = header.or(query)?;
    match raw.parse::<EventId>() {
        Ok(id) => Some(id),
        Err(err) => {
            tracing::debug!(%err, value = %raw.escape_debug(), "ignoring malformed Last-Event-ID");
            None
        }
    }
}

fn json_frame(
    event: &str,
    id: Option<&str>,
    retry_ms: Option<u64>,
    data: &impl Serialize,
) -> Bytes {
    let mut out = String::with_capacity(192);
    if let Err(err) = protocol::encode_json_frame(&mut out, event, id, retry_ms, data) {
        // Our own types always serialise; never take the stream down over it.
        tracing::error!(%err, event, "could not encode event");
        out.clear();
    }
    Bytes::from(out)
}

/// Admit a stream or say why not, without counting a refusal (see [`open`]).
pub fn try_open(
    state: &AppState,
    peer: SocketAddr,
    resume: Option<EventId>,
) -> Result<Feed, ApiError> {
    if state.is_draining() {
        return Err(ApiError::Draining {
            retry_after: RETRY_AFTER,
        });
    }
    let Some(slot) = state.hub.admit() else {
        return Err(ApiError::TooManyConnections {
            max: state.config.max_connections,
            retry_after: RETRY_AFTER,
        });
    };
    let hub = &state.hub;
    let sub = hub.subscribe(resume.as_ref());
    if state.is_draining() {
        // Shutdown began while we subscribed: the drain frame may have gone out before.
        return Err(ApiError::Draining {
            retry_after: RETRY_AFTER,
        });
    }
    state.metrics.connections_total.inc();
    let hello = Connected {
        connection_id: slot.connection_id.clone(),
        server_id: hub.server_id().to_owned(),
        heartbeat_ms: state.config.heartbeat_ms,
        retry_ms: state.config.retry_ms,
        server_time: unix_ms(),
        replayed: sub.replay.len() as u64,
    };
    let cursor = hub.event_id(sub.cursor).to_string();
    let mut head = VecDeque::with_capacity(2);
    head.push_back(json_frame(
        protocol::EVENT_CONNECTED,
        Some(&cursor),
        Some(state.config.retry_ms),
        &hello,
    ));
    if let (Some(reason), Some(requested)) = (sub.resync, resume.as_ref()) {
        state.metrics.resyncs.inc();
        let resync = Resync {
            reason: reason.as_str().to_owned(),
            requested_id: requested.to_string(),
            first_id: sub
                .replay
                .first()
                .and_then(|f| f.app_seq())
                .map(|seq| hub.event_id(seq).to_string()),
        };
        head.push_back(json_frame(protocol::EVENT_RESYNC, None, None, &resync));
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

    Ok(Feed {
        head,
        replay: sub.replay.into(),
        rx: sub.rx,
        metrics: state.metrics.clone(),
        reconnect_after: (state.config.retry_ms, state.config.drain_window_ms),
        finished: false,
        log: StreamLog {
            peer,
            started: Instant::now(),
            sent: 0,
            slot,
        },
    })
}

/// [`try_open`], counting a refusal in the metrics.
pub fn open(state: &AppState, peer: SocketAddr, resume: Option<EventId>) -> Result<Feed, ApiError> {
    try_open(state, peer, resume).inspect_err(|err| {
        let reason = match err {
            ApiError::Draining { .. } => "draining",
            _ => "limit",
        };
        state
            .metrics
            .connections_rejected
            .with_label_values(&[reason])
            .inc();
        if reason == "limit" {
            tracing::warn!(%peer, max = state.config.max_connections, "stream refused: limit reached");
        }
    })
}

/// One stream's progress.
pub struct Feed {
    /// `connected` and maybe `resync`, sent first.
    head: VecDeque<Bytes>,
    /// Missed events, sent next.
    replay: VecDeque<Arc<Frame>>,
    rx: Receiver<Arc<Frame>>,
    metrics: Metrics,
    /// `(retry_ms, drain_window_ms)` for the `draining` hint.
    reconnect_after: (u64, u64),
    finished: bool,
    log: StreamLog,
}

impl Feed {
    /// The next frame to write, or `None` when the stream must end. Cancel-safe.
    pub async fn next(&mut self) -> Option<Bytes> {
        let frame = self.next_frame().await;
        if frame.is_some() {
            self.log.sent += 1;
        }
        frame
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        if let Some(e) = self.head.pop_front() {
            return Some(e);
        }
        if let Some(frame) = self.replay.pop_front() {
            self.metrics.events_replayed.inc();
            self.metrics.events_delivered.inc();
            return Some(frame.bytes.clone());
        }
        if self.finished {
            return None;
        }
        // One waiter per stream, on the shared channel: control frames come the same way.
        match self.rx.recv().await {
            Ok(frame) => match frame.kind {
                FrameKind::App { .. } => {
                    self.metrics.events_delivered.inc();
                    Some(frame.bytes.clone())
                }
                FrameKind::Ping { .. } => Some(frame.bytes.clone()),
                FrameKind::Drain => {
                    self.finished = true;
                    let (floor, window) = self.reconnect_after;
                    let jitter = if window == 0 {
                        0
                    } else {
                        rand::random_range(0..window)
                    };
                    let hint = Draining {
                        reconnect_after_ms: floor + jitter,
                    };
                    Some(json_frame(protocol::EVENT_DRAINING, None, None, &hint))
                }
                FrameKind::Close => None,
            },
            Err(RecvError::Lagged(missed)) => {
                // Skipping would lose events silently: end the stream; the client resumes by
                // Last-Event-ID and gets the missed events from the replay buffer.
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
        }
    }
}

/// Lives as long as the stream: logs its end when dropped (client left, fell behind, or
/// shutdown) and holds its slot under the connection limit.
struct StreamLog {
    peer: SocketAddr,
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

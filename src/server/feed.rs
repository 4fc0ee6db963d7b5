//! Server only: what one `/events` stream sends, whatever carries it — `connected`, a `resync` if
//! the resume point was lost, the missed events, then the shared live frames until the client
//! leaves, falls too far behind, or the server drains. Frames come out as ready-to-write bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::error::ApiError;
use super::hub::{unix_ms, Frame, FrameKind, Hub, Pos, Slot};
use super::log::{Plan, Start, StoreError};
use super::metrics::Metrics;
use super::state::AppState;
use crate::connection::protocol::{self, Connected, Draining, EventId, Resync};

/// How long a refused client should wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Longest resume point taken from a request (an id is far shorter).
const MAX_RESUME_LEN: usize = 256;

/// Where a client asked to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No resume point: a fresh start with the live stream.
    Fresh,
    /// A well-formed id.
    Id(EventId),
    /// Something that is not an id; the client expects continuity, so it gets a `resync`.
    Malformed(String),
}

/// The resume point of an `/events` request, from its `Last-Event-ID` header values and its
/// query string — the one parser both transports use, so they answer alike.
///
/// Rules: the header (what a browser's own retry sends, so the newest) wins when it is a
/// well-formed id, else the `last_event_id` query parameter when it is; if neither is, a
/// non-empty value is [`Resume::Malformed`]; empty values count as absent. The same field given
/// twice (two headers, or the parameter twice) is ambiguous: 400.
pub fn resume_point<'a>(
    header_values: impl IntoIterator<Item = &'a [u8]>,
    query: &str,
) -> Result<Resume, ApiError> {
    let mut headers = header_values.into_iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(ApiError::BadRequest {
            reason: "the Last-Event-ID header is given more than once".into(),
        });
    }
    let mut from_query = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "last_event_id" {
            if from_query.is_some() {
                return Err(ApiError::BadRequest {
                    reason: "the last_event_id query parameter is given more than once".into(),
                });
            }
            from_query = Some(value.into_owned());
        }
    }
    let from_header = header.map(|raw| String::from_utf8_lossy(raw).into_owned());
    let candidates = [from_header, from_query];
    let present = candidates
        .iter()
        .flatten()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    let mut first_malformed: Option<String> = None;
    for raw in present {
        match raw.parse::<EventId>() {
            Ok(id) if raw.len() <= MAX_RESUME_LEN => return Ok(Resume::Id(id)),
            _ => {
                first_malformed.get_or_insert_with(|| raw.chars().take(MAX_RESUME_LEN).collect());
            }
        }
    }
    Ok(match first_malformed {
        Some(raw) => {
            tracing::debug!(value = %raw.escape_debug(), "malformed Last-Event-ID: resync");
            Resume::Malformed(raw)
        }
        None => Resume::Fresh,
    })
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
pub fn try_open(state: &AppState, peer: SocketAddr, resume: Resume) -> Result<Feed, ApiError> {
    if state.is_draining() {
        return Err(ApiError::Draining {
            retry_after: RETRY_AFTER,
        });
    }
    let Some(slot) = state.hub.admit() else {
        return Err(ApiError::TooManyConnections {
            max: state.budget.max_streams,
            retry_after: RETRY_AFTER,
        });
    };
    let opening = state
        .log
        .open(&resume)
        .map_err(|_| ApiError::StoreUnavailable {
            retry_after: RETRY_AFTER,
        })?;
    if state.is_draining() {
        // Shutdown began while we subscribed: the drain frame may have gone out before.
        return Err(ApiError::Draining {
            retry_after: RETRY_AFTER,
        });
    }
    state.metrics.connections_total.inc();
    let hello = Connected {
        connection_id: slot.connection_id.clone(),
        server_id: state.hub.server_id().to_owned(),
        heartbeat_ms: state.config.heartbeat_ms,
        retry_ms: state.config.retry_ms,
        server_time: unix_ms(),
        replayed: 0,
        fleet: None,
    };
    Ok(Feed {
        start: Some(opening.start),
        fetching: None,
        hello: Some(hello),
        resume,
        head: VecDeque::with_capacity(2),
        replay: VecDeque::new(),
        floor: Pos::ZERO,
        rx: opening.rx,
        hub: Arc::clone(&state.hub),
        metrics: state.metrics.clone(),
        retry_ms: state.config.retry_ms,
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

/// [`try_open`], counting a refusal in the metrics. Refusals come in floods (a full server, a
/// restart), so each one is logged at debug level and a summary at most every 10 s.
pub fn open(state: &AppState, peer: SocketAddr, resume: Resume) -> Result<Feed, ApiError> {
    try_open(state, peer, resume).inspect_err(|err| {
        let reason = match err {
            ApiError::Draining { .. } => "draining",
            ApiError::StoreUnavailable { .. } => "store",
            _ => "limit",
        };
        state
            .metrics
            .connections_rejected
            .with_label_values(&[reason])
            .inc();
        tracing::debug!(%peer, reason, "stream refused");
        if reason == "limit" {
            if let Some(refused) = state.refusal_log.streams.tick() {
                tracing::warn!(
                    refused,
                    max = state.budget.max_streams,
                    "streams refused: the stream limit is reached"
                );
            }
        }
    })
}

/// One stream's progress.
pub struct Feed {
    /// How the stream starts; taken by the first [`Feed::next`] (which may read from Redis).
    start: Option<Start>,
    /// The read of missed events from Redis, while it runs.
    fetching: Option<BoxFuture<'static, Result<Plan, StoreError>>>,
    /// The `connected` event, sent once the replay is known.
    hello: Option<Connected>,
    resume: Resume,
    /// `connected` and maybe `resync`, sent first.
    head: VecDeque<Bytes>,
    /// Missed events, sent next.
    replay: VecDeque<Arc<Frame>>,
    /// Live events at or before this were replayed already (or seen by the client).
    floor: Pos,
    rx: Receiver<Arc<Frame>>,
    hub: Arc<Hub>,
    metrics: Metrics,
    retry_ms: u64,
    /// `(retry_ms, drain_window_ms)` for the `draining` hint.
    reconnect_after: (u64, u64),
    finished: bool,
    log: StreamLog,
}

impl Feed {
    /// The next frame to write, or `None` when the stream must end. Cancel-safe once the
    /// stream has started (the first call may read missed events from Redis).
    pub async fn next(&mut self) -> Option<Bytes> {
        let frame = self.next_frame().await;
        if frame.is_some() {
            self.log.sent += 1;
        }
        frame
    }

    /// Work out the replay, asking Redis if the local cache cannot answer. Cancel-safe: the
    /// read is kept in `fetching` until it completes.
    async fn starting(&mut self) -> Option<()> {
        match self.start.take() {
            Some(Start::Ready(plan)) => return self.begin(plan),
            Some(Start::Fetch(fetch)) => self.fetching = Some(Box::pin(fetch.run())),
            None => {}
        }
        let fetching = self.fetching.as_mut()?;
        let result = fetching.await;
        self.fetching = None;
        match result {
            Ok(plan) => self.begin(plan),
            Err(err) => {
                // The client keeps its resume point and comes back; nothing is lost.
                tracing::warn!(
                    connection_id = %self.log.slot.connection_id,
                    %err,
                    "cannot read missed events; ending the stream"
                );
                self.finished = true;
                None
            }
        }
    }

    /// Queue `connected`, maybe `resync`, and the missed events.
    fn begin(&mut self, plan: Plan) -> Option<()> {
        let mut hello = self.hello.take()?;
        hello.replayed = plan.replay.len() as u64;
        hello.fleet = Some(self.hub.fleet());
        self.head.push_back(json_frame(
            protocol::EVENT_CONNECTED,
            Some(&plan.cursor),
            Some(self.retry_ms),
            &hello,
        ));
        if let Some((reason, requested_id)) = &plan.resync {
            self.metrics.resyncs.inc();
            let resync = Resync {
                reason: *reason,
                requested_id: requested_id.clone(),
                first_id: plan
                    .replay
                    .first()
                    .and_then(|f| f.app_pos())
                    .map(|pos| self.hub.id_text(pos)),
            };
            self.head
                .push_back(json_frame(protocol::EVENT_RESYNC, None, None, &resync));
        }
        tracing::debug!(
            connection_id = %self.log.slot.connection_id,
            peer = %self.log.peer,
            resume = ?match &self.resume {
                Resume::Fresh => None,
                Resume::Id(id) => Some(id.to_string()),
                Resume::Malformed(raw) => Some(raw.escape_debug().to_string()),
            },
            replay = plan.replay.len(),
            resync = ?plan.resync.as_ref().map(|r| r.0.as_str()),
            open = self.hub.open_connections(),
            "stream connected"
        );
        self.floor = plan.floor;
        self.replay = plan.replay.into();
        Some(())
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.start.is_some() || self.fetching.is_some() {
            if self.finished {
                return None;
            }
            self.starting().await?;
        }
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
        loop {
            // One waiter per stream, on the shared channel: control frames come the same way.
            return match self.rx.recv().await {
                Ok(frame) => match frame.kind {
                    FrameKind::App { pos } => {
                        if pos <= self.floor {
                            // Replayed already (the stream started behind the client).
                            continue;
                        }
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
                    // Skipping would lose events silently: end the stream; the client resumes
                    // by Last-Event-ID and gets the missed events from the log.
                    self.metrics
                        .slow_clients_dropped
                        .with_label_values(&["lagged"])
                        .inc();
                    tracing::warn!(
                        connection_id = %self.log.slot.connection_id,
                        peer = %self.log.peer,
                        missed,
                        "stream fell behind its send queue; dropping it"
                    );
                    None
                }
                Err(RecvError::Closed) => None,
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resume(headers: &[&str], query: &str) -> Result<Resume, String> {
        resume_point(headers.iter().map(|h| h.as_bytes()), query).map_err(|e| e.to_string())
    }

    fn id(s: &str) -> Resume {
        Resume::Id(s.parse().unwrap())
    }

    #[test]
    fn one_parser_for_both_transports() {
        let cases: Vec<(&[&str], &str, Result<Resume, &str>)> = vec![
            (&[], "", Ok(Resume::Fresh)),
            (&[], "x=1", Ok(Resume::Fresh)),
            (&["ab-3"], "", Ok(id("ab-3"))),
            (&[], "last_event_id=ab-3", Ok(id("ab-3"))),
            (&[], "last_event_id=ab%2D3&x=1", Ok(id("ab-3"))),
            // The header is the newer (the browser's own retry): it wins when well-formed...
            (&["cd-4"], "last_event_id=ab-3", Ok(id("cd-4"))),
            // ...but a malformed header does not hide a good query value.
            (&["garbage"], "last_event_id=ab-3", Ok(id("ab-3"))),
            (&["ab-3"], "last_event_id=garbage", Ok(id("ab-3"))),
            // Only malformed values: resync, never silence.
            (&["garbage"], "", Ok(Resume::Malformed("garbage".into()))),
            (&[], "last_event_id=%00", Ok(Resume::Malformed("\0".into()))),
            (&["x"], "last_event_id=y", Ok(Resume::Malformed("x".into()))),
            // Empty values are absent.
            (&[""], "last_event_id=", Ok(Resume::Fresh)),
            (&[" "], "last_event_id=ab-1", Ok(id("ab-1"))),
            // Ambiguous requests are refused, whatever the values.
            (
                &[],
                "last_event_id=ab-1&last_event_id=ab-1",
                Err("more than once"),
            ),
            (&["ab-1", "ab-2"], "", Err("more than once")),
        ];
        for (headers, query, want) in cases {
            let got = resume(headers, query);
            match want {
                Ok(want) => assert_eq!(got, Ok(want), "{headers:?} {query:?}"),
                Err(text) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(text)),
                    "{headers:?} {query:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn huge_values_are_cut_before_they_are_echoed() {
        let long = format!("ab-{}", "1".repeat(400));
        match resume(&[&long], "").unwrap() {
            Resume::Malformed(raw) => assert_eq!(raw.len(), MAX_RESUME_LEN),
            other => panic!("{other:?}"),
        }
    }
}

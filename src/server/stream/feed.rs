//! Server only: what one `/events` stream sends, whatever carries it — `connected`, a `resync` if
//! the resume point was lost, the missed events, then the shared live frames until the client
//! leaves, falls too far behind, or the server drains; only the events its [`Access`] sees, and
//! `reauth` when its grant expires or `revoked` when its subject is revoked, then the end.
//! Frames come out as ready-to-write bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tokio::sync::mpsc;

use crate::protocol::{self, Connected, Draining, Reauth, ReauthReason, Resume, Resync, Revoked};
use crate::server::error::ApiError;
use crate::server::stream::access::Access;
use crate::server::stream::fanout::{unix_ms, Frame, FrameKind, Hub, Mailbox, Pos, Slot, Target};
use crate::server::stream::log::{Plan, Start, StoreError};
use crate::server::stream::metrics::Metrics;
use crate::server::stream::state::AppState;

/// How long a refused client should wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

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
    resume: Resume,
    access: Access,
) -> Result<Feed, ApiError> {
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
    let patterns: Vec<String> = access.topics.iter().map(|t| t.to_string()).collect();
    let opening = state
        .log
        .open(&resume, &patterns)
        .map_err(|_| ApiError::StoreUnavailable {
            retry_after: RETRY_AFTER,
        })?;
    if state.is_draining() {
        // Shutdown began while we subscribed: the drain frame may have gone out before.
        if let Some(mailbox) = &opening.mailbox {
            state.hub.unsubscribe(mailbox.id);
        }
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
    let expiry = access.expires_at.map(|at| {
        let left = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(left))
    });
    state.hub.presence_add(&patterns, 1);
    let mailbox_id = opening.mailbox.as_ref().map(|m| m.id);
    Ok(Feed {
        start: Some(opening.start),
        access,
        expiry,
        cursor: String::new(),
        last: None,
        fetching: None,
        hello: Some(hello),
        resume,
        head: VecDeque::with_capacity(2),
        replay: VecDeque::new(),
        floor: Pos::ZERO,
        rx: opening.rx,
        received: opening.sent,
        mailbox: opening.mailbox,
        pending: (None, None),
        hub: Arc::clone(&state.hub),
        metrics: Arc::clone(&state.metrics),
        retry_ms: state.config.retry_ms,
        reconnect_after: (state.config.retry_ms, state.config.drain_window_ms),
        finished: false,
        log: StreamLog {
            peer,
            started: Instant::now(),
            sent: 0,
            slot,
            patterns,
            mailbox: mailbox_id,
        },
    })
}

/// [`try_open`], counting a refusal in the metrics. Refusals come in floods (a full server, a
/// restart), so each one is logged at debug level and a summary at most every 10 s.
pub fn open(
    state: &AppState,
    peer: SocketAddr,
    resume: Resume,
    access: Access,
) -> Result<Feed, ApiError> {
    try_open(state, peer, resume, access).inspect_err(|err| {
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
    /// What this stream may read.
    access: Access,
    /// Fires when the grant expires.
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The `connected` event's id.
    cursor: String,
    /// The last application event this stream delivered.
    last: Option<Pos>,
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
    /// Frames the shared channel carried up to the last one `rx` gave (see
    /// [`Hub::shared_sent`]).
    received: u64,
    /// This stream's topics' events (when it subscribed to topics).
    mailbox: Option<Mailbox>,
    /// Received and not yet sent: from the shared channel, from the mailbox.
    pending: (Option<Arc<Frame>>, Option<Arc<Frame>>),
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
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

    /// Queue `connected`, maybe `resync`, and the missed events this stream may read.
    fn begin(&mut self, mut plan: Plan) -> Option<()> {
        let mut hello = self.hello.take()?;
        plan.replay.retain(|f| self.access.sees(f));
        self.cursor.clone_from(&plan.cursor);
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
            subject = self.access.subject.as_deref().unwrap_or(""),
            topics = self.access.topics.len(),
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
        if let Some(queued) = self.queued() {
            return queued;
        }
        loop {
            let live = self.next_live().await;
            if let Some(out) = self.take(live) {
                return out;
            }
        }
    }

    /// Without waiting: the next frame that is ready now (`Ready(None)`: the stream must end),
    /// or `Pending` when nothing is — the same frames, in the same order, as [`Feed::next`]. It
    /// registers no waker: whoever calls it learns by other means when to call again (the
    /// sharded writers sweep their streams when the shared channel carries a frame, and are
    /// woken by the mailbox through [`Feed::poll_mailbox`]). Only for a stream that has
    /// started ([`Feed::is_live`]).
    pub fn poll_now(&mut self) -> Poll<Option<Bytes>> {
        debug_assert!(self.is_live() || self.finished);
        let frame = self.poll_frame_now();
        if let Poll::Ready(Some(_)) = frame {
            self.log.sent += 1;
        }
        frame
    }

    fn poll_frame_now(&mut self) -> Poll<Option<Bytes>> {
        if let Some(queued) = self.queued() {
            return Poll::Ready(queued);
        }
        while let Some(live) = self.try_live() {
            if let Some(out) = self.take(live) {
                return Poll::Ready(out);
            }
        }
        Poll::Pending
    }

    /// Whether the stream has started (its replay is worked out): from then on every frame is
    /// decided without I/O, so [`Feed::poll_now`] may drive it.
    pub fn is_live(&self) -> bool {
        // `begin` takes `hello` once the start (and any read from Redis) is done.
        self.hello.is_none()
    }

    /// Whether the stream has a mailbox (it subscribed to topics).
    pub fn has_mailbox(&self) -> bool {
        self.mailbox.is_some()
    }

    /// When the grant expires (the stream then says `reauth` and ends), if it does.
    pub fn expires_at(&self) -> Option<tokio::time::Instant> {
        self.expiry.as_ref().map(|e| e.deadline())
    }

    /// Register `cx` to be woken when the stream's mailbox (its topics' events) receives a
    /// frame; `Ready` if one is already there (or the mailbox closed): then call
    /// [`Feed::poll_now`] again. `Pending` for a stream without topics.
    pub fn poll_mailbox(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.1.is_some() {
            return Poll::Ready(());
        }
        let Some(mailbox) = self.mailbox.as_mut() else {
            return Poll::Pending;
        };
        match mailbox.rx.poll_recv(cx) {
            Poll::Ready(Some(frame)) => {
                self.pending.1 = Some(frame);
                Poll::Ready(())
            }
            // Closed by the hub (the stream fell behind): the next frame says so (the mailbox
            // then reports itself disconnected).
            Poll::Ready(None) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `connected`, `resync` and the replay, in that order, then the end of a finished stream
    /// (`Some(None)`); `None` when only live frames can follow.
    fn queued(&mut self) -> Option<Option<Bytes>> {
        if let Some(e) = self.head.pop_front() {
            return Some(Some(e));
        }
        if let Some(frame) = self.replay.pop_front() {
            self.metrics.events_replayed.inc();
            self.metrics.events_delivered.inc();
            self.last = frame.app_pos();
            return Some(Some(frame.bytes.clone()));
        }
        self.finished.then_some(None)
    }

    /// What a live source's frame means for this stream: `Some(Some(bytes))` to write,
    /// `Some(None)` to end, `None` to skip it (replayed already, or not for this stream).
    fn take(&mut self, live: Live) -> Option<Option<Bytes>> {
        let (frame, routed) = match live {
            Live::Frame(frame) => (frame, false),
            Live::Routed(frame) => (frame, true),
            Live::Expired => return Some(Some(self.expired())),
            Live::Lagged(missed) => {
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
                self.finished = true;
                return Some(None);
            }
            Live::Closed => {
                self.finished = true;
                return Some(None);
            }
        };
        match frame.kind {
            FrameKind::App { pos } => {
                // A frame from the mailbox was put there by the topic index under one of
                // this stream's own patterns: it sees it (`index_routes_only_what_the_stream_sees`
                // in `fanout`), so only the shared channel's frames are checked.
                if pos <= self.floor || !(routed || self.access.sees(&frame)) {
                    // Replayed already (the stream started behind the client), or not
                    // for this stream.
                    return None;
                }
                self.metrics.events_delivered.inc();
                self.last = Some(pos);
                Some(Some(frame.bytes.clone()))
            }
            FrameKind::Revoke => match &frame.target {
                Target::Subject(subject) if self.access.is_subject(subject) => {
                    self.finished = true;
                    self.metrics
                        .streams_ended
                        .with_label_values(&["revoked"])
                        .inc();
                    tracing::info!(
                        connection_id = %self.log.slot.connection_id,
                        subject = %subject,
                        "stream revoked"
                    );
                    let revoked = Revoked {
                        reason: protocol::REVOKED_BY_PUBLISHER.to_owned(),
                    };
                    Some(Some(json_frame(
                        protocol::EVENT_REVOKED,
                        None,
                        None,
                        &revoked,
                    )))
                }
                _ => None,
            },
            FrameKind::Ping { .. } => Some(Some(frame.bytes.clone())),
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
                Some(Some(json_frame(
                    protocol::EVENT_DRAINING,
                    None,
                    None,
                    &hint,
                )))
            }
            FrameKind::Close => {
                self.finished = true;
                Some(None)
            }
        }
    }

    /// The next live frame that is there now, in log order (see [`Feed::next_live`]); `None`
    /// when both sources are empty. Received frames wait in `pending` until they are taken.
    fn try_live(&mut self) -> Option<Live> {
        // A busy stream may never wait: its expiry is checked before every frame.
        if self
            .expiry
            .as_ref()
            .is_some_and(|e| e.deadline() <= tokio::time::Instant::now())
        {
            return Some(Live::Expired);
        }
        if self.pending.0.is_none() && self.received != self.hub.shared_sent() {
            match self.rx.try_recv() {
                Ok(frame) => {
                    self.received += 1;
                    self.pending.0 = Some(frame);
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Lagged(missed)) => return Some(Live::Lagged(missed)),
                Err(TryRecvError::Closed) => return Some(Live::Closed),
            }
        }
        if self.pending.1.is_none() {
            if let Some(mailbox) = self.mailbox.as_mut() {
                match mailbox.rx.try_recv() {
                    Ok(frame) => self.pending.1 = Some(frame),
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    // The hub closed it: the stream fell behind.
                    Err(mpsc::error::TryRecvError::Disconnected) => return Some(Live::Lagged(0)),
                }
            }
        }
        let topic_first = match (&self.pending.0, &self.pending.1) {
            (Some(shared), Some(topic)) => match (shared.app_pos(), topic.app_pos()) {
                (Some(a), Some(b)) => b < a,
                _ => false,
            },
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => return None,
        };
        if topic_first {
            self.pending.1.take().map(Live::Routed)
        } else {
            self.pending.0.take().map(Live::Frame)
        }
    }

    /// The next live frame in log order, from the shared channel (broadcasts, pings, control)
    /// and the stream's mailbox (its topics' events). Cancel-safe: what was received waits in
    /// `pending`. Both sources are filled under the hub's lock in log order, so once one of
    /// them shows an event, every earlier event of the other is already in it.
    async fn next_live(&mut self) -> Live {
        loop {
            if let Some(live) = self.try_live() {
                return live;
            }
            let Feed {
                rx,
                received,
                mailbox,
                expiry,
                pending,
                ..
            } = self;
            let expiring = async {
                match expiry.as_mut() {
                    Some(expiry) => expiry.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let posted = async {
                match mailbox.as_mut() {
                    Some(mailbox) => mailbox.rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = expiring => return Live::Expired,
                frame = rx.recv() => match frame {
                    Ok(frame) => {
                        *received += 1;
                        pending.0 = Some(frame);
                    }
                    Err(RecvError::Lagged(missed)) => return Live::Lagged(missed),
                    Err(RecvError::Closed) => return Live::Closed,
                },
                posted = posted => match posted {
                    Some(frame) => pending.1 = Some(frame),
                    None => return Live::Lagged(0),
                },
            }
        }
    }
}

/// What the live sources gave.
enum Live {
    /// From the shared channel.
    Frame(Arc<Frame>),
    /// From the stream's mailbox, routed there by the topic index.
    Routed(Arc<Frame>),
    /// The grant expired.
    Expired,
    /// The stream fell behind (how many frames it missed, when known).
    Lagged(u64),
    /// The hub is gone.
    Closed,
}

impl Feed {
    /// The grant expired: say `reauth` with where to resume, and end.
    fn expired(&mut self) -> Bytes {
        self.finished = true;
        self.metrics
            .streams_ended
            .with_label_values(&["expired"])
            .inc();
        self.expiry = None;
        let last_event_id = match self.last {
            Some(pos) => self.hub.id_text(pos),
            None => self.cursor.clone(),
        };
        tracing::debug!(
            connection_id = %self.log.slot.connection_id,
            "access grant expired; asking the client to reauthenticate"
        );
        let reauth = Reauth {
            reason: ReauthReason::Expired,
            last_event_id: Some(last_event_id),
        };
        json_frame(protocol::EVENT_REAUTH, None, None, &reauth)
    }
}

/// Lives as long as the stream: logs its end when dropped (client left, fell behind, or
/// shutdown), holds its slot under the connection limit and its place in the topic counts.
struct StreamLog {
    peer: SocketAddr,
    started: Instant,
    sent: u64,
    slot: Slot,
    /// The subscribed patterns counted in the hub's presence table.
    patterns: Vec<String>,
    /// The stream's mailbox in the hub's topic index.
    mailbox: Option<u64>,
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        self.slot.hub().presence_add(&self.patterns, -1);
        if let Some(id) = self.mailbox {
            self.slot.hub().unsubscribe(id);
        }
        tracing::info!(
            connection_id = %self.slot.connection_id,
            peer = %self.peer,
            duration_ms = self.started.elapsed().as_millis() as u64,
            events_sent = self.sent,
            "stream disconnected"
        );
    }
}

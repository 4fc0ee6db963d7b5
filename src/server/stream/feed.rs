//! Server only: one `/events` stream — a cursor into the hub's ring plus its access. It says
//! `connected` (and `resync` if the resume point was lost), then every event after its cursor
//! that its [`Access`] sees (the replay and the live events are the same reading), the hub's
//! heartbeats, `reauth` when its grant expires, `revoked` when its subject is revoked, and
//! `draining` when the server drains. A cursor that falls behind the ring catches up as a
//! `Last-Event-ID` reconnect would. [`Feed`] is a `futures::Stream` of ready-to-write frames:
//! axum's body and the direct writers drive the same `poll_next`.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use serde::Serialize;

use crate::protocol::{self, Connected, Draining, Reauth, ReauthReason, Resume, Resync, Revoked};
use crate::server::stream::access::Access;
use crate::server::stream::error::StreamError;
use crate::server::stream::hub::{Hub, Phase, Slot};
use crate::server::stream::log::{EventLog, Plan, Start, StoreError};
use crate::server::stream::metrics::Metrics;
use crate::server::stream::ring::{unix_ms, Frame, Next, Pos, Reading};
use crate::server::stream::state::AppState;
use crate::server::stream::topics::{Inbox, Routed};

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
) -> Result<Feed, StreamError> {
    if state.is_draining() {
        return Err(StreamError::Draining);
    }
    let hub = &state.hub;
    let Some(slot) = hub.admit() else {
        return Err(StreamError::TooManyStreams {
            max: state.budget.max_streams,
        });
    };
    let patterns: Vec<String> = access.topics.iter().map(|t| t.to_string()).collect();
    let sub = hub.subscribe(&patterns);
    let inbox_id = sub.inbox.as_ref().map_or(0, |(id, _)| *id);
    let start = state.log.open(&resume, &sub).map_err(|_| {
        if inbox_id != 0 {
            hub.unsubscribe(inbox_id);
        }
        StreamError::StoreUnavailable
    })?;
    if state.is_draining() {
        // Shutdown began while we subscribed: the drain may have been signalled before.
        if inbox_id != 0 {
            hub.unsubscribe(inbox_id);
        }
        return Err(StreamError::Draining);
    }
    state.metrics.connections_total.inc();
    hub.presence_add(&patterns, 1);
    let expiry = access.expires_at.map(|at| {
        let left = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Box::new(Expiry {
            at: tokio::time::Instant::now() + left,
            sleep: None,
        })
    });
    let config = &state.config;
    let catchup = Catchup {
        queued: VecDeque::with_capacity(2),
        fetching: None,
        fetched: VecDeque::new(),
        hello: Some(Hello {
            retry_ms: config.retry_ms,
            heartbeat_ms: config.heartbeat_ms,
            resume,
        }),
        plan: Some(start),
    };
    let (seen_ping, seen_revocations) = (hub.ping_seq(), hub.revocations());
    Ok(Feed {
        log: Arc::clone(&state.log),
        metrics: Arc::clone(&state.metrics),
        inbox: sub.inbox.map(|(_, inbox)| inbox),
        cursor: sub.head,
        walk_until: 0,
        replay_until: sub.head,
        last: sub.head_pos,
        seen_ping,
        seen_revocations,
        registered: u64::MAX,
        swept: false,
        finished: false,
        reconnect_after: (config.retry_ms, config.drain_window_ms),
        access,
        expiry,
        catchup: Some(Box::new(catchup)),
        info: StreamInfo {
            peer,
            started: Instant::now(),
            sent: 0,
            inbox: inbox_id,
            number: slot.number(),
            slot: Some(slot),
            hub: Arc::clone(hub),
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
) -> Result<Feed, StreamError> {
    try_open(state, peer, resume, access).inspect_err(|err| {
        let reason = err.refusal();
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

/// One stream: a cursor into the ring, its access, and what it has told its client.
pub struct Feed {
    log: Arc<EventLog>,
    metrics: Arc<Metrics>,
    access: Access,
    /// Its topics' events, as sequence numbers into the ring (a stream with topics).
    inbox: Option<Arc<Inbox>>,
    /// Every ring frame up to here was sent, or is not for this stream.
    cursor: u64,
    /// Up to here this stream's frames are found by walking the ring (a topic stream's
    /// replay, an overflowed inbox); after it, through its inbox and the broadcasts' index.
    walk_until: u64,
    /// Frames up to here count as replayed.
    replay_until: u64,
    /// The newest event the client has (sent, or where it started).
    last: Pos,
    /// The newest heartbeat sent.
    seen_ping: u64,
    /// The newest revocation looked at.
    seen_revocations: u64,
    /// The generation of the hub's waiters this stream's waker is in (`u64::MAX`: none).
    registered: u64,
    /// Its driver looks at it whenever a hub [`Bell`](crate::server::stream::hub::Bell)
    /// rings: no waker of its own is kept for the signals every stream reads.
    swept: bool,
    finished: bool,
    /// `(retry_ms, drain_window_ms)` for the `draining` hint.
    reconnect_after: (u64, u64),
    /// When its grant ends.
    expiry: Option<Box<Expiry>>,
    /// The start, or a catch-up, while it lasts.
    catchup: Option<Box<Catchup>>,
    info: StreamInfo,
}

struct Expiry {
    at: tokio::time::Instant,
    /// Only for a stream waiting in a task of its own.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What `connected` needs once the start is known.
struct Hello {
    retry_ms: u64,
    heartbeat_ms: u64,
    resume: Resume,
}

/// A start or catch-up in progress: frames queued before the ring is read.
struct Catchup {
    /// `connected`, `resync`.
    queued: VecDeque<Bytes>,
    /// The plan, when decided without I/O.
    plan: Option<Start>,
    /// A read of missed events from Redis, while it runs.
    fetching: Option<BoxFuture<'static, Result<Plan, StoreError>>>,
    /// Missed events read from Redis, sent before the ring.
    fetched: VecDeque<Arc<Frame>>,
    /// Set for the start (not for a catch-up): `connected` goes first.
    hello: Option<Hello>,
}

impl Feed {
    /// The client's address.
    pub fn peer(&self) -> std::net::SocketAddr {
        self.info.peer
    }

    /// When the grant expires (the stream then says `reauth` and ends), if it does.
    pub fn expires_at(&self) -> Option<tokio::time::Instant> {
        self.expiry.as_ref().map(|e| e.at)
    }

    /// `true`: the caller drives this stream whenever a hub
    /// [`Bell`](crate::server::stream::hub::Bell) rings, so the stream does not register its
    /// waker for the hub's signals (its inbox and any read from Redis still wake it).
    pub fn set_swept(&mut self, swept: bool) {
        if self.swept == swept {
            return;
        }
        self.swept = swept;
        self.registered = u64::MAX;
        if let Some(expiry) = &mut self.expiry {
            expiry.sleep = None;
        }
    }

    fn hub(&self) -> &Hub {
        &self.info.hub
    }

    /// The next frame, or `Pending` with this task's waker registered everywhere a frame
    /// could come from; `Ready(None)`: the stream must end.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut armed = false;
        loop {
            if self.catchup.is_some() {
                match self.poll_catchup(cx) {
                    Poll::Ready(Some(frame)) => return Poll::Ready(Some(frame)),
                    Poll::Ready(None) => {}
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.finished || self.hub().phase() == Phase::Closed {
                self.finished = true;
                return Poll::Ready(None);
            }
            if let Some(frame) = self.signals() {
                return Poll::Ready(frame);
            }
            match self.read_ring() {
                Read::Frame(bytes) => return Poll::Ready(Some(bytes)),
                Read::Again => continue,
                Read::Idle => {}
            }
            if self.hub().phase() == Phase::Draining {
                return Poll::Ready(Some(self.draining()));
            }
            if armed {
                return Poll::Pending;
            }
            // Register, then look once more: a change after the look above wakes us.
            self.arm(cx);
            armed = true;
            if let Some(expiry) = &mut self.expiry {
                if let Some(sleep) = &mut expiry.sleep {
                    if sleep.as_mut().poll(cx).is_ready() {
                        continue;
                    }
                }
            }
        }
    }

    /// Register `cx` with every source that can bring this stream a frame.
    fn arm(&mut self, cx: &mut Context<'_>) {
        if let Some(inbox) = &self.inbox {
            inbox.register(cx.waker());
        }
        if self.swept {
            return;
        }
        self.info.hub.wait(cx.waker(), &mut self.registered);
        if let Some(expiry) = &mut self.expiry {
            if expiry.sleep.is_none() {
                expiry.sleep = Some(Box::pin(tokio::time::sleep_until(expiry.at)));
            }
        }
    }

    /// The start or a catch-up: `Ready(None)` once it is done (the ring follows).
    fn poll_catchup(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let Some(catchup) = self.catchup.as_mut() else {
                return Poll::Ready(None);
            };
            if let Some(frame) = catchup.queued.pop_front() {
                return Poll::Ready(Some(frame));
            }
            if let Some(start) = catchup.plan.take() {
                match start {
                    Start::Ready(plan) => self.begin(plan),
                    Start::Fetch(fetch) => catchup.fetching = Some(fetch.run().boxed()),
                }
                continue;
            }
            if let Some(fetching) = catchup.fetching.as_mut() {
                let result = match fetching.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => result,
                };
                catchup.fetching = None;
                match result {
                    Ok(plan) => {
                        self.begin(plan);
                        continue;
                    }
                    Err(err) => {
                        // The client keeps its resume point and comes back; nothing is lost.
                        tracing::warn!(
                            connection_id = %self.connection_id(),
                            %err,
                            "cannot read missed events; ending the stream"
                        );
                        self.catchup = None;
                        self.finished = true;
                        return Poll::Ready(None);
                    }
                }
            }
            if let Some(frame) = catchup.fetched.pop_front() {
                if frame.pos > self.last && self.access.sees(&frame) {
                    self.last = frame.pos;
                    self.metrics.events_replayed.inc();
                    self.metrics.events_delivered.inc();
                    self.info.sent += 1;
                    return Poll::Ready(Some(frame.bytes.clone()));
                }
                continue;
            }
            self.catchup = None;
            return Poll::Ready(None);
        }
    }

    /// Take a plan: queue `connected` (at the start) and `resync`, and move the cursor.
    fn begin(&mut self, plan: Plan) {
        let head = self.hub().ring().head();
        let sees = |f: &Frame| self.access.sees(f);
        let from_ring = self.hub().ring().count(plan.from, head, &sees);
        let from_redis = plan.fetched.iter().filter(|f| sees(f)).count() as u64;
        let first_id = plan
            .fetched
            .iter()
            .find(|f| sees(f))
            .map(|f| f.pos)
            .or_else(|| {
                match self
                    .hub()
                    .ring()
                    .next(plan.from, head, Reading::Scan(&sees))
                {
                    Next::Frame(f) => Some(f.pos),
                    _ => None,
                }
            });
        let Some(catchup) = self.catchup.as_mut() else {
            return;
        };
        if let Some(hello) = catchup.hello.take() {
            let connected = Connected {
                connection_id: self.info.hub.connection_id(self.info.number),
                server_id: self.info.hub.server_id().to_owned(),
                heartbeat_ms: hello.heartbeat_ms,
                retry_ms: hello.retry_ms,
                server_time: unix_ms(),
                replayed: from_ring + from_redis,
                fleet: Some(self.info.hub.fleet()),
            };
            catchup.queued.push_back(json_frame(
                protocol::EVENT_CONNECTED,
                Some(&plan.cursor),
                Some(hello.retry_ms),
                &connected,
            ));
            tracing::debug!(
                connection_id = %connected.connection_id,
                peer = %self.info.peer,
                resume = ?match &hello.resume {
                    Resume::Fresh => None,
                    Resume::Id(id) => Some(id.to_string()),
                    Resume::Malformed(raw) => Some(raw.escape_debug().to_string()),
                },
                replay = connected.replayed,
                subject = self.access.subject.as_deref().unwrap_or(""),
                topics = self.access.topics.len(),
                resync = ?plan.resync.as_ref().map(|r| r.0.as_str()),
                open = self.info.hub.open_streams(),
                "stream connected"
            );
        }
        if let Some((reason, requested_id)) = &plan.resync {
            self.metrics.resyncs.inc();
            let resync = Resync {
                reason: *reason,
                requested_id: requested_id.clone(),
                first_id: first_id.map(|pos| self.info.hub.id_text(pos)),
            };
            catchup
                .queued
                .push_back(json_frame(protocol::EVENT_RESYNC, None, None, &resync));
        }
        catchup.fetched = plan.fetched.into();
        self.last = plan.last;
        self.cursor = plan.from;
        self.replay_until = head;
        // A topic stream finds its missed events by walking the ring; live ones come
        // through its inbox.
        self.walk_until = if self.inbox.is_some() { head } else { 0 };
    }

    /// Heartbeats, revocations and the grant's expiry: `Some(frame)` to send (`Some(None)`:
    /// end), `None` when none is due.
    fn signals(&mut self) -> Option<Option<Bytes>> {
        if let Some(expiry) = &self.expiry {
            if expiry.at <= tokio::time::Instant::now() {
                return Some(Some(self.expired()));
            }
        }
        let hub = &self.info.hub;
        let revocations = hub.revocations();
        if revocations != self.seen_revocations {
            let seen = std::mem::replace(&mut self.seen_revocations, revocations);
            if let Some(subject) = self.access.subject.as_deref() {
                match hub.revoked_since(seen, subject) {
                    Some(false) => {}
                    Some(true) => return Some(Some(self.revoked())),
                    None => {
                        // Too many revocations since it last looked: it cannot tell whether
                        // one was its own. It ends; the client reconnects and is authorised
                        // anew.
                        self.finished = true;
                        return Some(None);
                    }
                }
            }
        }
        if hub.ping_seq() != self.seen_ping {
            let (seq, frame) = hub.ping();
            self.seen_ping = seq;
            if !frame.is_empty() {
                self.info.sent += 1;
                return Some(Some(frame));
            }
        }
        None
    }

    /// The next frame of the ring for this stream.
    fn read_ring(&mut self) -> Read {
        let ring = self.info.hub.ring();
        let mut until = ring.head();
        if self.info.hub.phase() == Phase::Draining {
            until = until.min(self.info.hub.drain_at());
        }
        if self.cursor >= self.walk_until
            && ring.broadcast_head() <= self.cursor
            && self
                .inbox
                .as_ref()
                .is_none_or(|i| i.newest() <= self.cursor)
        {
            // "Anything for me?" answered by atomic loads: no broadcast and no topic event of
            // its own after the cursor.
            self.cursor = self.cursor.max(until);
            return Read::Idle;
        }
        let access = &self.access;
        let sees = |f: &Frame| access.sees(f);
        let (next, until) = if self.cursor < self.walk_until {
            let until = until.min(self.walk_until);
            (ring.next(self.cursor, until, Reading::Scan(&sees)), until)
        } else if let Some(inbox) = &self.inbox {
            match inbox.after(self.cursor) {
                Routed::WalkUntil(to) => {
                    self.walk_until = to;
                    return Read::Again;
                }
                Routed::Next(routed) => (
                    ring.next(self.cursor, until, Reading::Routed(routed)),
                    until,
                ),
            }
        } else {
            (ring.next(self.cursor, until, Reading::Broadcasts), until)
        };
        match next {
            Next::Frame(frame) => {
                self.cursor = frame.seq;
                self.last = frame.pos;
                if frame.seq <= self.replay_until {
                    self.metrics.events_replayed.inc();
                }
                self.metrics.events_delivered.inc();
                self.info.sent += 1;
                Read::Frame(frame.bytes.clone())
            }
            Next::Idle => {
                // Nothing up to `until` is for this stream.
                let moved = until > self.cursor;
                self.cursor = self.cursor.max(until);
                if moved && self.cursor < ring.head() {
                    Read::Again
                } else {
                    Read::Idle
                }
            }
            Next::Behind => {
                tracing::debug!(
                    connection_id = %self.connection_id(),
                    "stream fell behind the ring; catching up from the log"
                );
                let start = self.log.catch_up(self.last);
                self.catchup = Some(Box::new(Catchup {
                    queued: VecDeque::with_capacity(1),
                    plan: Some(start),
                    fetching: None,
                    fetched: VecDeque::new(),
                    hello: None,
                }));
                Read::Again
            }
        }
    }

    fn connection_id(&self) -> String {
        self.info.hub.connection_id(self.info.number)
    }

    /// The stream is over: give back its slot, inbox and presence, and log its end — at once,
    /// not when its carrier drops it (a client that saw the stream end finds it counted out).
    fn end(&mut self) {
        let Some(slot) = self.info.slot.take() else {
            return;
        };
        let patterns: Vec<String> = self.access.topics.iter().map(|t| t.to_string()).collect();
        let info = &self.info;
        info.hub.presence_add(&patterns, -1);
        if info.inbox != 0 {
            info.hub.unsubscribe(info.inbox);
        }
        drop(slot);
        tracing::info!(
            connection_id = %info.hub.connection_id(info.number),
            peer = %info.peer,
            duration_ms = info.started.elapsed().as_millis() as u64,
            events_sent = info.sent,
            "stream disconnected"
        );
    }

    fn draining(&mut self) -> Bytes {
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
        self.info.sent += 1;
        json_frame(protocol::EVENT_DRAINING, None, None, &hint)
    }

    fn revoked(&mut self) -> Bytes {
        self.finished = true;
        self.metrics
            .streams_ended
            .with_label_values(&["revoked"])
            .inc();
        tracing::info!(
            connection_id = %self.connection_id(),
            subject = self.access.subject.as_deref().unwrap_or(""),
            "stream revoked"
        );
        let revoked = Revoked {
            reason: protocol::REVOKED_BY_PUBLISHER.to_owned(),
        };
        self.info.sent += 1;
        json_frame(protocol::EVENT_REVOKED, None, None, &revoked)
    }

    /// The grant expired: say `reauth` with where to resume, and end.
    fn expired(&mut self) -> Bytes {
        self.finished = true;
        self.metrics
            .streams_ended
            .with_label_values(&["expired"])
            .inc();
        self.expiry = None;
        tracing::debug!(
            connection_id = %self.connection_id(),
            "access grant expired; asking the client to reauthenticate"
        );
        let reauth = Reauth {
            reason: ReauthReason::Expired,
            last_event_id: Some(self.info.hub.id_text(self.last)),
        };
        self.info.sent += 1;
        json_frame(protocol::EVENT_REAUTH, None, None, &reauth)
    }
}

/// What a look at the ring came to.
enum Read {
    Frame(Bytes),
    /// Look again (the cursor moved, or a catch-up began).
    Again,
    /// Nothing for this stream now.
    Idle,
}

impl Stream for Feed {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let feed = self.get_mut();
        let next = feed.poll_frame(cx);
        if let Poll::Ready(None) = next {
            feed.end();
        }
        next
    }
}

/// What a stream keeps for its end: its slot under the stream cap and its place in the topic
/// counts (given back when it ends or is dropped, whichever comes first), and what its end logs.
struct StreamInfo {
    peer: SocketAddr,
    started: Instant,
    sent: u64,
    /// The stream's inbox in the hub's topic index (0: none).
    inbox: u64,
    /// Its slot's number (its connection id).
    number: u64,
    /// Its place under the stream cap, until it ends.
    slot: Option<Slot>,
    hub: Arc<Hub>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_stream_is_small() {
        // Every held stream keeps one boxed feed: its size is per-stream memory (issue 25: the
        // whole held stream, socket and slot included, under 0.75 KiB).
        // The start's state (`Catchup`) and a grant's timer live in boxes of their own, freed
        // or never made on the common path.
        let size = std::mem::size_of::<Feed>();
        assert!(size <= 320, "a feed is {size} bytes");
    }
}

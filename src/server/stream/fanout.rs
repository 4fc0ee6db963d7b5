//! Server only: the fan-out hub. Application events (from whichever event log runs, see
//! [`log`](crate::server::stream::log)) are encoded once into shared bytes, kept in a bounded ring of recent
//! events (the whole replay buffer of the embedded log; a cache of the stream's tail with Redis)
//! and handed to all streams through one broadcast channel — except events published to topics,
//! which a topic index puts only into the mailboxes of the streams subscribed to them (a publish
//! costs the topic's subscribers, not every stream); one heartbeat timer serves the whole process
//! and also carries the fleet view; a counter enforces the stream limit; per-pattern counts
//! answer presence.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::protocol::{self, EventId, Fleet, Ping, STORE_OK, STORE_UNREACHABLE};

/// Where an application event sits in the log; positions order events the same way on every
/// instance. Embedded log: `(0, seq)`; Redis: the stream id `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Milliseconds part of a stream id (0 in the embedded log).
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl Pos {
    /// Before every event.
    pub const ZERO: Pos = Pos { ms: 0, seq: 0 };

    /// A Redis stream id (`<ms>-<seq>`), or `None` if `s` is not one.
    pub fn parse_stream_id(s: &str) -> Option<Pos> {
        let (ms, seq) = s.split_once('-')?;
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Pos {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// A frame every stream receives, encoded once for all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// What it is.
    pub kind: FrameKind,
    /// The complete SSE frame, ready to write.
    pub bytes: Bytes,
    /// Which streams it is for.
    pub target: Target,
}

/// Which streams a frame is for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// Every stream (an untargeted event, a heartbeat, a drain).
    #[default]
    All,
    /// Streams granted and subscribed to one of these topics (valid, 1–64).
    Topics(Topics),
    /// The streams of one subject (a revocation).
    Subject(Arc<str>),
}

/// The topics of one event, shared by every copy of its frame.
pub type Topics = Arc<[Box<str>]>;

/// `Some` topics for a targeted event, from a list the caller validated.
pub fn topics_of(topics: &[String]) -> Option<Topics> {
    (!topics.is_empty()).then(|| topics.iter().map(|t| t.as_str().into()).collect())
}

/// The kind of a shared frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A heartbeat (no id: it must not move a client's `Last-Event-ID`).
    Ping {
        /// Its sequence number.
        seq: u64,
    },
    /// A published application event.
    App {
        /// Its place in the log.
        pos: Pos,
    },
    /// Control, not sent as is: the server is draining; each stream says `draining` (with its
    /// own jittered hint) and ends. In the channel, so streams need no extra waiter each.
    Drain,
    /// Control: end the stream now (the drain window is over).
    Close,
    /// Control: the subject in the frame's [`Target::Subject`] was revoked; its streams say
    /// `revoked` and end.
    Revoke,
}

impl Frame {
    /// The position of an application event, `None` for anything else.
    pub fn app_pos(&self) -> Option<Pos> {
        match self.kind {
            FrameKind::App { pos } => Some(pos),
            FrameKind::Ping { .. } | FrameKind::Drain | FrameKind::Close | FrameKind::Revoke => {
                None
            }
        }
    }

    /// The sequence of an application event, `None` for a ping.
    #[cfg(test)]
    pub fn app_seq(&self) -> Option<u64> {
        self.app_pos().map(|p| p.seq)
    }
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a resume point could not be honoured (shared with the client).
pub use crate::protocol::ResyncReason;

/// How this process names event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdStyle {
    /// Embedded log: `<server_id>-<seq>`, meaningful only to this process.
    Process,
    /// Redis Streams: the stream id `<ms>-<seq>`, the same on every instance.
    Stream,
}

/// What a new stream starts with (the part the hub can decide alone, under its lock).
#[derive(Debug)]
pub struct Snapshot {
    /// Live frames after `head`.
    pub rx: broadcast::Receiver<Arc<Frame>>,
    /// How many frames the shared channel had carried when `rx` was made (see
    /// [`Hub::shared_sent`]).
    pub sent: u64,
    /// The newest event handed out so far ([`Pos::ZERO`] if none).
    pub head: Pos,
    /// The events after the requested point, if the ring holds all of them.
    pub replay: Option<Vec<Arc<Frame>>>,
    /// The ring's oldest event, if any.
    pub oldest: Option<Pos>,
    /// Everything the ring holds, for a resync of the embedded log.
    pub ring: Vec<Arc<Frame>>,
    /// The stream's own queue of topic-targeted events after `head` (when it subscribed to
    /// topics).
    pub mailbox: Option<Mailbox>,
}

/// A stream's queue of the topic-targeted events it subscribed to: filled by the publish that
/// matches it through the topic index (so a publish costs the topic's subscribers, not every
/// stream). Closed when the stream fell `send_queue` events behind.
#[derive(Debug)]
pub struct Mailbox {
    /// Its key in the index (give it back with [`Hub::unsubscribe`]).
    pub id: u64,
    /// Targeted events, in log order.
    pub rx: mpsc::Receiver<Arc<Frame>>,
}

/// Hashes the hub's own mailbox ids (sequential `u64`s, never chosen by a client) with one
/// multiplication: the index is walked on every topic publish, and SipHash's DoS resistance buys
/// nothing for keys the server hands out itself.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing: spreads sequential ids over the high bits hashbrown probes with.
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

struct Buffer {
    /// The newest event ([`Pos::ZERO`] = none yet).
    head: Pos,
    /// The position just before `events.front()`, when known (every event after it is here).
    base: Option<Pos>,
    events: VecDeque<Arc<Frame>>,
    /// The topic index: subscribed pattern (`users/42`, `users/*`) → the mailboxes that read
    /// it, each with its sender (a publish reaches a subscriber with this one lookup).
    index: HashMap<String, IdMap<mpsc::Sender<Arc<Frame>>>>,
    /// Every open mailbox: the patterns it is indexed under (to take it out again).
    mailboxes: IdMap<Vec<String>>,
    next_mailbox: u64,
}

/// Shared by all streams of one server process.
pub struct Hub {
    server_id: String,
    ids: IdStyle,
    tx: broadcast::Sender<Arc<Frame>>,
    buffer: Mutex<Buffer>,
    replay_capacity: usize,
    /// Capacity of a stream's mailbox.
    send_queue: usize,
    open: AtomicUsize,
    next_connection: AtomicU64,
    max_connections: usize,
    fleet: watch::Sender<Fleet>,
    /// Open streams per subscribed pattern (its text, e.g. `users/42` or `users/*`).
    presence: Mutex<HashMap<String, u64>>,
    /// Bumped on every change of `presence` (the Redis log republishes it then).
    presence_changes: AtomicU64,
    /// Rung whenever frames were handed on (see [`Doorbell`]).
    doorbells: RwLock<Vec<Weak<Doorbell>>>,
    /// Frames sent on the shared channel so far (counted under the buffer's lock, before
    /// each send).
    sent: AtomicU64,
}

/// Rung by the hub after it handed frames on: a writer that drives many streams at once (the
/// sharded writers of `serve()`) waits on this one bell instead of on every stream's sources.
/// A frame on the shared channel also raises [`Doorbell::take_shared`] (look at every stream);
/// a topic publish only rings (the streams it reached were woken through their mailboxes,
/// whose wakers need not ring themselves: one ring per publish, not per subscriber).
#[derive(Debug, Default)]
pub struct Doorbell {
    notify: Notify,
    shared: AtomicBool,
}

impl Doorbell {
    /// Ring it (one permit is kept if nobody waits).
    pub fn ring(&self) {
        self.notify.notify_one();
    }

    /// Completes when rung (at once if it was rung since the last wait).
    pub async fn rung(&self) {
        self.notify.notified().await;
    }

    /// Whether a frame went out on the shared channel since the last call.
    pub fn take_shared(&self) -> bool {
        self.shared.swap(false, Ordering::AcqRel)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("server_id", &self.server_id)
            .field("ids", &self.ids)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with a fresh random server id and embedded-log ids. `send_queue` is how many
    /// frames a stream may fall behind before it is dropped as too slow.
    #[cfg(test)]
    pub fn new(max_connections: usize, replay_capacity: usize, send_queue: usize) -> Arc<Self> {
        Hub::with_ids(
            max_connections,
            replay_capacity,
            send_queue,
            IdStyle::Process,
        )
    }

    /// A hub whose event ids follow `ids`.
    pub fn with_ids(
        max_connections: usize,
        replay_capacity: usize,
        send_queue: usize,
        ids: IdStyle,
    ) -> Arc<Self> {
        let (tx, _) = broadcast::channel(send_queue.max(1));
        let embedded = ids == IdStyle::Process;
        let (fleet, _) = watch::channel(Fleet {
            clients: 0,
            instances: 1,
            // The Redis log is unreachable until its first answer.
            store: if embedded {
                STORE_OK
            } else {
                STORE_UNREACHABLE
            }
            .to_owned(),
        });
        Arc::new(Hub {
            server_id: format!("{:08x}", rand::random::<u32>()),
            ids,
            tx,
            buffer: Mutex::new(Buffer {
                head: Pos::ZERO,
                // The embedded log starts complete; a stream's tail starts unknown.
                base: embedded.then_some(Pos::ZERO),
                events: VecDeque::with_capacity(replay_capacity.min(4096)),
                index: HashMap::new(),
                mailboxes: IdMap::default(),
                next_mailbox: 1,
            }),
            send_queue: send_queue.max(1),
            replay_capacity,
            open: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            max_connections,
            fleet,
            presence: Mutex::new(HashMap::new()),
            presence_changes: AtomicU64::new(0),
            doorbells: RwLock::new(Vec::new()),
            sent: AtomicU64::new(0),
        })
    }

    /// Random per process start; the epoch of every id the embedded log assigns.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Streams open right now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The id of event `seq` of this process (embedded log).
    pub fn event_id(&self, seq: u64) -> EventId {
        EventId {
            epoch: self.server_id.clone(),
            seq,
        }
    }

    /// The id clients see for `pos`.
    pub fn id_text(&self, pos: Pos) -> String {
        match self.ids {
            IdStyle::Process => format!("{}-{}", self.server_id, pos.seq),
            IdStyle::Stream => format!("{}-{}", pos.ms, pos.seq),
        }
    }

    /// The newest event handed to streams.
    pub fn head(&self) -> Pos {
        self.lock().head
    }

    /// Claim a stream slot, or `None` when the limit is reached.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let n = self.next_connection.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            hub: Arc::clone(self),
            connection_id: format!("{}-c{n}", self.server_id),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Encode an application event once; `topics` (`None`: a broadcast) travel with it.
    pub fn encode_app(
        &self,
        pos: Pos,
        name: &str,
        data: &str,
        topics: Option<Topics>,
    ) -> Arc<Frame> {
        let id = self.id_text(pos);
        let mut text = String::with_capacity(name.len() + id.len() + data.len() + 32);
        protocol::encode_frame(&mut text, Some(name), Some(&id), None, data);
        Arc::new(Frame {
            kind: FrameKind::App { pos },
            bytes: Bytes::from(text),
            target: topics.map_or(Target::All, Target::Topics),
        })
    }

    /// Publish into the embedded log: give the event the next id, keep it, send it to the
    /// streams it is for.
    pub fn publish(&self, name: String, data: String, topics: Option<Topics>) -> EventId {
        let mut buf = self.lock();
        let pos = Pos {
            ms: 0,
            seq: buf.head.seq + 1,
        };
        let frame = self.encode_app(pos, &name, &data, topics);
        self.push(&mut buf, frame);
        self.event_id(pos.seq)
    }

    /// Hand on an event the shared log already ordered (Redis). Events at or before the head
    /// were handed on already and are ignored. Returns whether it was new.
    pub fn deliver(&self, pos: Pos, name: &str, data: &str, topics: Option<Topics>) -> bool {
        let mut buf = self.lock();
        if pos <= buf.head {
            return false;
        }
        let frame = self.encode_app(pos, name, data, topics);
        self.push(&mut buf, frame);
        true
    }

    /// End every stream of `subject` in this process with `revoked`.
    pub fn revoke(&self, subject: &str) {
        self.send_shared(
            &mut self.lock(),
            Arc::new(Frame {
                kind: FrameKind::Revoke,
                bytes: Bytes::new(),
                target: Target::Subject(subject.into()),
            }),
        );
    }

    /// Count a stream's subscribed patterns in (`+1`) or out (`-1`).
    pub fn presence_add(&self, patterns: &[String], delta: i64) {
        if patterns.is_empty() {
            return;
        }
        let mut map = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        for p in patterns {
            if delta > 0 {
                *map.entry(p.clone()).or_insert(0) += 1;
            } else if let Some(n) = map.get_mut(p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(p);
                }
            }
        }
        self.presence_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Streams of this process that an event published to `topic` reaches: those subscribed
    /// to it exactly or to a prefix pattern above it.
    pub fn presence(&self, topic: &str) -> u64 {
        let map = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        presence_patterns(topic)
            .iter()
            .filter_map(|p| map.get(p))
            .sum()
    }

    /// Every subscribed pattern with its stream count, and the change counter it belongs to.
    pub fn presence_table(&self) -> (u64, Vec<(String, u64)>) {
        let map = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        let changes = self.presence_changes.load(Ordering::Relaxed);
        (changes, map.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    /// Fill the ring with the stream's tail before following it (no stream has seen these: they
    /// are not broadcast). Only before the first delivery.
    pub fn preload(&self, frames: Vec<Arc<Frame>>) {
        let mut buf = self.lock();
        if buf.head != Pos::ZERO || !buf.events.is_empty() {
            return;
        }
        let keep = frames.len().saturating_sub(self.replay_capacity);
        for frame in frames.into_iter().skip(keep) {
            if let Some(pos) = frame.app_pos() {
                buf.head = pos;
                buf.events.push_back(frame);
            }
        }
    }

    fn push(&self, buf: &mut Buffer, frame: Arc<Frame>) {
        let Some(pos) = frame.app_pos() else { return };
        buf.head = pos;
        if self.replay_capacity > 0 {
            if buf.events.len() == self.replay_capacity {
                if let Some(gone) = buf.events.pop_front() {
                    buf.base = gone.app_pos();
                }
            }
            buf.events.push_back(Arc::clone(&frame));
        } else {
            buf.base = Some(pos);
        }
        // Sent under the lock so a concurrent `subscribe` sees each event exactly once: either
        // in its snapshot or on its receiver (or mailbox), and a stream sees its two sources
        // filled in log order.
        match &frame.target {
            Target::Topics(topics) => {
                let topics = Arc::clone(topics);
                Self::post(buf, &frame, &topics);
                self.ring(false);
            }
            Target::All | Target::Subject(_) => self.send_shared(buf, frame),
        }
    }

    /// Put a topic-targeted event into the mailbox of every stream subscribed to one of its
    /// topics (once each), through the index: work in proportion to those streams. A full
    /// mailbox is closed: that stream ends as too slow and resumes by `Last-Event-ID`.
    fn post(buf: &mut Buffer, frame: &Arc<Frame>, topics: &[Box<str>]) {
        let lists: Vec<_> = topics
            .iter()
            .flat_map(|topic| presence_patterns(topic))
            .filter_map(|pattern| buf.index.get(&pattern))
            .collect();
        let mut full = Vec::new();
        let mut send = |id: u64, tx: &mpsc::Sender<Arc<Frame>>| {
            if tx.try_send(Arc::clone(frame)).is_err() {
                full.push(id);
            }
        };
        match lists.as_slice() {
            // One subscribed pattern matches (the common case): each stream is in it once.
            [only] => only.iter().for_each(|(id, tx)| send(*id, tx)),
            _ => {
                // Once per stream, however many of its patterns match.
                let mut seen = IdSet::default();
                for list in &lists {
                    for (id, tx) in list.iter() {
                        if seen.insert(*id) {
                            send(*id, tx);
                        }
                    }
                }
            }
        }
        for id in full {
            Self::remove_mailbox(buf, id);
        }
    }

    fn remove_mailbox(buf: &mut Buffer, id: u64) {
        if let Some(patterns) = buf.mailboxes.remove(&id) {
            for pattern in patterns {
                if let Some(ids) = buf.index.get_mut(&pattern) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        buf.index.remove(&pattern);
                    }
                }
            }
        }
    }

    /// A new [`Doorbell`], rung from now on whenever frames are handed on; it stops being
    /// rung when the last holder drops it.
    pub fn doorbell(&self) -> Arc<Doorbell> {
        let bell = Arc::new(Doorbell::default());
        let mut bells = self.doorbells.write().unwrap_or_else(|p| p.into_inner());
        bells.retain(|b| b.strong_count() > 0);
        bells.push(Arc::downgrade(&bell));
        bell
    }

    /// Ring every doorbell; `shared`: a frame went out on the shared channel.
    fn ring(&self, shared: bool) {
        let bells = self.doorbells.read().unwrap_or_else(|p| p.into_inner());
        for bell in bells.iter().filter_map(Weak::upgrade) {
            if shared {
                bell.shared.store(true, Ordering::Release);
            }
            bell.ring();
        }
    }

    /// Send on the shared channel (under the buffer's lock: `_buf`) and say so.
    fn send_shared(&self, _buf: &mut Buffer, frame: Arc<Frame>) {
        self.sent.fetch_add(1, Ordering::AcqRel);
        let _ = self.tx.send(frame);
        self.ring(true);
    }

    /// How many frames the shared channel has carried. A stream that has received as many
    /// (counting from its [`Snapshot::sent`]) has nothing waiting there, so it need not look
    /// (a look at an empty channel takes the channel's lock, which every stream shares): a
    /// frame sent after this read rings the doorbells, or wakes a waiting receiver.
    pub fn shared_sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    /// Give a stream's mailbox back (the stream ended).
    pub fn unsubscribe(&self, mailbox: u64) {
        Self::remove_mailbox(&mut self.lock(), mailbox);
    }

    /// Subscribe a new stream; `after` is where it resumes (`None`: a fresh start).
    #[cfg(test)]
    pub fn subscribe(&self, after: Option<Pos>) -> Snapshot {
        self.subscribe_to(after, &[])
    }

    /// Subscribe a new stream reading `patterns` (besides the broadcasts); `after` is where it
    /// resumes (`None`: a fresh start).
    pub fn subscribe_to(&self, after: Option<Pos>, patterns: &[String]) -> Snapshot {
        let mut buf = self.lock();
        let rx = self.tx.subscribe();
        let mailbox = (!patterns.is_empty()).then(|| {
            let id = buf.next_mailbox;
            buf.next_mailbox += 1;
            let (tx, rx) = mpsc::channel(self.send_queue);
            for pattern in patterns {
                buf.index
                    .entry(pattern.clone())
                    .or_default()
                    .insert(id, tx.clone());
            }
            buf.mailboxes.insert(id, patterns.to_vec());
            Mailbox { id, rx }
        });
        let oldest = buf.events.front().and_then(|f| f.app_pos());
        let replay = after.and_then(|x| {
            if x == buf.head {
                return Some(Vec::new());
            }
            if buf.base == Some(x) {
                return Some(buf.events.iter().cloned().collect());
            }
            let at = buf
                .events
                .binary_search_by(|f| f.app_pos().unwrap_or(Pos::ZERO).cmp(&x))
                .ok()?;
            Some(buf.events.iter().skip(at + 1).cloned().collect())
        });
        Snapshot {
            rx,
            sent: self.sent.load(Ordering::Acquire),
            head: buf.head,
            replay,
            oldest,
            ring: buf.events.iter().cloned().collect(),
            mailbox,
        }
    }

    /// The fleet view streams are told about.
    pub fn fleet(&self) -> Fleet {
        let mut fleet = self.fleet.borrow().clone();
        if self.ids == IdStyle::Process {
            fleet.clients = self.open_connections() as u64;
        }
        fleet
    }

    /// Whether the event log is reachable.
    pub fn store_ok(&self) -> bool {
        self.fleet.borrow().store_ok()
    }

    /// Record whether the event log answers; a change is announced at once (a ping).
    pub fn set_store_ok(&self, ok: bool) {
        let store = if ok { STORE_OK } else { STORE_UNREACHABLE };
        self.fleet.send_if_modified(|f| {
            let changed = f.store != store;
            f.store = store.to_owned();
            changed
        });
    }

    /// Record the fleet's size (announced with the next ping).
    pub fn set_fleet_size(&self, clients: u64, instances: u32) {
        self.fleet.send_if_modified(|f| {
            f.clients = clients;
            f.instances = instances;
            false
        });
    }

    /// Send a frame to every stream (heartbeats).
    pub fn broadcast(&self, frame: Frame) {
        self.send_shared(&mut self.lock(), Arc::new(frame));
    }

    /// Send a control frame to every stream.
    pub fn control(&self, kind: FrameKind) {
        self.broadcast(Frame {
            kind,
            bytes: Bytes::new(),
            target: Target::All,
        });
    }

    /// Ping every `interval` until `stop` is cancelled. One timer for the whole process. A
    /// change of the event log's health goes out at once as an extra ping, so pages say
    /// "updates delayed" within moments, not a heartbeat later.
    pub async fn run_heartbeat(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changes = self.fleet.subscribe();
        let mut seq = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    changes.borrow_and_update();
                }
            }
            seq += 1;
            let mut text = String::with_capacity(128);
            let ping = Ping {
                seq,
                server_time: unix_ms(),
                fleet: Some(self.fleet()),
            };
            if protocol::encode_json_frame(&mut text, protocol::EVENT_PING, None, None, &ping)
                .is_ok()
            {
                self.broadcast(Frame {
                    kind: FrameKind::Ping { seq },
                    bytes: Bytes::from(text),
                    target: Target::All,
                });
            }
        }
    }
}

/// The subscription patterns whose streams an event to `topic` reaches: `topic` itself and
/// `a/*`, `a/b/*`, … for every `/` in it (so a presence count costs the topic's depth, not the
/// number of patterns).
pub fn presence_patterns(topic: &str) -> Vec<String> {
    let mut out = vec![topic.to_owned()];
    for (i, b) in topic.bytes().enumerate() {
        if b == b'/' && i > 0 && i + 1 < topic.len() {
            out.push(format!("{}*", &topic[..=i]));
        }
    }
    out
}

/// A claimed stream slot; released when dropped.
#[derive(Debug)]
pub struct Slot {
    hub: Arc<Hub>,
    /// Unique per stream.
    pub connection_id: String,
}

impl Slot {
    /// The hub this slot belongs to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(frames: &[Arc<Frame>]) -> Vec<u64> {
        frames.iter().map(|f| f.app_seq().unwrap_or(0)).collect()
    }

    fn publish_n(hub: &Hub, n: u64) {
        for i in 0..n {
            hub.publish("update".into(), format!("{{\"i\":{i}}}"), None);
        }
    }

    fn at(ms: u64, seq: u64) -> Pos {
        Pos { ms, seq }
    }

    #[test]
    fn admission_respects_the_limit_and_frees_on_drop() {
        let hub = Hub::new(2, 8, 8);
        let a = hub.admit().expect("first");
        let b = hub.admit().expect("second");
        assert!(hub.admit().is_none());
        assert_eq!(hub.open_connections(), 2);
        assert_ne!(a.connection_id, b.connection_id);
        drop(a);
        assert_eq!(hub.open_connections(), 1);
        assert!(hub.admit().is_some());
    }

    #[tokio::test]
    async fn doorbells_ring_once_per_hand_on_and_say_when_the_shared_channel_carried_it() {
        let hub = Hub::new(4, 8, 8);
        let bell = hub.doorbell();
        use std::future::Future;
        let rung = |bell: &Doorbell| {
            let mut waiting = Box::pin(bell.rung());
            let waker = futures::task::noop_waker();
            waiting
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker))
                .is_ready()
        };
        assert!(!rung(&bell), "nothing handed on yet");
        // A broadcast: rung, and the shared channel carried a frame (walk every stream).
        publish_n(&hub, 1);
        assert!(rung(&bell));
        assert!(bell.take_shared());
        assert!(!bell.take_shared(), "taken once");
        // A topic publish: rung (its subscribers' mailboxes were filled), nothing shared.
        hub.publish("update".into(), "1".into(), topics(&["docs/7"]));
        assert!(rung(&bell));
        assert!(!bell.take_shared());
        // Pings and revocations go through the shared channel too.
        hub.revoke("alice");
        assert!(rung(&bell) && bell.take_shared());
        // A dropped bell is let go of at the next new one.
        drop(bell);
        let _other = hub.doorbell();
        assert_eq!(hub.doorbells.read().unwrap().len(), 1);
    }

    #[test]
    fn the_shared_count_says_exactly_how_many_frames_a_receiver_has_waiting() {
        let hub = Hub::new(4, 8, 8);
        publish_n(&hub, 2);
        let mut sub = hub.subscribe(None);
        assert_eq!(
            sub.sent,
            hub.shared_sent(),
            "nothing waits for a new receiver"
        );
        publish_n(&hub, 1);
        hub.control(FrameKind::Drain);
        hub.revoke("alice");
        // Topic events go to mailboxes, not the shared channel: not counted.
        hub.publish("update".into(), "1".into(), topics(&["docs/7"]));
        let waiting = hub.shared_sent() - sub.sent;
        assert_eq!(waiting, 3);
        let mut got = 0;
        while sub.rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, waiting);
    }

    #[test]
    fn server_ids_are_random_hex() {
        let (a, b) = (Hub::new(1, 1, 1), Hub::new(1, 1, 1));
        assert_eq!(a.server_id().len(), 8);
        assert!(a.server_id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.server_id(), b.server_id());
    }

    #[test]
    fn app_frames_are_encoded_once_with_name_id_and_data() {
        let hub = Hub::new(1, 8, 8);
        let mut sub = hub.subscribe(None);
        let id = hub.publish("update".into(), "{\"a\":1}".into(), None);
        let frame = sub.rx.try_recv().unwrap();
        assert_eq!(
            std::str::from_utf8(&frame.bytes).unwrap(),
            format!("event: update\nid: {id}\ndata: {{\"a\":1}}\n\n")
        );
    }

    #[test]
    fn ids_are_monotonic_and_carry_the_server_id() {
        let hub = Hub::new(1, 8, 8);
        let a = hub.publish("x".into(), "1".into(), None);
        let b = hub.publish("x".into(), "2".into(), None);
        assert_eq!(a.epoch, hub.server_id());
        assert_eq!((a.seq, b.seq), (1, 2));
    }

    #[test]
    fn stream_ids_parse_and_order() {
        assert_eq!(
            Pos::parse_stream_id("1700000000000-3"),
            Some(at(1_700_000_000_000, 3))
        );
        assert_eq!(Pos::parse_stream_id("0-0"), Some(Pos::ZERO));
        for bad in [
            "",
            "1",
            "a-1",
            "1-",
            "-1",
            "1-2-3",
            "1-+2",
            "123456789012345678901-0",
        ] {
            assert_eq!(Pos::parse_stream_id(bad), None, "{bad:?}");
        }
        assert!(at(1, 9) < at(2, 0));
        assert!(at(2, 0) < at(2, 1));
    }

    #[test]
    fn the_ring_answers_resume_points_it_holds_completely() {
        let hub = Hub::with_ids(10, 3, 64, IdStyle::Stream);
        for p in [at(10, 0), at(10, 1), at(11, 0), at(12, 0)] {
            assert!(hub.deliver(p, "x", "1", None));
        }
        assert!(
            !hub.deliver(at(11, 0), "x", "1", None),
            "old positions are ignored"
        );
        // The ring holds 10-1, 11-0, 12-0; 10-0 was evicted, so it is the ring's base.
        let replay = |x| hub.subscribe(Some(x)).replay.map(|r| r.len());
        assert_eq!(replay(at(12, 0)), Some(0));
        assert_eq!(replay(at(11, 0)), Some(1));
        assert_eq!(replay(at(10, 1)), Some(2));
        assert_eq!(replay(at(10, 0)), Some(3), "the evicted event is the base");
        assert_eq!(replay(at(9, 0)), None, "older: ask the log");
        assert_eq!(replay(at(11, 5)), None, "not an id the ring knows");
        assert_eq!(replay(at(13, 0)), None, "beyond the head");
        assert_eq!(hub.id_text(at(12, 0)), "12-0");
        assert_eq!(hub.subscribe(None).head, at(12, 0));
    }

    #[test]
    fn preload_fills_the_ring_without_broadcasting() {
        let hub = Hub::with_ids(10, 2, 64, IdStyle::Stream);
        let mut sub = hub.subscribe(None);
        let frames = [at(1, 0), at(2, 0), at(3, 0)]
            .into_iter()
            .map(|p| hub.encode_app(p, "x", "1", None))
            .collect();
        hub.preload(frames);
        assert!(sub.rx.try_recv().is_err());
        assert_eq!(hub.head(), at(3, 0));
        assert_eq!(
            hub.subscribe(Some(at(2, 0))).replay.map(|r| r.len()),
            Some(1)
        );
    }

    #[tokio::test]
    async fn events_published_after_subscribe_arrive_live_exactly_once() {
        let hub = Hub::new(10, 100, 64);
        publish_n(&hub, 3);
        let mut sub = hub.subscribe(Some(at(0, 1)));
        publish_n(&hub, 2);
        assert_eq!(seqs(&sub.replay.unwrap()), vec![2, 3]);
        let mut live = vec![];
        while let Ok(f) = sub.rx.try_recv() {
            live.push(f);
        }
        assert_eq!(seqs(&live), vec![4, 5]);
    }

    fn topics(list: &[&str]) -> Option<Topics> {
        topics_of(&list.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn topic_events_go_through_the_index_to_their_subscribers_only() {
        let hub = Hub::new(10, 8, 2);
        let mut everyone = hub.subscribe(None);
        let mut alice = hub.subscribe_to(None, &["users/alice".into()]);
        let mut admin = hub.subscribe_to(None, &["users/*".into(), "users/alice".into()]);
        let mut bob = hub.subscribe_to(None, &["users/bob".into()]);
        hub.publish("x".into(), "1".into(), topics(&["users/alice", "docs/1"]));
        hub.publish("x".into(), "2".into(), None);
        // Not a single frame on the shared channel for a topic event.
        assert_eq!(everyone.rx.try_recv().unwrap().app_seq(), Some(2));
        assert!(everyone.rx.try_recv().is_err());
        let mb = |s: &mut Snapshot| s.mailbox.as_mut().unwrap().rx.try_recv().ok();
        assert_eq!(mb(&mut alice).and_then(|f| f.app_seq()), Some(1));
        assert_eq!(mb(&mut admin).and_then(|f| f.app_seq()), Some(1));
        assert!(mb(&mut admin).is_none(), "once, though two patterns match");
        hub.publish("x".into(), "1b".into(), topics(&["users/alice"]));
        assert!(mb(&mut alice).is_some());
        assert!(mb(&mut admin).is_some());
        assert!(mb(&mut admin).is_none(), "once for one topic too");
        assert!(mb(&mut bob).is_none());
        // The ring keeps them for replay (filtered per stream by the feed).
        assert_eq!(
            hub.subscribe(Some(Pos::ZERO)).replay.map(|r| r.len()),
            Some(3)
        );
        // A mailbox that falls `send_queue` behind is closed; the others go on.
        for _ in 0..3 {
            hub.publish("x".into(), "3".into(), topics(&["users/bob"]));
        }
        let bob_box = &mut bob.mailbox.as_mut().unwrap().rx;
        assert!(bob_box.try_recv().is_ok());
        assert!(bob_box.try_recv().is_ok());
        assert_eq!(
            bob_box.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        );
        // Given back, a mailbox leaves the index.
        hub.unsubscribe(alice.mailbox.as_ref().unwrap().id);
        hub.publish("x".into(), "4".into(), topics(&["users/alice"]));
        assert!(mb(&mut alice).is_none());
        assert!(mb(&mut admin).is_some());
        assert!(!hub.lock().index.contains_key("users/bob"));
    }

    #[test]
    fn index_routes_only_what_the_stream_sees() {
        // The feed does not re-check mailbox frames with `Access::sees`: a pattern the index
        // files an event under must match the event's topic, and every pattern that matches
        // must be one of them.
        let patterns = ["a", "a/b", "a/b/c", "a/*", "a/b/*", "b/*", "ab/*", "a/bc"];
        let topics = ["a", "a/b", "a/b/c", "a/bc", "ab/c", "b/a", "a/b/c/d"];
        for topic in topics {
            let routed = presence_patterns(topic);
            for text in patterns {
                let pattern = crate::protocol::TopicPattern::parse(text).expect(text);
                assert_eq!(
                    routed.iter().any(|r| r == text),
                    pattern.matches(topic),
                    "pattern {text} for topic {topic}"
                );
            }
        }
    }

    #[test]
    fn a_stream_under_two_matching_patterns_gets_a_multi_topic_event_once() {
        let hub = Hub::new(10, 8, 8);
        let mut s = hub.subscribe_to(None, &["users/*".into(), "users/bob".into()]);
        let mut one = hub.subscribe_to(None, &["users/alice".into()]);
        hub.publish(
            "x".into(),
            "1".into(),
            topics(&["users/alice", "users/bob"]),
        );
        hub.publish(
            "x".into(),
            "2".into(),
            topics(&["users/alice", "users/alice"]),
        );
        let got = |s: &mut Snapshot| {
            let rx = &mut s.mailbox.as_mut().unwrap().rx;
            std::iter::from_fn(|| rx.try_recv().ok().and_then(|f| f.app_seq())).collect::<Vec<_>>()
        };
        assert_eq!(got(&mut s), vec![1, 2]);
        assert_eq!(got(&mut one), vec![1, 2]);
    }

    #[test]
    fn the_id_hasher_spreads_sequential_ids() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let top: HashSet<u64> = (1..=256u64).map(|id| build.hash_one(id) >> 57).collect();
        assert!(top.len() > 64, "{} distinct top-7-bit values", top.len());
        let mut map = IdMap::default();
        for id in 0..1000u64 {
            map.insert(id, id * 2);
        }
        assert!((0..1000u64).all(|id| map.get(&id) == Some(&(id * 2))));
    }

    #[test]
    fn store_changes_are_kept_and_the_embedded_count_is_live() {
        let hub = Hub::with_ids(10, 8, 8, IdStyle::Stream);
        assert!(
            !hub.store_ok(),
            "Redis counts as unreachable until it answers"
        );
        hub.set_store_ok(true);
        hub.set_fleet_size(1234, 3);
        let fleet = hub.fleet();
        assert_eq!(
            (fleet.clients, fleet.instances, fleet.store_ok()),
            (1234, 3, true)
        );
        let embedded = Hub::new(10, 8, 8);
        let _slot = embedded.admit();
        assert_eq!(embedded.fleet().clients, 1);
        assert!(embedded.store_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_pings_every_interval_with_rising_seq() {
        let hub = Hub::new(10, 8, 8);
        let mut sub = hub.subscribe(None);
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(Arc::clone(&hub).run_heartbeat(Duration::from_millis(500), stop.clone()));
        let start = tokio::time::Instant::now();
        for want in 1..=3 {
            let frame = sub.rx.recv().await.unwrap();
            assert_eq!(frame.kind, FrameKind::Ping { seq: want });
            let text = std::str::from_utf8(&frame.bytes).unwrap();
            assert!(text.starts_with("event: ping\ndata: {\"seq\":"), "{text}");
            assert!(
                text.contains("\"fleet\":{\"clients\":0,\"instances\":1,\"store\":\"ok\"}"),
                "{text}"
            );
            assert_eq!(start.elapsed(), Duration::from_millis(500 * want));
        }
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_outage_is_announced_at_once() {
        let hub = Hub::with_ids(10, 8, 8, IdStyle::Stream);
        hub.set_store_ok(true);
        let mut sub = hub.subscribe(None);
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(Arc::clone(&hub).run_heartbeat(Duration::from_secs(60), stop.clone()));
        tokio::task::yield_now().await;
        let start = tokio::time::Instant::now();
        hub.set_store_ok(false);
        let frame = sub.rx.recv().await.unwrap();
        let text = std::str::from_utf8(&frame.bytes).unwrap();
        assert!(text.contains("\"store\":\"unreachable\""), "{text}");
        assert!(start.elapsed() < Duration::from_secs(1));
        stop.cancel();
        task.await.unwrap();
    }
}

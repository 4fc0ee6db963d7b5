//! Server only: the hub every stream of a process shares — the ring (one log), the topic index,
//! event ids, admission under the stream cap (a semaphore), and the signals a cursor reads
//! beside the ring: the newest heartbeat, the drain, and a short list of revocations. The hub
//! wakes readers when any of them changes: tasks that wait alone through their wakers, the
//! sharded writers through one [`Bell`] each.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::protocol::{self, EventId};
use crate::server::stream::fleet::FleetView;
use crate::server::stream::ring::{Pos, Ring, Topics};
use crate::server::stream::topics::{Inbox, Index, Presence};

/// How this process names event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdStyle {
    /// Embedded log: `<server_id>-<seq>`, meaningful only to this process.
    Process,
    /// Redis Streams: the stream id `<ms>-<seq>`, the same on every instance.
    Stream,
}

/// How a hub is sized.
#[derive(Debug, Clone, Copy)]
pub struct HubSize {
    /// Streams open at once, at most.
    pub max_streams: usize,
    /// Events that answer a resume point (the replay window).
    pub replay: usize,
    /// Events the ring keeps at least for live readers, and a stream's inbox capacity.
    pub live: usize,
}

/// Where the hub is in its life: streams read it as a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Serving.
    Live,
    /// Draining: every stream says `draining` (after the frames up to
    /// [`Hub::drain_at`]) and ends.
    Draining,
    /// Every stream ends now.
    Closed,
}

/// Kept revocations: a stream that has not looked at the list since more than this many
/// revocations ends (it reconnects and is authorised anew) rather than risk missing one.
const REVOCATIONS_KEPT: usize = 1024;

/// Rung by the hub whenever something every stream may read changed (a broadcast, a heartbeat,
/// the drain, a revocation): a writer driving many streams waits on this one bell instead of on
/// every stream.
#[derive(Debug, Default)]
pub struct Bell {
    notify: Notify,
    rung: AtomicBool,
}

impl Bell {
    /// Ring it (one permit is kept if nobody waits).
    pub fn ring(&self) {
        self.notify.notify_one();
    }

    /// Completes when rung (at once if it was rung since the last wait).
    pub async fn rung(&self) {
        self.notify.notified().await;
    }

    /// Whether the hub rang since the last call (a walk over every stream is due).
    pub fn take(&self) -> bool {
        self.rung.swap(false, Ordering::AcqRel)
    }
}

/// Wakers of streams that wait alone (a task per stream), woken all at once.
#[derive(Debug, Default)]
struct Waiters {
    list: Mutex<(u64, Vec<Waker>)>,
}

/// Shared by all streams of one server process.
pub struct Hub {
    server_id: String,
    ids: IdStyle,
    ring: Ring,
    /// The append lock: serialises appends, and orders a topic stream's subscription with them.
    index: Mutex<Index>,
    presence: Presence,
    inbox_capacity: usize,
    streams: Arc<Semaphore>,
    max_streams: usize,
    next_connection: AtomicU64,
    fleet: FleetView,
    ping: Mutex<Bytes>,
    ping_seq: AtomicU64,
    phase: AtomicU8,
    drain_at: AtomicU64,
    revocations: Mutex<VecDeque<(u64, Arc<str>)>>,
    revoke_gen: AtomicU64,
    waiters: Waiters,
    bells: RwLock<Vec<Weak<Bell>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("server_id", &self.server_id)
            .field("ids", &self.ids)
            .field("open", &self.open_streams())
            .finish_non_exhaustive()
    }
}

/// A new stream's place in the log.
#[derive(Debug)]
pub struct Subscription {
    /// The ring's head when it subscribed: frames after it are live for it.
    pub head: u64,
    /// The position of that head.
    pub head_pos: Pos,
    /// Its inbox and the inbox's id in the index (a stream with topics).
    pub inbox: Option<(u64, Arc<Inbox>)>,
}

impl Hub {
    /// A hub whose event ids follow `ids`, with a fresh random server id.
    pub fn new(size: HubSize, ids: IdStyle) -> Arc<Self> {
        let embedded = ids == IdStyle::Process;
        Arc::new(Hub {
            server_id: format!("{:08x}", rand::random::<u32>()),
            ids,
            ring: Ring::new(size.replay.max(size.live), size.replay, embedded),
            index: Mutex::new(Index::default()),
            presence: Presence::default(),
            inbox_capacity: size.live.max(1),
            streams: Arc::new(Semaphore::new(size.max_streams.min(Semaphore::MAX_PERMITS))),
            max_streams: size.max_streams.min(Semaphore::MAX_PERMITS),
            next_connection: AtomicU64::new(1),
            fleet: FleetView::new(embedded),
            ping: Mutex::new(Bytes::new()),
            ping_seq: AtomicU64::new(0),
            phase: AtomicU8::new(0),
            drain_at: AtomicU64::new(0),
            revocations: Mutex::new(VecDeque::new()),
            revoke_gen: AtomicU64::new(0),
            waiters: Waiters::default(),
            bells: RwLock::new(Vec::new()),
        })
    }

    /// Random per process start; the epoch of every id the embedded log assigns.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The one log.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Streams open right now.
    pub fn open_streams(&self) -> usize {
        self.max_streams - self.streams.available_permits()
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
        self.ring.head_pos()
    }

    /// Claim a stream slot, or `None` when the cap is reached.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let permit = Arc::clone(&self.streams).try_acquire_owned().ok()?;
        Some(Slot {
            _permit: permit,
            number: self.next_connection.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The connection id of the stream with slot number `number`: unique per stream.
    pub fn connection_id(&self, number: u64) -> String {
        format!("{}-c{number}", self.server_id)
    }

    /// Wait until no stream is open (every slot given back), or `until`. Returns whether none
    /// is. New streams must be refused meanwhile (the drain does that).
    pub async fn all_closed(&self, until: tokio::time::Instant) -> bool {
        let all = u32::try_from(self.max_streams).unwrap_or(u32::MAX);
        match tokio::time::timeout_at(until, self.streams.acquire_many(all)).await {
            Ok(Ok(_all)) => true,
            _ => self.open_streams() == 0,
        }
    }

    /// Encode an application event once.
    pub fn encode_app(&self, pos: Pos, name: &str, data: &str) -> Bytes {
        let id = self.id_text(pos);
        let mut text = String::with_capacity(name.len() + id.len() + data.len() + 32);
        protocol::encode_frame(&mut text, Some(name), Some(&id), None, data);
        Bytes::from(text)
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publish into the embedded log: the next id, kept in the ring, handed to its readers.
    pub fn publish(&self, name: &str, data: &str, topics: Option<Topics>) -> EventId {
        let index = self.lock_index();
        let pos = Pos {
            ms: 0,
            seq: self.ring.head_pos().seq + 1,
        };
        self.append(index, pos, name, data, topics);
        self.event_id(pos.seq)
    }

    /// Hand on an event the shared log already ordered (Redis). Events at or before the head
    /// were handed on already and are ignored. Returns whether it was new.
    pub fn deliver(&self, pos: Pos, name: &str, data: &str, topics: Option<Topics>) -> bool {
        let index = self.lock_index();
        if pos <= self.ring.head_pos() {
            return false;
        }
        self.append(index, pos, name, data, topics);
        true
    }

    /// Keep the event, route it to its topics' inboxes, then make it visible and wake its
    /// readers (the append lock is held until it is visible: frames become visible in order).
    fn append(
        &self,
        index: std::sync::MutexGuard<'_, Index>,
        pos: Pos,
        name: &str,
        data: &str,
        topics: Option<Topics>,
    ) {
        let bytes = self.encode_app(pos, name, data);
        let frame = self.ring.push(pos, bytes, topics);
        let reached = match &frame.topics {
            Some(topics) => index.route(frame.seq, topics),
            None => Vec::new(),
        };
        let broadcast = frame.topics.is_none().then_some(frame.seq);
        self.ring.publish(frame.seq, broadcast);
        drop(index);
        if broadcast.is_some() {
            self.wake_all();
        }
        for inbox in reached {
            inbox.wake();
        }
    }

    /// Fill the ring with the log's tail before following it (nobody has read these). Only
    /// before the first delivery.
    pub fn preload(&self, frames: Vec<Arc<crate::server::stream::ring::Frame>>) {
        let _index = self.lock_index();
        let frames = frames
            .iter()
            .map(|f| (f.pos, f.bytes.clone(), f.topics.clone()))
            .collect();
        self.ring.preload(frames);
    }

    /// Subscribe a new stream reading `patterns` (besides the broadcasts). A stream without
    /// topics takes no lock: it reads the head.
    pub fn subscribe(&self, patterns: &[String]) -> Subscription {
        if patterns.is_empty() {
            let (head, head_pos) = self.visible_head();
            return Subscription {
                head,
                head_pos,
                inbox: None,
            };
        }
        let mut index = self.lock_index();
        let inbox = index.subscribe(patterns, self.inbox_capacity);
        let (head, head_pos) = self.ring.head_both();
        drop(index);
        Subscription {
            head,
            head_pos,
            inbox: Some(inbox),
        }
    }

    /// The visible head and its position, consistent with each other.
    fn visible_head(&self) -> (u64, Pos) {
        // Under the append lock nothing is pushed but not yet visible: one short lock, a copy
        // of two numbers.
        let _index = self.lock_index();
        self.ring.head_both()
    }

    /// Give a stream's inbox back (the stream ended).
    pub fn unsubscribe(&self, inbox: u64) {
        self.lock_index().unsubscribe(inbox);
    }

    /// Count a stream's subscribed patterns in (`+1`) or out (`-1`).
    pub fn presence_add(&self, patterns: &[String], delta: i64) {
        self.presence.add(patterns, delta);
    }

    /// Streams of this process that an event published to `topic` reaches.
    pub fn presence(&self, topic: &str) -> u64 {
        self.presence.of(topic)
    }

    /// Every subscribed pattern with its stream count, and the change counter it belongs to.
    pub fn presence_table(&self) -> (u64, Vec<(String, u64)>) {
        self.presence.table()
    }

    /// The fleet view streams are told about.
    pub fn fleet(&self) -> protocol::Fleet {
        let mut fleet = self.fleet.get();
        if self.ids == IdStyle::Process {
            fleet.clients = self.open_streams() as u64;
        }
        fleet
    }

    /// Whether the event log is reachable.
    pub fn store_ok(&self) -> bool {
        self.fleet.store_ok()
    }

    /// Record whether the event log answers; a change is announced at once (a ping).
    pub fn set_store_ok(&self, ok: bool) {
        self.fleet.set_store_ok(ok);
    }

    /// Record the fleet's size (announced with the next ping).
    pub fn set_fleet_size(&self, clients: u64, instances: u32) {
        self.fleet.set_size(clients, instances);
    }

    /// The newest heartbeat: its number (0: none yet) and frame.
    pub fn ping(&self) -> (u64, Bytes) {
        let frame = self.ping.lock().unwrap_or_else(|p| p.into_inner());
        (self.ping_seq.load(Ordering::Acquire), frame.clone())
    }

    /// The newest heartbeat's number (0: none yet).
    pub fn ping_seq(&self) -> u64 {
        self.ping_seq.load(Ordering::Acquire)
    }

    /// Make `frame` the newest heartbeat and wake every stream.
    pub fn set_ping(&self, seq: u64, frame: Bytes) {
        *self.ping.lock().unwrap_or_else(|p| p.into_inner()) = frame;
        self.ping_seq.store(seq, Ordering::Release);
        self.wake_all();
    }

    /// Where the hub is in its life.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Live,
            1 => Phase::Draining,
            _ => Phase::Closed,
        }
    }

    /// The ring's head when the drain began: frames up to it still go out before `draining`.
    pub fn drain_at(&self) -> u64 {
        self.drain_at.load(Ordering::Acquire)
    }

    /// Every stream says `draining` and ends (after the frames published before now).
    pub fn start_draining(&self) {
        if self.phase() == Phase::Live {
            let _index = self.lock_index();
            self.drain_at.store(self.ring.head(), Ordering::Release);
            self.phase.store(1, Ordering::Release);
        }
        self.wake_all();
    }

    /// Every stream ends now.
    pub fn close(&self) {
        self.phase.store(2, Ordering::Release);
        self.wake_all();
    }

    /// End every stream of `subject` in this process with `revoked`.
    pub fn revoke(&self, subject: &str) {
        {
            let mut list = self.revocations.lock().unwrap_or_else(|p| p.into_inner());
            let generation = self.revoke_gen.load(Ordering::Relaxed) + 1;
            list.push_back((generation, subject.into()));
            if list.len() > REVOCATIONS_KEPT {
                list.pop_front();
            }
            self.revoke_gen.store(generation, Ordering::Release);
        }
        self.wake_all();
    }

    /// The newest revocation's number (0: none yet).
    pub fn revocations(&self) -> u64 {
        self.revoke_gen.load(Ordering::Acquire)
    }

    /// Whether `subject` was revoked after revocation number `seen`; `None` when the list no
    /// longer reaches back that far (the caller cannot know, and ends the stream).
    pub fn revoked_since(&self, seen: u64, subject: &str) -> Option<bool> {
        let list = self.revocations.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = list.front().map_or(u64::MAX, |(g, _)| *g);
        if oldest > seen + 1 && seen < self.revoke_gen.load(Ordering::Acquire) {
            return None;
        }
        Some(list.iter().any(|(g, s)| *g > seen && &**s == subject))
    }

    /// Wake `waker` at the next change every stream may read, unless it is already waiting
    /// for it (`registered`: the generation it registered in; `u64::MAX`: none).
    pub fn wait(&self, waker: &Waker, registered: &mut u64) {
        let mut list = self.waiters.list.lock().unwrap_or_else(|p| p.into_inner());
        if *registered == list.0 {
            return;
        }
        list.1.push(waker.clone());
        *registered = list.0;
    }

    /// A new [`Bell`], rung from now on at every change every stream may read; it stops being
    /// rung when the last holder drops it.
    pub fn bell(&self) -> Arc<Bell> {
        let bell = Arc::new(Bell::default());
        let mut bells = self.bells.write().unwrap_or_else(|p| p.into_inner());
        bells.retain(|b| b.strong_count() > 0);
        bells.push(Arc::downgrade(&bell));
        bell
    }

    fn wake_all(&self) {
        let woken = {
            let mut list = self.waiters.list.lock().unwrap_or_else(|p| p.into_inner());
            list.0 += 1;
            std::mem::take(&mut list.1)
        };
        for waker in woken {
            waker.wake();
        }
        let bells = self.bells.read().unwrap_or_else(|p| p.into_inner());
        for bell in bells.iter().filter_map(Weak::upgrade) {
            bell.rung.store(true, Ordering::Release);
            bell.ring();
        }
    }

    /// Ping every `interval` until `stop` is cancelled. One timer for the whole process. A
    /// change of the event log's health goes out at once as an extra ping, so pages say
    /// "updates delayed" within moments, not a heartbeat later.
    pub async fn run_heartbeat(
        self: Arc<Self>,
        interval: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changes = self.fleet.changes();
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
            let ping = protocol::Ping {
                seq,
                server_time: crate::server::stream::ring::unix_ms(),
                fleet: Some(self.fleet()),
            };
            if protocol::encode_json_frame(&mut text, protocol::EVENT_PING, None, None, &ping)
                .is_ok()
            {
                self.set_ping(seq, Bytes::from(text));
            }
        }
    }
}

/// A claimed stream slot; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    number: u64,
}

impl Slot {
    /// Unique per stream (its connection id's number).
    pub fn number(&self) -> u64 {
        self.number
    }
}

#[cfg(test)]
mod tests;

//! Server only: the fan-out hub. Application events get ids and go into a bounded replay buffer;
//! every frame (ping or event) is encoded once into shared bytes and handed to all streams
//! through one broadcast channel; one heartbeat timer serves the whole process; a counter
//! enforces the stream limit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::feed::Resume;
use crate::connection::protocol::{self, EventId, Ping};

/// A frame every stream receives, encoded once for all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// What it is.
    pub kind: FrameKind,
    /// The complete SSE frame, ready to write.
    pub bytes: Bytes,
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
        /// Sequence within this server process (the id is `<server_id>-<seq>`).
        seq: u64,
    },
    /// Control, not sent as is: the server is draining; each stream says `draining` (with its
    /// own jittered hint) and ends. In the channel, so streams need no extra waiter each.
    Drain,
    /// Control: end the stream now (the drain window is over).
    Close,
}

impl Frame {
    /// The sequence of an application event, `None` for a ping.
    pub fn app_seq(&self) -> Option<u64> {
        match self.kind {
            FrameKind::App { seq } => Some(seq),
            FrameKind::Ping { .. } | FrameKind::Drain | FrameKind::Close => None,
        }
    }
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a resume point could not be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// The id was assigned by another server process (restart, or another instance).
    OtherServer,
    /// The id is older than the oldest buffered event: some events are gone.
    TooOld,
    /// The id is from this server but beyond its newest event, or not an id at all.
    Unknown,
}

impl ResyncReason {
    /// Stable text for the `resync` event.
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::OtherServer => "other-server",
            ResyncReason::TooOld => "too-old",
            ResyncReason::Unknown => "unknown-id",
        }
    }
}

/// What a new stream starts with.
#[derive(Debug)]
pub struct Subscription {
    /// Live frames after the snapshot.
    pub rx: broadcast::Receiver<Arc<Frame>>,
    /// Buffered events the client missed, oldest first.
    pub replay: Vec<Arc<Frame>>,
    /// Set when the requested resume point could not be honoured.
    pub resync: Option<ResyncReason>,
    /// The stream's resume point (the `connected` event's id): the sequence just before the
    /// first event this stream delivers.
    pub cursor: u64,
}

struct Buffer {
    /// Sequence of the newest event (0 = none yet).
    head: u64,
    events: VecDeque<Arc<Frame>>,
}

/// Shared by all streams of one server process.
pub struct Hub {
    server_id: String,
    tx: broadcast::Sender<Arc<Frame>>,
    buffer: Mutex<Buffer>,
    replay_capacity: usize,
    open: AtomicUsize,
    next_connection: AtomicU64,
    max_connections: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("server_id", &self.server_id)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with a fresh random server id. `send_queue` is how many frames a stream may fall
    /// behind before it is dropped as too slow.
    pub fn new(max_connections: usize, replay_capacity: usize, send_queue: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(send_queue.max(1));
        Arc::new(Hub {
            server_id: format!("{:08x}", rand::random::<u32>()),
            tx,
            buffer: Mutex::new(Buffer {
                head: 0,
                events: VecDeque::with_capacity(replay_capacity.min(4096)),
            }),
            replay_capacity,
            open: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            max_connections,
        })
    }

    /// Random per process start; the epoch of every id this process assigns.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Streams open right now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The id of event `seq` of this process.
    pub fn event_id(&self, seq: u64) -> EventId {
        EventId {
            epoch: self.server_id.clone(),
            seq,
        }
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

    /// Publish an application event: give it the next id, buffer it, send it to every stream.
    pub fn publish(&self, name: String, data: String) -> EventId {
        let mut buf = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        buf.head += 1;
        let seq = buf.head;
        let id = self.event_id(seq).to_string();
        let mut text = String::with_capacity(name.len() + id.len() + data.len() + 32);
        protocol::encode_frame(&mut text, Some(&name), Some(&id), None, &data);
        let frame = Arc::new(Frame {
            kind: FrameKind::App { seq },
            bytes: Bytes::from(text),
        });
        if self.replay_capacity > 0 {
            if buf.events.len() == self.replay_capacity {
                buf.events.pop_front();
            }
            buf.events.push_back(Arc::clone(&frame));
        }
        // Sent under the lock so a concurrent `subscribe` sees each event exactly once: either
        // in its replay snapshot or on its receiver.
        let _ = self.tx.send(frame);
        self.event_id(seq)
    }

    /// Subscribe a new stream that resumes where the client asked (its `Last-Event-ID`).
    pub fn subscribe(&self, resume: &Resume) -> Subscription {
        let buf = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let oldest = buf
            .events
            .front()
            .and_then(|f| f.app_seq())
            .unwrap_or(buf.head + 1);
        let replay_after = |after: u64| -> Vec<Arc<Frame>> {
            let skip = after.saturating_sub(oldest - 1) as usize;
            buf.events.iter().skip(skip).cloned().collect()
        };
        let last = match resume {
            // A fresh client starts with the live stream.
            Resume::Fresh => {
                return Subscription {
                    rx,
                    replay: Vec::new(),
                    resync: None,
                    cursor: buf.head,
                }
            }
            Resume::Id(id) => id,
            // Not an id at all: the client expected continuity that cannot be given.
            Resume::Malformed(_) => {
                return Subscription {
                    rx,
                    replay: replay_after(oldest - 1),
                    resync: Some(ResyncReason::Unknown),
                    cursor: oldest - 1,
                }
            }
        };
        let resync = if last.epoch != self.server_id {
            Some(ResyncReason::OtherServer)
        } else if last.seq > buf.head {
            Some(ResyncReason::Unknown)
        } else if last.seq + 1 < oldest {
            Some(ResyncReason::TooOld)
        } else {
            None
        };
        match resync {
            None => Subscription {
                rx,
                replay: replay_after(last.seq),
                resync: None,
                cursor: last.seq,
            },
            // What the client missed is not fully known: give it everything still buffered.
            Some(reason) => Subscription {
                rx,
                replay: replay_after(oldest - 1),
                resync: Some(reason),
                cursor: oldest - 1,
            },
        }
    }

    /// Send a frame to every stream (heartbeats).
    pub fn broadcast(&self, frame: Frame) {
        let _ = self.tx.send(Arc::new(frame));
    }

    /// Send a control frame to every stream.
    pub fn control(&self, kind: FrameKind) {
        self.broadcast(Frame {
            kind,
            bytes: Bytes::new(),
        });
    }

    /// Ping every `interval` until `stop` is cancelled. One timer for the whole process.
    pub async fn run_heartbeat(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {
                    seq += 1;
                    let mut text = String::with_capacity(64);
                    let ping = Ping { seq, server_time: unix_ms() };
                    if protocol::encode_json_frame(&mut text, protocol::EVENT_PING, None, None, &ping).is_ok() {
                        self.broadcast(Frame { kind: FrameKind::Ping { seq }, bytes: Bytes::from(text) });
                    }
                }
            }
        }
    }
}

/// A claimed stream slot; released when dropped.
#[derive(Debug)]
pub struct Slot {
    hub: Arc<Hub>,
    /// Unique per stream.
    pub connection_id: String,
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
            hub.publish("update".into(), format!("{{\"i\":{i}}}"));
        }
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
        let mut sub = hub.subscribe(&Resume::Fresh);
        let id = hub.publish("update".into(), "{\"a\":1}".into());
        let frame = sub.rx.try_recv().unwrap();
        assert_eq!(
            std::str::from_utf8(&frame.bytes).unwrap(),
            format!("event: update\nid: {id}\ndata: {{\"a\":1}}\n\n")
        );
    }

    #[test]
    fn ids_are_monotonic_and_carry_the_server_id() {
        let hub = Hub::new(1, 8, 8);
        let a = hub.publish("x".into(), "1".into());
        let b = hub.publish("x".into(), "2".into());
        assert_eq!(a.epoch, hub.server_id());
        assert_eq!((a.seq, b.seq), (1, 2));
    }

    #[test]
    fn resume_table() {
        let hub = Hub::new(10, 5, 64);
        publish_n(&hub, 8); // buffer holds 4..=8
        let id = |seq| hub.event_id(seq);
        let other = EventId {
            epoch: "0000beef".into(),
            seq: 3,
        };
        type Case = (Option<EventId>, Vec<u64>, Option<ResyncReason>, u64);
        let malformed = hub.subscribe(&Resume::Malformed("garbage".into()));
        assert_eq!(
            (seqs(&malformed.replay), malformed.resync, malformed.cursor),
            (vec![4, 5, 6, 7, 8], Some(ResyncReason::Unknown), 3)
        );
        let cases: Vec<Case> = vec![
            (None, vec![], None, 8),
            (Some(id(8)), vec![], None, 8),
            (Some(id(5)), vec![6, 7, 8], None, 5),
            (Some(id(3)), vec![4, 5, 6, 7, 8], None, 3),
            (
                Some(id(2)),
                vec![4, 5, 6, 7, 8],
                Some(ResyncReason::TooOld),
                3,
            ),
            (
                Some(id(0)),
                vec![4, 5, 6, 7, 8],
                Some(ResyncReason::TooOld),
                3,
            ),
            (
                Some(id(9)),
                vec![4, 5, 6, 7, 8],
                Some(ResyncReason::Unknown),
                3,
            ),
            (
                Some(other),
                vec![4, 5, 6, 7, 8],
                Some(ResyncReason::OtherServer),
                3,
            ),
        ];
        for (last, want, resync, cursor) in cases {
            let resume = last.clone().map_or(Resume::Fresh, Resume::Id);
            let sub = hub.subscribe(&resume);
            assert_eq!(seqs(&sub.replay), want, "resume from {last:?}");
            assert_eq!(sub.resync, resync, "resume from {last:?}");
            assert_eq!(sub.cursor, cursor, "resume from {last:?}");
        }
    }

    #[test]
    fn resume_at_zero_before_any_event_is_complete() {
        let hub = Hub::new(10, 5, 64);
        let sub = hub.subscribe(&Resume::Id(hub.event_id(0)));
        assert_eq!(sub.resync, None);
        publish_n(&hub, 2);
        let sub = hub.subscribe(&Resume::Id(hub.event_id(0)));
        assert_eq!((seqs(&sub.replay), sub.resync), (vec![1, 2], None));
    }

    #[tokio::test]
    async fn events_published_after_subscribe_arrive_live_exactly_once() {
        let hub = Hub::new(10, 100, 64);
        publish_n(&hub, 3);
        let mut sub = hub.subscribe(&Resume::Id(hub.event_id(1)));
        publish_n(&hub, 2);
        assert_eq!(seqs(&sub.replay), vec![2, 3]);
        let mut live = vec![];
        while let Ok(f) = sub.rx.try_recv() {
            live.push(f);
        }
        assert_eq!(seqs(&live), vec![4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_pings_every_interval_with_rising_seq() {
        let hub = Hub::new(10, 8, 8);
        let mut sub = hub.subscribe(&Resume::Fresh);
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(Arc::clone(&hub).run_heartbeat(Duration::from_millis(500), stop.clone()));
        let start = tokio::time::Instant::now();
        for want in 1..=3 {
            let frame = sub.rx.recv().await.unwrap();
            assert_eq!(frame.kind, FrameKind::Ping { seq: want });
            let text = std::str::from_utf8(&frame.bytes).unwrap();
            assert!(text.starts_with("event: ping\ndata: {\"seq\":"), "{text}");
            assert_eq!(start.elapsed(), Duration::from_millis(500 * want));
        }
        stop.cancel();
        task.await.unwrap();
    }
}

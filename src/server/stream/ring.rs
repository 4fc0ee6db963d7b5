//! Server only: the one log every stream reads — a bounded ring of sequence-numbered
//! application events, each encoded once into ready-to-write bytes, with an atomic head. A
//! stream is a cursor (a sequence number) into it: "anything for me?" is one atomic load, a
//! connect copies nothing, and a resume point is found by binary search. The ring is the whole
//! replay window of the embedded log and a cache of the stream's tail with Redis.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

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

/// The topics of one event, shared by every reader of its frame.
pub type Topics = Arc<[Box<str>]>;

/// `Some` topics for a targeted event, from a list the caller validated.
pub fn topics_of(topics: &[String]) -> Option<Topics> {
    (!topics.is_empty()).then(|| topics.iter().map(|t| t.as_str().into()).collect())
}

/// One application event, encoded once for every stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Its place in the log (what its id says).
    pub pos: Pos,
    /// Its place in this process's ring (0: read from Redis, never in the ring).
    pub seq: u64,
    /// The complete SSE frame, ready to write.
    pub bytes: Bytes,
    /// `None`: a broadcast, for every stream; else the streams reading one of these topics.
    pub topics: Option<Topics>,
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a cursor finds after its position.
#[derive(Debug)]
pub enum Next {
    /// The next frame for it.
    Frame(Arc<Frame>),
    /// Nothing for it up to the `until` it asked about: its cursor may move there.
    Idle,
    /// A frame it reads was dropped from the ring before it read it.
    Behind,
}

/// How a cursor looks for its next frame.
#[derive(Clone, Copy)]
pub enum Reading<'a> {
    /// Only broadcasts (a stream without topics): found through the broadcasts' index.
    Broadcasts,
    /// Every frame `sees` accepts, walking the ring (a replay, or a catch-up of topic events).
    Scan(&'a dyn Fn(&Frame) -> bool),
    /// Broadcasts, or the frame `routed` (the next sequence number the topic index put in the
    /// stream's inbox), whichever comes first.
    Routed(Option<u64>),
}

/// The ring. Appends are serialised by the hub; readers take its read lock for a lookup.
pub struct Ring {
    /// The newest visible frame's sequence number (0: none yet). Frames up to it are complete
    /// (and routed to their topics' inboxes) before it moves.
    head: AtomicU64,
    /// The newest visible broadcast's sequence number (0: none yet).
    broadcast_head: AtomicU64,
    inner: RwLock<Inner>,
}

struct Inner {
    /// Sequence number of `frames[0]` (when there is one).
    first: u64,
    /// The newest pushed frame's sequence number.
    last: u64,
    frames: VecDeque<Arc<Frame>>,
    /// Sequence numbers of the broadcasts in `frames`, ascending.
    broadcasts: VecDeque<u64>,
    /// The newest broadcast dropped from the ring (0: none): a broadcast reader whose cursor
    /// is before it missed it.
    evicted_broadcast: u64,
    capacity: usize,
    /// How many of the newest frames answer a resume point (`replay_capacity`).
    window: usize,
    /// The position just before the oldest frame of the window, when known (every event
    /// after it is in the ring): the embedded log starts complete, a Redis tail does not.
    base: Option<Pos>,
    /// The newest position (its frame may be gone if `window` is 0).
    head_pos: Pos,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("head", &self.head.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// A ring holding `capacity` frames for live readers, of which the newest `window` answer
    /// resume points; `complete`: every event of the log passes through it (embedded).
    pub fn new(capacity: usize, window: usize, complete: bool) -> Ring {
        let capacity = capacity.max(window).max(1);
        Ring {
            head: AtomicU64::new(0),
            broadcast_head: AtomicU64::new(0),
            inner: RwLock::new(Inner {
                first: 1,
                last: 0,
                frames: VecDeque::with_capacity(capacity.min(4096)),
                broadcasts: VecDeque::new(),
                evicted_broadcast: 0,
                capacity,
                window,
                base: complete.then_some(Pos::ZERO),
                head_pos: Pos::ZERO,
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest visible frame's sequence number (0: none yet).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The newest visible broadcast's sequence number (0: none yet).
    pub fn broadcast_head(&self) -> u64 {
        self.broadcast_head.load(Ordering::Acquire)
    }

    /// The newest position kept.
    pub fn head_pos(&self) -> Pos {
        self.read().head_pos
    }

    /// The newest visible frame's sequence number and position, read together (under the
    /// hub's append lock, so nothing is pushed but not yet visible).
    pub fn head_both(&self) -> (u64, Pos) {
        let inner = self.read();
        (inner.last, inner.head_pos)
    }

    /// Keep `frame` under the next sequence number (the caller serialises appends); it stays
    /// invisible to readers until [`Ring::publish`]. Returns the frame as kept.
    pub fn push(&self, pos: Pos, bytes: Bytes, topics: Option<Topics>) -> Arc<Frame> {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let seq = inner.last + 1;
        let frame = Arc::new(Frame {
            pos,
            seq,
            bytes,
            topics,
        });
        let mut evicted = None;
        if inner.frames.len() == inner.capacity {
            evicted = inner.frames.pop_front().map(|f| f.pos);
            inner.first += 1;
            let first = inner.first;
            while let Some(&gone) = inner.broadcasts.front().filter(|&&s| s < first) {
                inner.evicted_broadcast = gone;
                inner.broadcasts.pop_front();
            }
        }
        if frame.topics.is_none() {
            inner.broadcasts.push_back(seq);
        }
        if inner.frames.is_empty() {
            inner.first = seq;
        }
        inner.last = seq;
        inner.head_pos = pos;
        inner.frames.push_back(Arc::clone(&frame));
        // The window's base: the frame just before its oldest one.
        let (len, window) = (inner.frames.len(), inner.window);
        if len > window {
            inner.base = Some(inner.frames[len - window - 1].pos);
        } else if evicted.is_some() {
            inner.base = evicted;
        }
        frame
    }

    /// Make every pushed frame up to `seq` visible (`broadcast`: the newest broadcast among
    /// them, if any).
    pub fn publish(&self, seq: u64, broadcast: Option<u64>) {
        if let Some(b) = broadcast {
            self.broadcast_head.store(b, Ordering::Release);
        }
        self.head.store(seq, Ordering::Release);
    }

    /// The next frame after `cursor` for a reader reading as `how`; only frames up to
    /// `until` (inclusive) are looked at.
    pub fn next(&self, cursor: u64, until: u64, how: Reading<'_>) -> Next {
        let inner = self.read();
        if cursor >= until {
            return Next::Idle;
        }
        let behind = match how {
            Reading::Broadcasts => inner.evicted_broadcast > cursor,
            Reading::Routed(routed) => {
                inner.evicted_broadcast > cursor
                    || routed.is_some_and(|s| s > cursor && s < inner.first)
            }
            Reading::Scan(_) => cursor + 1 < inner.first,
        };
        if behind {
            return Next::Behind;
        }
        let frame_at = |seq: u64| {
            seq.checked_sub(inner.first)
                .and_then(|at| inner.frames.get(at as usize))
        };
        let broadcast = || {
            let at = inner.broadcasts.partition_point(|&s| s <= cursor);
            inner.broadcasts.get(at).copied().filter(|&s| s <= until)
        };
        let found = match how {
            Reading::Broadcasts => broadcast(),
            Reading::Routed(routed) => {
                let routed = routed.filter(|&s| s > cursor && s <= until);
                match (broadcast(), routed) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Reading::Scan(sees) => {
                (cursor + 1..=until.min(inner.last)).find(|&s| frame_at(s).is_some_and(|f| sees(f)))
            }
        };
        match found.and_then(frame_at) {
            Some(frame) => Next::Frame(Arc::clone(frame)),
            None => Next::Idle,
        }
    }

    /// How many frames after `cursor`, up to `until`, `sees` accepts (counted, not copied).
    pub fn count(&self, cursor: u64, until: u64, sees: &dyn Fn(&Frame) -> bool) -> u64 {
        let inner = self.read();
        let skip = (cursor + 1).saturating_sub(inner.first) as usize;
        inner
            .frames
            .iter()
            .skip(skip)
            .take_while(|f| f.seq <= until)
            .filter(|f| sees(f))
            .count() as u64
    }

    /// Where a stream resuming after `pos` starts reading: the sequence number of the frame
    /// at `pos` (its cursor), if the replay window holds every event after `pos`.
    pub fn resume_at(&self, pos: Pos) -> Option<u64> {
        let inner = self.read();
        if pos == inner.head_pos {
            return Some(inner.last);
        }
        let window_start = inner.frames.len().saturating_sub(inner.window);
        if inner.base == Some(pos) {
            return Some(inner.first + window_start as u64 - 1);
        }
        let at = inner.frames.binary_search_by(|f| f.pos.cmp(&pos)).ok()?;
        (at >= window_start && inner.window > 0).then(|| inner.first + at as u64)
    }

    /// The oldest frame of the replay window (its sequence number and position), if any.
    pub fn window_oldest(&self) -> Option<(u64, Pos)> {
        let inner = self.read();
        if inner.window == 0 {
            return None;
        }
        let start = inner.frames.len().saturating_sub(inner.window);
        inner.frames.get(start).map(|f| (f.seq, f.pos))
    }

    /// Fill an empty ring with the log's tail (nobody has read these). Only before the first
    /// frame; the caller serialises appends.
    pub fn preload(&self, frames: Vec<(Pos, Bytes, Option<Topics>)>) {
        if self.head_both().0 != 0 {
            return;
        }
        let (mut last, mut broadcast) = (0, None);
        for (pos, bytes, topics) in frames {
            let frame = self.push(pos, bytes, topics);
            last = frame.seq;
            if frame.topics.is_none() {
                broadcast = Some(frame.seq);
            }
        }
        if last > 0 {
            self.publish(last, broadcast);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_with(capacity: usize, window: usize, topics: &[Option<&str>]) -> Ring {
        let ring = Ring::new(capacity, window, true);
        let mut broadcast = None;
        let mut last = 0;
        for (i, topic) in topics.iter().enumerate() {
            let t = topic.map(|t| Arc::from(vec![Box::<str>::from(t)]));
            let f = ring.push(
                Pos {
                    ms: 0,
                    seq: i as u64 + 1,
                },
                Bytes::from(format!("{i}")),
                t,
            );
            last = f.seq;
            if f.topics.is_none() {
                broadcast = Some(f.seq);
            }
        }
        ring.publish(last, broadcast);
        ring
    }

    fn seq(next: Next) -> Option<u64> {
        match next {
            Next::Frame(f) => Some(f.seq),
            Next::Idle => None,
            Next::Behind => Some(u64::MAX),
        }
    }

    #[test]
    fn a_pushed_frame_is_invisible_until_published() {
        let ring = Ring::new(4, 4, true);
        ring.push(Pos { ms: 0, seq: 1 }, Bytes::from_static(b"a"), None);
        assert_eq!(ring.head(), 0);
        assert_eq!(ring.broadcast_head(), 0);
        ring.publish(1, Some(1));
        assert_eq!((ring.head(), ring.broadcast_head()), (1, 1));
    }

    #[test]
    fn readers_find_their_next_frame_by_index_inbox_or_walk() {
        let ring = ring_with(8, 8, &[None, Some("a"), Some("b"), None, Some("a")]);
        let head = ring.head();
        assert_eq!(seq(ring.next(0, head, Reading::Broadcasts)), Some(1));
        assert_eq!(seq(ring.next(1, head, Reading::Broadcasts)), Some(4));
        assert_eq!(seq(ring.next(4, head, Reading::Broadcasts)), None);
        // A routed number before the next broadcast comes first, and the other way round.
        assert_eq!(seq(ring.next(1, head, Reading::Routed(Some(2)))), Some(2));
        assert_eq!(seq(ring.next(3, head, Reading::Routed(Some(5)))), Some(4));
        assert_eq!(seq(ring.next(4, head, Reading::Routed(None))), None);
        let only_a = |f: &Frame| f.topics.as_ref().is_some_and(|t| &*t[0] == "a");
        assert_eq!(seq(ring.next(2, head, Reading::Scan(&only_a))), Some(5));
        // Nothing past `until` is looked at.
        assert_eq!(seq(ring.next(1, 3, Reading::Broadcasts)), None);
        assert_eq!(ring.count(0, head, &only_a), 2);
        assert_eq!(ring.count(2, 4, &only_a), 0);
    }

    #[test]
    fn a_reader_is_behind_only_when_a_frame_it_reads_left_the_ring() {
        // Capacity 3: frames 1 (broadcast) and 2 ("a") are gone, 3..=5 kept.
        let ring = ring_with(3, 3, &[None, Some("a"), Some("b"), Some("b"), None]);
        let head = ring.head();
        assert_eq!(seq(ring.next(0, head, Reading::Broadcasts)), Some(u64::MAX));
        assert_eq!(
            seq(ring.next(1, head, Reading::Broadcasts)),
            Some(5),
            "only a topic frame left"
        );
        assert_eq!(
            seq(ring.next(1, head, Reading::Routed(Some(2)))),
            Some(u64::MAX)
        );
        assert_eq!(seq(ring.next(1, head, Reading::Routed(Some(4)))), Some(4));
        let all = |_: &Frame| true;
        assert_eq!(seq(ring.next(1, head, Reading::Scan(&all))), Some(u64::MAX));
        assert_eq!(seq(ring.next(2, head, Reading::Scan(&all))), Some(3));
    }

    #[test]
    fn resume_points_are_answered_from_the_window_only() {
        // The ring keeps 6 for live readers; the newest 3 answer resume points.
        let ring = ring_with(6, 3, &[None; 8]);
        assert_eq!(ring.resume_at(Pos { ms: 0, seq: 8 }), Some(8), "the head");
        assert_eq!(ring.resume_at(Pos { ms: 0, seq: 6 }), Some(6));
        assert_eq!(
            ring.resume_at(Pos { ms: 0, seq: 5 }),
            Some(5),
            "the window's base"
        );
        assert_eq!(
            ring.resume_at(Pos { ms: 0, seq: 4 }),
            None,
            "kept, but outside the window"
        );
        assert_eq!(ring.window_oldest().map(|w| w.0), Some(6));
        let none = ring_with(6, 0, &[None; 2]);
        assert_eq!(none.resume_at(Pos { ms: 0, seq: 2 }), Some(2));
        assert_eq!(none.resume_at(Pos { ms: 0, seq: 1 }), None);
        assert_eq!(none.window_oldest(), None);
    }
}

//! Server only: who reads which topic — the topic index (subscribed pattern → the inboxes of the
//! streams reading it), each stream's inbox of ring sequence numbers (a topic publish costs the
//! topic's subscribers, not every stream), and the per-pattern stream counts that answer
//! presence.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::task::AtomicWaker;

/// Hashes the hub's own inbox ids (sequential `u64`s, never chosen by a client) with one
/// multiplication: the index is walked on every topic publish, and SipHash's DoS resistance buys
/// nothing for keys the server hands out itself.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

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

/// A stream's inbox: the ring sequence numbers of the topic events routed to it, in order. It
/// holds numbers, not frames (the frames stay in the ring). Bounded: when it would overflow it
/// is emptied and marked, and its stream then finds its topic events by walking the ring (the
/// ring still holds them; if not, the stream catches up like a `Last-Event-ID` reconnect).
#[derive(Debug, Default)]
pub struct Inbox {
    queue: Mutex<Queue>,
    /// The newest sequence number routed here (0: none): "anything for me?" is one load.
    newest: AtomicU64,
    /// Woken when a number arrives.
    waker: AtomicWaker,
}

#[derive(Debug, Default)]
struct Queue {
    seqs: VecDeque<u64>,
    /// The queue overflowed: every number up to `newest` must be found by walking the ring.
    overflowed: bool,
    capacity: usize,
}

/// What an inbox says about the topic events after a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// The oldest routed event after the cursor (`None`: none waiting).
    Next(Option<u64>),
    /// The inbox overflowed: walk the ring up to this sequence number for this stream's topic
    /// events; after it, ask again.
    WalkUntil(u64),
}

impl Inbox {
    fn new(capacity: usize) -> Inbox {
        Inbox {
            queue: Mutex::new(Queue {
                seqs: VecDeque::new(),
                overflowed: false,
                capacity: capacity.max(1),
            }),
            newest: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, seq: u64) {
        {
            let mut queue = self.lock();
            if queue.seqs.len() >= queue.capacity {
                queue.seqs.clear();
                queue.overflowed = true;
            }
            if !queue.overflowed {
                queue.seqs.push_back(seq);
            }
        }
        self.newest.store(seq, Ordering::Release);
    }

    /// The newest sequence number routed here (0: none).
    pub fn newest(&self) -> u64 {
        self.newest.load(Ordering::Acquire)
    }

    /// What is routed after `cursor` (numbers at or before it are dropped).
    pub fn after(&self, cursor: u64) -> Routed {
        let mut queue = self.lock();
        if queue.overflowed {
            queue.overflowed = false;
            queue.seqs.clear();
            return Routed::WalkUntil(self.newest.load(Ordering::Acquire));
        }
        while queue.seqs.front().is_some_and(|&s| s <= cursor) {
            queue.seqs.pop_front();
        }
        Routed::Next(queue.seqs.front().copied())
    }

    /// Wake the task of `waker` when a number arrives.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Wake the registered task (a routed event became visible).
    pub fn wake(&self) {
        self.waker.wake();
    }
}

/// The topic index and the presence counts. The index is changed under the hub's append lock
/// (a topic stream's subscription and a publish are ordered); presence has a lock of its own.
#[derive(Default)]
pub struct Index {
    /// Subscribed pattern (`users/42`, `users/*`) → the inboxes that read it.
    patterns: HashMap<String, IdMap<Arc<Inbox>>>,
    /// Every open inbox: the patterns it is filed under (to take it out again).
    inboxes: IdMap<Vec<String>>,
    next_id: u64,
}

impl Index {
    /// File a new inbox of `capacity` numbers under `patterns`; its id gives it back.
    pub fn subscribe(&mut self, patterns: &[String], capacity: usize) -> (u64, Arc<Inbox>) {
        self.next_id += 1;
        let id = self.next_id;
        let inbox = Arc::new(Inbox::new(capacity));
        for pattern in patterns {
            self.patterns
                .entry(pattern.clone())
                .or_default()
                .insert(id, Arc::clone(&inbox));
        }
        self.inboxes.insert(id, patterns.to_vec());
        (id, inbox)
    }

    /// Take an inbox out of the index (its stream ended).
    pub fn unsubscribe(&mut self, id: u64) {
        let Some(patterns) = self.inboxes.remove(&id) else {
            return;
        };
        for pattern in patterns {
            if let Some(ids) = self.patterns.get_mut(&pattern) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.patterns.remove(&pattern);
                }
            }
        }
    }

    /// Route the event `seq` for `topics` into the inbox of every stream subscribed to one of
    /// them, once each: work in proportion to those streams. Returns the inboxes reached, to
    /// [`Inbox::wake`] once the event is visible in the ring.
    pub fn route(&self, seq: u64, topics: &[Box<str>]) -> Vec<Arc<Inbox>> {
        let lists: Vec<_> = topics
            .iter()
            .flat_map(|topic| presence_patterns(topic))
            .filter_map(|pattern| self.patterns.get(&pattern))
            .collect();
        let mut reached = Vec::new();
        let mut deliver = |inbox: &Arc<Inbox>| {
            inbox.route(seq);
            reached.push(Arc::clone(inbox));
        };
        match lists.as_slice() {
            // One subscribed pattern matches (the common case): each stream is in it once.
            [only] => only.values().for_each(deliver),
            _ => {
                // Once per stream, however many of its patterns match.
                let mut seen = IdSet::default();
                for list in &lists {
                    for (id, inbox) in list.iter() {
                        if seen.insert(*id) {
                            deliver(inbox);
                        }
                    }
                }
            }
        }
        reached
    }

    /// Whether a pattern has subscribers (tests).
    #[cfg(test)]
    pub fn has(&self, pattern: &str) -> bool {
        self.patterns.contains_key(pattern)
    }
}

/// Open streams per subscribed pattern, for presence.
#[derive(Debug, Default)]
pub struct Presence {
    counts: Mutex<HashMap<String, u64>>,
    /// Bumped on every change (the Redis log republishes the table then).
    changes: AtomicU64,
}

impl Presence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a stream's subscribed patterns in (`+1`) or out (`-1`).
    pub fn add(&self, patterns: &[String], delta: i64) {
        if patterns.is_empty() {
            return;
        }
        let mut map = self.lock();
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
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Streams that an event published to `topic` reaches: those subscribed to it exactly or
    /// to a prefix pattern above it.
    pub fn of(&self, topic: &str) -> u64 {
        let map = self.lock();
        presence_patterns(topic)
            .iter()
            .filter_map(|p| map.get(p))
            .sum()
    }

    /// Every subscribed pattern with its stream count, and the change counter it belongs to.
    pub fn table(&self) -> (u64, Vec<(String, u64)>) {
        let map = self.lock();
        let changes = self.changes.load(Ordering::Relaxed);
        (changes, map.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }
}

/// The subscription patterns whose streams an event to `topic` reaches: `topic` itself and
/// `a/*`, `a/b/*`, … for every `/` in it (so routing costs the topic's depth, not the number of
/// patterns).
pub fn presence_patterns(topic: &str) -> Vec<String> {
    let mut out = vec![topic.to_owned()];
    for (i, b) in topic.bytes().enumerate() {
        if b == b'/' && i > 0 && i + 1 < topic.len() {
            out.push(format!("{}*", &topic[..=i]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[&str]) -> Vec<Box<str>> {
        list.iter().map(|t| (*t).into()).collect()
    }

    #[test]
    fn index_routes_only_what_the_stream_sees() {
        // The feed does not re-check routed frames: a pattern the index files an event under
        // must match the event's topic, and every pattern that matches must be one of them.
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
    fn a_topic_event_reaches_each_subscriber_once_and_no_one_else() {
        let mut index = Index::default();
        let (_, alice) = index.subscribe(&["users/alice".into()], 8);
        let (_, admin) = index.subscribe(&["users/*".into(), "users/alice".into()], 8);
        let (bob_id, bob) = index.subscribe(&["users/bob".into()], 8);
        index.route(1, &topics(&["users/alice", "docs/1"]));
        index.route(2, &topics(&["users/alice", "users/alice"]));
        assert_eq!(alice.after(0), Routed::Next(Some(1)));
        assert_eq!(alice.after(1), Routed::Next(Some(2)));
        assert_eq!(
            admin.after(1),
            Routed::Next(Some(2)),
            "once, though two match"
        );
        assert_eq!(admin.after(2), Routed::Next(None));
        assert_eq!((bob.after(0), bob.newest()), (Routed::Next(None), 0));
        index.unsubscribe(bob_id);
        assert!(!index.has("users/bob"));
        index.route(3, &topics(&["users/bob"]));
        assert_eq!(bob.newest(), 0, "given back, an inbox gets nothing");
    }

    #[test]
    fn an_overflowing_inbox_says_how_far_to_walk_the_ring() {
        let mut index = Index::default();
        let (_, inbox) = index.subscribe(&["t".into()], 2);
        for seq in [3, 5, 9] {
            index.route(seq, &topics(&["t"]));
        }
        assert_eq!(inbox.newest(), 9);
        assert_eq!(inbox.after(0), Routed::WalkUntil(9));
        // Afterwards it queues again.
        index.route(11, &topics(&["t"]));
        assert_eq!(inbox.after(9), Routed::Next(Some(11)));
    }

    #[test]
    fn presence_counts_streams_per_pattern() {
        let presence = Presence::default();
        presence.add(&["users/*".into()], 1);
        presence.add(&["users/alice".into()], 1);
        assert_eq!(presence.of("users/alice"), 2);
        assert_eq!(presence.of("users/bob"), 1);
        presence.add(&["users/*".into()], -1);
        assert_eq!(presence.of("users/bob"), 0);
        assert_eq!(presence.table().1.len(), 1);
    }

    #[test]
    fn the_id_hasher_spreads_sequential_ids() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let top: HashSet<u64> = (1..=256u64).map(|id| build.hash_one(id) >> 57).collect();
        assert!(top.len() > 64, "{} distinct top-7-bit values", top.len());
    }
}

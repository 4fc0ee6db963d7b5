//! Benchmark tool only (ssr feature): one held `/events` connection — a raw TCP socket bound to
//! a chosen loopback source address, a hand-written request, the incremental parser — and the
//! counters all connections share. Reads go through one scratch buffer per thread, so a held
//! connection costs its socket, its task and its parser (~350 bytes) and nothing more.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};

use crate::sse::{json_u64, Item, Parser};

/// The name of the benchmark's own event.
pub const BENCH_EVENT: &str = "bench";
/// The event of the sustained-publish phase (counted, not timed one by one).
pub const SUSTAIN_EVENT: &str = "sustain";
/// A latency slot nobody wrote yet.
const UNSET: u32 = u32::MAX;

/// What every connection task needs, and the counters they all update.
pub struct Shared {
    /// The server (publishes go here).
    pub target: SocketAddr,
    /// Where streams connect, round-robin (a fleet: several instances of one log).
    pub stream_targets: Vec<SocketAddr>,
    /// `sustain` events received.
    pub sustained: AtomicU64,
    /// Reconnect streams that end (`--reconnect`, the storm).
    pub reconnect: bool,
    /// Streams that said `connected` again after a drop.
    pub reheld: AtomicUsize,
    /// Reconnect attempts answered with a non-200 status (503 while full or draining).
    pub refused: AtomicU64,
    /// Reconnect attempts that failed before an answer (refused TCP connect, reset).
    pub connect_errors: AtomicU64,
    /// `resync` events received.
    pub resyncs: AtomicU64,
    /// Sum of `replayed` in `connected` events after a reconnect.
    pub replayed: AtomicU64,
    /// The request connections send: one, or one per topic (stream i sends `i % len`).
    pub requests: Vec<Vec<u8>>,
    /// Requests sent (and answered) on each connection before the stream request.
    pub warmup: Vec<Vec<u8>>,
    /// Handshakes (TCP connect until `connected`) in flight at once.
    pub handshakes: Semaphore,
    /// Longest a handshake may take once it started.
    pub handshake_timeout: Duration,
    /// Broadcasts the run will publish (sizes the latency table).
    pub broadcasts: usize,
    /// When the connect phase began.
    pub started: Instant,
    /// Streams that said `connected`.
    pub held: AtomicUsize,
    /// Connections that never got there.
    pub failed: AtomicUsize,
    /// Held streams that ended before the run did.
    pub dropped: AtomicUsize,
    /// Microseconds from `started` until the latest `connected`.
    pub last_held_us: AtomicU64,
    /// `ping` events received.
    pub pings: AtomicU64,
    /// `bench` events received (each counted once).
    pub bench: AtomicU64,
    /// Any other event.
    pub other: AtomicU64,
    /// `bench` events whose data could not be read or were out of range.
    pub bad_bench: AtomicU64,
    /// `bench` events a connection received twice.
    pub duplicates: AtomicU64,
    /// `bench` events that came after a later one on the same connection.
    pub out_of_order: AtomicU64,
    /// Per broadcast: how many connections got it.
    pub received: Vec<AtomicU32>,
    /// Per broadcast × connection (broadcast-major, so one broadcast's receipts share cache
    /// lines): publish→receipt in µs (`UNSET` = not received).
    latency_us: Vec<AtomicU32>,
    /// Connections the run opens.
    connections: usize,
    /// How many receipts the current broadcast waits for.
    pub expect: AtomicUsize,
    /// Woken when the current broadcast reached `expect` receipts.
    pub all_received: Notify,
    /// The topic phase (`--topics`, `--topic-publishes`).
    pub topic: TopicCounts,
    /// The topic-rounds phase (`--topic-rounds`: one event to every topic per round).
    pub rounds: TopicCounts,
    /// The fan-out phase (`--fanout-rate`): one topic-less "topic" (every stream reads every
    /// event), so the topic phases' per-slot latency, loss and duplicate checks apply as they are.
    pub fanout: TopicCounts,
    /// `heartbeat_ms` from the first `connected` event (0 = not seen).
    pub heartbeat_ms: AtomicU64,
    /// Why connections failed or dropped, and how often.
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    /// Counters for `connections` connections and `broadcasts` broadcasts.
    pub fn new(
        target: SocketAddr,
        connections: usize,
        broadcasts: usize,
        handshakes: usize,
        handshake_timeout: Duration,
        reuse: &[String],
        requests: Vec<Vec<u8>>,
    ) -> Self {
        let warmup = reuse
            .iter()
            .map(|path| {
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: sse-status-loadgen\r\n\r\n"
                )
                .into_bytes()
            })
            .collect();
        Shared {
            target,
            stream_targets: vec![target],
            sustained: AtomicU64::new(0),
            reconnect: false,
            reheld: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            requests,
            warmup,
            handshakes: Semaphore::new(handshakes.max(1)),
            handshake_timeout,
            broadcasts,
            started: Instant::now(),
            held: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            last_held_us: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            bench: AtomicU64::new(0),
            other: AtomicU64::new(0),
            bad_bench: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            received: (0..broadcasts).map(|_| AtomicU32::new(0)).collect(),
            latency_us: (0..connections * broadcasts)
                .map(|_| AtomicU32::new(UNSET))
                .collect(),
            connections,
            expect: AtomicUsize::new(usize::MAX),
            all_received: Notify::new(),
            heartbeat_ms: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            topic: TopicCounts::default(),
            rounds: TopicCounts::default(),
            fanout: TopicCounts::default(),
        }
    }

    /// The request stream `idx` sends.
    fn request_for(&self, idx: usize) -> &[u8] {
        &self.requests[idx % self.requests.len().max(1)]
    }

    /// Streams open right now.
    pub fn alive(&self) -> usize {
        (self.held.load(Relaxed) + self.reheld.load(Relaxed))
            .saturating_sub(self.dropped.load(Relaxed))
    }

    /// Every recorded latency, in µs, unsorted.
    pub fn latencies(&self) -> Vec<u32> {
        self.latency_us
            .iter()
            .map(|l| l.load(Relaxed))
            .filter(|&l| l != UNSET)
            .collect()
    }

    fn note(&self, reason: String) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        *f.entry(reason).or_default() += 1;
    }

    fn on_held(&self) {
        self.held.fetch_add(1, Relaxed);
        let us = self.started.elapsed().as_micros() as u64;
        self.last_held_us.fetch_max(us, Relaxed);
    }

    fn on_bench(&self, conn: usize, data: &[u8], truncated: bool, last: &mut Option<u64>) {
        let now = unix_nanos();
        let Some((t, i)) = stamp(data, truncated) else {
            self.bad_bench.fetch_add(1, Relaxed);
            return;
        };
        let Some(slot) = usize::try_from(i)
            .ok()
            .filter(|&i| i < self.broadcasts)
            .and_then(|i| self.latency_us.get(i * self.connections + conn))
        else {
            self.bad_bench.fetch_add(1, Relaxed);
            return;
        };
        if !record_latency(slot, now, t) {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        if last.is_some_and(|l| i < l) {
            self.out_of_order.fetch_add(1, Relaxed);
        }
        *last = Some(i);
        self.bench.fetch_add(1, Relaxed);
        let got = self.received[i as usize].fetch_add(1, Relaxed) as usize + 1;
        if got >= self.expect.load(Relaxed) {
            self.all_received.notify_one();
        }
    }

    /// A topic-phase event (`bench-topic`, data `{"t", "i"}`) on stream `conn`.
    fn on_topic(&self, conn: usize, data: &[u8], truncated: bool, last: &mut Option<u64>) {
        self.on_topic_event(&self.topic, conn, data, truncated, last);
    }

    /// A topic-rounds event (`bench-round`, data `{"t", "i"}`, publish i to topic
    /// `i % topics`) on stream `conn`.
    fn on_round(&self, conn: usize, data: &[u8], truncated: bool, last: &mut Option<u64>) {
        self.on_topic_event(&self.rounds, conn, data, truncated, last);
    }

    /// A fan-out event (`bench-fanout`, data `{"t_us", "i"}`) on stream `conn`; the receipt
    /// time is read before anything else is done with it.
    fn on_fanout(&self, conn: usize, data: &[u8], truncated: bool, last: &mut Option<u64>) {
        let now = unix_nanos();
        match crate::fanout::stamp(data, truncated) {
            Some((t, i)) => self.record_topic_event(&self.fanout, conn, now, t, i, last),
            None => {
                self.fanout.bad.fetch_add(1, Relaxed);
            }
        }
    }

    /// The checks of both topic phases: publish j reaches only the streams of topic
    /// `j % topics`, each once, in publish order.
    fn on_topic_event(
        &self,
        tc: &TopicCounts,
        conn: usize,
        data: &[u8],
        truncated: bool,
        last: &mut Option<u64>,
    ) {
        let now = unix_nanos();
        let Some((t, j)) = stamp(data, truncated) else {
            tc.bad.fetch_add(1, Relaxed);
            return;
        };
        self.record_topic_event(tc, conn, now, t, j, last);
    }

    /// Publish `j` (sent at `t`, Unix ns) received on stream `conn` at `now`: its latency slot,
    /// the order check, the counters and the waiter's wake-up.
    fn record_topic_event(
        &self,
        tc: &TopicCounts,
        conn: usize,
        now: u64,
        t: u64,
        j: u64,
        last: &mut Option<u64>,
    ) {
        let Some(j) = usize::try_from(j)
            .ok()
            .filter(|&j| j < tc.received.len() && tc.topics > 0)
        else {
            tc.bad.fetch_add(1, Relaxed);
            return;
        };
        // Publish j went to topic j % topics; this stream reads conn % topics only.
        if j % tc.topics != conn % tc.topics {
            tc.misdelivered.fetch_add(1, Relaxed);
            return;
        }
        let Some(slot) = tc.latency_us.get(j * tc.slots + conn / tc.topics) else {
            tc.bad.fetch_add(1, Relaxed);
            return;
        };
        if !record_latency(slot, now, t) {
            tc.duplicates.fetch_add(1, Relaxed);
            return;
        }
        if last.is_some_and(|l| j as u64 <= l) {
            tc.out_of_order.fetch_add(1, Relaxed);
        }
        *last = Some(j as u64);
        if let Some(at) = tc.last_at_ns.get(j) {
            at.fetch_max(now, Relaxed);
        }
        let delivered = tc.delivered.fetch_add(1, Relaxed) + 1;
        let got = tc.received[j].fetch_add(1, Relaxed) as usize + 1;
        let wake_at = tc.wake_at.load(Relaxed);
        if (wake_at > 0 && delivered >= wake_at)
            || (wake_at == 0 && got >= self.expect.load(Relaxed))
        {
            self.all_received.notify_one();
        }
    }
}

/// The data `{"t", "i"}` of a bench, topic or round event (publish time in Unix ns, index);
/// `None` if unreadable or cut short.
fn stamp(data: &[u8], truncated: bool) -> Option<(u64, u64)> {
    if truncated {
        return None;
    }
    Some((json_u64(data, "t")?, json_u64(data, "i")?))
}

/// Keeps a receipt's publish→receipt latency (µs) in its `slot`; false if the slot had one
/// already (a duplicate).
fn record_latency(slot: &AtomicU32, now: u64, t: u64) -> bool {
    let us = (now.saturating_sub(t) / 1_000).min(u64::from(UNSET - 1)) as u32;
    slot.compare_exchange(UNSET, us, Relaxed, Relaxed).is_ok()
}

/// Counters of the topic phase: `publishes` events, publish j to topic `j % topics`.
#[derive(Default)]
pub struct TopicCounts {
    /// `--topics` (0: streams read broadcasts only).
    pub topics: usize,
    /// Most subscribers of one topic (`ceil(connections / topics)`): the latency table's row.
    slots: usize,
    /// Per topic publish: how many of its subscribers got it.
    pub received: Vec<AtomicU32>,
    /// Per publish × subscriber rank (`conn / topics`): publish→receipt in µs.
    latency_us: Vec<AtomicU32>,
    /// Topic events received (each counted once).
    pub delivered: AtomicU64,
    /// Received twice by one stream.
    pub duplicates: AtomicU64,
    /// Came after a later one on the same stream.
    pub out_of_order: AtomicU64,
    /// Unreadable or out of range.
    pub bad: AtomicU64,
    /// Reached a stream that did not subscribe to its topic (a privacy failure).
    pub misdelivered: AtomicU64,
    /// Per publish: Unix time (ns) of its latest receipt (the rounds' publish→last receipt).
    pub last_at_ns: Vec<AtomicU64>,
    /// When > 0: wake the waiter once `delivered` reaches this (a whole round); 0: once one
    /// publish has `Shared::expect` receipts.
    pub wake_at: AtomicU64,
}

impl TopicCounts {
    /// Counters for `publishes` topic events over `connections` streams on `topics` topics.
    pub fn new(topics: usize, connections: usize, publishes: usize) -> Self {
        let slots = if topics == 0 {
            0
        } else {
            connections.div_ceil(topics)
        };
        TopicCounts {
            topics,
            slots,
            received: (0..publishes).map(|_| AtomicU32::new(0)).collect(),
            latency_us: (0..publishes * slots)
                .map(|_| AtomicU32::new(UNSET))
                .collect(),
            last_at_ns: (0..publishes).map(|_| AtomicU64::new(0)).collect(),
            ..TopicCounts::default()
        }
    }

    /// Every recorded latency, in µs, unsorted.
    pub fn latencies(&self) -> Vec<u32> {
        self.latencies_from(0)
    }

    /// The recorded latencies of publishes `first..` (the fan-out phase leaves its warm-up
    /// out), in µs, unsorted.
    pub fn latencies_from(&self, first: usize) -> Vec<u32> {
        let skip = first.saturating_mul(self.slots).min(self.latency_us.len());
        self.latency_us[skip..]
            .iter()
            .map(|l| l.load(Relaxed))
            .filter(|&l| l != UNSET)
            .collect()
    }
}

/// Unix time in nanoseconds.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The newest `bench`, topic and fan-out event a connection got (for the order check).
#[derive(Default)]
struct Last {
    bench: Option<u64>,
    topic: Option<u64>,
    round: Option<u64>,
    fanout: Option<u64>,
}

/// One connection's parse state.
struct Conn {
    idx: usize,
    parser: Parser,
    held: bool,
    last: Last,
    /// Set when the stream went wrong (bad status, parse error, end of body).
    fail: Option<String>,
    /// The stream said `connected` (this attempt).
    open: bool,
    /// Kept only when reconnecting: the last event id seen, and the `draining` hint.
    last_id: Vec<u8>,
    reconnect_after_ms: Option<u64>,
}

impl Conn {
    fn on_bytes(&mut self, bytes: &[u8], shared: &Shared) {
        let (idx, held, last, fail, open, last_id, hint) = (
            self.idx,
            &mut self.held,
            &mut self.last,
            &mut self.fail,
            &mut self.open,
            &mut self.last_id,
            &mut self.reconnect_after_ms,
        );
        let result = self.parser.feed(bytes, &mut |item| match item {
            Item::Event(e) if shared.reconnect && last_id.as_slice() != e.id => {
                last_id.clear();
                last_id.extend_from_slice(e.id);
                on_event(e, shared, idx, held, last, open, hint);
            }
            Item::Event(e) => on_event(e, shared, idx, held, last, open, hint),
            Item::Head { status: 200 } => {}
            Item::Head { status } => *fail = Some(format!("HTTP {status}")),
            // An error status's (short) body ends too: keep the status as the reason.
            Item::End => {
                fail.get_or_insert_with(|| "the server ended the response".into());
            }
        });
        if let Err(e) = result {
            self.fail
                .get_or_insert_with(|| format!("unparsable response: {e}"));
        }
    }
}

/// One event of a stream.
fn on_event(
    e: crate::sse::Event<'_>,
    shared: &Shared,
    idx: usize,
    held: &mut bool,
    last: &mut Last,
    open: &mut bool,
    hint: &mut Option<u64>,
) {
    match e.name {
        b"ping" => {
            shared.pings.fetch_add(1, Relaxed);
        }
        b"bench" => shared.on_bench(idx, e.data, e.truncated, &mut last.bench),
        b"bench-topic" => shared.on_topic(idx, e.data, e.truncated, &mut last.topic),
        b"bench-round" => shared.on_round(idx, e.data, e.truncated, &mut last.round),
        // crate::fanout::FANOUT_EVENT
        b"bench-fanout" => shared.on_fanout(idx, e.data, e.truncated, &mut last.fanout),
        b"sustain" => {
            shared.sustained.fetch_add(1, Relaxed);
        }
        b"connected" if !*open => {
            *open = true;
            if *held {
                shared.reheld.fetch_add(1, Relaxed);
                shared
                    .replayed
                    .fetch_add(json_u64(e.data, "replayed").unwrap_or(0), Relaxed);
            } else {
                *held = true;
                shared.on_held();
            }
            if let Some(ms) = json_u64(e.data, "heartbeat_ms") {
                shared.heartbeat_ms.store(ms, Relaxed);
            }
        }
        b"resync" => {
            shared.resyncs.fetch_add(1, Relaxed);
        }
        b"draining" => {
            *hint = json_u64(e.data, "reconnect_after_ms");
        }
        _ => {
            shared.other.fetch_add(1, Relaxed);
        }
    }
}

thread_local! {
    /// Every read lands here first; the parser keeps what it needs.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; 16 * 1024].into_boxed_slice());
}

/// Wait for bytes and feed them to the parser. `Ok(false)` at end of stream.
async fn read_some(stream: &mut TcpStream, conn: &mut Conn, shared: &Shared) -> io::Result<bool> {
    std::future::poll_fn(|cx| {
        SCRATCH.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(buf);
            // poll_read (unlike try_read) clears readiness after a short read: one syscall per
            // wake-up instead of two.
            match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(Ok(false)),
                Poll::Ready(Ok(())) => {
                    conn.on_bytes(rb.filled(), shared);
                    Poll::Ready(Ok(true))
                }
            }
        })
    })
    .await
}

/// A TCP connection to `target` from `source` (port chosen at connect time, so one source
/// address serves many destinations: `IP_BIND_ADDRESS_NO_PORT`).
async fn connect(target: SocketAddr, source: Option<Ipv4Addr>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    if let Some(ip) = source {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket, a c_int option value of the size we pass.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        socket.bind(&SocketAddr::V4(SocketAddrV4::new(ip, 0)).into())?;
    }
    let std: std::net::TcpStream = socket.into();
    TcpSocket::from_std_stream(std).connect(target).await
}

/// Open one stream, hold it until the process ends, count what arrives. With reconnecting on,
/// a stream that ends is opened again with `Last-Event-ID` after the server's hint.
pub async fn hold(idx: usize, source: Option<Ipv4Addr>, shared: &Shared) {
    let mut conn = Conn {
        idx,
        parser: Parser::new(),
        held: false,
        last: Last::default(),
        fail: None,
        open: false,
        last_id: Vec::new(),
        reconnect_after_ms: None,
    };
    let mut attempt = 0u32;
    loop {
        let reason = match open_stream(&mut conn, source, shared).await {
            Ok(mut stream) => {
                attempt = 0;
                let reason = loop {
                    match read_some(&mut stream, &mut conn, shared).await {
                        Ok(true) => {
                            if let Some(reason) = conn.fail.take() {
                                break reason;
                            }
                        }
                        Ok(false) => break "closed by the server".to_owned(),
                        Err(e) => break format!("read: {}", e.kind()),
                    }
                };
                shared.dropped.fetch_add(1, Relaxed);
                shared.note(format!("dropped: {reason}"));
                if !shared.reconnect {
                    return;
                }
                // The server's hint (`draining`), else the usual retry floor with jitter.
                let wait = conn
                    .reconnect_after_ms
                    .take()
                    .unwrap_or_else(|| 1_000 + jitter_ms(idx, 1_000));
                tokio::time::sleep(Duration::from_millis(wait)).await;
                continue;
            }
            Err(reason) => reason,
        };
        if !shared.reconnect {
            shared.failed.fetch_add(1, Relaxed);
            shared.note(reason);
            return;
        }
        // A failed (re)connect: the successor is not up yet, or it refused (503, e.g. this
        // instance is full: the next attempt may land on another one). Back off and retry.
        if reason.starts_with("HTTP ") {
            shared.refused.fetch_add(1, Relaxed);
        } else {
            shared.connect_errors.fetch_add(1, Relaxed);
        }
        attempt += 1;
        let cap = 200u64 << attempt.min(4);
        tokio::time::sleep(Duration::from_millis(
            100 + jitter_ms(idx + attempt as usize, cap),
        ))
        .await;
    }
}

/// A spread-out pseudo-random delay in `0..cap` ms (no RNG state per connection).
fn jitter_ms(seed: usize, cap: u64) -> u64 {
    let x = (seed as u64 ^ unix_nanos()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 33) % cap.max(1)
}

/// Connect, send the request (with `Last-Event-ID` when resuming), read until `connected`.
async fn open_stream(
    conn: &mut Conn,
    source: Option<Ipv4Addr>,
    shared: &Shared,
) -> Result<TcpStream, String> {
    let Ok(permit) = shared.handshakes.acquire().await else {
        return Err("shutting down".into());
    };
    conn.parser = Parser::new();
    conn.open = false;
    conn.fail = None;
    let idx = conn.idx;
    let handshake = async {
        let target = shared.stream_targets[idx % shared.stream_targets.len().max(1)];
        let mut stream = connect(target, source)
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        for request in &shared.warmup {
            crate::http::exchange(&mut stream, request).await?;
        }
        let plain = shared.request_for(idx);
        if conn.last_id.is_empty() {
            stream.write_all(plain).await
        } else {
            // The request with its resume point (the request ends with a blank line).
            let head = &plain[..plain.len() - 2];
            let mut request = Vec::with_capacity(plain.len() + 64);
            request.extend_from_slice(head);
            request.extend_from_slice(b"Last-Event-ID: ");
            request.extend_from_slice(&conn.last_id);
            request.extend_from_slice(b"\r\n\r\n");
            stream.write_all(&request).await
        }
        .map_err(|e| format!("write: {}", e.kind()))?;
        while !conn.open {
            let open = read_some(&mut stream, conn, shared)
                .await
                .map_err(|e| format!("read before `connected`: {}", e.kind()))?;
            if let Some(reason) = conn.fail.take() {
                return Err(reason);
            }
            if !open {
                return Err("closed before `connected`".to_owned());
            }
        }
        Ok(stream)
    };
    let opened = tokio::time::timeout(shared.handshake_timeout, handshake).await;
    drop(permit);
    match opened {
        Ok(result) => result,
        Err(_) => Err("no `connected` within the handshake timeout".into()),
    }
}

//! Benchmark tool only (ssr feature): the figures of one run — as a human summary, as one JSON
//! line, and many runs as a markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Publish→receipt latency over every client and broadcast, in µs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub min: u32,
    pub p50: u32,
    pub p99: u32,
    pub max: u32,
}

impl Latency {
    /// Nearest-rank percentiles; `None` without samples.
    pub fn of(mut samples: Vec<u32>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |q| nearest_rank(&samples, q);
        Some(Latency {
            samples: samples.len() as u64,
            min: samples[0],
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// The `q` quantile of non-empty `sorted` samples by nearest rank (an observed value, never an
/// interpolation between two).
fn nearest_rank(sorted: &[u32], q: f64) -> u32 {
    let r = (q * sorted.len() as f64).ceil() as usize;
    sorted[r.clamp(1, sorted.len()) - 1]
}

/// Send→receipt latency of the fan-out phase (every subscriber × every event after the
/// warm-up), in ms with µs resolution: the figures ds-bench reports, tail included.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct FanoutLatency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl FanoutLatency {
    /// Nearest-rank percentiles of samples in µs; `None` without samples.
    pub fn of(mut samples_us: Vec<u32>) -> Option<Self> {
        if samples_us.is_empty() {
            return None;
        }
        samples_us.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let rank = |q| ms(nearest_rank(&samples_us, q));
        Some(FanoutLatency {
            samples: samples_us.len() as u64,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            p999_ms: rank(0.999),
            max_ms: ms(samples_us[samples_us.len() - 1]),
        })
    }
}

/// What the fan-out phase measured (`--fanout-rate`): one publisher at a steady rate, every
/// held stream a subscriber, each event stamped with its send time. In the JSON report the
/// [`TopicFigures`] stand directly in the phase's object (their `latency_us` excludes the
/// warm-up too).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FanoutPhase {
    /// `--fanout-rate`: events per second asked for.
    pub rate: f64,
    /// Events per second achieved (first to last send).
    pub achieved_rate: Option<f64>,
    /// Publishing ticks skipped because the previous publish was still unanswered (each one an
    /// event the run publishes later than planned).
    pub skipped_ticks: u64,
    /// Streams subscribed when the phase began.
    pub subscribers: usize,
    /// Warm-up events (the first `--fanout-warmup-secs` × rate): checked for loss and
    /// duplicates, left out of the latency figures.
    pub warmup_events: usize,
    /// Events after the warm-up (`--fanout-secs` × rate).
    pub measured_events: usize,
    #[serde(flatten)]
    pub figures: TopicFigures,
    /// Send→receipt latency after the warm-up.
    pub latency: Option<FanoutLatency>,
}

/// Everything one run measured. `None` = not measured (no `--server-pid`, phase skipped, or
/// nothing to divide by).
/// What a reconnect storm measured (from the first dropped stream).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Storm {
    /// Seconds until 99 % of the streams were back (`connected` again).
    pub back_99_secs: Option<f64>,
    /// Seconds until all were back.
    pub back_all_secs: Option<f64>,
    /// Streams that said `connected` again.
    pub reconnects: u64,
    /// Reconnect attempts answered with a non-200 status (e.g. 503 while draining or full).
    pub refused: u64,
    /// Reconnect attempts that failed before an answer (nothing listening yet, reset).
    pub connect_errors: u64,
    /// `resync` events (a resume point the server could not honour).
    pub resyncs: u64,
    /// Events replayed by `Last-Event-ID` (sum of `replayed` in the new `connected` events).
    pub replayed: u64,
    /// Publish attempts repeated because the server refused or was down.
    pub publish_retries: u64,
}

/// What both topic phases (`--topic-publishes`, `--topic-rounds`) measure, the same way; in the
/// JSON report its fields stand directly in the phase's object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopicFigures {
    /// Publishes answered 202.
    pub accepted: u64,
    /// Publish requests that did not get 202.
    pub publish_errors: u64,
    /// The first publish error.
    pub publish_error: Option<String>,
    /// Wall time of the phase, s.
    pub secs: f64,
    /// Receipts (each subscribing stream × accepted publish once), and how many were expected.
    pub deliveries: u64,
    pub deliveries_expected: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unreadable: u64,
    /// Topic events that reached a stream not subscribed to their topic.
    pub misdelivered: u64,
    /// Pings received during the phase (also delivered events).
    pub pings: u64,
    /// Server CPU during the phase / events delivered in it (topic events + pings), µs.
    pub server_us_per_event: Option<f64>,
    /// Server CPU during the phase / accepted publishes, µs.
    pub server_us_per_publish: Option<f64>,
    /// Userland share of that CPU time, %.
    pub server_user_pct: Option<f64>,
    /// Publish→receipt latency of each delivery (from that event's own publish request).
    pub latency_us: Option<Latency>,
    /// Our CPU during the phase / events received in it, µs.
    pub tool_us_per_event: Option<f64>,
}

impl TopicFigures {
    /// `… of … delivered in … s (missing …, duplicate …, out of order …, unreadable …, to a
    /// non-subscriber …, publish errors …` (the caller closes the parenthesis).
    fn delivered(&self) -> String {
        format!(
            "{} of {} delivered in {} (missing {}, duplicate {}, out of order {}, unreadable {}, \
             to a non-subscriber {}, publish errors {}",
            self.deliveries,
            self.deliveries_expected,
            opt(Some(self.secs), 2, " s"),
            self.missing,
            self.duplicates,
            self.out_of_order,
            self.unreadable,
            self.misdelivered,
            self.publish_errors,
        )
    }
}

/// What the topic phase measured (`--topic-publishes`): events published one at a time, each
/// to one topic, against the same held streams as the broadcasts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopicPhase {
    /// `--topic-publishes`.
    pub publishes: usize,
    /// Subscribers of one topic (connections / topics, rounded up).
    pub subscribers_per_topic: usize,
    #[serde(flatten)]
    pub figures: TopicFigures,
    /// `--empty-publishes`: publishes to a topic no stream reads, accepted.
    #[serde(default)]
    pub empty_accepted: u64,
    /// Server CPU per such publish (the fixed cost of a publish, no deliveries), µs.
    #[serde(default)]
    pub empty_server_us_per_publish: Option<f64>,
    /// Receipts of those (must be 0).
    #[serde(default)]
    pub empty_received: u64,
}

/// What the topic-rounds phase measured (`--topic-rounds`): each round publishes one event to
/// every topic, `concurrency` requests in flight, and waits until every stream got its topic's
/// event — as many deliveries per round as one broadcast, against the same held streams.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoundPhase {
    /// `--topic-rounds`.
    pub rounds: usize,
    /// Publishes per round (`--topics`).
    pub publishes_per_round: usize,
    /// `--round-concurrency`: publish requests in flight at once (one kept-alive connection
    /// each).
    pub concurrency: usize,
    /// Rounds in which every publish was accepted and every subscriber got its event in time.
    pub complete_rounds: u64,
    #[serde(flatten)]
    pub figures: TopicFigures,
    /// Server CPU during the phase / rounds, µs (compare with one broadcast).
    pub server_us_per_round: Option<f64>,
    /// Per complete round: from the round's first publish request to its last receipt.
    pub round_latency_us: Option<Latency>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Free text from `--label`.
    pub label: Option<String>,
    /// The reconnect storm, when `--storm-secs` ran one.
    #[serde(default)]
    pub storm: Option<Storm>,
    /// `--reuse`: requests each connection carried before its stream (empty: a fresh
    /// connection's first request).
    #[serde(default)]
    pub reuse: Vec<String>,
    /// `--connections`.
    pub connections: usize,
    /// `--topics` (0: the streams read broadcasts only).
    #[serde(default)]
    pub topics: usize,
    /// The streams carried signed access tokens (`--access-secret`).
    #[serde(default)]
    pub access_tokens: bool,
    /// The topic phase, when `--topic-publishes` ran one.
    #[serde(default)]
    pub topic_phase: Option<TopicPhase>,
    /// The topic-rounds phase (`--topic-rounds`).
    #[serde(default)]
    pub round_phase: Option<RoundPhase>,
    /// The fan-out phase (`--fanout-rate`); absent from the JSON of other runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout_phase: Option<FanoutPhase>,
    /// Streams that said `connected`.
    pub held: usize,
    /// Connections that never got there.
    pub failed: usize,
    /// Held streams that ended during the run.
    pub dropped: usize,
    /// Reasons for failed and dropped connections, with counts.
    pub failures: BTreeMap<String, u64>,
    /// Seconds from the first connect until the last `connected` (all N held only).
    pub connect_secs: Option<f64>,
    /// The server's heartbeat, from its `connected` event.
    pub heartbeat_ms: Option<u64>,
    /// Where server CPU times come from: `schedstat` (ns) or `stat` (clock ticks).
    pub cpu_source: Option<String>,
    /// Clock ticks per second used for `/proc/<pid>/stat`.
    pub clock_ticks_per_sec: u64,
    /// Server `VmRSS` before connecting, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server `VmRSS` after connect + settle, KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) / held, bytes.
    pub rss_per_conn_bytes: Option<f64>,
    /// Length of the idle window, s.
    pub idle_secs: f64,
    /// Pings received during the idle window.
    pub idle_pings: u64,
    /// Server CPU during the idle window, % of one core.
    pub idle_server_cpu_pct: Option<f64>,
    /// Server CPU during the idle window per ping delivered, µs.
    pub idle_server_us_per_ping: Option<f64>,
    /// Our CPU during the idle window per event received, µs.
    pub idle_tool_us_per_event: Option<f64>,
    /// `--broadcasts`.
    pub broadcasts: usize,
    /// Wall time of the broadcast phase, s.
    pub broadcast_secs: Option<f64>,
    /// connections × broadcasts.
    pub deliveries_expected: u64,
    /// Broadcast receipts (each client × broadcast once).
    pub deliveries: u64,
    /// Pings received during the broadcast phase (also delivered events).
    pub broadcast_phase_pings: u64,
    /// `deliveries_expected − deliveries`.
    pub missing: u64,
    /// Broadcasts a client got twice.
    pub duplicates: u64,
    /// Broadcasts that came after a later one on the same client.
    pub out_of_order: u64,
    /// `bench` events whose data could not be read.
    pub bad_events: u64,
    /// Other events received (not `connected`, `ping`, `bench`).
    pub other_events: u64,
    /// Publish requests that did not get 202.
    pub publish_errors: u64,
    /// The first publish error.
    pub publish_error: Option<String>,
    /// Publish→receipt latency.
    pub latency_us: Option<Latency>,
    /// Stream targets (`--stream-url`), when not just the publish target.
    #[serde(default)]
    pub stream_targets: Vec<String>,
    /// Sustained phase: publishes accepted (202).
    #[serde(default)]
    pub sustain_published: u64,
    /// Sustained phase: publishes refused or failed.
    #[serde(default)]
    pub sustain_errors: u64,
    /// Sustained phase: accepted publishes per second.
    #[serde(default)]
    pub sustain_per_sec: Option<f64>,
    /// Sustained phase: `sustain` receipts (all streams), and how many were expected.
    #[serde(default)]
    pub sustain_delivered: u64,
    /// streams × accepted publishes.
    #[serde(default)]
    pub sustain_expected: u64,
    /// Sustained phase: seconds from the last accepted publish until every stream had all.
    #[serde(default)]
    pub sustain_drain_secs: Option<f64>,
    /// Server CPU during the broadcast phase / events delivered in it (broadcasts + pings), µs.
    pub server_us_per_event: Option<f64>,
    /// Server CPU during the broadcast phase / accepted broadcasts, µs.
    #[serde(default)]
    pub server_us_per_broadcast: Option<f64>,
    /// Share of the server's CPU time in the broadcast phase spent in userland (the rest is
    /// the kernel: socket writes and, on loopback, the receiving side's TCP work), % (from
    /// `/proc/<pid>/stat` clock ticks).
    pub server_user_pct: Option<f64>,
    /// Our CPU during the broadcast phase / events received in it, µs.
    pub tool_us_per_event: Option<f64>,
    /// The userland part of it (parser, runtime), µs.
    pub tool_user_us_per_event: Option<f64>,
    /// The kernel part of it (socket reads, loopback TCP incl. sending ACKs, epoll), µs.
    pub tool_sys_us_per_event: Option<f64>,
    /// Our CPU over the whole run, s.
    pub tool_cpu_secs: f64,
    /// Our `VmRSS` at the end, KiB.
    pub tool_rss_kib: Option<u64>,
    /// Worker threads of our runtime.
    pub tool_threads: usize,
    /// The overall `--timeout-secs` cut the run short.
    pub timed_out: bool,
    /// Why the run is not a pass (empty = pass).
    pub problems: Vec<String>,
    /// All N connected, none dropped, every client got every broadcast once.
    pub ok: bool,
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}{unit}"))
}

/// `8.40 (35 % user)`
fn with_user(total: Option<f64>, user: Option<String>) -> String {
    match (total, user) {
        (Some(t), Some(u)) => format!("{t:.2} ({u})"),
        (t, _) => opt(t, 2, ""),
    }
}

fn ms(us: u32) -> String {
    format!("{:.1}", f64::from(us) / 1000.0)
}

/// `<what> publish→receipt: min … / p50 … / p99 … / max … ms (… samples)`, where measured.
fn latency_line(s: &mut String, what: &str, latency: Option<Latency>) {
    if let Some(l) = latency {
        let _ = writeln!(
            s,
            "{what} publish→receipt: min {} / p50 {} / p99 {} / max {} ms ({} samples)",
            ms(l.min),
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.samples
        );
    }
}

/// `  first publish error: …`, where there was one.
fn publish_error_line(s: &mut String, error: Option<&String>) {
    if let Some(e) = error {
        let _ = writeln!(s, "  first publish error: {e}");
    }
}

/// A few lines for a person.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "connections: {}/{} held in {} (failed {}, dropped {}); heartbeat {}",
        r.held,
        r.connections,
        opt(r.connect_secs, 2, " s"),
        r.failed,
        r.dropped,
        r.heartbeat_ms
            .map_or_else(|| "unknown".to_owned(), |h| format!("{h} ms")),
    );
    for (reason, n) in &r.failures {
        let _ = writeln!(s, "  {n} × {reason}");
    }
    if let Some(st) = &r.storm {
        let _ = writeln!(
            s,
            "storm: 99 % back in {}, all in {}; {} reconnects, {} refused (non-200), {} failed \
             connects, {} resyncs, {} events replayed, {} publish retries",
            opt(st.back_99_secs, 2, " s"),
            opt(st.back_all_secs, 2, " s"),
            st.reconnects,
            st.refused,
            st.connect_errors,
            st.resyncs,
            st.replayed,
            st.publish_retries,
        );
    }
    if let (Some(a), Some(b)) = (r.rss_before_kib, r.rss_after_kib) {
        let _ = writeln!(
            s,
            "server RSS: {a} KiB before, {b} KiB after → {} per connection",
            opt(r.rss_per_conn_bytes.map(|b| b / 1024.0), 2, " KiB"),
        );
    }
    if r.idle_secs > 0.0 {
        let _ = writeln!(
            s,
            "idle {:.1} s: server CPU {} of one core, {} pings → {} per ping; loadgen {} per event",
            r.idle_secs,
            opt(r.idle_server_cpu_pct, 2, " %"),
            r.idle_pings,
            opt(r.idle_server_us_per_ping, 2, " µs"),
            opt(r.idle_tool_us_per_event, 2, " µs"),
        );
    }
    if r.broadcasts > 0 {
        let _ = writeln!(
            s,
            "broadcasts: {} × {} → {} of {} delivered in {} (missing {}, duplicate {}, out of order {}, unreadable {}, publish errors {})",
            r.broadcasts,
            r.connections,
            r.deliveries,
            r.deliveries_expected,
            opt(r.broadcast_secs, 2, " s"),
            r.missing,
            r.duplicates,
            r.out_of_order,
            r.bad_events,
            r.publish_errors,
        );
        publish_error_line(&mut s, r.publish_error.as_ref());
        latency_line(&mut s, "latency", r.latency_us);
        let _ = writeln!(
            s,
            "server CPU per delivered event: {} ({} broadcasts + {} pings; {} of it userland)",
            opt(r.server_us_per_event, 2, " µs"),
            r.deliveries,
            r.broadcast_phase_pings,
            opt(r.server_user_pct, 0, " %"),
        );
        let _ = writeln!(
            s,
            "loadgen CPU per received event: {} ({} userland + {} kernel)",
            opt(r.tool_us_per_event, 2, " µs"),
            opt(r.tool_user_us_per_event, 2, " µs"),
            opt(r.tool_sys_us_per_event, 2, " µs"),
        );
    }
    if let Some(t) = &r.topic_phase {
        let f = &t.figures;
        let _ = writeln!(
            s,
            "topic publishes: {} × one of {} topics ({} subscribers each) → {})",
            t.publishes,
            r.topics,
            t.subscribers_per_topic,
            f.delivered(),
        );
        publish_error_line(&mut s, f.publish_error.as_ref());
        latency_line(&mut s, "topic latency", f.latency_us);
        let _ = writeln!(
            s,
            "server CPU per delivered event: {} topic vs {} broadcast (ratio {}; {} pings in the topic phase); \
             per publish: {} topic vs {} broadcast",
            opt(f.server_us_per_event, 2, " µs"),
            opt(r.server_us_per_event, 2, " µs"),
            opt(topic_ratio(r), 3, ""),
            f.pings,
            opt(f.server_us_per_publish, 1, " µs"),
            opt(r.server_us_per_broadcast, 1, " µs"),
        );
        if t.empty_accepted > 0 {
            let net = |per_publish: Option<f64>, deliveries: f64| {
                let (fixed, total) = (t.empty_server_us_per_publish?, per_publish?);
                (deliveries > 0.0).then(|| (total - fixed) / deliveries)
            };
            let per_broadcast =
                (r.broadcasts > 0).then(|| r.deliveries as f64 / r.broadcasts as f64);
            let _ = writeln!(
                s,
                "a publish nobody reads: {} of server CPU ({} publishes, {} receipts); net of it, per delivered event: {} topic vs {} broadcast",
                opt(t.empty_server_us_per_publish, 1, " µs"),
                t.empty_accepted,
                t.empty_received,
                opt(net(f.server_us_per_publish, t.subscribers_per_topic as f64), 2, " µs"),
                opt(net(r.server_us_per_broadcast, per_broadcast.unwrap_or(0.0)), 2, " µs"),
            );
        }
    }
    if let Some(t) = &r.round_phase {
        let f = &t.figures;
        let _ = writeln!(
            s,
            "topic rounds: {} × one publish to each of {} topics ({} in flight) → {}; {} complete rounds)",
            t.rounds,
            t.publishes_per_round,
            t.concurrency,
            f.delivered(),
            t.complete_rounds,
        );
        publish_error_line(&mut s, f.publish_error.as_ref());
        if let Some(l) = t.round_latency_us {
            let _ = writeln!(
                s,
                "round latency first publish→last receipt: min {} / p50 {} / max {} ms ({} rounds)",
                ms(l.min),
                ms(l.p50),
                ms(l.max),
                l.samples
            );
        }
        latency_line(&mut s, "round latency", f.latency_us);
        let _ = writeln!(
            s,
            "server CPU per delivered event: {} topic rounds vs {} broadcast (ratio {}; {} pings in the phase; {} of it userland); \
             per round: {} vs per broadcast {}; per publish {}",
            opt(f.server_us_per_event, 2, " µs"),
            opt(r.server_us_per_event, 2, " µs"),
            opt(round_ratio(r), 3, ""),
            f.pings,
            opt(f.server_user_pct, 0, " %"),
            opt(t.server_us_per_round, 1, " µs"),
            opt(r.server_us_per_broadcast, 1, " µs"),
            opt(f.server_us_per_publish, 1, " µs"),
        );
    }
    if let Some(p) = &r.fanout_phase {
        fanout_lines(&mut s, p);
    }
    if r.sustain_published + r.sustain_errors > 0 {
        let _ = writeln!(
            s,
            "sustained: {} published ({} per s, {} refused/failed) → {} of {} receipts; all delivered {} after the last publish",
            r.sustain_published,
            opt(r.sustain_per_sec, 0, ""),
            r.sustain_errors,
            r.sustain_delivered,
            r.sustain_expected,
            opt(r.sustain_drain_secs, 2, " s"),
        );
    }
    let _ = writeln!(
        s,
        "loadgen: {:.2} s CPU in all, {} RSS, {} thread(s); server CPU from {}",
        r.tool_cpu_secs,
        r.tool_rss_kib.map_or_else(
            || "n/a".to_owned(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0)
        ),
        r.tool_threads,
        r.cpu_source.as_deref().unwrap_or("n/a"),
    );
    if r.ok {
        let _ = writeln!(s, "result: PASS");
    } else {
        let _ = writeln!(s, "result: FAIL — {}", r.problems.join("; "));
    }
    s
}

/// The fan-out phase for a person: what was published, what arrived, the latency.
fn fanout_lines(s: &mut String, p: &FanoutPhase) {
    let f = &p.figures;
    let _ = writeln!(
        s,
        "fan-out: 1 publisher at {} events/s ({} achieved, {} ticks skipped) → {} subscribers; \
         {} events ({} warm-up + {} measured), {} accepted → {})",
        p.rate,
        opt(p.achieved_rate, 2, "/s"),
        p.skipped_ticks,
        p.subscribers,
        p.warmup_events + p.measured_events,
        p.warmup_events,
        p.measured_events,
        f.accepted,
        f.delivered(),
    );
    publish_error_line(s, f.publish_error.as_ref());
    match p.latency {
        Some(l) => {
            let _ = writeln!(
                s,
                "fan-out send→receipt latency (warm-up of {} events excluded): p50 {:.3} / p90 {:.3} \
                 / p99 {:.3} / p99.9 {:.3} / max {:.3} ms ({} samples)",
                p.warmup_events, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
            );
        }
        None => {
            let _ = writeln!(s, "fan-out send→receipt latency: no samples");
        }
    }
    let _ = writeln!(
        s,
        "fan-out missing {}, duplicate {}; server CPU per delivered event {} ({} pings in the \
         phase; {} of it userland), per publish {}; loadgen CPU per received event {}",
        f.missing,
        f.duplicates,
        opt(f.server_us_per_event, 2, " µs"),
        f.pings,
        opt(f.server_user_pct, 0, " %"),
        opt(f.server_us_per_publish, 1, " µs"),
        opt(f.tool_us_per_event, 2, " µs"),
    );
}

/// Server CPU per delivered event, topic phase / broadcast phase.
pub fn topic_ratio(r: &Report) -> Option<f64> {
    per_event_ratio(r, r.topic_phase.as_ref().map(|t| &t.figures))
}

/// Server CPU per delivered event, topic-rounds phase / broadcast phase.
pub fn round_ratio(r: &Report) -> Option<f64> {
    per_event_ratio(r, r.round_phase.as_ref().map(|t| &t.figures))
}

fn per_event_ratio(r: &Report, phase: Option<&TopicFigures>) -> Option<f64> {
    let t = phase?.server_us_per_event?;
    let b = r.server_us_per_event?;
    (b > 0.0).then(|| t / b)
}

/// One markdown table, a row per run.
pub fn markdown_table(reports: &[Report]) -> String {
    let mut s = String::from(
        "| label | connection | N | heartbeat | all held in | server RSS / conn | idle CPU | server µs / ping (idle) \
         | server µs / event (broadcast) | latency p50 / p99 / max | loadgen µs / event | correct |\n\
         |:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|\n",
    );
    for r in reports {
        let latency = r.latency_us.map_or_else(
            || "n/a".to_owned(),
            |l| format!("{} / {} / {} ms", ms(l.p50), ms(l.p99), ms(l.max)),
        );
        let verdict = if r.ok {
            format!("yes ({}×{})", r.broadcasts, r.held)
        } else {
            format!("**no**: {}", r.problems.join("; "))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label.as_deref().unwrap_or(""),
            if r.reuse.is_empty() {
                "fresh".to_owned()
            } else {
                format!("reused after {}", r.reuse.join(" "))
            },
            r.connections,
            r.heartbeat_ms
                .map_or_else(|| "?".to_owned(), |h| format!("{h} ms")),
            opt(r.connect_secs, 2, " s"),
            opt(r.rss_per_conn_bytes.map(|b| b / 1024.0), 2, " KiB"),
            opt(r.idle_server_cpu_pct, 2, " %"),
            opt(r.idle_server_us_per_ping, 2, ""),
            with_user(
                r.server_us_per_event,
                r.server_user_pct.map(|p| format!("{p:.0} % user"))
            ),
            latency,
            with_user(
                r.tool_us_per_event,
                r.tool_user_us_per_event.map(|u| format!("{u:.2} user")),
            ),
            verdict,
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latency::of((1..=100).rev().collect()).unwrap();
        assert_eq!(
            (l.min, l.p50, l.p99, l.max, l.samples),
            (1, 50, 99, 100, 100)
        );
        let one = Latency::of(vec![7]).unwrap();
        assert_eq!((one.p50, one.p99), (7, 7));
        assert_eq!(Latency::of(vec![]), None);
    }

    #[test]
    fn fanout_percentiles_in_ms_with_the_tail() {
        let l = FanoutLatency::of((1..=2000).rev().collect()).unwrap();
        assert_eq!(l.samples, 2000);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms),
            (1.0, 1.8, 1.98, 1.998, 2.0)
        );
        assert_eq!(FanoutLatency::of(vec![]), None);
    }

    #[test]
    fn other_runs_carry_no_fanout_field_and_a_fanout_run_reads_back() {
        let plain = serde_json::to_string(&Report::default()).unwrap();
        assert!(!plain.contains("fanout"), "{plain}");
        let r = Report {
            fanout_phase: Some(FanoutPhase {
                rate: 50.0,
                subscribers: 2,
                measured_events: 3,
                latency: FanoutLatency::of(vec![1234, 2000, 999]),
                ..FanoutPhase::default()
            }),
            ok: true,
            ..Report::default()
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""p50_ms":1.234"#), "{line}");
        let back: Report = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back.fanout_phase.map(|p| p.latency),
            r.fanout_phase.as_ref().map(|p| p.latency)
        );
        let text = summary(&r);
        assert!(text.contains("p50 1.234 / p90 2.000"), "{text}");
    }

    #[test]
    fn reports_round_trip_and_tabulate() {
        let r = Report {
            connections: 10,
            held: 10,
            heartbeat_ms: Some(5000),
            latency_us: Latency::of(vec![1500, 2500]),
            broadcasts: 3,
            ok: true,
            ..Report::default()
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        let back: Report = serde_json::from_str(&line).unwrap();
        let table = markdown_table(&[back]);
        assert!(table.contains("| 10 | 5000 ms |"), "{table}");
        assert!(table.contains("1.5 / 2.5 / 2.5 ms"), "{table}");
        assert!(table.contains("yes (3×10)"), "{table}");
        assert!(summary(&r).contains("result: PASS"));
    }
}

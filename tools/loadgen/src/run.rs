//! Benchmark tool only (ssr feature): the phases of one run — connect N streams, settle, an idle
//! window, M broadcasts one at a time (or the fan-out phase: events at a steady rate) — with
//! server and own samples around each, every wait bounded by its own timeout and by the run's
//! overall deadline.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::sleep;

use crate::conn::{self, unix_nanos, Shared, TopicCounts, BENCH_EVENT, SUSTAIN_EVENT};
use crate::fanout::{self, Plan};
use crate::procfs::{self, cpu_between, Sample};
use crate::publish::Publisher;
use crate::report::{
    FanoutLatency, FanoutPhase, Latency, Report, RoundPhase, TopicFigures, TopicPhase,
};
use crate::topics::{self, ROUND_EVENT, TOPIC_EVENT};
use crate::Args;

/// Counts of received events at one moment, with our own CPU time.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    server: Option<Sample>,
    tool_cpu: procfs::OwnCpu,
    pings: u64,
    bench: u64,
    topic: u64,
    round: u64,
    fanout: u64,
    other: u64,
}

impl Mark {
    fn events(&self) -> u64 {
        self.pings + self.bench + self.topic + self.round + self.fanout + self.other
    }
}

struct Runner<'a> {
    args: &'a Args,
    shared: Arc<Shared>,
    report: Report,
    deadline: Instant,
    /// The server processes are being replaced (no /proc samples).
    storming: bool,
}

impl Runner<'_> {
    fn mark(&mut self) -> Mark {
        let pids = &self.args.server_pid;
        let server = if pids.is_empty() || self.storming {
            // During a storm the server processes change: no samples.
            None
        } else {
            match Sample::read_many(pids) {
                Ok(s) => Some(s),
                Err(err) => {
                    self.problem(format!(
                        "cannot read /proc of {pids:?} (server gone?): {err}"
                    ));
                    None
                }
            }
        };
        Mark {
            at: Instant::now(),
            server,
            tool_cpu: procfs::own_cpu(),
            pings: self.shared.pings.load(Relaxed),
            bench: self.shared.bench.load(Relaxed),
            topic: self.shared.topic.delivered.load(Relaxed),
            round: self.shared.rounds.delivered.load(Relaxed),
            fanout: self.shared.fanout.delivered.load(Relaxed),
            other: self.shared.other.load(Relaxed),
        }
    }

    fn problem(&mut self, p: String) {
        if !self.report.problems.contains(&p) {
            self.report.problems.push(p);
        }
    }

    /// `--broadcast-gap-ms` between two publishes of a phase.
    async fn gap(&mut self) {
        if self.args.broadcast_gap_ms > 0 {
            self.pause(Duration::from_millis(self.args.broadcast_gap_ms))
                .await;
        }
    }

    /// Waits until `done()` (checked on every receipt wake-up, at least every `step`) or `until`.
    async fn wait_until(&self, until: Instant, step: Duration, done: impl Fn() -> bool) {
        while !done() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = tokio::time::timeout(left.min(step), self.shared.all_received.notified()).await;
        }
    }

    /// Sleep `d`, but never past the deadline; false if the deadline cut it short.
    async fn pause(&mut self, d: Duration) -> bool {
        let until = (Instant::now() + d).min(self.deadline);
        sleep(until.saturating_duration_since(Instant::now())).await;
        if Instant::now() >= self.deadline {
            self.report.timed_out = true;
            return false;
        }
        true
    }

    fn source_for(&self, i: usize) -> Option<Ipv4Addr> {
        if self.args.no_bind {
            return None;
        }
        let base = u32::from(self.args.bind_from);
        Some(Ipv4Addr::from(
            base + (i / self.args.per_source.max(1)) as u32,
        ))
    }

    async fn connect(&mut self) {
        let n = self.args.connections;
        tracing::info!(
            n,
            target = %self.shared.target,
            handshakes = self.args.handshakes,
            "opening streams"
        );
        for i in 0..n {
            let shared = Arc::clone(&self.shared);
            let source = self.source_for(i);
            tokio::spawn(async move { conn::hold(i, source, &shared).await });
        }
        // Poll every 5 ms: bounded by the deadline, each handshake by its own timeout.
        while self.shared.held.load(Relaxed) + self.shared.failed.load(Relaxed) < n {
            if !self.pause(Duration::from_millis(5)).await {
                break;
            }
        }
        let held = self.shared.held.load(Relaxed);
        if held == n {
            let secs = self.shared.last_held_us.load(Relaxed) as f64 / 1e6;
            self.report.connect_secs = Some(secs);
        }
        tracing::info!(
            held,
            failed = self.shared.failed.load(Relaxed),
            secs = ?self.report.connect_secs,
            "connect phase over"
        );
    }

    async fn idle(&mut self) {
        let secs = self.args.idle_secs;
        if secs == 0.0 || self.report.timed_out {
            return;
        }
        tracing::info!(secs, "idle window");
        let a = self.mark();
        self.pause(Duration::from_secs_f64(secs)).await;
        let b = self.mark();
        let wall = (b.at - a.at).as_secs_f64();
        let r = &mut self.report;
        r.idle_secs = wall;
        r.idle_pings = b.pings - a.pings;
        if let (Some(sa), Some(sb)) = (&a.server, &b.server) {
            let cpu = cpu_between(sa, sb).as_secs_f64();
            r.idle_server_cpu_pct = Some(100.0 * cpu / wall);
            r.idle_server_us_per_ping = per_event_us(cpu, r.idle_pings);
        }
        r.idle_tool_us_per_event = per_event_us(
            (b.tool_cpu.total() - a.tool_cpu.total()).as_secs_f64(),
            b.events() - a.events(),
        );
    }

    async fn broadcasts(&mut self) {
        let m = self.args.broadcasts;
        if m == 0 || self.report.timed_out {
            return;
        }
        if self.args.observe {
            return self.observe().await;
        }
        let Some(token) = self.args.publish_token.clone() else {
            self.problem("--broadcasts needs --publish-token".into());
            return;
        };
        tracing::info!(m, "broadcasting");
        let mut publisher = Publisher::new(self.shared.target, token);
        let a = self.mark();
        let errors_before = self.report.publish_errors;
        for i in 0..m {
            if Instant::now() >= self.deadline {
                self.report.timed_out = true;
                break;
            }
            let expect = self.shared.alive();
            self.shared.expect.store(expect, Relaxed);
            let body = serde_json::json!({
                "event": BENCH_EVENT,
                "data": { "t": unix_nanos(), "i": i },
            })
            .to_string();
            let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
            if let Err(e) = publish_within(&mut publisher, &body, limit).await {
                self.report.publish_errors += 1;
                self.report.publish_error.get_or_insert(e);
                continue;
            }
            // Wait until every open stream has broadcast i, or its timeout.
            let until = (Instant::now() + limit).min(self.deadline);
            self.wait_until(until, Duration::MAX, || {
                self.shared.received[i].load(Relaxed) as usize >= expect
            })
            .await;
            self.gap().await;
        }
        let b = self.mark();
        let r = &mut self.report;
        r.broadcast_secs = Some((b.at - a.at).as_secs_f64());
        r.broadcast_phase_pings = b.pings - a.pings;
        let delivered = (b.bench - a.bench) + r.broadcast_phase_pings;
        let accepted = (m as u64).saturating_sub(r.publish_errors - errors_before);
        if let Some((cpu, user_pct)) = server_cpu(&a, &b) {
            r.server_us_per_event = per_event_us(cpu, delivered);
            r.server_us_per_broadcast = per_event_us(cpu, accepted);
            r.server_user_pct = user_pct;
        }
        let received = b.events() - a.events();
        let (ta, tb) = (a.tool_cpu, b.tool_cpu);
        r.tool_us_per_event = per_event_us((tb.total() - ta.total()).as_secs_f64(), received);
        r.tool_user_us_per_event = per_event_us((tb.user - ta.user).as_secs_f64(), received);
        r.tool_sys_us_per_event = per_event_us((tb.system - ta.system).as_secs_f64(), received);
    }

    /// `--topic-publishes`: events published one at a time, publish j to the one topic
    /// `bench/<j % topics>`; the next goes out once every subscriber of that topic got it.
    async fn topic_publishes(&mut self) {
        let k = self.args.topic_publishes;
        if k == 0 || self.report.timed_out {
            return;
        }
        let (n, topics) = (self.args.connections, self.args.topics);
        let mut phase = TopicPhase {
            publishes: k,
            subscribers_per_topic: n.div_ceil(topics),
            ..TopicPhase::default()
        };
        if self.shared.alive() < n {
            // Each publish would wait for streams that are not there.
            self.problem("topic phase skipped: not every stream is open".into());
            self.report.topic_phase = Some(phase);
            return;
        }
        let Some(token) = self.args.publish_token.clone() else {
            self.problem("--topic-publishes needs --publish-token".into());
            return;
        };
        tracing::info!(k, topics, "publishing to one topic at a time");
        let mut publisher = Publisher::new(self.shared.target, token);
        let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
        let tc = &self.shared.topic;
        let before = (tc.delivered.load(Relaxed), tc.duplicates.load(Relaxed));
        let a = self.mark();
        for j in 0..k {
            if Instant::now() >= self.deadline {
                self.report.timed_out = true;
                break;
            }
            let expect = topics::subscribers(j, n, topics);
            self.shared.expect.store(expect, Relaxed);
            let body = serde_json::json!({
                "event": TOPIC_EVENT,
                "data": { "t": unix_nanos(), "i": j },
                "topics": [topics::topic_of(j, topics)],
            })
            .to_string();
            let f = &mut phase.figures;
            if let Err(e) = publish_within(&mut publisher, &body, limit).await {
                f.publish_errors += 1;
                f.publish_error.get_or_insert(e);
                continue;
            }
            f.accepted += 1;
            f.deliveries_expected += expect as u64;
            let until = (Instant::now() + limit).min(self.deadline);
            self.wait_until(until, Duration::MAX, || {
                self.shared.topic.received[j].load(Relaxed) as usize >= expect
            })
            .await;
            self.gap().await;
        }
        let b = self.mark();
        measure(&mut phase.figures, &self.shared.topic, before.0, &a, &b);
        self.empty_publishes(&mut publisher, &mut phase).await;
        // Counted after the empty publishes too: whatever they (wrongly) delivered shows here.
        count_faults(&mut phase.figures, &self.shared.topic, before.1);
        self.report.topic_phase = Some(phase);
    }

    /// `--empty-publishes`: the same publishes to a topic no stream reads, one at a time with
    /// the same gap: what a publish costs the server before any delivery.
    async fn empty_publishes(&mut self, publisher: &mut Publisher, phase: &mut TopicPhase) {
        let e = self.args.empty_publishes;
        if e == 0 || self.report.timed_out {
            return;
        }
        tracing::info!(e, "publishing to a topic nobody reads");
        let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
        let a = self.mark();
        for j in 0..e {
            if Instant::now() >= self.deadline {
                self.report.timed_out = true;
                break;
            }
            let body = serde_json::json!({
                "event": TOPIC_EVENT,
                "data": { "t": unix_nanos(), "i": j },
                "topics": ["bench/nobody"],
            })
            .to_string();
            match tokio::time::timeout(limit, publisher.publish(&body)).await {
                Ok(Ok(a)) if a.status == 202 => phase.empty_accepted += 1,
                Ok(Ok(a)) => {
                    phase.figures.publish_errors += 1;
                    phase.figures.publish_error.get_or_insert(format!(
                        "HTTP {}: {}",
                        a.status,
                        a.body.trim()
                    ));
                }
                _ => phase.figures.publish_errors += 1,
            }
            self.gap().await;
        }
        // Anything that (wrongly) arrived would show up as a topic receipt or a misdelivery.
        self.pause(Duration::from_millis(200)).await;
        let b = self.mark();
        phase.empty_received = b.topic - a.topic;
        if let Some((cpu, _)) = server_cpu(&a, &b) {
            // The 200 ms settle above is idle time: no pings (they are counted), nothing else.
            phase.empty_server_us_per_publish = per_event_us(cpu, phase.empty_accepted);
        }
    }

    /// `--topic-rounds`: each round publishes one event to every topic — publish
    /// `j = round × topics + k` to `bench/<k>` — with `--round-concurrency` requests in flight
    /// (kept-alive connections, each taking the topics `k ≡ c` mod concurrency in turn), then
    /// waits until every stream got its topic's event: one round delivers to every stream once,
    /// as one broadcast does.
    async fn topic_rounds(&mut self) {
        let rounds = self.args.topic_rounds;
        if rounds == 0 || self.report.timed_out {
            return;
        }
        let (n, topics) = (self.args.connections, self.args.topics);
        let concurrency = self.args.round_concurrency.clamp(1, topics.max(1));
        let mut phase = RoundPhase {
            rounds,
            publishes_per_round: topics,
            concurrency,
            ..RoundPhase::default()
        };
        if self.shared.alive() < n {
            self.problem("topic rounds skipped: not every stream is open".into());
            self.report.round_phase = Some(phase);
            return;
        }
        let Some(token) = self.args.publish_token.clone() else {
            self.problem("--topic-rounds needs --publish-token".into());
            return;
        };
        tracing::info!(
            rounds,
            topics,
            concurrency,
            "publishing rounds to every topic"
        );
        let mut publishers: Vec<Publisher> = (0..concurrency)
            .map(|_| Publisher::new(self.shared.target, token.clone()))
            .collect();
        let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
        let rc = &self.shared.rounds;
        let before = (rc.delivered.load(Relaxed), rc.duplicates.load(Relaxed));
        let mut round_latencies = Vec::with_capacity(rounds);
        let a = self.mark();
        for round in 0..rounds {
            if Instant::now() >= self.deadline {
                self.report.timed_out = true;
                break;
            }
            // No wake-ups while this round's publishes go out (set to the round's target below).
            self.shared.rounds.wake_at.store(u64::MAX, Relaxed);
            let started = unix_nanos();
            let until = (Instant::now() + limit).min(self.deadline);
            let mut tasks = tokio::task::JoinSet::new();
            for (c, mut publisher) in publishers.drain(..).enumerate() {
                tasks.spawn(async move {
                    // (accepted topics, errors, first error)
                    let mut accepted = Vec::new();
                    let (mut errors, mut first) = (0u64, None);
                    for k in (c..topics).step_by(concurrency) {
                        let j = round * topics + k;
                        let body = serde_json::json!({
                            "event": ROUND_EVENT,
                            "data": { "t": unix_nanos(), "i": j },
                            "topics": [topics::topic_of(k, topics)],
                        })
                        .to_string();
                        match publish_within(&mut publisher, &body, limit).await {
                            Ok(()) => accepted.push(k),
                            Err(e) => {
                                errors += 1;
                                first.get_or_insert(e);
                            }
                        }
                    }
                    (publisher, accepted, errors, first)
                });
            }
            let mut expected = 0u64;
            let mut round_errors = 0u64;
            while let Some(done) = tasks.join_next().await {
                let Ok((publisher, accepted, errors, first)) = done else {
                    round_errors += 1;
                    continue;
                };
                publishers.push(publisher);
                phase.figures.accepted += accepted.len() as u64;
                expected += accepted
                    .iter()
                    .map(|&k| topics::subscribers(k, n, topics) as u64)
                    .sum::<u64>();
                round_errors += errors;
                if let Some(e) = first {
                    phase.figures.publish_error.get_or_insert(e);
                }
            }
            phase.figures.publish_errors += round_errors;
            phase.figures.deliveries_expected += expected;
            // Every stream's event of this round, or the timeout.
            let target = before.0 + phase.figures.deliveries_expected;
            let rc = &self.shared.rounds;
            rc.wake_at.store(target, Relaxed);
            self.wait_until(until, Duration::from_millis(50), || {
                rc.delivered.load(Relaxed) >= target
            })
            .await;
            let complete = round_errors == 0
                && (round * topics..(round + 1) * topics).all(|j| {
                    rc.received[j].load(Relaxed) as usize
                        >= topics::subscribers(j % topics, n, topics)
                });
            if complete {
                phase.complete_rounds += 1;
                let last = (round * topics..(round + 1) * topics)
                    .map(|j| rc.last_at_ns[j].load(Relaxed))
                    .max()
                    .unwrap_or(started);
                let us = (last.saturating_sub(started) / 1_000).min(u64::from(u32::MAX)) as u32;
                round_latencies.push(us);
            }
            if publishers.len() < concurrency {
                // A task panicked: carry on with fresh connections.
                publishers.resize_with(concurrency, || {
                    Publisher::new(self.shared.target, token.clone())
                });
            }
            self.gap().await;
        }
        let b = self.mark();
        self.shared.rounds.wake_at.store(0, Relaxed);
        let cpu = measure(&mut phase.figures, &self.shared.rounds, before.0, &a, &b);
        phase.round_latency_us = Latency::of(round_latencies);
        phase.server_us_per_round = cpu.and_then(|cpu| per_event_us(cpu, rounds as u64));
        // Anything late or wrong shows up here.
        self.pause(Duration::from_millis(200)).await;
        count_faults(&mut phase.figures, &self.shared.rounds, before.1);
        self.report.round_phase = Some(phase);
    }

    /// `--fanout-rate`: one publisher on one kept-alive connection, a publish per timer tick
    /// (a tick missed while a publish is unanswered is skipped, not caught up: a burst would
    /// measure the burst), each stamped with its send time; then wait until every subscriber
    /// got every accepted event. The warm-up's events count for loss, not for latency.
    async fn fanout(&mut self, plan: Plan) {
        if self.report.timed_out {
            return;
        }
        let subscribers = self.shared.alive();
        let mut phase = FanoutPhase {
            rate: plan.rate,
            subscribers,
            warmup_events: plan.warmup,
            measured_events: plan.measured,
            ..FanoutPhase::default()
        };
        let Some(token) = self.args.publish_token.clone() else {
            self.problem("--fanout-rate needs --publish-token".into());
            return;
        };
        tracing::info!(
            rate = plan.rate,
            events = plan.total(),
            warmup = plan.warmup,
            subscribers,
            "fan-out publishing"
        );
        let mut publisher = Publisher::new(self.shared.target, token);
        if let Err(e) = publisher.connect().await {
            self.problem(format!("fan-out: cannot connect the publisher: {e}"));
            self.report.fanout_phase = Some(phase);
            return;
        }
        let fc = &self.shared.fanout;
        let before = (fc.delivered.load(Relaxed), fc.duplicates.load(Relaxed));
        // No wake-ups while publishing: nobody waits, and one per receipt costs.
        fc.wake_at.store(u64::MAX, Relaxed);
        let a = self.mark();
        let sends = self
            .paced_publishes(&mut publisher, plan, subscribers, &mut phase)
            .await;
        phase.achieved_rate = rate_between(&sends);
        // Every subscriber's copy of every accepted event, or the timeout.
        let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
        let until = (Instant::now() + limit).min(self.deadline);
        let target = before.0 + phase.figures.deliveries_expected;
        let fc = &self.shared.fanout;
        fc.wake_at.store(target.max(1), Relaxed);
        self.wait_until(until, Duration::from_millis(50), || {
            fc.delivered.load(Relaxed) >= target
        })
        .await;
        let b = self.mark();
        self.shared.fanout.wake_at.store(0, Relaxed);
        measure(&mut phase.figures, &self.shared.fanout, before.0, &a, &b);
        let measured = self.shared.fanout.latencies_from(plan.warmup);
        phase.figures.latency_us = Latency::of(measured.clone());
        phase.latency = FanoutLatency::of(measured);
        // Anything late or twice shows up here.
        self.pause(Duration::from_millis(200)).await;
        count_faults(&mut phase.figures, &self.shared.fanout, before.1);
        self.report.fanout_phase = Some(phase);
    }

    /// The fan-out's publishes, one per tick of `plan.period()`; returns when each accepted one
    /// was sent (for the achieved rate). Counts into `phase`: accepted, errors, skipped ticks,
    /// and `subscribers` receipts expected per accepted event.
    async fn paced_publishes(
        &mut self,
        publisher: &mut Publisher,
        plan: Plan,
        subscribers: usize,
        phase: &mut FanoutPhase,
    ) -> Vec<Instant> {
        let period = plan.period();
        let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sends = Vec::with_capacity(plan.total());
        let mut previous: Option<tokio::time::Instant> = None;
        for i in 0..plan.total() {
            let tick = ticks.tick().await;
            if Instant::now() >= self.deadline {
                self.report.timed_out = true;
                break;
            }
            if let Some(p) = previous {
                phase.skipped_ticks += skipped(tick - p, period);
            }
            previous = Some(tick);
            // The stamp last, right before the request is written.
            let sent = Instant::now();
            let body = fanout::body(i, fanout::unix_micros());
            let f = &mut phase.figures;
            match publish_within(publisher, &body, limit).await {
                Ok(()) => {
                    f.accepted += 1;
                    f.deliveries_expected += subscribers as u64;
                    sends.push(sent);
                }
                Err(e) => {
                    f.publish_errors += 1;
                    f.publish_error.get_or_insert(e);
                }
            }
        }
        sends
    }

    /// `--observe`: another loadgen publishes; wait for each broadcast in turn (the first may
    /// take as long as the other processes need to connect).
    async fn observe(&mut self) {
        let m = self.args.broadcasts;
        tracing::info!(m, "observing broadcasts published elsewhere");
        let a = self.mark();
        let expect = self.shared.alive();
        self.shared.expect.store(expect, Relaxed);
        let limit = Duration::from_millis(self.args.broadcast_timeout_ms);
        for i in 0..m {
            let until = if i == 0 {
                self.deadline
            } else {
                (Instant::now() + limit).min(self.deadline)
            };
            while (self.shared.received[i].load(Relaxed) as usize) < expect {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = tokio::time::timeout(
                    left.min(Duration::from_millis(50)),
                    self.shared.all_received.notified(),
                )
                .await;
            }
        }
        let b = self.mark();
        let r = &mut self.report;
        r.broadcast_secs = Some((b.at - a.at).as_secs_f64());
        r.broadcast_phase_pings = b.pings - a.pings;
        let received = b.events() - a.events();
        let (ta, tb) = (a.tool_cpu, b.tool_cpu);
        r.tool_us_per_event = per_event_us((tb.total() - ta.total()).as_secs_f64(), received);
        r.tool_user_us_per_event = per_event_us((tb.user - ta.user).as_secs_f64(), received);
        r.tool_sys_us_per_event = per_event_us((tb.system - ta.system).as_secs_f64(), received);
    }

    /// The reconnect storm: wait for streams to drop, publish during the storm (retrying until
    /// accepted), time the way back to 99 % and 100 %, then wait for every event everywhere.
    async fn storm(&mut self) {
        let secs = self.args.storm_secs;
        if secs == 0.0 || self.report.timed_out {
            return;
        }
        let n = self.args.connections;
        let m = self.args.broadcasts;
        let Some(token) = self.args.publish_token.clone() else {
            self.problem("--storm-secs needs --publish-token".into());
            return;
        };
        tracing::info!(secs, "waiting for the storm (restart the server now)");
        let give_up = (Instant::now() + Duration::from_secs_f64(secs)).min(self.deadline);
        while self.shared.alive() == n {
            if Instant::now() >= give_up {
                self.problem("no stream dropped during --storm-secs".into());
                return;
            }
            sleep(Duration::from_millis(2)).await;
        }
        self.storming = true;
        let t0 = Instant::now();
        tracing::info!("storm: first stream dropped");
        // Publish during the storm, each event retried until the (new) server accepts it.
        let shared = Arc::clone(&self.shared);
        let interval = Duration::from_millis(self.args.storm_interval_ms);
        let publishing = tokio::spawn(async move {
            let mut publisher = Publisher::new(shared.target, token);
            let (mut retries, mut failed) = (0u64, 0u64);
            for i in 0..m {
                let give_up = Instant::now() + Duration::from_secs(30);
                loop {
                    let body = serde_json::json!({
                        "event": BENCH_EVENT,
                        "data": { "t": unix_nanos(), "i": i },
                    })
                    .to_string();
                    match tokio::time::timeout(Duration::from_secs(5), publisher.publish(&body))
                        .await
                    {
                        Ok(Ok(a)) if a.status == 202 => break,
                        _ if Instant::now() < give_up => {
                            retries += 1;
                            sleep(Duration::from_millis(50)).await;
                        }
                        _ => {
                            failed += 1;
                            break;
                        }
                    }
                }
                sleep(interval).await;
            }
            (retries, failed)
        });
        let want99 = n - n / 100;
        let (mut t99, mut t100) = (None, None);
        let back_by = (t0 + Duration::from_secs_f64(secs)).min(self.deadline);
        while Instant::now() < back_by {
            let alive = self.shared.alive();
            // Every stream must have dropped and come back: count reconnections, not survivors.
            let back = self.shared.reheld.load(Relaxed).min(n);
            if t99.is_none() && back >= want99 && alive >= want99 {
                t99 = Some(t0.elapsed());
            }
            if back >= n && alive == n {
                t100 = Some(t0.elapsed());
                break;
            }
            sleep(Duration::from_millis(5)).await;
        }
        let (retries, failed) = publishing.await.unwrap_or((0, m as u64));
        // Every stream gets every event (live or replayed).
        self.shared.expect.store(n, Relaxed);
        let until = (Instant::now() + Duration::from_secs(30)).min(self.deadline);
        for i in 0..m {
            while (self.shared.received[i].load(Relaxed) as usize) < n && Instant::now() < until {
                let _ = tokio::time::timeout(
                    Duration::from_millis(50),
                    self.shared.all_received.notified(),
                )
                .await;
            }
        }
        self.storming = false;
        let s = &self.shared;
        let r = &mut self.report;
        r.storm = Some(crate::report::Storm {
            back_99_secs: t99.map(|d| d.as_secs_f64()),
            back_all_secs: t100.map(|d| d.as_secs_f64()),
            reconnects: s.reheld.load(Relaxed) as u64,
            refused: s.refused.load(Relaxed),
            connect_errors: s.connect_errors.load(Relaxed),
            resyncs: s.resyncs.load(Relaxed),
            replayed: s.replayed.load(Relaxed),
            publish_retries: retries,
        });
        r.publish_errors += failed;
        if t100.is_none() {
            let p = format!(
                "only {} of {n} streams back within --storm-secs",
                s.reheld.load(Relaxed).min(n)
            );
            self.problem(p);
        }
    }

    /// Publish `sustain` events as fast as `--sustain-concurrency` requests allow, then wait
    /// until every stream got every accepted one.
    async fn sustain(&mut self) {
        let secs = self.args.sustain_secs;
        if secs == 0.0 || self.report.timed_out {
            return;
        }
        let Some(token) = self.args.publish_token.clone() else {
            self.problem("--sustain-secs needs --publish-token".into());
            return;
        };
        tracing::info!(
            secs,
            concurrency = self.args.sustain_concurrency,
            "sustained publishing"
        );
        let streams = self.shared.alive() as u64;
        let before = self.shared.sustained.load(Relaxed);
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..self.args.sustain_concurrency {
            let (target, token) = (self.shared.target, token.clone());
            tasks.push(tokio::spawn(async move {
                let mut publisher = Publisher::new(target, token);
                let (mut ok, mut errors) = (0u64, 0u64);
                while Instant::now() < until {
                    let body = serde_json::json!({ "event": SUSTAIN_EVENT, "data": { "t": unix_nanos() } })
                        .to_string();
                    match tokio::time::timeout(Duration::from_secs(5), publisher.publish(&body)).await {
                        Ok(Ok(a)) if a.status == 202 => ok += 1,
                        _ => errors += 1,
                    }
                }
                (ok, errors)
            }));
        }
        let (mut ok, mut errors) = (0, 0);
        for task in tasks {
            if let Ok((o, e)) = task.await {
                ok += o;
                errors += e;
            }
        }
        let published_at = Instant::now();
        let wall = (published_at - started).as_secs_f64();
        let expected = streams * ok;
        let drain_until = (published_at + Duration::from_secs(60)).min(self.deadline);
        while self.shared.sustained.load(Relaxed) - before < expected
            && Instant::now() < drain_until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delivered = self.shared.sustained.load(Relaxed) - before;
        let r = &mut self.report;
        r.sustain_published = ok;
        r.sustain_errors = errors;
        r.sustain_per_sec = (wall > 0.0).then(|| ok as f64 / wall);
        r.sustain_delivered = delivered;
        r.sustain_expected = expected;
        r.sustain_drain_secs =
            (delivered >= expected).then(|| published_at.elapsed().as_secs_f64());
        if delivered < expected {
            r.problems.push(format!(
                "sustained phase: {delivered} of {expected} receipts"
            ));
        }
        if errors > 0 {
            r.problems.push(format!(
                "sustained phase: {errors} publishes refused or failed"
            ));
        }
    }

    fn finish(&mut self, start: &Mark) {
        let s = &self.shared;
        let r = &mut self.report;
        r.held = s.held.load(Relaxed);
        r.failed = s.failed.load(Relaxed);
        r.dropped = s.dropped.load(Relaxed);
        r.failures = s.failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
        r.heartbeat_ms = Some(s.heartbeat_ms.load(Relaxed)).filter(|&h| h > 0);
        r.deliveries = s.bench.load(Relaxed);
        r.deliveries_expected = (r.connections * r.broadcasts) as u64;
        r.missing = r.deliveries_expected.saturating_sub(r.deliveries);
        r.duplicates = s.duplicates.load(Relaxed);
        r.out_of_order = s.out_of_order.load(Relaxed);
        r.bad_events = s.bad_bench.load(Relaxed);
        r.other_events = s.other.load(Relaxed);
        r.latency_us = Latency::of(s.latencies());
        r.tool_cpu_secs = (procfs::own_cpu().total() - start.tool_cpu.total()).as_secs_f64();
        r.tool_rss_kib = procfs::own_rss_kib().ok();

        let mut problems = Vec::new();
        if r.held < r.connections {
            problems.push(format!("{} of {} connected", r.held, r.connections));
        }
        if r.dropped > 0 && r.storm.is_none() {
            problems.push(format!("{} streams dropped", r.dropped));
        }
        if r.missing > 0 {
            problems.push(format!("{} broadcast receipts missing", r.missing));
        }
        if r.duplicates + r.out_of_order + r.bad_events > 0 {
            problems.push(format!(
                "{} duplicate, {} out-of-order, {} unreadable broadcasts",
                r.duplicates, r.out_of_order, r.bad_events
            ));
        }
        if r.publish_errors > 0 {
            problems.push(format!("{} publish requests failed", r.publish_errors));
        }
        if r.timed_out {
            problems.push(format!(
                "the run hit --timeout-secs {}",
                self.args.timeout_secs
            ));
        }
        if let Some(t) = &r.topic_phase {
            phase_problems(&mut problems, "topic", &t.figures);
            if t.empty_received > 0 {
                problems.push(format!(
                    "{} receipts of events published to a topic nobody reads",
                    t.empty_received
                ));
            }
        }
        if let Some(t) = &r.round_phase {
            phase_problems(&mut problems, "topic-round", &t.figures);
        }
        if let Some(f) = &r.fanout_phase {
            phase_problems(&mut problems, "fan-out", &f.figures);
            if f.latency.is_none() {
                problems.push("fan-out: no latency samples after the warm-up".into());
            }
        }
        problems.append(&mut r.problems);
        r.problems = problems;
        r.ok = r.problems.is_empty();
    }
}

/// Ticks skipped between two consecutive ticks `gap` apart (0 when on schedule).
fn skipped(gap: Duration, period: Duration) -> u64 {
    let periods = gap.as_secs_f64() / period.as_secs_f64();
    (periods.round() as u64).saturating_sub(1)
}

/// Sends per second from the first send to the last; `None` below two sends.
fn rate_between(sends: &[Instant]) -> Option<f64> {
    let (first, last) = (sends.first()?, sends.last()?);
    let secs = (*last - *first).as_secs_f64();
    (sends.len() >= 2 && secs > 0.0).then(|| (sends.len() - 1) as f64 / secs)
}

fn per_event_us(cpu_secs: f64, events: u64) -> Option<f64> {
    (events > 0).then(|| cpu_secs * 1e6 / events as f64)
}

/// One publish, answered 202 within `limit`; else what went wrong.
async fn publish_within(
    publisher: &mut Publisher,
    body: &str,
    limit: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(limit, publisher.publish(body)).await {
        Ok(Ok(a)) if a.status == 202 => Ok(()),
        Ok(Ok(a)) => Err(format!("HTTP {}: {}", a.status, a.body.trim())),
        Ok(Err(e)) => Err(format!("request failed: {e}")),
        Err(_) => Err("no answer in time".to_owned()),
    }
}

/// The server's CPU between two marks, s, and its userland share, % (from clock ticks); `None`
/// without samples at both.
fn server_cpu(a: &Mark, b: &Mark) -> Option<(f64, Option<f64>)> {
    let (sa, sb) = (a.server.as_ref()?, b.server.as_ref()?);
    let ticks = sb.cpu_ticks.saturating_sub(sa.cpu_ticks).as_secs_f64();
    let user = sb.user_ticks.saturating_sub(sa.user_ticks).as_secs_f64();
    Some((
        cpu_between(sa, sb).as_secs_f64(),
        (ticks > 0.0).then(|| 100.0 * user / ticks),
    ))
}

/// A topic phase's figures between marks `a` and `b` (`delivered_before`: the counters' receipts
/// at `a`); returns the server's CPU seconds in it, where sampled.
fn measure(
    f: &mut TopicFigures,
    counts: &TopicCounts,
    delivered_before: u64,
    a: &Mark,
    b: &Mark,
) -> Option<f64> {
    f.secs = (b.at - a.at).as_secs_f64();
    f.pings = b.pings - a.pings;
    f.deliveries = counts.delivered.load(Relaxed) - delivered_before;
    f.missing = f.deliveries_expected.saturating_sub(f.deliveries);
    f.latency_us = Latency::of(counts.latencies());
    let cpu = server_cpu(a, b);
    if let Some((cpu, user_pct)) = cpu {
        f.server_us_per_event = per_event_us(cpu, f.deliveries + f.pings);
        f.server_us_per_publish = per_event_us(cpu, f.accepted);
        f.server_user_pct = user_pct;
    }
    f.tool_us_per_event = per_event_us(
        (b.tool_cpu.total() - a.tool_cpu.total()).as_secs_f64(),
        b.events() - a.events(),
    );
    cpu.map(|(cpu, _)| cpu)
}

/// A topic phase's duplicates (since `duplicates_before`), late, unreadable and misdelivered events.
fn count_faults(f: &mut TopicFigures, counts: &TopicCounts, duplicates_before: u64) {
    f.duplicates = counts.duplicates.load(Relaxed) - duplicates_before;
    f.out_of_order = counts.out_of_order.load(Relaxed);
    f.unreadable = counts.bad.load(Relaxed);
    f.misdelivered = counts.misdelivered.load(Relaxed);
}

/// Why a topic phase (`what`: `topic`, `topic-round`) is not a pass.
fn phase_problems(problems: &mut Vec<String>, what: &str, f: &TopicFigures) {
    if f.missing > 0 {
        problems.push(format!("{} {what} receipts missing", f.missing));
    }
    if f.misdelivered > 0 {
        problems.push(format!(
            "{} {what} events reached a stream not subscribed to their topic",
            f.misdelivered
        ));
    }
    if f.duplicates + f.out_of_order + f.unreadable > 0 {
        problems.push(format!(
            "{} duplicate, {} out-of-order, {} unreadable {what} events",
            f.duplicates, f.out_of_order, f.unreadable
        ));
    }
    if f.publish_errors > 0 {
        problems.push(format!("{} {what} publishes failed", f.publish_errors));
    }
}

/// Run every phase against `target` and report.
/// `requests`: what each stream sends (one, or one per topic: see [`topics::stream_requests`]).
pub async fn run(
    args: &Args,
    target: SocketAddr,
    threads: usize,
    requests: Vec<Vec<u8>>,
) -> Report {
    // The fan-out phase replaces the broadcasts.
    let fanout_plan = args
        .fanout_rate
        .map(|rate| Plan::new(rate, args.fanout_secs, args.fanout_warmup_secs));
    let broadcasts = if fanout_plan.is_some() {
        0
    } else {
        args.broadcasts
    };
    let mut shared = Shared::new(
        target,
        args.connections,
        broadcasts,
        args.handshakes,
        Duration::from_millis(args.handshake_timeout_ms),
        &args.reuse,
        requests,
    );
    shared.topic = TopicCounts::new(args.topics, args.connections, args.topic_publishes);
    shared.rounds = TopicCounts::new(
        args.topics,
        args.connections,
        args.topic_rounds * args.topics,
    );
    if let Some(plan) = fanout_plan {
        // One "topic" every stream reads: slot per event × stream.
        shared.fanout = TopicCounts::new(1, args.connections, plan.total());
    }
    let stream_targets: Vec<SocketAddr> = args
        .stream_urls
        .iter()
        .filter_map(|u| crate::target(u).ok())
        .collect();
    if !stream_targets.is_empty() {
        shared.stream_targets = stream_targets;
    }
    shared.reconnect = args.reconnect || args.storm_secs > 0.0;
    let shared = Arc::new(shared);
    let mut runner = Runner {
        args,
        shared,
        report: Report {
            label: args.label.clone(),
            reuse: args.reuse.clone(),
            connections: args.connections,
            topics: args.topics,
            access_tokens: args.access_secret.is_some(),
            broadcasts,
            clock_ticks_per_sec: procfs::clock_ticks_per_sec(),
            tool_threads: threads,
            stream_targets: args.stream_urls.clone(),
            ..Report::default()
        },
        deadline: Instant::now() + Duration::from_secs(args.timeout_secs),
        storming: false,
    };
    let start = runner.mark();
    runner.report.cpu_source = start.server.map(|s| {
        if s.cpu_sched.is_some() {
            "schedstat (ns, live threads)".to_owned()
        } else {
            format!(
                "/proc/pid/stat (clock ticks, {} per s)",
                runner.report.clock_ticks_per_sec
            )
        }
    });

    runner.connect().await;
    if runner.pause(Duration::from_millis(args.settle_ms)).await {
        let settled = runner.mark();
        if let (Some(a), Some(b)) = (&start.server, &settled.server) {
            let r = &mut runner.report;
            r.rss_before_kib = Some(a.rss_kib);
            r.rss_after_kib = Some(b.rss_kib);
            let held = runner.shared.held.load(Relaxed);
            if held > 0 {
                r.rss_per_conn_bytes =
                    Some((b.rss_kib as f64 - a.rss_kib as f64) * 1024.0 / held as f64);
            }
        }
    }
    runner.idle().await;
    if args.storm_secs > 0.0 {
        runner.storm().await;
    } else if let Some(plan) = fanout_plan {
        runner.fanout(plan).await;
    } else {
        runner.broadcasts().await;
        runner.topic_publishes().await;
        runner.topic_rounds().await;
    }
    runner.sustain().await;
    runner.finish(&start);
    runner.report
}

//! Benchmark tool only (ssr feature): `loadgen` holds N SSE streams to a running sse-status
//! server, publishes broadcasts one at a time, and reports server memory and CPU per connection
//! and per event, publish→receipt latency and its own cost. With `--topics` the streams read
//! private topics (signed access tokens with `--access-secret`) and a topic phase publishes to
//! one topic at a time, and a topic-rounds phase to every topic at once per round. Exit status 0 only if every stream connected and every client received
//! every broadcast (and every event of its topic, and no other) exactly once.
//! With `--fanout-rate` a fan-out phase replaces the broadcasts: one publisher at a steady rate,
//! send→receipt latency percentiles over every subscriber × event (Electric's ds-bench shape).

mod conn;
mod fanout;
mod http;
mod procfs;
mod publish;
mod report;
mod run;
mod sse;
mod topics;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::builder::RangedU64ValueParser;
use clap::Parser;

/// Load generator for sse-status: holds N streams to `/events`, publishes broadcasts, measures.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, long_about = None)]
pub struct Args {
    /// Base URL of the server (plain http, a loopback address).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,

    /// Where streams connect instead of --url, round-robin (repeat the flag): several
    /// instances of a fleet. Publishes still go to --url.
    #[arg(long = "stream-url", value_name = "URL")]
    pub stream_urls: Vec<String>,

    /// After the broadcasts: publish as fast as --sustain-concurrency requests allow for this
    /// many seconds (streams held), then wait until every stream got every accepted event.
    #[arg(long, default_value_t = 0.0)]
    pub sustain_secs: f64,

    /// Publish requests in flight at once in the sustained phase.
    #[arg(long, default_value_t = 4, value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub sustain_concurrency: usize,

    /// Streams to open and hold.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub connections: usize,

    /// PID of the server process, for VmRSS and CPU time from /proc (without it only
    /// correctness, latency and our own cost are measured).
    /// Several (comma-separated) for instances sharing one port: their sum is reported.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// Do not publish: wait for the --broadcasts `bench` events another loadgen publishes (the
    /// load of one run spread over several loadgen processes; start the observers first).
    #[arg(long)]
    pub observe: bool,

    /// Reconnect a stream that ended, with `Last-Event-ID`, after the server's `draining` hint
    /// (else 1 s + up to 1 s of jitter); a refused or failed attempt is retried with backoff.
    #[arg(long)]
    pub reconnect: bool,

    /// Reconnect-storm phase (implies --reconnect): after the connect phase, wait up to this
    /// many seconds for streams to drop (restart the server meanwhile: SIGTERM, then start its
    /// successor), publish the --broadcasts events during the storm (retrying refusals), and
    /// report the time until 99 % and 100 % are back and whether every stream got every event.
    #[arg(long, default_value_t = 0.0)]
    pub storm_secs: f64,

    /// Interval between the storm's publishes, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub storm_interval_ms: u64,

    /// Topics: stream i subscribes to `bench/<i % N>` (`/events?topic=bench/<k>`), with that
    /// topic's access token when --access-secret is given. 0: no topics (broadcasts only).
    #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    pub topics: usize,

    /// The secret the server checks access tokens with (its `--auth-secret`): one token per
    /// topic is signed (JWT HS256; `sub` `bench-<k>`, `topics` `["bench/<k>"]`, `exp` an hour
    /// past --timeout-secs) and sent as the `sse_access` cookie.
    #[arg(long, env = "LOADGEN_ACCESS_SECRET", hide_env_values = true)]
    pub access_secret: Option<String>,

    /// After the broadcasts: publish this many events one at a time, event j to the one topic
    /// `bench/<j % --topics>`; the next goes out once every subscriber of that topic got it (or
    /// --broadcast-timeout-ms passed). Reports server CPU per delivered event and per publish.
    #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    pub topic_publishes: usize,

    /// Then publish this many events one at a time to a topic no stream reads (`bench/nobody`):
    /// the server's fixed cost of one publish (request, log, encoding), without deliveries.
    #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    pub empty_publishes: usize,

    /// Then this many rounds, each publishing one event to EVERY topic (`bench/0` …
    /// `bench/<--topics − 1>`), --round-concurrency requests in flight; the next round goes out
    /// once every stream got its topic's event (or --broadcast-timeout-ms passed). One round
    /// delivers to every stream once, like one broadcast: server CPU per delivered event
    /// compares like with like (same deliveries per round, readers busy the same way).
    #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1000))]
    pub topic_rounds: usize,

    /// Publish requests in flight at once in a topic round (each on its own kept-alive
    /// connection).
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub round_concurrency: usize,

    /// Fan-out mode, instead of the broadcasts: ONE publisher publishes this many events per
    /// second (paced by a timer; a tick missed while a publish is unanswered is skipped), each
    /// stamped with its send time; every stream is a subscriber, and every (stream, event)
    /// receipt is one send→receipt latency sample. Reports p50/p90/p99/p99.9/max.
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub fanout_rate: Option<f64>,

    /// Fan-out mode: seconds of measured publishing (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    pub fanout_secs: f64,

    /// Fan-out mode: seconds of warm-up events first, checked for loss and duplicates but left
    /// out of the latency figures (the publisher's first requests, cold caches).
    #[arg(long, default_value_t = 1.0)]
    pub fanout_warmup_secs: f64,

    /// Bearer token for `POST /api/publish` (needed when --broadcasts > 0).
    #[arg(long, env = "LOADGEN_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,

    /// Broadcasts to publish, one at a time: the next goes out once every client received the
    /// previous one (or --broadcast-timeout-ms passed).
    #[arg(long, default_value_t = 20, value_parser = RangedU64ValueParser::<usize>::new().range(0..=1000))]
    pub broadcasts: usize,

    /// Length of the idle window (streams held, heartbeats only), in seconds; 0 skips it.
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,

    /// Wait after the last stream connected before sampling memory, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,

    /// First source address for client sockets; the next address (127.0.0.3, ...) is used every
    /// --per-source connections (IP_BIND_ADDRESS_NO_PORT: ports are picked at connect time).
    #[arg(long, default_value = "127.0.0.2")]
    pub bind_from: Ipv4Addr,

    /// Connections per source address. ~28k ephemeral ports exist per address, but the
    /// kernel's port search in connect() slows down sharply as one (source, server) pair
    /// fills up: 19,500 streams from one address take ~5 s of our CPU, from four ~0.6 s.
    #[arg(long, default_value_t = 5_000)]
    pub per_source: usize,

    /// Do not bind a source address (let the kernel choose).
    #[arg(long)]
    pub no_bind: bool,

    /// Handshakes (TCP connect until the `connected` event) in flight at once. Above the
    /// server's listen backlog (128 for tokio's `TcpListener::bind`) SYNs overflow its accept
    /// queue and wait for the 1 s SYN retransmit.
    #[arg(long, default_value_t = 128)]
    pub handshakes: usize,

    /// Longest one handshake may take, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,

    /// Longest wait for one publish request plus its delivery to every client, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub broadcast_timeout_ms: u64,

    /// Pause between one broadcast fully received and the next publish, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub broadcast_gap_ms: u64,

    /// Runtime worker threads: 1 = tokio's current-thread runtime (cheapest), more = the
    /// multi-thread runtime.
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub threads: usize,

    /// The whole run ends after this many seconds, finished or not (then it fails).
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,

    /// Print the report as one JSON line on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Free text stored in the report (e.g. the server's flags).
    #[arg(long)]
    pub label: Option<String>,

    /// Before `/events`, send these requests (comma-separated paths) on the same connection and
    /// read each whole answer — what a browser does: its stream usually starts on a keep-alive
    /// connection that already fetched the page and its assets. Empty: the stream is a fresh
    /// connection's first request.
    #[arg(long, value_delimiter = ',', value_name = "PATHS")]
    pub reuse: Vec<String>,

    /// Do not run: print a markdown table of the JSON reports (one per line) in this file.
    #[arg(long, value_name = "FILE")]
    pub table_from: Option<std::path::PathBuf>,
}

/// `http://IP:PORT` (or a name that resolves to loopback) → a loopback socket address.
fn target(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority} (give host:port)"))?
        .find(|a| a.is_ipv4())
        .with_context(|| format!("{authority} has no IPv4 address"))?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address: this tool only loads 127.0.0.0/8");
    }
    Ok(addr)
}

fn check(args: &Args) -> anyhow::Result<SocketAddr> {
    let addr = target(&args.url)?;
    let limit = procfs::raise_nofile().context("raising RLIMIT_NOFILE")?;
    // Streams + the publisher + stdio, epoll and the runtime's own descriptors.
    let need = args.connections as u64 + 32;
    if need > limit {
        bail!(
            "{} connections need ~{need} open files; the hard limit is {limit}: split the load over processes",
            args.connections
        );
    }
    if !args.no_bind {
        let sources = args.connections.div_ceil(args.per_source.max(1)) as u32;
        let last = u32::from(args.bind_from).checked_add(sources.saturating_sub(1));
        let ok = last.is_some_and(|l| IpAddr::V4(Ipv4Addr::from(l)).is_loopback())
            && args.bind_from.is_loopback();
        if !ok {
            bail!(
                "--bind-from {} with {sources} source addresses leaves 127.0.0.0/8",
                args.bind_from
            );
        }
    }
    if !(args.sustain_secs >= 0.0 && args.sustain_secs <= 3600.0) {
        bail!("--sustain-secs must be within 0..=3600");
    }
    for url in &args.stream_urls {
        target(url)?;
    }
    if !(args.idle_secs >= 0.0 && args.idle_secs <= 3600.0) {
        bail!("--idle-secs must be within 0..=3600");
    }
    if let Some(bad) = args
        .reuse
        .iter()
        .find(|p| !p.starts_with('/') || p.bytes().any(|b| b <= b' ' || b == 0x7f))
    {
        bail!("--reuse takes paths such as /,/healthz; {bad:?} is not one");
    }
    if !(args.storm_secs >= 0.0 && args.storm_secs <= 3600.0) {
        bail!("--storm-secs must be within 0..=3600");
    }
    if args.topic_publishes > 0 {
        if args.topics == 0 {
            bail!("--topic-publishes needs --topics");
        }
        if args.observe || args.storm_secs > 0.0 {
            bail!("--topic-publishes cannot be combined with --observe or --storm-secs");
        }
        if args.publish_token.is_none() {
            bail!("--topic-publishes needs --publish-token");
        }
    }
    if args.topic_rounds > 0 {
        if args.topics == 0 {
            bail!("--topic-rounds needs --topics");
        }
        if args.observe || args.storm_secs > 0.0 {
            bail!("--topic-rounds cannot be combined with --observe or --storm-secs");
        }
        if args.publish_token.is_none() {
            bail!("--topic-rounds needs --publish-token");
        }
        if args.topic_rounds.saturating_mul(args.topics) > 1_000_000 {
            bail!("--topic-rounds × --topics must stay within 1,000,000 publishes");
        }
    }
    if args.empty_publishes > 0 && (args.topic_publishes == 0 || args.topics == 0) {
        bail!("--empty-publishes runs in the topic phase: give --topics and --topic-publishes");
    }
    if args.access_secret.is_some() && args.topics == 0 {
        bail!("--access-secret signs tokens for --topics: give --topics too");
    }
    if args.fanout_rate.is_some() {
        check_fanout(args)?;
    }
    if args.broadcasts > 0 && args.publish_token.is_none() && !args.observe {
        bail!("--broadcasts {} needs --publish-token", args.broadcasts);
    }
    Ok(addr)
}

/// The fan-out mode's settings: a sane rate and duration, a publish token, a run that fits in
/// --timeout-secs and in memory, and no other publishing mode beside it.
fn check_fanout(args: &Args) -> anyhow::Result<()> {
    let rate = args.fanout_rate.unwrap_or(0.0);
    if !(rate > 0.0 && rate <= 10_000.0) {
        bail!("--fanout-rate must be within (0, 10000] events per second");
    }
    if !(args.fanout_secs > 0.0 && args.fanout_secs <= 3600.0) {
        bail!("--fanout-secs must be within (0, 3600]");
    }
    if !(args.fanout_warmup_secs >= 0.0 && args.fanout_warmup_secs <= 60.0) {
        bail!("--fanout-warmup-secs must be within 0..=60");
    }
    if args.publish_token.is_none() {
        bail!("--fanout-rate needs --publish-token");
    }
    if args.observe || args.storm_secs > 0.0 || args.topics > 0 {
        bail!("--fanout-rate cannot be combined with --observe, --storm-secs or --topics");
    }
    let plan = fanout::Plan::new(rate, args.fanout_secs, args.fanout_warmup_secs);
    if plan.total().saturating_mul(args.connections) > fanout::MAX_SLOTS {
        bail!(
            "--fanout-rate × (--fanout-secs + --fanout-warmup-secs) × --connections must stay \
             within {} receipts",
            fanout::MAX_SLOTS
        );
    }
    let publishing = args.fanout_secs + args.fanout_warmup_secs;
    if publishing + args.idle_secs + 10.0 > args.timeout_secs as f64 {
        bail!(
            "--timeout-secs {} leaves no room for {publishing} s of fan-out publishing (plus \
             --idle-secs, connecting and the drain): raise it",
            args.timeout_secs
        );
    }
    Ok(())
}

fn table(path: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let reports = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect::<anyhow::Result<Vec<report::Report>>>()?;
    print!("{}", report::markdown_table(&reports));
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "loadgen=info".into()),
        )
        .init();
    match real_main(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(pass?) of a run; Err for a run that could not start.
fn real_main(args: &Args) -> anyhow::Result<bool> {
    if let Some(path) = &args.table_from {
        table(path)?;
        return Ok(true);
    }
    let addr = check(args)?;
    // Tokens outlive the run by an hour: no stream's grant expires during it.
    let ttl = std::time::Duration::from_secs(args.timeout_secs.saturating_add(3600));
    let requests = topics::stream_requests(addr, args.topics, args.access_secret.as_deref(), ttl)?;
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let report = runtime.block_on(run::run(args, addr, args.threads, requests));
    // Closing ~20,000 sockets takes a moment; the report is complete already.
    runtime.shutdown_background();

    let summary = report::summary(&report);
    if args.json {
        let line = serde_json::to_string(&report)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    Ok(report.ok)
}

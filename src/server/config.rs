//! Server only: command-line flags and environment variables (`--help` lists every one with its
//! default).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// sse-status server: the dashboard at `/`, the SSE stream at `/events`.
#[derive(Debug, Clone, Parser)]
#[command(name = "sse-status", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Interval of the `ping` heartbeat event, in milliseconds (clients derive their watchdog
    /// from it).
    #[arg(long, env = "SSE_HEARTBEAT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub heartbeat_ms: u64,

    /// The stream's `retry:` field in milliseconds: the least a client waits before it
    /// reconnects.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub retry_ms: u64,

    /// Most open `/events` streams; beyond it new streams get 503 with `Retry-After`. The default
    /// fits a process limit of 20,000 open files with room for the rest of the server; at start it
    /// is lowered (with a warning) to what the open-file limit leaves.
    #[arg(long, env = "SSE_MAX_CONNECTIONS", default_value_t = 19_500,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_connections: u64,

    /// Most open sockets of any kind (streams, page loads, API calls, idle keep-alive); beyond
    /// it a new connection gets a canned 503 and is closed at once. Default: the open-file limit
    /// minus a reserve of 64 for the process itself.
    #[arg(long, env = "SSE_MAX_SOCKETS",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_sockets: Option<u64>,

    /// A request head (request line and headers) must arrive within this many milliseconds of
    /// its first byte, on every connection; slower clients get 408 and are disconnected.
    #[arg(long, env = "SSE_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub header_timeout_ms: u64,

    /// A keep-alive connection with no request in flight is closed after this many
    /// milliseconds (also the wait for a new connection's first byte).
    #[arg(long, env = "SSE_IDLE_TIMEOUT_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub idle_timeout_ms: u64,

    /// A request body must keep arriving: each read makes progress within this many
    /// milliseconds, and `POST /api/publish` gets its whole body within it (else 408).
    #[arg(long, env = "SSE_BODY_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub body_timeout_ms: u64,

    /// Serve every `/events` request through hyper/axum instead of writing the stream straight
    /// to the socket (for A/B benchmarks; both send the same bytes).
    #[arg(long, env = "SSE_NO_FAST_PATH")]
    pub no_fast_path: bool,

    /// Bearer token that `POST /api/publish` requires. Unset: publishing is refused (403). It
    /// must be 1–1024 visible ASCII characters without spaces (an empty token is refused).
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true,
          value_parser = parse_token)]
    pub publish_token: Option<String>,

    /// How many recent events are kept for `Last-Event-ID` replay.
    #[arg(long, env = "SSE_REPLAY_CAPACITY", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub replay_capacity: u64,

    /// How many frames a stream may fall behind the newest before it is dropped as too slow
    /// (the client resumes by `Last-Event-ID` when it comes back).
    #[arg(long, env = "SSE_SEND_QUEUE", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub send_queue: u64,

    /// A connection whose writes make no progress for this long (the client stopped reading)
    /// is dropped, in milliseconds.
    #[arg(long, env = "SSE_WRITE_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub write_timeout_ms: u64,

    /// On shutdown, clients are told to reconnect at a random moment within this window (after
    /// `--retry-ms`), so a restart does not bring them all back at once. In milliseconds.
    #[arg(long, env = "SSE_DRAIN_WINDOW_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub drain_window_ms: u64,

    /// On SIGTERM/Ctrl-C, the longest the server takes to end every stream and exit, in
    /// milliseconds.
    #[arg(long, env = "SSE_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub shutdown_timeout_ms: u64,

    /// Fleet mode: the Redis Streams event log shared by every instance, e.g.
    /// `redis://127.0.0.1:6379/0`. Unset: the embedded in-process log (one instance).
    #[arg(long, env = "SSE_REDIS_URL", hide_env_values = true, value_parser = redis_url)]
    pub redis_url: Option<String>,

    /// Key of the Redis stream (with `--redis-url`); every instance of a fleet uses the same.
    #[arg(long, env = "SSE_REDIS_STREAM", default_value = "sse-status:events")]
    pub redis_stream: String,

    /// Let several processes listen on the same address (`SO_REUSEPORT`; the kernel spreads
    /// new connections over them), so one machine can hold more streams than one process may.
    #[arg(long, env = "SSE_REUSE_PORT", default_value_t = false)]
    pub reuse_port: bool,
}

/// A `redis://` (or `rediss://`, `unix://`) URL the client accepts.
fn redis_url(value: &str) -> Result<String, String> {
    redis::Client::open(value)
        .map(|_| value.to_owned())
        .map_err(|err| format!("not a Redis URL ({err}); e.g. redis://127.0.0.1:6379/0"))
}

/// Longest publish token accepted.
const MAX_TOKEN_LEN: usize = 1024;

/// A publish token: non-empty visible ASCII without whitespace, so that what the operator set is
/// exactly what a client can send after `Bearer `.
fn parse_token(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err(
            "the publish token is empty: set a secret, or leave it unset to turn \
                    publishing off"
                .into(),
        );
    }
    if raw.len() > MAX_TOKEN_LEN {
        return Err(format!(
            "the publish token is longer than {MAX_TOKEN_LEN} characters"
        ));
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the publish token must be visible ASCII without spaces (it is sent as \
             'Authorization: Bearer <token>')"
                .into(),
        );
    }
    Ok(raw.to_owned())
}

impl Config {
    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// The write-progress deadline.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// The shutdown deadline.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// The request-head deadline (from the head's first byte).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// The idle keep-alive deadline.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The request-body progress deadline.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    /// Defaults with an ephemeral port: for tests and embedding.
    pub fn for_tests() -> Self {
        Config::parse_from(["sse-status", "--addr", "127.0.0.1:0"])
    }
}

/// The documented defaults (what `--help` shows), without reading the environment: an app that
/// embeds the hub sets what it wants with struct update syntax,
/// `Config { heartbeat_ms: 1_000, ..Config::default() }`. (`Config::parse()` is the binary's way:
/// flags and `SSE_*` environment variables.)
impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            heartbeat_ms: 5000,
            retry_ms: 1000,
            max_connections: 19_500,
            max_sockets: None,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            body_timeout_ms: 10_000,
            no_fast_path: false,
            publish_token: None,
            replay_capacity: 1024,
            send_queue: 256,
            write_timeout_ms: 10_000,
            drain_window_ms: 5_000,
            shutdown_timeout_ms: 10_000,
            redis_url: None,
            redis_stream: "sse-status:events".to_owned(),
            reuse_port: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::try_parse_from(["sse-status"]).unwrap();
        assert_eq!(c.heartbeat_ms, 5000);
        assert_eq!(c.retry_ms, 1000);
        assert_eq!(c.shutdown_timeout_ms, 10_000);
        assert!(c.max_connections > 0 && c.max_connections < 20_000);
        assert_eq!(c.redis_url, None, "the embedded log is the default");
        assert_eq!(c.redis_stream, "sse-status:events");
        assert!(!c.reuse_port);
    }

    #[test]
    fn default_is_what_the_flags_default_to() {
        // The test process sets none of the SSE_* variables.
        let mut parsed = Config::try_parse_from(["sse-status"]).unwrap();
        // cargo-leptos sets LEPTOS_SITE_ADDR for the tests it runs.
        parsed.addr = Config::default().addr;
        assert_eq!(format!("{:?}", Config::default()), format!("{parsed:?}"));
    }

    #[test]
    fn fleet_flags() {
        let c = Config::try_parse_from([
            "sse-status",
            "--redis-url",
            "redis://127.0.0.1:6379/0",
            "--redis-stream",
            "app:events",
            "--reuse-port",
        ])
        .unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert_eq!(c.redis_stream, "app:events");
        assert!(c.reuse_port);
        let err = Config::try_parse_from(["sse-status", "--redis-url", "http://x"]).unwrap_err();
        assert!(err.to_string().contains("not a Redis URL"), "{err}");
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let c = Config::try_parse_from([
            "sse-status",
            "--heartbeat-ms",
            "500",
            "--addr",
            "127.0.0.1:9",
        ])
        .unwrap();
        assert_eq!(c.heartbeat_ms, 500);
        assert_eq!(c.addr.port(), 9);
        assert!(Config::try_parse_from(["sse-status", "--heartbeat-ms", "0"]).is_err());
        assert!(Config::try_parse_from(["sse-status", "--heartbeat-ms", "soon"]).is_err());
        assert!(Config::try_parse_from(["sse-status", "--addr", "nowhere"]).is_err());
    }

    #[test]
    fn durations_and_sizes_are_bounded_so_nothing_overflows() {
        for (flag, bad) in [
            ("--shutdown-timeout-ms", "18446744073709551615"),
            ("--shutdown-timeout-ms", "3600001"),
            ("--drain-window-ms", "600001"),
            ("--retry-ms", "600001"),
            ("--header-timeout-ms", "0"),
            ("--idle-timeout-ms", "99"),
            ("--body-timeout-ms", "600001"),
            ("--max-connections", "0"),
            ("--max-sockets", "0"),
            ("--replay-capacity", "10000001"),
        ] {
            let err = Config::try_parse_from(["sse-status", flag, bad]).unwrap_err();
            assert!(err.to_string().contains(flag), "{flag} {bad}: {err}");
        }
        let c = Config::try_parse_from(["sse-status"]).unwrap();
        assert_eq!(
            (c.header_timeout_ms, c.idle_timeout_ms, c.body_timeout_ms),
            (10_000, 60_000, 10_000)
        );
        assert_eq!(c.max_sockets, None);
        assert!(!c.no_fast_path);
    }

    #[test]
    fn publish_token_must_be_sendable() {
        for bad in ["", "with space", "tab\there", "ünïcode", &"x".repeat(1025)] {
            let err = Config::try_parse_from(["sse-status", "--publish-token", bad]).unwrap_err();
            assert!(err.to_string().contains("publish token"), "{bad:?}: {err}");
        }
        let c =
            Config::try_parse_from(["sse-status", "--publish-token", "s3cret-T0ken/+="]).unwrap();
        assert_eq!(c.publish_token.as_deref(), Some("s3cret-T0ken/+="));
    }
}

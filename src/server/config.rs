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
    /// fits a process limit of 20,000 open files with room for the rest of the server.
    #[arg(long, env = "SSE_MAX_CONNECTIONS", default_value_t = 19_500)]
    pub max_connections: usize,

    /// Bearer token that `POST /api/publish` requires. Unset: publishing is refused (403).
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,

    /// How many recent events are kept for `Last-Event-ID` replay.
    #[arg(long, env = "SSE_REPLAY_CAPACITY", default_value_t = 1024)]
    pub replay_capacity: usize,

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
    #[arg(long, env = "SSE_DRAIN_WINDOW_MS", default_value_t = 5_000)]
    pub drain_window_ms: u64,

    /// On SIGTERM/Ctrl-C, the longest the server takes to end every stream and exit, in
    /// milliseconds.
    #[arg(long, env = "SSE_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
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

    /// Defaults with an ephemeral port: for tests and embedding.
    pub fn for_tests() -> Self {
        Config::parse_from(["sse-status", "--addr", "127.0.0.1:0"])
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
}

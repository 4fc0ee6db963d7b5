//! Server only (feature `app`): this app's command line — flags and `SSE_*` environment
//! variables (`--help` lists every one with its default), turned into the library's
//! [`HubConfig`]. Only here do messages name flags.

use std::net::SocketAddr;

use clap::Parser;

use crate::server::{ConfigError, HubConfig, JwtAuthorizer};

/// sse-status server: the dashboard at `/`, the SSE stream at `/events`.
#[derive(Clone, Parser)]
#[command(name = "sse-status", version, about, long_about = None)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub(crate) addr: SocketAddr,

    /// Interval of the `ping` heartbeat event, in milliseconds (clients derive their watchdog
    /// from it).
    #[arg(long, env = "SSE_HEARTBEAT_MS", default_value_t = 5000)]
    pub(crate) heartbeat_ms: u64,

    /// The stream's `retry:` field in milliseconds: the least a client waits before it
    /// reconnects.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = 1000)]
    pub(crate) retry_ms: u64,

    /// Most open `/events` streams; beyond it new streams get 503 with `Retry-After`. The default
    /// fits a process limit of 20,000 open files with room for the rest of the server; at start it
    /// is lowered (with a warning) to what the open-file limit leaves.
    #[arg(long, env = "SSE_MAX_CONNECTIONS", default_value_t = 19_500)]
    pub(crate) max_connections: u64,

    /// Most open sockets of any kind (streams, page loads, API calls, idle keep-alive); beyond
    /// it a new connection gets a canned 503 and is closed at once. Default: the open-file limit
    /// minus a reserve of 64 for the process itself.
    #[arg(long, env = "SSE_MAX_SOCKETS")]
    pub(crate) max_sockets: Option<u64>,

    /// A request head (request line and headers) must arrive within this many milliseconds of
    /// its first byte, on every connection; slower clients get 408 and are disconnected.
    #[arg(long, env = "SSE_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) header_timeout_ms: u64,

    /// A keep-alive connection with no request in flight is closed after this many
    /// milliseconds (also the wait for a new connection's first byte).
    #[arg(long, env = "SSE_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub(crate) idle_timeout_ms: u64,

    /// A request body must keep arriving: each read makes progress within this many
    /// milliseconds, and `POST /api/publish` gets its whole body within it (else 408).
    #[arg(long, env = "SSE_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) body_timeout_ms: u64,

    /// Serve every `/events` request through hyper/axum instead of writing the stream straight
    /// to the socket (for A/B benchmarks; both send the same bytes).
    #[arg(long, env = "SSE_NO_FAST_PATH")]
    pub(crate) no_fast_path: bool,

    /// Render the dashboard for every request instead of serving an anonymous reader's render
    /// of the last second again (for A/B benchmarks; readers with a session are always rendered
    /// for themselves).
    #[arg(long, env = "SSE_NO_PAGE_CACHE")]
    pub(crate) no_page_cache: bool,

    /// Serve with plain `axum::serve` instead of this crate's serving loop: no header, idle or
    /// body timeouts, no socket cap, every stream through hyper (for side-by-side benchmarks).
    #[arg(long, env = "SSE_AXUM_SERVE")]
    pub(crate) axum_serve: bool,

    /// Bearer token that `POST /api/publish` requires. Unset: publishing is refused (403). It
    /// must be 1–1024 visible ASCII characters without spaces (an empty token is refused).
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true)]
    pub(crate) publish_token: Option<String>,

    /// Secret that signs and checks subscribers' access tokens (JWT, HS256; claims `sub`, `exp`,
    /// `topics`), read from the `sse_access` cookie or `Authorization: Bearer`. At least 16
    /// characters. Unset: nobody is granted a topic (`/events?topic=` answers 403; broadcasts
    /// still reach every stream).
    #[arg(long, env = "SSE_AUTH_SECRET", hide_env_values = true)]
    pub(crate) auth_secret: Option<String>,

    /// The dashboard's demo sign-in: comma-separated demo user names (e.g. `alice,bob`), each
    /// granted the topics `users/<name>` and `public`. Needs `--auth-secret`. Unset: off.
    #[arg(long, env = "SSE_DEMO_USERS", value_delimiter = ',')]
    pub(crate) demo_users: Vec<String>,

    /// How long a demo access token lives, in milliseconds (whole seconds: JWT `exp`); the page
    /// renews it when the stream says `reauth`.
    #[arg(long, env = "SSE_DEMO_TOKEN_TTL_MS", default_value_t = 600_000)]
    pub(crate) demo_token_ttl_ms: u64,

    /// How many recent events are kept for `Last-Event-ID` replay.
    #[arg(long, env = "SSE_REPLAY_CAPACITY", default_value_t = 1024)]
    pub(crate) replay_capacity: u64,

    /// The least number of recent events kept for streams that are behind (the ring keeps the
    /// larger of this and --replay-capacity); a stream further behind catches up from the log
    /// (or gets `resync`) instead of being dropped.
    #[arg(long, env = "SSE_SEND_QUEUE", default_value_t = 256)]
    pub(crate) send_queue: u64,

    /// A connection whose writes make no progress for this long (the client stopped reading)
    /// is dropped, in milliseconds.
    #[arg(long, env = "SSE_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) write_timeout_ms: u64,

    /// On shutdown, clients are told to reconnect at a random moment within this window (after
    /// `--retry-ms`), so a restart does not bring them all back at once. In milliseconds.
    #[arg(long, env = "SSE_DRAIN_WINDOW_MS", default_value_t = 5_000)]
    pub(crate) drain_window_ms: u64,

    /// On SIGTERM/Ctrl-C, the longest the server takes to end every stream and exit, in
    /// milliseconds.
    #[arg(long, env = "SSE_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) shutdown_timeout_ms: u64,

    /// Fleet mode: the Redis Streams event log shared by every instance, e.g.
    /// `redis://127.0.0.1:6379/0`. Unset: the embedded in-process log (one instance).
    #[arg(long, env = "SSE_REDIS_URL", hide_env_values = true)]
    pub(crate) redis_url: Option<String>,

    /// Key of the Redis stream (with `--redis-url`); every instance of a fleet uses the same.
    #[arg(long, env = "SSE_REDIS_STREAM", default_value = "sse-status:events")]
    pub(crate) redis_stream: String,

    /// Redis with failover: the Sentinels, `host:port,host:port,...` (with `--redis-master`,
    /// instead of `--redis-url`). Every instance asks them for the current primary, and again
    /// after losing it.
    #[arg(long, env = "SSE_REDIS_SENTINEL", value_delimiter = ',')]
    pub(crate) redis_sentinel: Vec<String>,

    /// The name Sentinel monitors the primary by (`sentinel monitor <name> ...`).
    #[arg(long, env = "SSE_REDIS_MASTER")]
    pub(crate) redis_master: Option<String>,

    /// A publish gets its 202 only once `WAIT` confirms the event on this many replicas
    /// (bounded time; else 503 `store_unavailable`). Default: 0 with `--redis-url`, 1 with
    /// `--redis-sentinel`.
    #[arg(long, env = "SSE_REDIS_MIN_REPLICAS")]
    pub(crate) redis_min_replicas: Option<u32>,

    /// Let several processes listen on the same address (`SO_REUSEPORT`; the kernel spreads
    /// new connections over them), so one machine can hold more streams than one process may.
    #[arg(long, env = "SSE_REUSE_PORT", default_value_t = false)]
    pub(crate) reuse_port: bool,
}

impl Args {
    /// The library's settings from these flags, validated; an error names the flag.
    pub(crate) fn hub_config(&self) -> Result<HubConfig, String> {
        let config = HubConfig {
            heartbeat_ms: self.heartbeat_ms,
            retry_ms: self.retry_ms,
            max_streams: self.max_connections,
            max_sockets: self.max_sockets,
            header_timeout_ms: self.header_timeout_ms,
            idle_timeout_ms: self.idle_timeout_ms,
            body_timeout_ms: self.body_timeout_ms,
            no_fast_path: self.no_fast_path,
            publish_token: self.publish_token.clone(),
            replay_capacity: self.replay_capacity,
            send_queue: self.send_queue,
            write_timeout_ms: self.write_timeout_ms,
            drain_window_ms: self.drain_window_ms,
            shutdown_timeout_ms: self.shutdown_timeout_ms,
            redis_url: self.redis_url.clone(),
            redis_stream: self.redis_stream.clone(),
            redis_sentinel: self.redis_sentinel.clone(),
            redis_master: self.redis_master.clone(),
            redis_min_replicas: self.redis_min_replicas,
        };
        config.validate().map_err(|err| flag_error(&err))?;
        Ok(config)
    }
}

/// Shortest `--auth-secret` accepted.
const MIN_AUTH_SECRET_LEN: usize = 16;

impl Args {
    /// The subscribers' authorizer `--auth-secret` asks for (`None`: unset).
    pub(crate) fn authorizer(&self) -> Result<Option<JwtAuthorizer>, String> {
        match self.auth_secret.as_deref() {
            None => Ok(None),
            Some(secret) if secret.len() < MIN_AUTH_SECRET_LEN => Err(format!(
                "--auth-secret (SSE_AUTH_SECRET): the secret must be at least \
                 {MIN_AUTH_SECRET_LEN} characters"
            )),
            Some(secret) => Ok(Some(JwtAuthorizer::new(secret))),
        }
    }

    /// The demo sign-in `--demo-users` asks for (`None`: off), signing with `authorizer`.
    pub(crate) fn demo(
        &self,
        authorizer: Option<&JwtAuthorizer>,
    ) -> Result<Option<crate::app::demo::Demo>, String> {
        let users: Vec<String> = self
            .demo_users
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if users.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = users.iter().find(|u| {
            !u.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(format!(
                "--demo-users (SSE_DEMO_USERS): {bad:?} is not a name of letters, digits, _ and -"
            ));
        }
        let Some(tokens) = authorizer else {
            return Err(
                "--demo-users (SSE_DEMO_USERS) needs --auth-secret (SSE_AUTH_SECRET) \
                        to sign the demo tokens"
                    .into(),
            );
        };
        if !(1_000..=86_400_000).contains(&self.demo_token_ttl_ms) {
            return Err(
                "--demo-token-ttl-ms (SSE_DEMO_TOKEN_TTL_MS): must be 1000..=86400000".into(),
            );
        }
        Ok(Some(crate::app::demo::Demo {
            users,
            token_ttl: std::time::Duration::from_millis(self.demo_token_ttl_ms),
            tokens: tokens.clone(),
        }))
    }
}

/// The command line's name for a `HubConfig` field (the contract's flags predate some fields'
/// names).
fn flag_name(setting: &str) -> &str {
    match setting {
        "max_streams" => "max_connections",
        other => other,
    }
}

/// The library's error in the words of the command line: `--heartbeat-ms (SSE_HEARTBEAT_MS)`
/// instead of the field name.
pub(crate) fn flag_error(err: &ConfigError) -> String {
    let setting = err.setting();
    let name = flag_name(setting);
    let flag = format!("--{}", name.replace('_', "-"));
    let env = format!("SSE_{}", name.to_ascii_uppercase());
    format!(
        "{flag} ({env}): {}",
        err.to_string().replacen(setting, "the value", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(args: &[&str]) -> Result<HubConfig, String> {
        let mut all = vec!["sse-status"];
        all.extend_from_slice(args);
        Args::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .hub_config()
    }

    #[test]
    fn the_flags_default_to_the_librarys_defaults() {
        // The test process sets none of the SSE_* variables.
        assert_eq!(hub(&[]).unwrap(), HubConfig::default());
        let args = Args::try_parse_from(["sse-status"]).unwrap();
        assert!(!args.reuse_port);
    }

    #[test]
    fn fleet_flags() {
        let c = hub(&[
            "--redis-url",
            "redis://127.0.0.1:6379/0",
            "--redis-stream",
            "app:events",
        ])
        .unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert_eq!(c.redis_stream, "app:events");
        let err = hub(&["--redis-url", "http://x"]).unwrap_err();
        assert!(err.starts_with("--redis-url (SSE_REDIS_URL): "), "{err}");
        assert!(err.contains("not a Redis URL"), "{err}");
        let args = Args::try_parse_from(["sse-status", "--reuse-port"]).unwrap();
        assert!(args.reuse_port);
    }

    #[test]
    fn sentinel_flags() {
        let c = hub(&[
            "--redis-sentinel",
            "127.0.0.1:26379,127.0.0.1:26380",
            "--redis-master",
            "mymaster",
            "--redis-min-replicas",
            "2",
        ])
        .unwrap();
        assert_eq!(c.redis_sentinel, ["127.0.0.1:26379", "127.0.0.1:26380"]);
        assert_eq!(c.redis_master.as_deref(), Some("mymaster"));
        assert_eq!(c.redis_min_replicas, Some(2));
        let err = hub(&["--redis-sentinel", "127.0.0.1:26379"]).unwrap_err();
        assert!(
            err.starts_with("--redis-master (SSE_REDIS_MASTER): "),
            "{err}"
        );
        let err = hub(&["--redis-sentinel", "x", "--redis-master", "m"]).unwrap_err();
        assert!(
            err.starts_with("--redis-sentinel (SSE_REDIS_SENTINEL): "),
            "{err}"
        );
        let err = hub(&["--redis-min-replicas", "99"]).unwrap_err();
        assert!(
            err.starts_with("--redis-min-replicas (SSE_REDIS_MIN_REPLICAS): "),
            "{err}"
        );
    }

    #[test]
    fn flags_override_and_bad_values_name_the_flag() {
        let c = hub(&["--heartbeat-ms", "500"]).unwrap();
        assert_eq!(c.heartbeat_ms, 500);
        for (flag, bad) in [
            ("--heartbeat-ms", "0"),
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
            ("--publish-token", ""),
            ("--publish-token", "with space"),
        ] {
            let err = hub(&[flag, bad]).unwrap_err();
            assert!(err.contains(flag), "{flag} {bad}: {err}");
        }
        assert!(hub(&["--heartbeat-ms", "soon"]).is_err());
        assert!(Args::try_parse_from(["sse-status", "--addr", "nowhere"]).is_err());
    }

    #[test]
    fn demo_users_need_a_secret_and_plain_names() {
        let args = |a: &[&str]| {
            let mut all = vec!["sse-status"];
            all.extend_from_slice(a);
            Args::try_parse_from(all).unwrap()
        };
        assert!(args(&[]).demo(None).unwrap().is_none(), "off unless set");
        let err = args(&["--demo-users", "alice,bob"]).demo(None).unwrap_err();
        assert!(err.contains("--auth-secret"), "{err}");
        let secret = JwtAuthorizer::new("0123456789abcdef0123");
        let demo = args(&["--demo-users", "alice, bob"])
            .demo(Some(&secret))
            .unwrap()
            .unwrap();
        assert_eq!(demo.users, ["alice", "bob"]);
        let err = args(&["--demo-users", "al ice"])
            .demo(Some(&secret))
            .unwrap_err();
        assert!(err.contains("--demo-users"), "{err}");
    }

    #[test]
    fn the_auth_secret_makes_a_jwt_authorizer() {
        let args = |a: &[&str]| {
            let mut all = vec!["sse-status"];
            all.extend_from_slice(a);
            Args::try_parse_from(all).unwrap()
        };
        assert!(args(&[]).authorizer().unwrap().is_none());
        let err = args(&["--auth-secret", "short"]).authorizer().unwrap_err();
        assert!(
            err.starts_with("--auth-secret (SSE_AUTH_SECRET): "),
            "{err}"
        );
        let secret = "a-secret-of-enough-length";
        let auth = args(&["--auth-secret", secret])
            .authorizer()
            .unwrap()
            .unwrap();
        assert!(!format!("{auth:?}").contains(secret));
    }

    #[test]
    fn help_never_prints_secrets_from_the_environment() {
        use clap::CommandFactory;
        let cmd = Args::command();
        for arg in ["publish_token", "redis_url", "auth_secret"] {
            let a = cmd.get_arguments().find(|a| a.get_id() == arg).unwrap();
            assert!(a.is_hide_env_values_set(), "{arg}");
        }
    }
}

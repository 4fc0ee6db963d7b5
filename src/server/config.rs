//! Server only: the hub's settings ([`HubConfig`]) and their rules. Validated when a hub is
//! built ([`LiveHub::new`](crate::server::LiveHub::new)): a bad value is a [`ConfigError`] naming
//! the setting, never a panic later. Secrets (the publish token, a Redis URL's password) never
//! appear in `Debug` output or logs.

use std::fmt;
use std::time::Duration;

/// Settings of a [`LiveHub`](crate::server::LiveHub). Start from the documented defaults and
/// set what you change, with the chainable setters (one per field, same name) or by assigning
/// the field; new settings can be added without breaking an app (`#[non_exhaustive]`):
///
/// ```
/// use sse_status::server::HubConfig;
/// let config = HubConfig::default().heartbeat_ms(1_000).publish_token("s3cret");
/// assert!(config.validate().is_ok());
/// ```
///
/// Times are in milliseconds; each setting's allowed range is in its documentation and checked
/// by [`HubConfig::validate`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubConfig {
    /// Interval of the `ping` heartbeat event (clients derive their watchdog from it).
    /// Default 5,000; 50–3,600,000.
    pub heartbeat_ms: u64,
    /// The stream's `retry:` field: the least a client waits before it reconnects.
    /// Default 1,000; 0–600,000.
    pub retry_ms: u64,
    /// Most open streams; beyond it new streams get 503 with `Retry-After`. Lowered (with a
    /// warning) at start to what the process's open-file limit leaves. Default 19,500;
    /// 1–10,000,000.
    pub max_streams: u64,
    /// Most open sockets of any kind under [`serve`](crate::server::serve); beyond it a new
    /// connection gets a canned 503. `None`: the open-file limit minus a reserve of 64.
    /// 1–10,000,000.
    pub max_sockets: Option<u64>,
    /// Under [`serve`](crate::server::serve): a request head must arrive within this of its
    /// first byte, else 408. Default 10,000; 100–600,000.
    pub header_timeout_ms: u64,
    /// Under [`serve`](crate::server::serve): an idle keep-alive connection is closed after
    /// this. Default 60,000; 100–3,600,000.
    pub idle_timeout_ms: u64,
    /// Under [`serve`](crate::server::serve): each body read makes progress within this, and a
    /// publish body arrives whole within it (else 408). Default 10,000; 100–600,000.
    pub body_timeout_ms: u64,
    /// Under [`serve`](crate::server::serve): send `/events` through the router (hyper) instead
    /// of writing it straight to the socket. Default `false`. A switch for this repository's
    /// A/B benchmarks and tests, hidden from the documented API: it may go away.
    #[doc(hidden)]
    pub no_fast_path: bool,
    /// Bearer token that `POST /api/publish` requires; `None`: HTTP publishing is refused (403).
    /// 1–1,024 visible ASCII characters without spaces. Redacted in `Debug`.
    pub publish_token: Option<String>,
    /// How many recent events are kept for `Last-Event-ID` replay. Default 1,024;
    /// 0–10,000,000.
    pub replay_capacity: u64,
    /// The least number of recent events the ring keeps for streams that are behind (it keeps
    /// `max(replay_capacity, send_queue)`), and how many topic events wait in one stream's
    /// inbox before it looks them up in the ring instead. A stream further behind than the ring
    /// catches up as a `Last-Event-ID` reconnect would; none is dropped for being behind.
    /// Default 256; 1–1,000,000.
    pub send_queue: u64,
    /// A connection whose writes make no progress for this long is dropped. Default 10,000;
    /// 100–3,600,000.
    pub write_timeout_ms: u64,
    /// On shutdown, clients are told to reconnect at a random moment within this window (after
    /// `retry_ms`). Default 5,000; 0–600,000.
    pub drain_window_ms: u64,
    /// The longest a shutdown takes to end every stream. Default 10,000; 0–3,600,000.
    pub shutdown_timeout_ms: u64,
    /// Fleet mode (feature `redis`): the Redis Streams log every instance shares, e.g.
    /// `redis://127.0.0.1:6379/0`. `None`: the embedded in-process log. Its password is
    /// redacted in `Debug`.
    pub redis_url: Option<String>,
    /// Key of the Redis stream; every instance of a fleet uses the same. Default
    /// `sse-status:events`; 1–256 characters.
    pub redis_stream: String,
    /// Redis with failover (feature `redis`): the Sentinels' addresses, `host:port` each. Set
    /// with [`redis_master`](Self::redis_master) instead of `redis_url`: every instance asks the
    /// Sentinels for the current primary, and again after losing it. Default empty.
    pub redis_sentinel: Vec<String>,
    /// The name Sentinel knows the primary by (`sentinel monitor <name> …`); required with
    /// `redis_sentinel`, 1–256 characters.
    pub redis_master: Option<String>,
    /// A publish is acknowledged only once `WAIT` confirms its event on this many replicas
    /// (within a bounded time; otherwise the publish fails with the store unavailable). `None`:
    /// 0 on a single Redis (`redis_url`), 1 with Sentinel. 0–16.
    pub redis_min_replicas: Option<u32>,
}

setters!(HubConfig {
    heartbeat_ms: = u64,
    retry_ms: = u64,
    max_streams: = u64,
    max_sockets: some u64,
    header_timeout_ms: = u64,
    idle_timeout_ms: = u64,
    body_timeout_ms: = u64,
    #[doc(hidden)]
    no_fast_path: = bool,
    publish_token: some String,
    replay_capacity: = u64,
    send_queue: = u64,
    write_timeout_ms: = u64,
    drain_window_ms: = u64,
    shutdown_timeout_ms: = u64,
    redis_url: some String,
    redis_stream: into String,
    redis_sentinel: list String,
    redis_master: some String,
    redis_min_replicas: some u32,
});

/// A setting of [`HubConfig`] that cannot work. Names the field; an app that reads settings
/// from flags says which flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A number outside its range.
    #[error("{setting} = {value} is out of range: it must be {min}..={max}")]
    OutOfRange {
        /// The field's name.
        setting: &'static str,
        /// The value given.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// The publish token cannot be sent as `Authorization: Bearer <token>`.
    #[error("publish_token is not usable: {0}")]
    BadPublishToken(&'static str),
    /// The Redis URL does not parse.
    #[error("redis_url is not a Redis URL ({0}); e.g. redis://127.0.0.1:6379/0")]
    BadRedisUrl(String),
    /// A Redis URL was given, but this build has no Redis support.
    #[error("redis_url is set, but sse-status was built without its `redis` feature")]
    RedisNotBuilt,
    /// A Sentinel address is not `host:port`, or Sentinel is set together with `redis_url`.
    #[error("redis_sentinel is not usable: {0}")]
    BadRedisSentinel(String),
    /// `redis_master` is missing (Sentinel set), empty, too long, or set without Sentinel.
    #[error("redis_master is not usable: {0}")]
    BadRedisMaster(&'static str),
    /// The Redis stream key is empty or too long.
    #[error("redis_stream must be 1–256 characters")]
    BadRedisStream,
    /// The prefix given to [`LiveHubBuilder::mounted_at`](crate::server::LiveHubBuilder::mounted_at)
    /// is not a path prefix.
    #[error("mounted_at is not a path prefix such as \"/live\": {0}")]
    BadMount(&'static str),
}

impl ConfigError {
    /// The [`HubConfig`] field this error is about.
    pub fn setting(&self) -> &'static str {
        match self {
            ConfigError::OutOfRange { setting, .. } => setting,
            ConfigError::BadPublishToken(_) => "publish_token",
            ConfigError::BadRedisUrl(_) | ConfigError::RedisNotBuilt => "redis_url",
            ConfigError::BadRedisStream => "redis_stream",
            ConfigError::BadRedisSentinel(_) => "redis_sentinel",
            ConfigError::BadRedisMaster(_) => "redis_master",
            ConfigError::BadMount(_) => "mounted_at",
        }
    }
}

/// Longest publish token accepted.
const MAX_TOKEN_LEN: usize = 1024;

/// The documented defaults (what the app's `--help` shows), without reading the environment.
impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            heartbeat_ms: 5000,
            retry_ms: 1000,
            max_streams: 19_500,
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
            redis_sentinel: Vec::new(),
            redis_master: None,
            redis_min_replicas: None,
        }
    }
}

/// Secrets stay out of logs: the token is `<redacted>`, a Redis URL loses its password.
impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("retry_ms", &self.retry_ms)
            .field("max_streams", &self.max_streams)
            .field("max_sockets", &self.max_sockets)
            .field("header_timeout_ms", &self.header_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("body_timeout_ms", &self.body_timeout_ms)
            .field("no_fast_path", &self.no_fast_path)
            .field(
                "publish_token",
                &self.publish_token.as_ref().map(|_| Redacted),
            )
            .field("replay_capacity", &self.replay_capacity)
            .field("send_queue", &self.send_queue)
            .field("write_timeout_ms", &self.write_timeout_ms)
            .field("drain_window_ms", &self.drain_window_ms)
            .field("shutdown_timeout_ms", &self.shutdown_timeout_ms)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(redact_url_password),
            )
            .field("redis_stream", &self.redis_stream)
            .field("redis_sentinel", &self.redis_sentinel)
            .field("redis_master", &self.redis_master)
            .field("redis_min_replicas", &self.redis_min_replicas)
            .finish()
    }
}

/// Prints `<redacted>`.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `redis://user:secret@host/0` → `redis://user:<redacted>@host/0`; a URL without a password
/// is unchanged.
pub(crate) fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    if user.len() == userinfo.len() && !userinfo.is_empty() {
        // `redis://secret@host`: redis-rs reads a lone userinfo as the password.
        return format!("{scheme}://<redacted>@{host}{tail}");
    }
    format!("{scheme}://{user}:<redacted>@{host}{tail}")
}

fn range(setting: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            value,
            min,
            max,
        })
    }
}

impl HubConfig {
    /// Check every setting; the first bad one is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        range("heartbeat_ms", self.heartbeat_ms, 50, 3_600_000)?;
        range("retry_ms", self.retry_ms, 0, 600_000)?;
        range("max_streams", self.max_streams, 1, 10_000_000)?;
        if let Some(max) = self.max_sockets {
            range("max_sockets", max, 1, 10_000_000)?;
        }
        range("header_timeout_ms", self.header_timeout_ms, 100, 600_000)?;
        range("idle_timeout_ms", self.idle_timeout_ms, 100, 3_600_000)?;
        range("body_timeout_ms", self.body_timeout_ms, 100, 600_000)?;
        range("replay_capacity", self.replay_capacity, 0, 10_000_000)?;
        range("send_queue", self.send_queue, 1, 1_000_000)?;
        range("write_timeout_ms", self.write_timeout_ms, 100, 3_600_000)?;
        range("drain_window_ms", self.drain_window_ms, 0, 600_000)?;
        range(
            "shutdown_timeout_ms",
            self.shutdown_timeout_ms,
            0,
            3_600_000,
        )?;
        if let Some(token) = &self.publish_token {
            check_token(token)?;
        }
        if let Some(url) = &self.redis_url {
            check_redis_url(url)?;
        }
        if self.redis_stream.is_empty() || self.redis_stream.len() > 256 {
            return Err(ConfigError::BadRedisStream);
        }
        self.check_sentinel()?;
        if let Some(n) = self.redis_min_replicas {
            range("redis_min_replicas", u64::from(n), 0, 16)?;
        }
        Ok(())
    }

    fn check_sentinel(&self) -> Result<(), ConfigError> {
        if self.redis_sentinel.is_empty() {
            return match self.redis_master {
                Some(_) => Err(ConfigError::BadRedisMaster(
                    "it only means something with redis_sentinel",
                )),
                None => Ok(()),
            };
        }
        if !cfg!(feature = "redis") {
            return Err(ConfigError::BadRedisSentinel(
                "sse-status was built without its `redis` feature".into(),
            ));
        }
        if self.redis_url.is_some() {
            return Err(ConfigError::BadRedisSentinel(
                "set either redis_url (one Redis) or redis_sentinel (Sentinel finds the primary), not both".into(),
            ));
        }
        if self.redis_sentinel.len() > 64 {
            return Err(ConfigError::BadRedisSentinel("at most 64 addresses".into()));
        }
        for addr in &self.redis_sentinel {
            if parse_host_port(addr).is_none() {
                return Err(ConfigError::BadRedisSentinel(format!(
                    "{addr:?} is not host:port, e.g. 10.0.0.5:26379"
                )));
            }
        }
        match &self.redis_master {
            None => Err(ConfigError::BadRedisMaster(
                "Sentinel needs the master's name (sentinel monitor <name> ...)",
            )),
            Some(name) if name.is_empty() || name.len() > 256 => {
                Err(ConfigError::BadRedisMaster("it must be 1–256 characters"))
            }
            Some(_) => Ok(()),
        }
    }

    /// Whether the event log is Redis (one, or found through Sentinel).
    pub(crate) fn uses_redis(&self) -> bool {
        self.redis_url.is_some() || !self.redis_sentinel.is_empty()
    }

    /// How many replicas must confirm an event before it is acknowledged.
    #[cfg(feature = "redis")]
    pub(crate) fn min_replicas(&self) -> u32 {
        self.redis_min_replicas
            .unwrap_or(u32::from(!self.redis_sentinel.is_empty()))
    }

    /// The heartbeat interval.
    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// The write-progress deadline.
    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// The shutdown deadline.
    pub(crate) fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// The request-head deadline (from the head's first byte).
    pub(crate) fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// The idle keep-alive deadline.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The request-body progress deadline.
    pub(crate) fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

/// A publish token: non-empty visible ASCII without whitespace, so that what the operator set is
/// exactly what a client can send after `Bearer `.
fn check_token(raw: &str) -> Result<(), ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::BadPublishToken(
            "it is empty: set a secret, or leave it unset to turn publishing off",
        ));
    }
    if raw.len() > MAX_TOKEN_LEN {
        return Err(ConfigError::BadPublishToken(
            "it is longer than 1024 characters",
        ));
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::BadPublishToken(
            "it must be visible ASCII without spaces (it is sent as 'Authorization: Bearer <token>')",
        ));
    }
    Ok(())
}

/// `host:port` (a `[v6]:port` too) with a non-zero port.
pub(crate) fn parse_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    let valid = !host.is_empty()
        && port != 0
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    valid.then(|| (host.to_owned(), port))
}

#[cfg(feature = "redis")]
fn check_redis_url(url: &str) -> Result<(), ConfigError> {
    redis::Client::open(url)
        .map(|_| ())
        // redis-rs's message may quote the URL: never echo a password.
        .map_err(|err| {
            ConfigError::BadRedisUrl(err.to_string().replace(url, &redact_url_password(url)))
        })
}

#[cfg(not(feature = "redis"))]
fn check_redis_url(_url: &str) -> Result<(), ConfigError> {
    Err(ConfigError::RedisNotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract_and_are_valid() {
        let c = HubConfig::default();
        assert_eq!(c.heartbeat_ms, 5000);
        assert_eq!(c.retry_ms, 1000);
        assert_eq!(c.shutdown_timeout_ms, 10_000);
        assert!(c.max_streams > 0 && c.max_streams < 20_000);
        assert_eq!(c.redis_url, None, "the embedded log is the default");
        assert_eq!(c.redis_stream, "sse-status:events");
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn every_bound_is_checked_and_named() {
        type Set = fn(&mut HubConfig);
        let cases: [(Set, &str); 14] = [
            (|c| c.heartbeat_ms = 0, "heartbeat_ms"),
            (|c| c.heartbeat_ms = 3_600_001, "heartbeat_ms"),
            (|c| c.retry_ms = 600_001, "retry_ms"),
            (|c| c.max_streams = 0, "max_streams"),
            (|c| c.max_sockets = Some(0), "max_sockets"),
            (|c| c.header_timeout_ms = 99, "header_timeout_ms"),
            (|c| c.idle_timeout_ms = u64::MAX, "idle_timeout_ms"),
            (|c| c.body_timeout_ms = 600_001, "body_timeout_ms"),
            (|c| c.replay_capacity = 10_000_001, "replay_capacity"),
            (|c| c.send_queue = 0, "send_queue"),
            (|c| c.write_timeout_ms = 0, "write_timeout_ms"),
            (|c| c.drain_window_ms = 600_001, "drain_window_ms"),
            (|c| c.shutdown_timeout_ms = u64::MAX, "shutdown_timeout_ms"),
            (|c| c.redis_stream = String::new(), "redis_stream"),
        ];
        for (set, setting) in cases {
            let mut c = HubConfig::default();
            set(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.setting(), setting, "{err}");
            assert!(err.to_string().contains(setting), "{err}");
        }
    }

    #[test]
    fn the_publish_token_must_be_sendable() {
        for bad in [
            "",
            " ",
            "with space",
            "tab\there",
            "ünïcode",
            &"x".repeat(1025),
        ] {
            let c = HubConfig {
                publish_token: Some(bad.to_owned()),
                ..HubConfig::default()
            };
            let err = c.validate().unwrap_err();
            assert_eq!(err.setting(), "publish_token", "{bad:?}: {err}");
        }
        let c = HubConfig {
            publish_token: Some("s3cret-T0ken/+=".into()),
            ..HubConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = HubConfig {
            publish_token: Some("tok-SECRET".into()),
            redis_url: Some("redis://app:pw-SECRET@127.0.0.1:6379/0".into()),
            ..HubConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("publish_token: Some(<redacted>)"), "{shown}");
        assert!(
            shown.contains("redis://app:<redacted>@127.0.0.1:6379/0"),
            "{shown}"
        );
    }

    #[test]
    fn passwords_are_cut_from_urls() {
        for (url, want) in [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("redis://:pw@h:1/0", "redis://:<redacted>@h:1/0"),
            ("redis://u:pw@h", "redis://u:<redacted>@h"),
            ("redis://pw@h/0", "redis://<redacted>@h/0"),
            ("rediss://u:p@ss@h/0?x=1", "rediss://u:<redacted>@h/0?x=1"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url_password(url), want, "{url}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_bad_redis_url_is_refused_without_echoing_a_password() {
        let c = HubConfig {
            redis_url: Some("http://u:pw-SECRET@x".into()),
            ..HubConfig::default()
        };
        let err = c.validate().unwrap_err();
        assert!(matches!(err, ConfigError::BadRedisUrl(_)), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_redis_url_without_the_feature_is_an_error() {
        let c = HubConfig {
            redis_url: Some("redis://127.0.0.1/0".into()),
            ..HubConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::RedisNotBuilt));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn sentinel_settings_are_checked_and_named() {
        let ok = HubConfig {
            redis_sentinel: vec!["127.0.0.1:26379".into(), "[::1]:26380".into()],
            redis_master: Some("mymaster".into()),
            ..HubConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert!(ok.uses_redis());
        assert_eq!(
            ok.min_replicas(),
            1,
            "with Sentinel a publish waits for a replica"
        );
        assert_eq!(HubConfig::default().min_replicas(), 0);
        type Set = fn(&mut HubConfig);
        let cases: [(Set, &str); 7] = [
            (|c| c.redis_master = None, "redis_master"),
            (|c| c.redis_master = Some(String::new()), "redis_master"),
            (
                |c| c.redis_sentinel = vec!["nohost".into()],
                "redis_sentinel",
            ),
            (|c| c.redis_sentinel = vec!["h:0".into()], "redis_sentinel"),
            (
                |c| c.redis_sentinel = vec!["a b:1".into()],
                "redis_sentinel",
            ),
            (
                |c| c.redis_url = Some("redis://127.0.0.1/0".into()),
                "redis_sentinel",
            ),
            (|c| c.redis_min_replicas = Some(17), "redis_min_replicas"),
        ];
        for (set, setting) in cases {
            let mut c = ok.clone();
            set(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.setting(), setting, "{err}");
            assert!(err.to_string().contains(setting), "{err}");
        }
        let lone_master = HubConfig {
            redis_master: Some("mymaster".into()),
            ..HubConfig::default()
        };
        assert_eq!(
            lone_master.validate().unwrap_err().setting(),
            "redis_master"
        );
    }
}

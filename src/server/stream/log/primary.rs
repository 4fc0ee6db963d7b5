//! Server only, with `redis`: the connection to the Redis primary, failover-aware — one URL,
//! or whichever primary the Sentinels name (`sentinel.rs`), left as soon as they name another.
//! Connections are kept per use (one shared, one for publishes that `WAIT`), dropped when they
//! break or a failover demotes their node, and the store's health they show is noted on the hub.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Value};

use super::sentinel::Sentinels;
use super::store_error::StoreError;
use crate::server::config::{parse_host_port, HubConfig};
use crate::server::stream::hub::Hub;
use crate::server::stream::metrics::Metrics;

/// Longest wait for a connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for an answer to a command (the follower's blocking read adds its block time).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, commands fail at once for this long instead of queueing on it.
const CONNECT_COOLDOWN: Duration = Duration::from_millis(200);

/// Where the log's Redis is.
enum Target {
    /// One address (`redis_url`).
    Direct(Client),
    /// Whichever primary the Sentinels name (with the newest config epoch).
    Sentinel(Arc<Sentinels>),
    /// A setting that cannot work (refused by validation; never reached in a validated hub).
    Invalid,
}

/// A kept connection and the Sentinel generation of the primary it goes to (0 without
/// Sentinel): a connection of an older generation is to a primary that is no longer one.
type Slot = Mutex<Option<(MultiplexedConnection, u64)>>;

/// The primary of the log's Redis, and the connections kept to it.
pub struct Primary {
    target: Target,
    /// The connection for everything but the follower's blocking read (multiplexed: one
    /// socket for all publishes, reads of missed events and the lease).
    writer: Slot,
    /// The publishes' own connection when they `WAIT` (a blocked `WAIT` would hold up every
    /// other command on a shared connection).
    publisher: Slot,
    connecting: tokio::sync::Mutex<Option<Instant>>,
    reader_ok: AtomicBool,
    writer_ok: AtomicBool,
    hub: Arc<Hub>,
    metrics: Metrics,
}

/// A Redis error as the store's.
pub fn store_error(err: &RedisError) -> StoreError {
    StoreError(err.to_string())
}

impl Primary {
    /// The Redis `config` names (no connection yet).
    pub fn new(config: &HubConfig, hub: Arc<Hub>, metrics: Metrics) -> Primary {
        Primary {
            target: target(config),
            writer: Mutex::new(None),
            publisher: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(None),
            reader_ok: AtomicBool::new(false),
            writer_ok: AtomicBool::new(true),
            hub,
            metrics,
        }
    }

    /// The Sentinels, when the primary is found through them.
    pub fn sentinels(&self) -> Option<&Arc<Sentinels>> {
        match &self.target {
            Target::Sentinel(sentinels) => Some(sentinels),
            _ => None,
        }
    }

    /// Whether the follower's last read worked.
    pub fn reader_ok(&self) -> bool {
        self.reader_ok.load(Ordering::SeqCst)
    }

    /// Record how a read (`reader`) or write went; the store is up while both work.
    pub fn note(&self, reader: bool, ok: bool) {
        let flag = if reader {
            &self.reader_ok
        } else {
            &self.writer_ok
        };
        flag.store(ok, Ordering::SeqCst);
        if !ok {
            self.metrics
                .store_errors
                .with_label_values(&[if reader { "read" } else { "write" }])
                .inc();
        }
        let up = self.reader_ok.load(Ordering::SeqCst) && self.writer_ok.load(Ordering::SeqCst);
        if up != self.hub.store_ok() {
            if up {
                tracing::info!("event log reachable again (Redis)");
            } else {
                tracing::warn!("event log unreachable (Redis): publishes refused, updates delayed");
            }
        }
        self.metrics.store_up.set(i64::from(up));
        self.hub.set_store_ok(up);
    }

    fn config(response: Duration) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response))
    }

    /// The Sentinel generation now (0 without Sentinel).
    pub fn generation(&self) -> u64 {
        match &self.target {
            Target::Sentinel(sentinels) => sentinels.generation(),
            _ => 0,
        }
    }

    /// A new connection to the primary, with the generation it belongs to. With Sentinel: to
    /// the node the Sentinels name, once it confirms it is a primary (`ROLE`).
    pub async fn connect(
        &self,
        response: Duration,
    ) -> Result<(MultiplexedConnection, u64), RedisError> {
        let (client, generation) = match &self.target {
            Target::Direct(client) => (client.clone(), 0),
            Target::Sentinel(sentinels) => {
                let ((host, port), generation) = sentinels.discover().await?;
                (Client::open((host.as_str(), port))?, generation)
            }
            Target::Invalid => {
                return Err(RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "invalid Redis settings",
                )))
            }
        };
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&Self::config(response))
            .await?;
        if generation > 0 {
            let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
            let master = role
                .first()
                .and_then(|r| redis::from_redis_value_ref::<String>(r).ok())
                .is_some_and(|r| r == "master");
            if !master {
                return Err(RedisError::from((
                    redis::ErrorKind::Io,
                    "the node the Sentinels name is not a primary (yet)",
                )));
            }
        }
        Ok((conn, generation))
    }

    /// The shared connection, connecting if there is none.
    pub async fn writer(&self) -> Result<MultiplexedConnection, StoreError> {
        Ok(self.connection(&self.writer, RESPONSE_TIMEOUT).await?.0)
    }

    /// The connection in `slot` (and its generation), connecting if there is none or it goes
    /// to a former primary (one attempt at a time; right after a failed attempt, fail at once).
    async fn connection(
        &self,
        slot: &Slot,
        response: Duration,
    ) -> Result<(MultiplexedConnection, u64), StoreError> {
        let current = |slot: &Slot| {
            let mut kept = lock(slot);
            match kept.as_ref() {
                Some((_, generation)) if *generation != self.generation() => {
                    *kept = None;
                    None
                }
                other => other.cloned(),
            }
        };
        if let Some(kept) = current(slot) {
            return Ok(kept);
        }
        let mut last_failure = self.connecting.lock().await;
        if let Some(kept) = current(slot) {
            return Ok(kept);
        }
        if last_failure.is_some_and(|at| at.elapsed() < CONNECT_COOLDOWN) {
            return Err(StoreError("Redis connection failed moments ago".into()));
        }
        match self.connect(response).await {
            Ok(kept) => {
                *last_failure = None;
                *lock(slot) = Some(kept.clone());
                Ok(kept)
            }
            Err(err) => {
                *last_failure = Some(Instant::now());
                self.note(false, false);
                Err(store_error(&err))
            }
        }
    }

    /// Forget the kept write connections (the next publish connects).
    pub fn drop_write_connections(&self) {
        *lock(&self.writer) = None;
        *lock(&self.publisher) = None;
    }

    /// A command on the shared connection failed: count it, and drop a broken connection.
    pub fn writer_failed(&self, err: &RedisError) -> StoreError {
        self.failed_on(&self.writer, err)
    }

    /// A command on the connection in `slot` failed: count it, and drop the connection when it
    /// is broken or no longer on the primary (`READONLY`: a failover demoted it).
    fn failed_on(&self, slot: &Slot, err: &RedisError) -> StoreError {
        if err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_unrecoverable_error()
            || err.code() == Some("READONLY")
        {
            *lock(slot) = None;
        }
        self.note(false, false);
        store_error(err)
    }

    /// The publishes' own connection (and its generation), for an `XADD` + `WAIT` that may
    /// take `wait` longer than a plain answer.
    pub async fn publisher(
        &self,
        wait: Duration,
    ) -> Result<(MultiplexedConnection, u64), StoreError> {
        self.connection(&self.publisher, RESPONSE_TIMEOUT + wait)
            .await
    }

    /// Forget the publishes' connection (its node is no longer the primary).
    pub fn drop_publisher(&self) {
        *lock(&self.publisher) = None;
    }

    /// A command on the publishes' connection failed.
    pub fn publisher_failed(&self, err: &RedisError) -> StoreError {
        self.failed_on(&self.publisher, err)
    }

    /// A client for the primary now (with Sentinel: the one the Sentinels name), and the
    /// Sentinel generation it belongs to.
    pub async fn client(&self) -> Result<(Client, u64), RedisError> {
        match &self.target {
            Target::Direct(client) => Ok((client.clone(), 0)),
            Target::Sentinel(sentinels) => {
                let ((host, port), generation) = sentinels.discover().await?;
                Ok((Client::open((host.as_str(), port))?, generation))
            }
            Target::Invalid => Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid Redis settings",
            ))),
        }
    }
}

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Option<(MultiplexedConnection, u64)>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// The Redis that `config` names: one URL, or a primary found through Sentinel.
fn target(config: &HubConfig) -> Target {
    if let Some(url) = &config.redis_url {
        return match Client::open(url.as_str()) {
            Ok(client) => Target::Direct(client),
            Err(err) => {
                tracing::error!(%err, "invalid Redis URL; the event log stays unreachable");
                Target::Invalid
            }
        };
    }
    let sentinels: Vec<(String, u16)> = config
        .redis_sentinel
        .iter()
        .filter_map(|a| parse_host_port(a))
        .collect();
    let master = config.redis_master.clone().unwrap_or_default();
    match Sentinels::new(&sentinels, &master) {
        Ok(sentinels) => Target::Sentinel(Arc::new(sentinels)),
        Err(err) => {
            tracing::error!(%err, "invalid Sentinel settings; the event log stays unreachable");
            Target::Invalid
        }
    }
}

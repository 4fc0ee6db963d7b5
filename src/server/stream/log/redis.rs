//! Server only: the Redis Streams event log. `XADD … MAXLEN ~ capacity` stores an event (the
//! stream assigns the id); one follower per instance runs a blocking `XREAD` from the last id
//! it handed on and feeds the local hub (never one Redis read per client); a stream whose resume
//! point is not in the local cache reads what it missed with `XRANGE`. A lease per instance
//! (renewed every second, with a TTL) gives the fleet's live-client count, and with it each
//! instance publishes its per-topic subscriber counts (a hash per instance) for presence
//! queries. Topics travel with their event in the one stream (a `topics` field); revocations go
//! to every instance over a pub/sub channel (`<key>:control`). With Sentinel (`sentinel.rs`),
//! every connection goes to the primary the Sentinels name, and is left as soon as they name
//! another, so after a failover the publisher, the follower and the control listener move to the
//! new one by themselves (the follower resumes from its last id); with `min_replicas` > 0 a
//! publish is acknowledged only once `WAIT` confirms it on that many replicas.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use tokio_util::sync::CancellationToken;

use super::sentinel::Sentinels;
use super::store_error::StoreError;
use crate::protocol::ResyncReason;
use crate::server::config::{parse_host_port, HubConfig};
use crate::server::stream::hub::Hub;
use crate::server::stream::metrics::Metrics;
use crate::server::stream::ring::{Frame, Pos, Topics};
use crate::server::stream::topics::presence_patterns;

/// How long the follower's `XREAD` blocks before it asks again.
const BLOCK: Duration = Duration::from_secs(2);
/// Longest wait for a connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for an answer to a command (the follower's blocking read adds [`BLOCK`]).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, commands fail at once for this long instead of queueing on it.
const CONNECT_COOLDOWN: Duration = Duration::from_millis(200);
/// Longest wait for `WAIT` to see a publish's event on the replicas it needs.
const WAIT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Entries per `XREAD`/`XRANGE` page.
const PAGE: usize = 1000;
/// How often an instance renews its fleet lease.
pub const LEASE_EVERY: Duration = Duration::from_secs(1);
/// A lease not renewed for this long is gone (the instance died without saying goodbye).
pub const LEASE_TTL: Duration = Duration::from_secs(3);

/// Renew this instance's lease and count the fleet, in one round trip and atomically: expired
/// leases are removed, the live ones summed. Time is Redis's own, so instance clocks may differ.
const LEASE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local total = 0
local counts = redis.call('HVALS', KEYS[2])
for _, v in ipairs(counts) do total = total + tonumber(v) end
redis.call('PEXPIRE', KEYS[1], ttl * 10)
redis.call('PEXPIRE', KEYS[2], ttl * 10)
return {total, #counts}
";

/// Sum the per-topic counts of every live instance: the lease set says which are live (Redis's
/// own clock), each instance's hash `<prefix><id>` holds its counts per subscribed pattern.
/// ARGV[1] is the hash prefix, the rest the patterns an event to the topic reaches.
const PRESENCE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local total = 0
for _, id in ipairs(live) do
  local vals = redis.call('HMGET', ARGV[1] .. id, unpack(ARGV, 2))
  for _, v in ipairs(vals) do
    if v then total = total + tonumber(v) end
  end
end
return {total, #live}
";

/// A message on the control channel.
#[derive(serde::Serialize, serde::Deserialize)]
struct Control {
    /// The instance that sent it (it acted already and ignores its own echo).
    from: String,
    /// End every stream of this subject.
    revoke: String,
}

/// Where the log's Redis is.
enum Target {
    /// One address (`redis_url`).
    Direct(Client),
    /// Whichever primary the Sentinels name (with the newest config epoch).
    Sentinel(Arc<Sentinels>),
    /// A setting that cannot work (refused by validation; never reached in a validated hub).
    Invalid,
}

/// The shared log of a fleet.
pub struct RedisLog {
    target: Target,
    /// Replicas that must confirm an event before `append` returns its id.
    min_replicas: u32,
    key: String,
    lease_key: String,
    counts_key: String,
    presence_prefix: String,
    control_channel: String,
    capacity: usize,
    hub: Arc<Hub>,
    metrics: Metrics,
    /// The connection for everything but the follower's blocking read (multiplexed: one
    /// socket for all publishes, reads of missed events and the lease).
    writer: Slot,
    /// The publishes' own connection when they `WAIT` (a blocked `WAIT` would hold up every
    /// other command on a shared connection).
    publisher: Slot,
    connecting: tokio::sync::Mutex<Option<Instant>>,
    reader_ok: AtomicBool,
    writer_ok: AtomicBool,
    lease: redis::Script,
    presence: redis::Script,
}

/// A kept connection and the Sentinel generation of the primary it goes to (0 without
/// Sentinel): a connection of an older generation is to a primary that is no longer one.
type Slot = Mutex<Option<(MultiplexedConnection, u64)>>;

/// The outcome of reading what a client missed: the events, or why that cannot be honoured.
pub type Missed = Result<Vec<Arc<Frame>>, ResyncReason>;

fn store_error(err: &RedisError) -> StoreError {
    StoreError(err.to_string())
}

impl RedisLog {
    /// The log `config` names (no connection yet: the follower makes the first).
    pub fn new(config: &HubConfig, capacity: usize, hub: Arc<Hub>, metrics: Metrics) -> Self {
        let key = &config.redis_stream;
        RedisLog {
            target: target(config),
            min_replicas: config.min_replicas(),
            key: key.to_owned(),
            lease_key: format!("{key}:fleet:leases"),
            counts_key: format!("{key}:fleet:clients"),
            presence_prefix: format!("{key}:presence:"),
            control_channel: format!("{key}:control"),
            capacity: capacity.max(1),
            hub,
            metrics,
            writer: Mutex::new(None),
            publisher: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(None),
            reader_ok: AtomicBool::new(false),
            writer_ok: AtomicBool::new(true),
            lease: redis::Script::new(LEASE_SCRIPT),
            presence: redis::Script::new(PRESENCE_SCRIPT),
        }
    }

    /// The hub this log feeds.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn note(&self, reader: bool, ok: bool) {
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
    fn generation(&self) -> u64 {
        match &self.target {
            Target::Sentinel(sentinels) => sentinels.generation(),
            _ => 0,
        }
    }

    /// A new connection to the primary, with the generation it belongs to. With Sentinel: to
    /// the node the Sentinels name, once it confirms it is a primary (`ROLE`).
    async fn connect(
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
    async fn writer(&self) -> Result<MultiplexedConnection, StoreError> {
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
    fn drop_write_connections(&self) {
        *lock(&self.writer) = None;
        *lock(&self.publisher) = None;
    }

    /// A command on the shared connection failed: count it, and drop a broken connection.
    fn writer_failed(&self, err: &RedisError) -> StoreError {
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

    /// `XADD` of one event; validated `topics` (empty: a broadcast) go in a `topics` field,
    /// space-separated (no topic contains a space).
    fn xadd(&self, name: &str, data: &str, topics: &[String]) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.capacity)
            .arg("*")
            .arg("event")
            .arg(name)
            .arg("data")
            .arg(data);
        if !topics.is_empty() {
            cmd.arg("topics").arg(topics.join(" "));
        }
        cmd
    }

    /// `XADD` (then, with `min_replicas`, `WAIT`): the event's stream id once Redis stored it
    /// (on that many replicas too).
    pub async fn append(
        &self,
        name: &str,
        data: &str,
        topics: &[String],
    ) -> Result<String, StoreError> {
        if self.min_replicas > 0 {
            return self.append_durable(name, data, topics).await;
        }
        let mut conn = self.writer().await?;
        let added: Result<String, RedisError> =
            self.xadd(name, data, topics).query_async(&mut conn).await;
        match added {
            Ok(id) => {
                self.note(false, true);
                Ok(id)
            }
            Err(err) => Err(self.writer_failed(&err)),
        }
    }

    /// `XADD` + `WAIT min_replicas`, pipelined on the publishes' own connection. Too few
    /// replicas in time is an error (the event is stored on the primary and may still be
    /// delivered: a caller that retries makes the publish at-least-once).
    async fn append_durable(
        &self,
        name: &str,
        data: &str,
        topics: &[String],
    ) -> Result<String, StoreError> {
        let (mut conn, generation) = self
            .connection(&self.publisher, RESPONSE_TIMEOUT + WAIT_TIMEOUT)
            .await?;
        let done: Result<(String, u32), RedisError> = redis::pipe()
            .add_command(self.xadd(name, data, topics))
            .cmd("WAIT")
            .arg(self.min_replicas)
            .arg(WAIT_TIMEOUT.as_millis() as u64)
            .query_async(&mut conn)
            .await;
        match done {
            Ok((id, _)) if generation != self.generation() => {
                // The Sentinels named another primary while this one stored the event: its
                // replicas' confirmation may be undone when they follow the new one.
                tracing::warn!(%id, "the primary moved while an event was stored: publish refused");
                *lock(&self.publisher) = None;
                Err(StoreError(
                    "the Redis primary moved while the event was stored".into(),
                ))
            }
            Ok((id, replicas)) if replicas >= self.min_replicas => {
                self.note(false, true);
                Ok(id)
            }
            Ok((id, replicas)) => {
                self.metrics
                    .store_errors
                    .with_label_values(&["replicate"])
                    .inc();
                tracing::warn!(
                    %id,
                    replicas,
                    needed = self.min_replicas,
                    "event not confirmed by enough replicas in time: publish refused"
                );
                Err(StoreError(format!(
                    "the event reached {replicas} of the {} replicas it needs",
                    self.min_replicas
                )))
            }
            Err(err) => Err(self.failed_on(&self.publisher, &err)),
        }
    }

    fn frame(&self, entry: &StreamId) -> Option<(Pos, Arc<Frame>)> {
        let (pos, name, data, topics) = entry_parts(entry)?;
        let bytes = self.hub.encode_app(pos, &name, &data);
        Some((
            pos,
            Arc::new(Frame {
                pos,
                seq: 0,
                bytes,
                topics,
            }),
        ))
    }

    /// Tell every instance (this one acted already) to end the streams of `subject`.
    pub async fn revoke(&self, subject: &str) -> Result<(), StoreError> {
        let message = serde_json::to_string(&Control {
            from: self.hub.server_id().to_owned(),
            revoke: subject.to_owned(),
        })
        .map_err(|err| StoreError(err.to_string()))?;
        let mut conn = self.writer().await?;
        let sent: Result<u64, RedisError> = redis::cmd("PUBLISH")
            .arg(&self.control_channel)
            .arg(message)
            .query_async(&mut conn)
            .await;
        match sent {
            Ok(_) => {
                self.note(false, true);
                Ok(())
            }
            Err(err) => Err(self.writer_failed(&err)),
        }
    }

    /// Streams an event to `topic` reaches on every live instance, and how many instances
    /// were counted (counts are as of each instance's last lease, at most a second old).
    pub async fn presence(&self, topic: &str) -> Result<(u64, u32), StoreError> {
        let mut conn = self.writer().await?;
        let mut invocation = self.presence.key(&self.lease_key);
        invocation.arg(&self.presence_prefix);
        for pattern in presence_patterns(topic) {
            invocation.arg(pattern);
        }
        let counted: Result<(u64, u32), RedisError> = invocation.invoke_async(&mut conn).await;
        match counted {
            Ok(counts) => {
                self.note(false, true);
                Ok(counts)
            }
            Err(err) => Err(self.writer_failed(&err)),
        }
    }

    /// The control listener: subscribed to `<key>:control`, it ends the streams of every
    /// subject another instance revokes. Reconnects after any hiccup.
    pub async fn control(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = self.control_once() => result,
            };
            if let Err(err) = result {
                tracing::debug!(%err, "control listener lost Redis; reconnecting");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// A client for the primary now (with Sentinel: the one the Sentinels name), and the
    /// Sentinel generation it belongs to.
    async fn primary_client(&self) -> Result<(Client, u64), RedisError> {
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

    /// Listen on the control channel until the connection fails or (with Sentinel) the primary
    /// moves; the caller then listens again, on the new primary.
    async fn control_once(&self) -> Result<(), RedisError> {
        let (client, generation) = self.primary_client().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.control_channel).await?;
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if generation != self.generation() {
                        return Ok(());
                    }
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Control>(&payload) {
                Ok(control) if control.from != self.hub.server_id() => {
                    tracing::info!(subject = %control.revoke, "revoking a subject's streams (fleet)");
                    self.hub.revoke(&control.revoke);
                }
                Ok(_) => {}
                Err(err) => tracing::debug!(%err, "ignoring a malformed control message"),
            }
        }
        Ok(())
    }

    /// Write this instance's per-pattern subscriber counts (whole, when they changed) and keep
    /// them alive as long as the lease.
    async fn publish_presence(
        &self,
        conn: &mut MultiplexedConnection,
        written: &mut Option<u64>,
    ) -> Result<(), RedisError> {
        let key = format!("{}{}", self.presence_prefix, self.hub.server_id());
        let (changes, table) = self.hub.presence_table();
        let mut pipe = redis::pipe();
        pipe.atomic();
        if *written != Some(changes) {
            pipe.cmd("DEL").arg(&key).ignore();
            if !table.is_empty() {
                pipe.cmd("HSET").arg(&key);
                for (pattern, n) in &table {
                    pipe.arg(pattern).arg(*n);
                }
                pipe.ignore();
            }
        }
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(LEASE_TTL.as_millis() as u64 * 10)
            .ignore();
        let () = pipe.query_async(conn).await?;
        *written = Some(changes);
        Ok(())
    }

    /// What a client that saw `after` missed up to `head` (the hub's newest when it
    /// subscribed; later events reach it live). `Err(reason)` when that cannot be honoured: the
    /// id was trimmed away or never was in this stream.
    pub async fn fetch(&self, after: Pos, head: Pos) -> Result<Missed, StoreError> {
        let mut conn = self.writer().await?;
        let result = self.fetch_on(&mut conn, after, head).await;
        match result {
            Ok(missed) => {
                self.note(false, true);
                Ok(missed)
            }
            Err(err) => Err(self.writer_failed(&err)),
        }
    }

    async fn fetch_on(
        &self,
        conn: &mut MultiplexedConnection,
        after: Pos,
        head: Pos,
    ) -> Result<Missed, RedisError> {
        if after == Pos::ZERO {
            // "Before the first event": complete only if nothing was ever trimmed.
            let (length, added) = self.counts(conn).await?;
            if added > length {
                return Ok(Err(ResyncReason::TooOld));
            }
            return Ok(Ok(self.range(conn, "-".to_owned(), head).await?));
        }
        let at = id_text(after);
        let first: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(&at)
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        let present = first
            .ids
            .first()
            .is_some_and(|e| Pos::parse_stream_id(&e.id) == Some(after));
        if !present {
            // Trimming only ever removes the oldest entries, so an id still present means
            // everything after it is too; an absent one is either trimmed or foreign.
            let oldest: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.key)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(conn)
                .await?;
            let oldest = oldest.ids.first().and_then(|e| Pos::parse_stream_id(&e.id));
            return Ok(Err(match oldest {
                Some(o) if after < o => ResyncReason::TooOld,
                _ => ResyncReason::Unknown,
            }));
        }
        if after >= head {
            return Ok(Ok(Vec::new()));
        }
        Ok(Ok(self.range(conn, format!("({at}"), head).await?))
    }

    /// `XLEN` and the stream's `entries-added` (0, 0 when it does not exist).
    async fn counts(&self, conn: &mut MultiplexedConnection) -> Result<(u64, u64), RedisError> {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&self.key)
            .query_async(conn)
            .await?;
        if !exists {
            return Ok((0, 0));
        }
        let info: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&self.key)
            .query_async(conn)
            .await?;
        let field = |name: &str| -> Option<u64> {
            let pairs: Vec<(String, Value)> = match &info {
                Value::Map(map) => map
                    .iter()
                    .filter_map(|(k, v)| Some((redis::from_redis_value_ref(k).ok()?, v.clone())))
                    .collect(),
                Value::Array(items) => items
                    .chunks(2)
                    .filter_map(|kv| {
                        Some((
                            redis::from_redis_value_ref(kv.first()?).ok()?,
                            kv.get(1)?.clone(),
                        ))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            pairs
                .into_iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| redis::from_redis_value(v).ok())
        };
        let length = field("length").unwrap_or(0);
        Ok((length, field("entries-added").unwrap_or(length)))
    }

    /// Entries from `start` (an `XRANGE` start: `-` or `(<id>`) up to `head`, paged.
    async fn range(
        &self,
        conn: &mut MultiplexedConnection,
        mut start: String,
        head: Pos,
    ) -> Result<Vec<Arc<Frame>>, RedisError> {
        let mut out = Vec::new();
        if head == Pos::ZERO {
            return Ok(out);
        }
        let end = id_text(head);
        loop {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.key)
                .arg(&start)
                .arg(&end)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(conn)
                .await?;
            let full = page.ids.len() == PAGE;
            let mut last = None;
            for entry in &page.ids {
                if let Some((pos, frame)) = self.frame(entry) {
                    last = Some(pos);
                    out.push(frame);
                }
            }
            match last {
                Some(pos) if full && pos < head => start = format!("({})", id_text(pos)),
                _ => return Ok(out),
            }
        }
    }

    /// The follower: one blocking `XREAD` loop for the whole process, handing every new entry
    /// to the hub in stream order. After any hiccup it reconnects and resumes from the last id
    /// it handed on, so nothing is skipped and nothing repeated.
    pub async fn follow(self: Arc<Self>, stop: CancellationToken) {
        if let Target::Sentinel(sentinels) = &self.target {
            tokio::spawn(Arc::clone(sentinels).watch(stop.clone()));
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let err = tokio::select! {
                () = stop.cancelled() => return,
                result = self.follow_once(&stop) => match result {
                    Ok(()) => return,
                    Err(err) => err,
                },
            };
            if self.reader_ok.load(Ordering::SeqCst) {
                tracing::warn!(%err, "event log follower lost Redis; reconnecting");
                backoff = Duration::from_millis(100);
                // The kept write connections most likely went down with it: drop them, so
                // the first publish once Redis is back (and `/readyz` says so) connects anew
                // instead of failing on a dead socket.
                self.drop_write_connections();
            } else {
                tracing::debug!(%err, "event log follower: Redis still unreachable");
            }
            self.note(true, false);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn follow_once(&self, stop: &CancellationToken) -> Result<(), RedisError> {
        let (mut conn, generation) = self.connect(RESPONSE_TIMEOUT + BLOCK).await?;
        if self.hub.head() == Pos::ZERO {
            // First contact: keep the stream's tail locally, so clients that reconnect right
            // after this instance (re)started resume without asking Redis.
            let tail: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(&self.key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(self.capacity)
                .query_async(&mut conn)
                .await?;
            let frames = tail
                .ids
                .iter()
                .rev()
                .filter_map(|e| self.frame(e).map(|(_, f)| f))
                .collect();
            self.hub.preload(frames);
        } else {
            let _: () = redis::cmd("PING").query_async(&mut conn).await?;
        }
        self.note(true, true);
        loop {
            let after = id_text(self.hub.head());
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(PAGE)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&after);
            let read = cmd.query_async::<Option<StreamReadReply>>(&mut conn);
            let moved = async {
                match &self.target {
                    Target::Sentinel(sentinels) => {
                        let moved = sentinels.moved();
                        if sentinels.generation() == generation {
                            moved.await;
                        }
                    }
                    _ => std::future::pending().await,
                }
            };
            let reply = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                // A former primary may still take writes that the new one never gets: read
                // nothing more from it.
                () = moved => {
                    return Err(RedisError::from((
                        redis::ErrorKind::Io,
                        "the Sentinels named another primary",
                    )))
                }
                reply = read => reply?,
            };
            let Some(reply) = reply else { continue };
            for key in reply.keys {
                for entry in &key.ids {
                    let Some((pos, name, data, topics)) = entry_parts(entry) else {
                        tracing::warn!(id = %entry.id, "skipping a stream entry with a foreign id");
                        continue;
                    };
                    if self.hub.deliver(pos, &name, &data, topics) {
                        self.metrics.events_followed.inc();
                    }
                }
            }
        }
    }

    /// Renew this instance's lease every `LEASE_EVERY` and learn the fleet's size; on stop,
    /// hand the lease back so the count drops at once.
    pub async fn lease(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(LEASE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut presence_written = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let Ok(mut conn) = self.writer().await else {
                continue;
            };
            let renewed: Result<(u64, u32), RedisError> = self
                .lease
                .key(&self.lease_key)
                .key(&self.counts_key)
                .arg(self.hub.server_id())
                .arg(self.hub.open_streams())
                .arg(LEASE_TTL.as_millis() as u64)
                .invoke_async(&mut conn)
                .await;
            if renewed.is_ok() {
                if let Err(err) = self
                    .publish_presence(&mut conn, &mut presence_written)
                    .await
                {
                    tracing::debug!(%err, "presence counts not written");
                    presence_written = None;
                }
            }
            match renewed {
                Ok((clients, instances)) => {
                    self.note(false, true);
                    self.hub.set_fleet_size(clients, instances);
                    self.metrics.fleet_connections_open.set(clients as i64);
                    self.metrics.fleet_instances.set(i64::from(instances));
                }
                Err(err) => {
                    tracing::debug!(%err, "fleet lease not renewed");
                    self.writer_failed(&err);
                }
            }
        }
        if let Ok(mut conn) = self.writer().await {
            let gone: Result<(), RedisError> = redis::pipe()
                .atomic()
                .cmd("ZREM")
                .arg(&self.lease_key)
                .arg(self.hub.server_id())
                .ignore()
                .cmd("HDEL")
                .arg(&self.counts_key)
                .arg(self.hub.server_id())
                .ignore()
                .cmd("DEL")
                .arg(format!("{}{}", self.presence_prefix, self.hub.server_id()))
                .ignore()
                .query_async(&mut conn)
                .await;
            if let Err(err) = gone {
                tracing::debug!(%err, "fleet lease not handed back (it expires by itself)");
            }
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

/// `<ms>-<seq>`.
fn id_text(pos: Pos) -> String {
    format!("{}-{}", pos.ms, pos.seq)
}

/// An entry's position, event name, data and topics. Entries written by something else than
/// sse-status still go out (as `message`), so the follower never stalls on them. A `topics`
/// field keeps only its valid topics: one with none valid reaches nobody (private stays
/// private).
fn entry_parts(entry: &StreamId) -> Option<(Pos, String, String, Option<Topics>)> {
    let pos = Pos::parse_stream_id(&entry.id)?;
    let name: String = entry
        .get("event")
        .filter(|n: &String| crate::protocol::validate_event_name(n).is_ok())
        .unwrap_or_else(|| "message".to_owned());
    let data: String = entry.get("data").unwrap_or_else(|| "null".to_owned());
    let topics = entry.get::<String>("topics").map(|field| {
        field
            .split(' ')
            .filter(|t| crate::protocol::validate_topic(t).is_ok())
            .take(crate::protocol::MAX_TOPICS)
            .map(Box::from)
            .collect::<Topics>()
    });
    Some((pos, name, data, topics))
}

//! Server only, with `redis`: the Redis Streams event log. `XADD … MAXLEN ~ capacity` stores an
//! event (the stream assigns the id); one follower per instance runs a blocking `XREAD` from the
//! last id it handed on and feeds the local hub (never one Redis read per client); a stream whose
//! resume point is older than the ring reads what it missed with `XRANGE`. Topics travel with
//! their event in the one stream (a `topics` field); revocations go to every instance over a
//! pub/sub channel (`<key>:control`). Every connection is the primary's (`primary.rs`: after a
//! failover the publisher, the follower and the control listener move to the new one by
//! themselves, the follower from its last id); with `min_replicas` > 0 a publish is acknowledged
//! only once `WAIT` confirms it on that many replicas. Fleet membership is `fleet.rs`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{RedisError, Value};
use tokio_util::sync::CancellationToken;

use super::fleet::Membership;
use super::primary::{Primary, RESPONSE_TIMEOUT};
use super::store_error::StoreError;
use crate::protocol::ResyncReason;
use crate::server::config::HubConfig;
use crate::server::stream::hub::Hub;
use crate::server::stream::metrics::Metrics;
use crate::server::stream::ring::{Frame, Pos, Topics};

/// How long the follower's `XREAD` blocks before it asks again.
const BLOCK: Duration = Duration::from_secs(2);
/// Longest wait for `WAIT` to see a publish's event on the replicas it needs.
const WAIT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Entries per `XREAD`/`XRANGE` page.
const PAGE: usize = 1000;
/// A message on the control channel.
#[derive(serde::Serialize, serde::Deserialize)]
struct Control {
    /// The instance that sent it (it acted already and ignores its own echo).
    from: String,
    /// End every stream of this subject.
    revoke: String,
}

/// The shared log of a fleet.
pub struct RedisLog {
    primary: Primary,
    membership: Membership,
    /// Replicas that must confirm an event before `append` returns its id.
    min_replicas: u32,
    key: String,
    control_channel: String,
    capacity: usize,
    hub: Arc<Hub>,
    metrics: Metrics,
}

/// The outcome of reading what a client missed: the events, or why that cannot be honoured.
pub type Missed = Result<Vec<Arc<Frame>>, ResyncReason>;

impl RedisLog {
    /// The log `config` names (no connection yet: the follower makes the first).
    pub fn new(config: &HubConfig, capacity: usize, hub: Arc<Hub>, metrics: Metrics) -> Self {
        let key = &config.redis_stream;
        RedisLog {
            primary: Primary::new(config, Arc::clone(&hub), metrics.clone()),
            membership: Membership::new(key),
            min_replicas: config.min_replicas(),
            key: key.to_owned(),
            control_channel: format!("{key}:control"),
            capacity: capacity.max(1),
            hub,
            metrics,
        }
    }

    /// The hub this log feeds.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
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
        let mut conn = self.primary.writer().await?;
        let added: Result<String, RedisError> =
            self.xadd(name, data, topics).query_async(&mut conn).await;
        match added {
            Ok(id) => {
                self.primary.note(false, true);
                Ok(id)
            }
            Err(err) => Err(self.primary.writer_failed(&err)),
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
        let (mut conn, generation) = self.primary.publisher(WAIT_TIMEOUT).await?;
        let done: Result<(String, u32), RedisError> = redis::pipe()
            .add_command(self.xadd(name, data, topics))
            .cmd("WAIT")
            .arg(self.min_replicas)
            .arg(WAIT_TIMEOUT.as_millis() as u64)
            .query_async(&mut conn)
            .await;
        match done {
            Ok((id, _)) if generation != self.primary.generation() => {
                // The Sentinels named another primary while this one stored the event: its
                // replicas' confirmation may be undone when they follow the new one.
                tracing::warn!(%id, "the primary moved while an event was stored: publish refused");
                self.primary.drop_publisher();
                Err(StoreError(
                    "the Redis primary moved while the event was stored".into(),
                ))
            }
            Ok((id, replicas)) if replicas >= self.min_replicas => {
                self.primary.note(false, true);
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
            Err(err) => Err(self.primary.publisher_failed(&err)),
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
        let mut conn = self.primary.writer().await?;
        let sent: Result<u64, RedisError> = redis::cmd("PUBLISH")
            .arg(&self.control_channel)
            .arg(message)
            .query_async(&mut conn)
            .await;
        match sent {
            Ok(_) => {
                self.primary.note(false, true);
                Ok(())
            }
            Err(err) => Err(self.primary.writer_failed(&err)),
        }
    }

    /// Streams an event to `topic` reaches on every live instance, and how many instances
    /// were counted (as of each instance's last lease, at most a second old).
    pub async fn presence(&self, topic: &str) -> Result<(u64, u32), StoreError> {
        self.membership.presence(&self.primary, topic).await
    }

    /// Hold this instance's fleet lease until `stop` (then hand it back).
    pub async fn lease(self: Arc<Self>, stop: CancellationToken) {
        self.membership
            .run(&self.primary, &self.hub, &self.metrics, stop)
            .await;
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

    /// Listen on the control channel until the connection fails or (with Sentinel) the primary
    /// moves; the caller then listens again, on the new primary.
    async fn control_once(&self) -> Result<(), RedisError> {
        let (client, generation) = self.primary.client().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.control_channel).await?;
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if generation != self.primary.generation() {
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

    /// What a client that saw `after` missed up to `head` (the hub's newest when it
    /// subscribed; later events reach it live). `Err(reason)` when that cannot be honoured: the
    /// id was trimmed away or never was in this stream.
    pub async fn fetch(&self, after: Pos, head: Pos) -> Result<Missed, StoreError> {
        let mut conn = self.primary.writer().await?;
        let result = self.fetch_on(&mut conn, after, head).await;
        match result {
            Ok(missed) => {
                self.primary.note(false, true);
                Ok(missed)
            }
            Err(err) => Err(self.primary.writer_failed(&err)),
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
        if let Some(sentinels) = self.primary.sentinels() {
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
            if self.primary.reader_ok() {
                tracing::warn!(%err, "event log follower lost Redis; reconnecting");
                backoff = Duration::from_millis(100);
                // The kept write connections most likely went down with it: drop them, so
                // the first publish once Redis is back (and `/readyz` says so) connects anew
                // instead of failing on a dead socket.
                self.primary.drop_write_connections();
            } else {
                tracing::debug!(%err, "event log follower: Redis still unreachable");
            }
            self.primary.note(true, false);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn follow_once(&self, stop: &CancellationToken) -> Result<(), RedisError> {
        let (mut conn, generation) = self.primary.connect(RESPONSE_TIMEOUT + BLOCK).await?;
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
        self.primary.note(true, true);
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
                match self.primary.sentinels() {
                    Some(sentinels) => {
                        let moved = sentinels.moved();
                        if sentinels.generation() == generation {
                            moved.await;
                        }
                    }
                    None => std::future::pending().await,
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

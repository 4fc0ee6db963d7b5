//! Server only, with `redis`: fleet membership — a lease per instance (renewed every second,
//! with a TTL, in one script) gives the fleet's live instances and clients, and with it each
//! instance writes its per-pattern subscriber counts (a hash per instance), which presence
//! queries sum over the live instances.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::RedisError;
use tokio_util::sync::CancellationToken;

use super::primary::Primary;
use super::store_error::StoreError;
use crate::server::stream::hub::Hub;
use crate::server::stream::metrics::Metrics;
use crate::server::stream::topics::presence_patterns;

/// How often an instance renews its fleet lease.
const LEASE_EVERY: Duration = Duration::from_secs(1);
/// A lease not renewed for this long is gone (the instance died without saying goodbye).
const LEASE_TTL: Duration = Duration::from_secs(3);

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

/// This instance's place in the fleet.
pub struct Membership {
    lease_key: String,
    counts_key: String,
    presence_prefix: String,
    lease: redis::Script,
    presence: redis::Script,
}

impl Membership {
    /// Membership under the stream `key`'s names.
    pub fn new(key: &str) -> Membership {
        Membership {
            lease_key: format!("{key}:fleet:leases"),
            counts_key: format!("{key}:fleet:clients"),
            presence_prefix: format!("{key}:presence:"),
            lease: redis::Script::new(LEASE_SCRIPT),
            presence: redis::Script::new(PRESENCE_SCRIPT),
        }
    }

    /// Streams an event to `topic` reaches on every live instance, and how many instances
    /// were counted (counts are as of each instance's last lease, at most a second old).
    pub async fn presence(&self, primary: &Primary, topic: &str) -> Result<(u64, u32), StoreError> {
        let mut conn = primary.writer().await?;
        let mut invocation = self.presence.key(&self.lease_key);
        invocation.arg(&self.presence_prefix);
        for pattern in presence_patterns(topic) {
            invocation.arg(pattern);
        }
        let counted: Result<(u64, u32), RedisError> = invocation.invoke_async(&mut conn).await;
        match counted {
            Ok(counts) => {
                primary.note(false, true);
                Ok(counts)
            }
            Err(err) => Err(primary.writer_failed(&err)),
        }
    }

    /// Write this instance's per-pattern subscriber counts (whole, when they changed) and keep
    /// them alive as long as the lease.
    async fn publish_presence(
        &self,
        hub: &Hub,
        conn: &mut MultiplexedConnection,
        written: &mut Option<u64>,
    ) -> Result<(), RedisError> {
        let key = format!("{}{}", self.presence_prefix, hub.server_id());
        let (changes, table) = hub.presence_table();
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

    /// Renew this instance's lease every `LEASE_EVERY` and learn the fleet's size; on stop,
    /// hand the lease back so the count drops at once.
    pub async fn run(
        &self,
        primary: &Primary,
        hub: &Hub,
        metrics: &Metrics,
        stop: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(LEASE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut presence_written = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let Ok(mut conn) = primary.writer().await else {
                continue;
            };
            let renewed: Result<(u64, u32), RedisError> = self
                .lease
                .key(&self.lease_key)
                .key(&self.counts_key)
                .arg(hub.server_id())
                .arg(hub.open_streams())
                .arg(LEASE_TTL.as_millis() as u64)
                .invoke_async(&mut conn)
                .await;
            if renewed.is_ok() {
                if let Err(err) = self
                    .publish_presence(hub, &mut conn, &mut presence_written)
                    .await
                {
                    tracing::debug!(%err, "presence counts not written");
                    presence_written = None;
                }
            }
            match renewed {
                Ok((clients, instances)) => {
                    primary.note(false, true);
                    hub.set_fleet_size(clients, instances);
                    metrics.fleet_connections_open.set(clients as i64);
                    metrics.fleet_instances.set(i64::from(instances));
                }
                Err(err) => {
                    tracing::debug!(%err, "fleet lease not renewed");
                    primary.writer_failed(&err);
                }
            }
        }
        if let Ok(mut conn) = primary.writer().await {
            let gone: Result<(), RedisError> = redis::pipe()
                .atomic()
                .cmd("ZREM")
                .arg(&self.lease_key)
                .arg(hub.server_id())
                .ignore()
                .cmd("HDEL")
                .arg(&self.counts_key)
                .arg(hub.server_id())
                .ignore()
                .cmd("DEL")
                .arg(format!("{}{}", self.presence_prefix, hub.server_id()))
                .ignore()
                .query_async(&mut conn)
                .await;
            if let Err(err) = gone {
                tracing::debug!(%err, "fleet lease not handed back (it expires by itself)");
            }
        }
    }
}

//! Server only: the event log behind one seam — append an event, open a stream at a resume
//! point (replay what it missed, then live), and follow the log into the local hub. Two
//! implementations: the embedded in-process ring (the default; ids `<server_id>-<seq>`, lost on
//! restart) and Redis Streams (shared by a fleet; ids are the stream's own, the same on every
//! instance). Nothing outside this module knows which one runs.

#[cfg(feature = "redis")]
mod fleet;
#[cfg(feature = "redis")]
mod primary;
#[cfg(feature = "redis")]
mod redis;
#[cfg(not(feature = "redis"))]
#[path = "no_redis.rs"]
mod redis;
#[cfg(feature = "redis")]
mod sentinel;
mod store_error;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::server::config::HubConfig;
use crate::server::stream::hub::{Hub, HubSize, IdStyle, Subscription};
use crate::server::stream::metrics::Metrics;
use crate::server::stream::ring::{topics_of, Frame, Pos};

pub use self::redis::RedisLog;
pub use self::store_error::StoreError;

/// A client's resume point as the transport read it (the protocol's one parser).
pub use crate::protocol::Resume;
/// Why a resume point could not be honoured (shared with the client).
pub use crate::protocol::ResyncReason;

/// How a stream starts (or catches up): decided now, or after asking the shared log.
pub enum Start {
    /// Everything is known.
    Ready(Plan),
    /// The missed events must be read from Redis first.
    Fetch(Fetch),
}

/// Where a stream reads from: the events it has not seen, and what it is told about them.
#[derive(Debug)]
pub struct Plan {
    /// The id the client has everything up to (`connected` carries it): resuming from it
    /// loses nothing this stream delivers.
    pub cursor: String,
    /// The position of that id.
    pub last: Pos,
    /// Missed events read from Redis (not in the ring), oldest first; the ring follows.
    pub fetched: Vec<Arc<Frame>>,
    /// The ring's sequence number the stream reads after (once `fetched` is sent).
    pub from: u64,
    /// Set when the resume point could not be honoured: the reason and the requested id.
    pub resync: Option<(ResyncReason, String)>,
}

/// A stream's start (or catch-up) that needs the shared log: its resume point is older than
/// the ring.
pub struct Fetch {
    log: Arc<RedisLog>,
    after: Pos,
    /// The ring's head (sequence number and position) when it was decided.
    head: (u64, Pos),
    requested: String,
}

impl Fetch {
    /// Ask Redis for what the client missed (or why that cannot be honoured).
    pub async fn run(self) -> Result<Plan, StoreError> {
        let hub = self.log.hub();
        let outcome = self.log.fetch(self.after, self.head.1).await?;
        Ok(match outcome {
            Ok(fetched) => Plan {
                cursor: hub.id_text(self.after),
                last: self.after,
                fetched,
                from: self.head.0,
                resync: None,
            },
            Err(reason) => Plan {
                cursor: hub.id_text(self.head.1),
                last: self.head.1,
                fetched: Vec::new(),
                from: self.head.0,
                resync: Some((reason, self.requested)),
            },
        })
    }
}

enum Backend {
    Embedded,
    Redis(Arc<RedisLog>),
}

/// The event log of this process.
pub struct EventLog {
    hub: Arc<Hub>,
    backend: Backend,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Embedded => "embedded",
            Backend::Redis(_) => "redis",
        };
        f.debug_struct("EventLog").field("kind", &kind).finish()
    }
}

/// Longest requested id echoed back in a `resync`.
const MAX_ECHO: usize = 128;

fn echo(raw: &str) -> String {
    raw.chars().take(MAX_ECHO).collect()
}

impl EventLog {
    /// The log `config` asks for, with a hub whose ids fit it.
    pub fn new(
        config: &HubConfig,
        max_streams: usize,
        #[cfg_attr(not(feature = "redis"), allow(unused_variables))] metrics: &Metrics,
    ) -> EventLog {
        let ids = if config.uses_redis() {
            IdStyle::Stream
        } else {
            IdStyle::Process
        };
        let capacity = usize::try_from(config.replay_capacity).unwrap_or(usize::MAX);
        let size = HubSize {
            max_streams,
            replay: capacity,
            live: usize::try_from(config.send_queue).unwrap_or(usize::MAX),
        };
        let hub = Hub::new(size, ids);
        let backend = match config.uses_redis() {
            false => Backend::Embedded,
            #[cfg(feature = "redis")]
            true => Backend::Redis(Arc::new(RedisLog::new(
                config,
                capacity,
                Arc::clone(&hub),
                metrics.clone(),
            ))),
            // `HubConfig::validate` refuses Redis settings in a build without Redis.
            #[cfg(not(feature = "redis"))]
            true => Backend::Embedded,
        };
        EventLog { hub, backend }
    }

    /// The local fan-out this log feeds.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Whether this is the shared Redis log.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Store an event for validated `topics` (empty: a broadcast; the topics travel with the
    /// event in the one log); its id once it is stored (never before).
    pub async fn append(
        &self,
        name: String,
        data: String,
        topics: &[String],
    ) -> Result<String, StoreError> {
        match &self.backend {
            Backend::Embedded => Ok(self
                .hub
                .publish(&name, &data, topics_of(topics))
                .to_string()),
            Backend::Redis(log) => log.append(&name, &data, topics).await,
        }
    }

    /// End every stream of `subject`: in this process at once, and with Redis on every
    /// instance of the fleet (a control message each instance's listener acts on).
    pub async fn revoke(&self, subject: &str) -> Result<(), StoreError> {
        self.hub.revoke(subject);
        match &self.backend {
            Backend::Embedded => Ok(()),
            Backend::Redis(log) => log.revoke(subject).await,
        }
    }

    /// Streams an event to `topic` would reach, and the instances counted: this process's
    /// with the embedded log; with Redis, every live instance's (as of their last lease).
    pub async fn presence(&self, topic: &str) -> Result<(u64, u32), StoreError> {
        match &self.backend {
            Backend::Embedded => Ok((self.hub.presence(topic), 1)),
            Backend::Redis(log) => log.presence(topic).await,
        }
    }

    /// Start the background work: with Redis, the one follower that feeds the hub, the fleet
    /// lease and the control listener (revocations). All end when `stop` is cancelled.
    pub fn spawn(&self, stop: CancellationToken) {
        if let Backend::Redis(log) = &self.backend {
            tokio::spawn(Arc::clone(log).follow(stop.clone()));
            tokio::spawn(Arc::clone(log).control(stop.clone()));
            tokio::spawn(Arc::clone(log).lease(stop));
        }
    }

    /// How a stream subscribed as `sub` starts after `resume`: the missed events the ring
    /// holds are read from it (nothing is copied), older ones from Redis. Refused (with the
    /// store's error) only when they would have to come from an unreachable Redis.
    pub fn open(&self, resume: &Resume, sub: &Subscription) -> Result<Start, StoreError> {
        let hub = &self.hub;
        let fresh = |resync| Plan {
            cursor: hub.id_text(sub.head_pos),
            last: sub.head_pos,
            fetched: Vec::new(),
            from: sub.head,
            resync,
        };
        let requested = match (resume, &self.backend) {
            (Resume::Fresh, _) => return Ok(Start::Ready(fresh(None))),
            (Resume::Id(id), Backend::Embedded) if id.epoch != hub.server_id() => {
                Err((ResyncReason::OtherServer, id.to_string()))
            }
            (Resume::Id(id), Backend::Embedded) => Ok(Pos { ms: 0, seq: id.seq }),
            (Resume::Id(id), Backend::Redis(_)) => Pos::parse_stream_id(&id.to_string())
                .ok_or_else(|| (ResyncReason::OtherLog, id.to_string())),
            (Resume::Malformed(raw), _) => Err((ResyncReason::Unknown, echo(raw))),
        };
        let at = match requested {
            Ok(at) => at,
            Err(why) => return Ok(Start::Ready(self.lost(why, sub))),
        };
        if let Some(from) = hub.ring().resume_at(at) {
            return Ok(Start::Ready(Plan {
                cursor: hub.id_text(at),
                last: at,
                fetched: Vec::new(),
                from,
                resync: None,
            }));
        }
        match &self.backend {
            Backend::Embedded => {
                let reason = if at > sub.head_pos {
                    ResyncReason::Unknown
                } else {
                    ResyncReason::TooOld
                };
                Ok(Start::Ready(self.lost((reason, hub.id_text(at)), sub)))
            }
            Backend::Redis(log) => {
                if !hub.store_ok() {
                    return Err(StoreError(
                        "cannot read the missed events while Redis is unreachable".into(),
                    ));
                }
                Ok(Start::Fetch(Fetch {
                    log: Arc::clone(log),
                    after: at,
                    head: (sub.head, sub.head_pos),
                    requested: hub.id_text(at),
                }))
            }
        }
    }

    /// A stream whose cursor fell behind the ring (it had everything up to `last`) catches up
    /// as a `Last-Event-ID` reconnect would: from Redis, or with a `resync` and the ring.
    pub fn catch_up(&self, last: Pos) -> Start {
        let hub = &self.hub;
        let head = hub.ring().head_both();
        match &self.backend {
            Backend::Redis(log) => Start::Fetch(Fetch {
                log: Arc::clone(log),
                after: last,
                head,
                requested: hub.id_text(last),
            }),
            Backend::Embedded => {
                let sub = Subscription {
                    head: head.0,
                    head_pos: head.1,
                    inbox: None,
                };
                Start::Ready(self.lost((ResyncReason::TooOld, hub.id_text(last)), &sub))
            }
        }
    }

    /// The resume point is lost: the embedded log gives everything it still keeps (what the
    /// client missed is not fully known); Redis starts at the head.
    fn lost(&self, why: (ResyncReason, String), sub: &Subscription) -> Plan {
        let hub = &self.hub;
        let oldest = match self.backend {
            Backend::Embedded => hub.ring().window_oldest(),
            Backend::Redis(_) => None,
        };
        let (from, last) = match oldest {
            Some((seq, pos)) if seq <= sub.head => (
                seq - 1,
                Pos {
                    ms: 0,
                    seq: pos.seq - 1,
                },
            ),
            _ => (sub.head, sub.head_pos),
        };
        Plan {
            cursor: hub.id_text(last),
            last,
            fetched: Vec::new(),
            from,
            resync: Some(why),
        }
    }
}

#[cfg(test)]
mod tests;

//! Server only: the event log behind one seam — append an event, open a stream at a resume
//! point (replay what it missed, then live), and follow the log into the local hub. Two
//! implementations: the embedded in-process ring (the default; ids `<server_id>-<seq>`, lost on
//! restart) and Redis Streams (shared by a fleet; ids are the stream's own, the same on every
//! instance). Nothing outside this module knows which one runs.

#[cfg(feature = "redis")]
mod redis;
#[cfg(not(feature = "redis"))]
#[path = "no_redis.rs"]
mod redis;
#[cfg(feature = "redis")]
mod sentinel;
mod store_error;

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::server::config::HubConfig;
use crate::server::stream::fanout::{
    topics_of, Frame, Hub, IdStyle, Mailbox, Pos, ResyncReason, Snapshot,
};
use crate::server::stream::metrics::Metrics;

pub use self::redis::RedisLog;
pub use self::store_error::StoreError;

/// A client's resume point as the transport read it (the protocol's one parser).
pub use crate::protocol::Resume;

/// How a stream starts: decided now, or after asking the shared log.
pub enum Start {
    /// Everything is known.
    Ready(Plan),
    /// The missed events must be read from Redis first.
    Fetch(Fetch),
}

/// What a stream sends before the live frames.
#[derive(Debug)]
pub struct Plan {
    /// The `connected` event's id: resuming from it loses nothing this stream delivers.
    pub cursor: String,
    /// Live events at or before this position were replayed (or seen) already: skipped.
    pub floor: Pos,
    /// Missed events, oldest first.
    pub replay: Vec<Arc<Frame>>,
    /// Set when the resume point could not be honoured: the reason and the requested id.
    pub resync: Option<(ResyncReason, String)>,
}

/// A stream's start that needs the shared log (its resume point is not in the local cache).
pub struct Fetch {
    log: Arc<RedisLog>,
    after: Pos,
    head: Pos,
    requested: String,
}

impl Fetch {
    /// Ask Redis for what the client missed (or why that cannot be honoured).
    pub async fn run(self) -> Result<Plan, StoreError> {
        let outcome = self.log.fetch(self.after, self.head).await?;
        Ok(match outcome {
            Ok(replay) => Plan {
                cursor: self.log.hub().id_text(self.after),
                floor: self.after.max(self.head),
                replay,
                resync: None,
            },
            Err(reason) => Plan {
                cursor: self.log.hub().id_text(self.head),
                floor: self.head,
                replay: Vec::new(),
                resync: Some((reason, self.requested)),
            },
        })
    }
}

/// A stream being opened: its live receiver (subscribed before anything is read, so nothing
/// falls between replay and live) and how it starts.
pub struct Opening {
    /// Live frames.
    pub rx: broadcast::Receiver<Arc<Frame>>,
    /// Frames the shared channel had carried when `rx` was made.
    pub sent: u64,
    /// Live topic-targeted events (when the stream subscribed to topics).
    pub mailbox: Option<Mailbox>,
    /// Replay plan.
    pub start: Start,
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
        let hub = Hub::with_ids(max_streams, capacity, config.send_queue as usize, ids);
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
            Backend::Embedded => Ok(self.hub.publish(name, data, topics_of(topics)).to_string()),
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

    /// Open a stream that resumes after `resume` and reads the topic `patterns` (besides the
    /// broadcasts). Refused (with the store's error) only when the missed events would have to
    /// come from an unreachable Redis.
    pub fn open(&self, resume: &Resume, patterns: &[String]) -> Result<Opening, StoreError> {
        match &self.backend {
            Backend::Embedded => Ok(self.open_embedded(resume, patterns)),
            Backend::Redis(log) => self.open_redis(log, resume, patterns),
        }
    }

    fn open_embedded(&self, resume: &Resume, patterns: &[String]) -> Opening {
        let hub = &self.hub;
        let requested = match resume {
            Resume::Fresh => None,
            Resume::Id(id) if id.epoch != hub.server_id() => {
                Some(Err((ResyncReason::OtherServer, id.to_string())))
            }
            Resume::Id(id) => Some(Ok(Pos { ms: 0, seq: id.seq })),
            Resume::Malformed(raw) => Some(Err((ResyncReason::Unknown, echo(raw)))),
        };
        let snap = hub.subscribe_to(
            requested.as_ref().and_then(|r| r.as_ref().ok().copied()),
            patterns,
        );
        let Snapshot {
            rx,
            sent,
            head,
            replay,
            oldest,
            ring,
            mailbox,
        } = snap;
        let plan = match (requested, replay) {
            (None, _) => Plan {
                cursor: hub.id_text(head),
                floor: head,
                replay: Vec::new(),
                resync: None,
            },
            (Some(Ok(at)), Some(replay)) => Plan {
                cursor: hub.id_text(at),
                floor: head,
                replay,
                resync: None,
            },
            (Some(lost), _) => {
                let resync = match lost {
                    Ok(at) if at > head => (ResyncReason::Unknown, hub.id_text(at)),
                    Ok(at) => (ResyncReason::TooOld, hub.id_text(at)),
                    Err(why) => why,
                };
                // What the client missed is not fully known: give it everything still kept.
                let before = oldest.map_or(head, |o| Pos {
                    ms: 0,
                    seq: o.seq - 1,
                });
                Plan {
                    cursor: hub.id_text(before),
                    floor: head,
                    replay: ring,
                    resync: Some(resync),
                }
            }
        };
        Opening {
            rx,
            sent,
            mailbox,
            start: Start::Ready(plan),
        }
    }

    fn open_redis(
        &self,
        log: &Arc<RedisLog>,
        resume: &Resume,
        patterns: &[String],
    ) -> Result<Opening, StoreError> {
        let hub = &self.hub;
        let requested = match resume {
            Resume::Fresh => None,
            Resume::Id(id) => match Pos::parse_stream_id(&id.to_string()) {
                Some(pos) => Some(Ok(pos)),
                None => Some(Err((ResyncReason::OtherLog, id.to_string()))),
            },
            Resume::Malformed(raw) => Some(Err((ResyncReason::Unknown, echo(raw)))),
        };
        let snap = hub.subscribe_to(
            requested.as_ref().and_then(|r| r.as_ref().ok().copied()),
            patterns,
        );
        let head = snap.head;
        let fresh = |resync| Plan {
            cursor: hub.id_text(head),
            floor: head,
            replay: Vec::new(),
            resync,
        };
        let start = match (requested, snap.replay) {
            (None, _) => Start::Ready(fresh(None)),
            (Some(Err(why)), _) => Start::Ready(fresh(Some(why))),
            (Some(Ok(at)), Some(replay)) => Start::Ready(Plan {
                cursor: hub.id_text(at),
                floor: head,
                replay,
                resync: None,
            }),
            (Some(Ok(at)), None) => {
                if !hub.store_ok() {
                    if let Some(mailbox) = &snap.mailbox {
                        hub.unsubscribe(mailbox.id);
                    }
                    return Err(StoreError(
                        "cannot read the missed events while Redis is unreachable".into(),
                    ));
                }
                Start::Fetch(Fetch {
                    log: Arc::clone(log),
                    after: at,
                    head,
                    requested: hub.id_text(at),
                })
            }
        };
        Ok(Opening {
            rx: snap.rx,
            sent: snap.sent,
            mailbox: snap.mailbox,
            start,
        })
    }
}

#[cfg(test)]
mod tests;

//! Server only (feature `redis`): finding the Redis primary through Sentinel. Every Sentinel is
//! asked at once (`SENTINEL GET-MASTER-ADDR-BY-NAME` and, for its config epoch, `SENTINEL
//! MASTER`) and the answer with the newest epoch wins: a Sentinel that has not heard of a
//! failover yet still names the old primary, which may still take writes. A watch asks again
//! every [`WATCH_EVERY`] and bumps a generation when the primary moved, so connections to the
//! old one are left at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio_util::sync::CancellationToken;

/// A Redis node's address.
pub type Addr = (String, u16);

/// How often the watch asks the Sentinels where the primary is.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Longest wait for one Sentinel's answer.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// The Sentinels of one primary, and what they said last.
pub struct Sentinels {
    master: String,
    clients: Vec<Client>,
    conns: Vec<tokio::sync::Mutex<Option<MultiplexedConnection>>>,
    primary: Mutex<Option<Addr>>,
    generation: AtomicU64,
    moved: tokio::sync::Notify,
}

impl Sentinels {
    /// The Sentinels at `addrs` watching the primary named `master` (nothing asked yet).
    pub fn new(addrs: &[Addr], master: &str) -> Result<Sentinels, RedisError> {
        let clients = addrs
            .iter()
            .map(|(host, port)| Client::open((host.as_str(), *port)))
            .collect::<Result<Vec<_>, _>>()?;
        if clients.is_empty() {
            return Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Sentinel address",
            )));
        }
        Ok(Sentinels {
            master: master.to_owned(),
            conns: clients
                .iter()
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            clients,
            primary: Mutex::new(None),
            generation: AtomicU64::new(0),
            moved: tokio::sync::Notify::new(),
        })
    }

    /// Bumped every time the Sentinels name another primary.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Resolves when the primary moves (register before checking [`generation`](Self::generation)).
    pub fn moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.moved.notified()
    }

    /// One Sentinel's answer: the primary it names and its config epoch.
    async fn ask(&self, i: usize) -> Result<(Option<Addr>, u64), RedisError> {
        let mut slot = self.conns[i].lock().await;
        let mut conn = match slot.clone() {
            Some(conn) => conn,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(ASK_TIMEOUT))
                    .set_response_timeout(Some(ASK_TIMEOUT));
                let conn = self.clients[i]
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                *slot = Some(conn.clone());
                conn
            }
        };
        let answer: Result<(Option<Addr>, HashMap<String, String>), RedisError> = redis::pipe()
            .cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master)
            .cmd("SENTINEL")
            .arg("MASTER")
            .arg(&self.master)
            .query_async(&mut conn)
            .await;
        match answer {
            Ok((addr, info)) => {
                let epoch = info
                    .get("config-epoch")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0);
                Ok((addr, epoch))
            }
            Err(err) => {
                *slot = None;
                Err(err)
            }
        }
    }

    /// Ask every Sentinel; the primary named with the newest config epoch (ties: the first
    /// Sentinel in the list), and its generation. Records it, and bumps the generation when it
    /// moved.
    pub async fn discover(&self) -> Result<(Addr, u64), RedisError> {
        let answers = futures::future::join_all((0..self.clients.len()).map(|i| self.ask(i))).await;
        let mut best: Option<(u64, Addr)> = None;
        let mut last_err = None;
        for answer in answers {
            match answer {
                Ok((Some(addr), epoch)) => {
                    if best.as_ref().is_none_or(|(e, _)| epoch > *e) {
                        best = Some((epoch, addr));
                    }
                }
                Ok((None, _)) => {}
                Err(err) => last_err = Some(err),
            }
        }
        let Some((epoch, addr)) = best else {
            return Err(last_err.unwrap_or_else(|| {
                RedisError::from((redis::ErrorKind::Io, "no Sentinel knows the master name"))
            }));
        };
        let mut primary = self.primary.lock().unwrap_or_else(|p| p.into_inner());
        if primary.as_ref() != Some(&addr) {
            if primary.is_some() {
                tracing::warn!(host = %addr.0, port = addr.1, epoch, "Sentinel names a new Redis primary");
            }
            *primary = Some(addr.clone());
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.moved.notify_waiters();
        }
        // Read under the lock: the generation that goes with this address.
        Ok((addr, self.generation()))
    }

    /// Ask again every [`WATCH_EVERY`] until `stop`.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(WATCH_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if let Err(err) = self.discover().await {
                tracing::debug!(%err, "no answer from the Sentinels");
            }
        }
    }
}

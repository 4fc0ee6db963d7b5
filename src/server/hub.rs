//! Server only: the fan-out hub. One heartbeat timer for all streams (not one per connection);
//! frames go to every stream through a broadcast channel; a counter enforces the stream limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::connection::protocol::Ping;

/// How many frames a stream may fall behind before it skips (pings only: skipping is harmless).
const CHANNEL_CAPACITY: usize = 64;

/// A frame every stream receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A heartbeat.
    Ping(Ping),
}

/// Shared by all streams of one server process.
#[derive(Debug)]
pub struct Hub {
    server_id: String,
    tx: broadcast::Sender<Arc<Frame>>,
    open: AtomicUsize,
    next_connection: AtomicU64,
    max_connections: usize,
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    /// A hub with a fresh random server id.
    pub fn new(max_connections: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Arc::new(Hub {
            server_id: format!("{:08x}", rand::random::<u32>()),
            tx,
            open: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            max_connections,
        })
    }

    /// Random per process start.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Streams open right now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Claim a stream slot, or `None` when the limit is reached.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let n = self.next_connection.fetch_add(1, Ordering::Relaxed);
        Some(Admission {
            slot: Slot {
                hub: Arc::clone(self),
            },
            connection_id: format!("{}-c{n}", self.server_id),
            rx: self.tx.subscribe(),
        })
    }

    /// Send a frame to every stream.
    pub fn broadcast(&self, frame: Frame) {
        // An error only means nobody is listening right now.
        let _ = self.tx.send(Arc::new(frame));
    }

    /// Ping every `interval` until `stop` is cancelled. One timer for the whole process.
    pub async fn run_heartbeat(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {
                    seq += 1;
                    self.broadcast(Frame::Ping(Ping { seq, server_time: unix_ms() }));
                }
            }
        }
    }
}

/// What an admitted stream gets.
#[derive(Debug)]
pub struct Admission {
    /// Holds the stream's place under the limit until dropped.
    pub slot: Slot,
    /// Unique per stream.
    pub connection_id: String,
    /// This stream's subscription.
    pub rx: broadcast::Receiver<Arc<Frame>>,
}

/// A claimed stream slot; released when dropped.
#[derive(Debug)]
pub struct Slot {
    hub: Arc<Hub>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_respects_the_limit_and_frees_on_drop() {
        let hub = Hub::new(2);
        let a = hub.admit().expect("first");
        let b = hub.admit().expect("second");
        assert!(hub.admit().is_none());
        assert_eq!(hub.open_connections(), 2);
        assert_ne!(a.connection_id, b.connection_id);
        drop(a);
        assert_eq!(hub.open_connections(), 1);
        assert!(hub.admit().is_some());
    }

    #[test]
    fn server_ids_are_random_hex() {
        let (a, b) = (Hub::new(1), Hub::new(1));
        assert_eq!(a.server_id().len(), 8);
        assert!(a.server_id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.server_id(), b.server_id());
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_pings_every_interval_with_rising_seq() {
        let hub = Hub::new(10);
        let mut slot = hub.admit().unwrap();
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(Arc::clone(&hub).run_heartbeat(Duration::from_millis(500), stop.clone()));
        let start = tokio::time::Instant::now();
        for want in 1..=3 {
            let frame = slot.rx.recv().await.unwrap();
            assert_eq!(
                *frame,
                Frame::Ping(Ping {
                    seq: want,
                    server_time: match &*frame {
                        Frame::Ping(p) => p.server_time,
                    }
                })
            );
            assert_eq!(start.elapsed(), Duration::from_millis(500 * want));
        }
        stop.cancel();
        task.await.unwrap();
    }
}

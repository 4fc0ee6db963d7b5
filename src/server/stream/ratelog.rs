//! Server only: rate-limited logs — a flood of refusals costs a counter increment, not a log
//! line each.

/// Counts events and says when a summary may be logged: at most once per `every`, so a flood
/// (refusals under attack or at a restart) costs a counter increment, not a log line each.
#[derive(Debug)]
pub struct RateLimited {
    every_ms: u64,
    start: std::time::Instant,
    /// Milliseconds since `start` of the last summary, plus one (0 = never).
    last: std::sync::atomic::AtomicU64,
    pending: std::sync::atomic::AtomicU64,
}

impl RateLimited {
    /// At most one summary per `every`.
    pub fn new(every: std::time::Duration) -> Self {
        RateLimited {
            every_ms: every.as_millis() as u64,
            start: std::time::Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
            pending: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Count one event; `Some(n)` when a summary of the `n` events since the last one is due.
    pub fn tick(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        self.pending.fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + self.every_ms {
            return None;
        }
        // One caller wins the slot; the others keep counting.
        self.last
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| self.pending.swap(0, Ordering::AcqRel))
    }
}

/// The rate-limited refusal logs of one server.
#[derive(Debug)]
pub struct RefusalLog {
    /// Streams refused at the stream limit.
    pub streams: RateLimited,
    /// Connections refused at the socket limit.
    pub sockets: RateLimited,
    /// Connections closed for a slow or malformed request.
    pub requests: RateLimited,
    /// Accept failures for want of resources (descriptors, memory).
    pub accepts: RateLimited,
}

impl Default for RefusalLog {
    fn default() -> Self {
        let every = std::time::Duration::from_secs(10);
        RefusalLog {
            streams: RateLimited::new(every),
            sockets: RateLimited::new(every),
            requests: RateLimited::new(every),
            accepts: RateLimited::new(every),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gives_one_summary_per_window() {
        let log = RateLimited::new(std::time::Duration::from_secs(3600));
        assert_eq!(log.tick(), Some(1), "the first one is logged at once");
        for _ in 0..999 {
            assert_eq!(log.tick(), None);
        }
        let log = RateLimited::new(std::time::Duration::ZERO);
        assert_eq!(log.tick(), Some(1));
        assert_eq!(log.tick(), Some(1));
    }
}

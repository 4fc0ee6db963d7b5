//! Benchmark tool only (ssr feature): the `--fanout-rate` mode's plan — one publisher at a
//! steady rate, every event stamped with its send time, warm-up events first — and its event's
//! data (the shape of Electric's ds-bench: send→receipt latency per subscriber × event).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sse::json_u64;

/// The event the fan-out phase publishes (a broadcast: every stream gets each).
pub const FANOUT_EVENT: &str = "bench-fanout";

/// Most latency slots (events × subscribers) one run keeps: 4 bytes each.
pub const MAX_SLOTS: usize = 50_000_000;

/// How many events the phase publishes, and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Events per second.
    pub rate: f64,
    /// The first events (connection set-up, cold caches, the runtime's first timer ticks):
    /// checked for loss and duplicates like the rest, left out of the latency figures.
    pub warmup: usize,
    /// Events whose latency counts.
    pub measured: usize,
}

impl Plan {
    /// `rate` events per second: `warmup_secs` of warm-up, then `secs` measured.
    pub fn new(rate: f64, secs: f64, warmup_secs: f64) -> Self {
        Plan {
            rate,
            warmup: (rate * warmup_secs).round() as usize,
            // At least one: a run that measures nothing is no run.
            measured: ((rate * secs).round() as usize).max(1),
        }
    }

    /// Every event the phase publishes.
    pub fn total(&self) -> usize {
        self.warmup + self.measured
    }

    /// The interval between two publishes.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }
}

/// Unix time in microseconds (the send stamp's unit; the server runs on this machine, so both
/// ends read the same clock).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The publish body of event `i`, stamped `t_us` (taken just before the request is written).
pub fn body(i: usize, t_us: u64) -> String {
    serde_json::json!({
        "event": FANOUT_EVENT,
        "data": { "t_us": t_us, "i": i },
    })
    .to_string()
}

/// The data `{"t_us", "i"}` of a received fan-out event: (send time in Unix ns, index); `None`
/// if unreadable or cut short.
pub fn stamp(data: &[u8], truncated: bool) -> Option<(u64, u64)> {
    if truncated {
        return None;
    }
    let t_us = json_u64(data, "t_us")?;
    Some((t_us.checked_mul(1_000)?, json_u64(data, "i")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_counts_warm_up_and_measured_events() {
        let p = Plan::new(50.0, 20.0, 1.0);
        assert_eq!((p.warmup, p.measured, p.total()), (50, 1000, 1050));
        assert_eq!(p.period(), Duration::from_millis(20));
        let none = Plan::new(50.0, 0.001, 0.0);
        assert_eq!((none.warmup, none.measured), (0, 1));
    }

    #[test]
    fn the_body_carries_the_send_stamp_the_receiver_reads() {
        let b = body(7, 1_764_000_000_123_456);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["event"], FANOUT_EVENT);
        let data = v["data"].to_string();
        assert_eq!(
            stamp(data.as_bytes(), false),
            Some((1_764_000_000_123_456_000, 7))
        );
        assert_eq!(stamp(data.as_bytes(), true), None);
        assert_eq!(stamp(br#"{"t":5,"i":1}"#, false), None);
    }
}

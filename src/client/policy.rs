//! Shared, pure: the tunable numbers of the connection machine, with their defaults.

/// How the client detects trouble and retries. All durations in milliseconds.
///
/// `#[non_exhaustive]`: start from `Policy::default()` and change fields with the chainable
/// setters (`Policy::default().max_attempts(10)`) or by assignment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// First backoff window. Default 500.
    pub backoff_base_ms: f64,
    /// Largest delay between attempts. Default 30 000.
    pub backoff_cap_ms: f64,
    /// Give up (`failed`) after this many failed attempts. Default `None`: never give up.
    pub max_attempts: Option<u32>,
    /// Watchdog deadline = `watchdog_factor` × heartbeat + `watchdog_slack_ms`. Default 2.
    pub watchdog_factor: f64,
    /// See `watchdog_factor`. Default 1 000.
    pub watchdog_slack_ms: f64,
    /// An opened stream that has not said `connected` by then counts as failed. Default 10 000.
    pub open_timeout_ms: f64,
    /// Hidden longer than this → `paused`. Default 300 000 (5 minutes).
    pub hidden_grace_ms: f64,
    /// A clock jump or timer gap at least this large → reconnect at once. Default 5 000.
    pub clock_jump_ms: f64,
    /// The banner shows a transient non-connected state only once it lasted this long.
    /// Default 500.
    pub debounce_ms: f64,
    /// After the server announced a restart (`draining`), failed attempts within this long still
    /// say "server restarting" rather than "unreachable". Default 30 000.
    pub restart_grace_ms: f64,
    /// Tabs sharing one stream: the leader announces its state at least this often, and the
    /// other tabs say they are there as often. Default 1 000.
    pub share_beacon_ms: f64,
    /// Tabs sharing one stream: a tab not heard from this long no longer counts. Default 5 000.
    pub share_peer_timeout_ms: f64,
    /// Tabs sharing one stream without Web Locks: a new tab that hears no leader this long leads.
    /// (A live leader answers a newcomer at once.) Default 250.
    pub share_join_wait_ms: f64,
    /// Tabs sharing one stream: a visible tab takes the stream over from a hidden leader once
    /// both have been so this long (the hysteresis against quick tab switching). Default 500.
    pub share_visible_ms: f64,
}

setters!(Policy {
    backoff_base_ms: = f64,
    backoff_cap_ms: = f64,
    max_attempts: some u32,
    watchdog_factor: = f64,
    watchdog_slack_ms: = f64,
    open_timeout_ms: = f64,
    hidden_grace_ms: = f64,
    clock_jump_ms: = f64,
    debounce_ms: = f64,
    restart_grace_ms: = f64,
    share_beacon_ms: = f64,
    share_peer_timeout_ms: = f64,
    share_join_wait_ms: = f64,
    share_visible_ms: = f64,
});

impl Default for Policy {
    fn default() -> Self {
        Policy {
            backoff_base_ms: 500.0,
            backoff_cap_ms: 30_000.0,
            max_attempts: None,
            watchdog_factor: 2.0,
            watchdog_slack_ms: 1_000.0,
            open_timeout_ms: 10_000.0,
            hidden_grace_ms: 300_000.0,
            clock_jump_ms: 5_000.0,
            debounce_ms: 500.0,
            restart_grace_ms: 30_000.0,
            share_beacon_ms: 1_000.0,
            share_peer_timeout_ms: 5_000.0,
            share_join_wait_ms: 250.0,
            share_visible_ms: 500.0,
        }
    }
}

impl Policy {
    /// How long the watchdog waits for an event given the server's heartbeat interval.
    pub fn watchdog_deadline_ms(&self, heartbeat_ms: f64) -> f64 {
        self.watchdog_factor * heartbeat_ms + self.watchdog_slack_ms
    }

    /// How long a follower tab waits for the leader tab before it takes the stream over: the
    /// watchdog deadline, shortened by up to a quarter by the tab's `patience` in `[0, 1)` so
    /// that the followers of a silent leader do not all take over at once.
    pub fn leader_deadline_ms(&self, heartbeat_ms: f64, patience: f64) -> f64 {
        self.watchdog_deadline_ms(heartbeat_ms) * (0.75 + 0.25 * patience.clamp(0.0, 1.0))
    }
}

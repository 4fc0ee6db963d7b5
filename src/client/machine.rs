//! Shared, pure: the connection state machine. Inputs (browser events, ticks, probe results) go
//! in with the time and a random number; the next state and the commands for the I/O layer come
//! out. No I/O, no clock, no randomness of its own — every rule is a table test below.

use super::policy::Policy;

/// The user-facing state names (the contract's `data-state` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// First connection in flight.
    Connecting,
    /// The stream is open and heartbeats arrive in time.
    Connected,
    /// Lost the stream; retrying with backoff (or a retry is in flight).
    Reconnecting,
    /// No event within the watchdog deadline: the link may be silently dead.
    Stale,
    /// The browser says it is offline; nothing is tried until it is online.
    Offline,
    /// The server refused us (401/403); retrying would not help.
    Rejected,
    /// The tab was hidden longer than the grace period; the stream is closed to save resources.
    Paused,
    /// The server said stop (204); no retries.
    Closed,
    /// Gave up after `max_attempts`.
    Failed,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 9] = [
        Phase::Connecting,
        Phase::Connected,
        Phase::Reconnecting,
        Phase::Stale,
        Phase::Offline,
        Phase::Rejected,
        Phase::Paused,
        Phase::Closed,
        Phase::Failed,
    ];

    /// The phase with this contract name.
    pub fn from_code(code: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == code)
    }

    /// The contract name (`data-state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Reconnecting => "reconnecting",
            Phase::Stale => "stale",
            Phase::Offline => "offline",
            Phase::Rejected => "rejected",
            Phase::Paused => "paused",
            Phase::Closed => "closed",
            Phase::Failed => "failed",
        }
    }

    /// States that only a user action (or coming back online/visible) leaves.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Phase::Offline | Phase::Rejected | Phase::Paused | Phase::Closed | Phase::Failed
        )
    }
}

/// Why the connection is not (or was not) connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Nothing wrong.
    None,
    /// Network error or no answer: the server process is down or the link is cut.
    Unreachable,
    /// The server answered the stream with an error status (5xx, wrong content type).
    ServerError,
    /// No event within the watchdog deadline.
    HeartbeatMissed,
    /// The browser is offline.
    Offline,
    /// 401/403 from the server.
    Rejected,
    /// 204 from the server.
    ServerClosed,
    /// The tab was hidden past the grace period.
    Hidden,
    /// The wall clock jumped (sleep, frozen tab): the old stream cannot be trusted.
    ClockJump,
    /// The user pressed "Retry now".
    RetryNow,
    /// The server announced a graceful restart.
    ServerRestarting,
    /// The tab that held the shared stream left or went silent; this tab took it over.
    Handover,
    /// The page closed the connection itself (`close()` of the hook).
    ClosedByPage,
    /// The stream's access expired (`reauth`): renewing it, then resuming where it ended.
    Reauth,
    /// The access could not be renewed (the refresh was refused, or the server refused the
    /// stream after a `reauth`): the reader is signed out.
    SignedOut,
    /// The server revoked this subject's access (`revoked`): no reconnect on its own.
    Revoked,
    /// The page asked for another stream (its URL or topics changed): the old one is closed and
    /// the new one opening. Not a failure; the banner's debounce hides a switch that answers in
    /// time.
    Switch,
    /// The page has not opened the stream yet (`immediate: false`, until `open()`).
    NotOpened,
}

impl Cause {
    /// Every cause.
    pub const ALL: [Cause; 18] = [
        Cause::None,
        Cause::Unreachable,
        Cause::ServerError,
        Cause::HeartbeatMissed,
        Cause::Offline,
        Cause::Rejected,
        Cause::ServerClosed,
        Cause::Hidden,
        Cause::ClockJump,
        Cause::RetryNow,
        Cause::ServerRestarting,
        Cause::Handover,
        Cause::ClosedByPage,
        Cause::Reauth,
        Cause::SignedOut,
        Cause::Revoked,
        Cause::Switch,
        Cause::NotOpened,
    ];

    /// The cause with this code.
    pub fn from_code(code: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Stable code for tests and the dashboard (`data-cause`).
    pub fn code(self) -> &'static str {
        match self {
            Cause::None => "none",
            Cause::Unreachable => "unreachable",
            Cause::ServerError => "server-error",
            Cause::HeartbeatMissed => "heartbeat-missed",
            Cause::Offline => "offline",
            Cause::Rejected => "rejected",
            Cause::ServerClosed => "server-closed",
            Cause::Hidden => "hidden",
            Cause::ClockJump => "clock-jump",
            Cause::RetryNow => "retry-now",
            Cause::ServerRestarting => "server-restarting",
            Cause::Handover => "handover",
            Cause::ClosedByPage => "closed-by-page",
            Cause::Reauth => "reauth",
            Cause::SignedOut => "signed_out",
            Cause::Revoked => "revoked",
            Cause::Switch => "switch",
            Cause::NotOpened => "not-opened",
        }
    }

    /// The cause in plain English (the views use the language tables: `crate::client::i18n`).
    pub fn describe(self) -> &'static str {
        match self {
            Cause::None => "",
            Cause::Unreachable => "Server unreachable",
            Cause::ServerError => "Server error",
            Cause::HeartbeatMissed => "No heartbeat from the server in time",
            Cause::Offline => "Your device is offline",
            Cause::Rejected => "The server refused this page (not authorised)",
            Cause::ServerClosed => "The server ended the stream",
            Cause::Hidden => "Paused while the tab was hidden",
            Cause::ClockJump => "Woke up from sleep",
            Cause::RetryNow => "Retrying at your request",
            Cause::ServerRestarting => "Server restarting",
            Cause::Handover => "Taking over the stream from another tab",
            Cause::ClosedByPage => "Closed by this page",
            Cause::Reauth => "Renewing access",
            Cause::SignedOut => "You are signed out",
            Cause::Revoked => "Your access was revoked",
            Cause::Switch => "Switching to the page's new stream",
            Cause::NotOpened => "The page has not opened the stream yet",
        }
    }
}

/// `EventSource.readyState` at the time of an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// 0: the browser is retrying by itself (network error).
    Connecting,
    /// 1: open (an error while open is unusual; treated like a network error).
    Open,
    /// 2: the browser gave up for good (non-200 status, wrong content type, or 204).
    Closed,
}

impl ReadyState {
    /// From the numeric `readyState`.
    pub fn from_u16(v: u16) -> Self {
        match v {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            _ => ReadyState::Closed,
        }
    }
}

/// How renewing the stream's access (after `reauth`) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Renewed (or nothing to renew: no refresh is configured): reconnect.
    Done,
    /// The refresh was refused (401/403): signed out.
    Denied,
    /// No answer or a server error: try again after the backoff.
    Failed,
}

/// What the classification probe (a plain `fetch` of the stream URL) saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The request got an HTTP answer with this status.
    Status(u16),
    /// The request failed at the network level.
    NetworkError,
}

/// Facts from the server's `connected` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// Unique per stream.
    pub connection_id: String,
    /// Random per server process.
    pub server_id: String,
    /// Ping interval.
    pub heartbeat_ms: u64,
    /// The server's `retry:` floor.
    pub retry_ms: u64,
    /// How many missed events the server replays right after `connected`.
    pub replayed: u64,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The hook starts (in the browser, after hydration).
    Start {
        /// `navigator.onLine`.
        online: bool,
        /// `document.hidden`.
        hidden: bool,
    },
    /// The stream's `connected` event arrived.
    Hello {
        /// Its data.
        hello: ServerHello,
        /// Its `id:` (the resume point).
        id: Option<String>,
    },
    /// The server could not resume from our last event id: some events are lost.
    Resync {
        /// The server's reason (`other-server`, `too-old`, `unknown-id`).
        reason: String,
    },
    /// Any other event (ping or application event) arrived.
    Event {
        /// Its `id:`, if it had one.
        id: Option<String>,
    },
    /// The server announced a graceful shutdown.
    Draining {
        /// The server's per-client hint.
        reconnect_after_ms: u64,
    },
    /// The `EventSource` fired `error`.
    Error {
        /// Its `readyState` at that moment.
        ready_state: ReadyState,
    },
    /// The classification probe finished.
    Probe(ProbeOutcome),
    /// Periodic timer (the driver ticks every ~250 ms).
    Tick,
    /// `online` window event.
    Online,
    /// `offline` window event.
    Offline,
    /// `visibilitychange` of a tab that watches the stream alone: [`Input::TabVisibility`] and
    /// [`Input::Audience`] at once.
    Visibility {
        /// `document.hidden`.
        hidden: bool,
    },
    /// This tab's own `document.hidden` changed (its timers are throttled while hidden).
    TabVisibility {
        /// `document.hidden`.
        hidden: bool,
    },
    /// Whether every tab watching this stream is hidden (the pause rule). Alone, that is this
    /// tab; sharing one stream, the leader learns it from the other tabs.
    Audience {
        /// Every watching tab is hidden.
        hidden: bool,
    },
    /// This tab takes over a stream another tab held (the leader left or went silent). The state
    /// is the one the old leader last announced; the machine reopens the stream unless that state
    /// says not to (rejected, closed, failed, or paused while every tab is hidden).
    Adopt {
        /// `navigator.onLine`.
        online: bool,
        /// This tab's `document.hidden`.
        tab_hidden: bool,
        /// Every sharing tab is hidden.
        audience_hidden: bool,
    },
    /// The tab came back into view (`visibilitychange` to visible, or `pageshow` from the
    /// back/forward cache): check the stream now rather than when the watchdog would. A hidden or
    /// cached page's stream may have died without an `error` (Safari does that), and its timers
    /// were throttled or stopped.
    Recheck {
        /// The browser says the `EventSource` is closed (`readyState` CLOSED) or there is none.
        stream_closed: bool,
    },
    /// The user pressed "Retry now".
    RetryNow,
    /// The page closed the connection (the hook's `close()`): no stream, no retries, until the
    /// page opens it again.
    Close,
    /// The server said `reauth`: the stream's grant expired and the stream ends.
    Reauth {
        /// Where to resume (the last event the stream delivered), if the server said.
        last_event_id: Option<String>,
    },
    /// The access renewal that [`Command::Refresh`] asked for finished.
    Refreshed(RefreshOutcome),
    /// The server said `revoked`: this subject's access was revoked.
    Revoked,
    /// The page now asks for another stream: its topics changed, or its URL (`fresh`). Made by
    /// `Target::switch_to`, which makes none for an equal URL and topic set.
    Switch {
        /// The URL changed: forget the resume point (another server's ids mean nothing here).
        fresh: bool,
    },
}

/// What the I/O layer must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open a new `EventSource`, carrying the last event id if there is one.
    Open {
        /// Passed as the `last_event_id` query parameter.
        last_event_id: Option<String>,
    },
    /// Close the current `EventSource` (no-op if none).
    Close,
    /// Fetch the stream URL once to learn the status the `EventSource` API hides.
    Probe,
    /// Renew the stream's access (the hook's `refresh_url`), then report [`Input::Refreshed`].
    Refresh,
}

/// The time and randomness of one step: inputs, never read by the machine itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Env {
    /// Monotonic milliseconds (`performance.now()`).
    pub now: f64,
    /// Wall-clock milliseconds (`Date.now()`).
    pub wall: f64,
    /// Uniform in `[0, 1)`: the jitter for any backoff this step schedules.
    pub rand: f64,
}

/// The whole state of one connection. Cheap to clone; compared to skip needless re-renders.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// User-facing phase.
    pub phase: Phase,
    /// Why (for non-connected phases; `None` while connected).
    pub cause: Cause,
    /// When `phase` was entered (monotonic ms).
    pub since: f64,
    /// When the current or last `connected` phase began; `None` if never connected.
    pub connected_at: Option<f64>,
    /// When the machine last left `connected` (for the banner's debounce).
    pub(crate) left_connected_at: Option<f64>,
    /// Retry attempts since the last `connected` (the attempt in flight or scheduled next).
    pub attempt: u32,
    /// When the next open is due, while waiting out a backoff.
    pub retry_at: Option<f64>,
    /// When the current `EventSource` was opened and has not yet said `connected`.
    pub(crate) opening_since: Option<f64>,
    /// Whether a probe is in flight.
    pub(crate) probing: bool,
    /// When the last event of any kind arrived.
    pub last_event_at: Option<f64>,
    /// From the last `connected` event.
    pub hello: Option<ServerHello>,
    /// Set when a `connected` came from a different server process than the one before.
    pub server_restarted: bool,
    /// Resume point for the next open.
    pub last_event_id: Option<String>,
    /// `navigator.onLine`.
    pub online: bool,
    /// When every tab watching the stream became hidden, if they are (the pause rule).
    pub(crate) hidden_since: Option<f64>,
    /// This tab is hidden: its timers are throttled, so the clock-jump rule is off.
    pub(crate) tab_hidden: bool,
    /// The previous tick `(monotonic, wall)`, for the clock-jump rule.
    pub(crate) last_tick: Option<(f64, f64)>,
    /// Total reconnects that succeeded (for the dashboard).
    pub reconnects: u32,
    /// Set by a `resync` on the current stream: the page missed events it cannot get back.
    pub resync: Option<String>,
    /// When the server last announced a restart (`draining`), until the next `connected`.
    pub(crate) restarting_since: Option<f64>,
    /// The access must be renewed before the next open (after `reauth`, until it works).
    pub(crate) refresh_due: bool,
    /// A renewal is in flight.
    pub(crate) refreshing: bool,
    /// When the server last said `reauth`, until the next `connected`: a refusal then means
    /// "signed out", not "not allowed".
    pub(crate) reauth_since: Option<f64>,
}

impl State {
    /// The state before `Start`: what the server render shows.
    pub fn initial() -> Self {
        State {
            phase: Phase::Connecting,
            cause: Cause::None,
            since: 0.0,
            connected_at: None,
            left_connected_at: None,
            attempt: 0,
            retry_at: None,
            opening_since: None,
            probing: false,
            last_event_at: None,
            hello: None,
            server_restarted: false,
            last_event_id: None,
            online: true,
            hidden_since: None,
            tab_hidden: false,
            last_tick: None,
            reconnects: 0,
            resync: None,
            restarting_since: None,
            refresh_due: false,
            refreshing: false,
            reauth_since: None,
        }
    }

    /// Before the page opens the stream (`immediate: false`, until `open()`): `closed` with
    /// cause `not-opened`. The server renders it too for such a page.
    pub(crate) fn not_opened() -> Self {
        State {
            phase: Phase::Closed,
            cause: Cause::NotOpened,
            ..State::initial()
        }
    }

    /// Closed by the page's own choice (`close()`, or not opened yet): only the page opens it.
    fn closed_by_page(&self) -> bool {
        self.phase == Phase::Closed && matches!(self.cause, Cause::ClosedByPage | Cause::NotOpened)
    }

    /// When the watchdog fires if nothing arrives (only while connected).
    pub fn watchdog_deadline(&self, policy: &Policy) -> Option<f64> {
        if self.phase != Phase::Connected {
            return None;
        }
        let hb = self.hello.as_ref().map(|h| h.heartbeat_ms as f64)?;
        Some(self.last_event_at? + policy.watchdog_deadline_ms(hb))
    }

    /// The next moment a tick could change this state by itself: a backoff ends, the watchdog
    /// or the open timeout fires, the hidden grace runs out. The driver wakes then, instead of
    /// waiting for its next regular tick (which would add up to a tick of delay).
    pub fn next_due(&self, policy: &Policy) -> Option<f64> {
        if self.phase.is_settled() {
            return None;
        }
        [
            self.retry_at.filter(|_| self.online),
            self.watchdog_deadline(policy),
            self.opening_since.map(|t| t + policy.open_timeout_ms),
            self.hidden_since.map(|t| t + policy.hidden_grace_ms),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }

    /// Whether an `EventSource` is (or should be) open right now.
    fn stream_open(&self) -> bool {
        self.phase == Phase::Connected || self.opening_since.is_some()
    }
}

impl Default for State {
    fn default() -> Self {
        State::initial()
    }
}

/// Full-jitter exponential backoff with the server's `retry:` as a floor.
///
/// The jitter window doubles from `base` per attempt and is capped so that `floor + window <=
/// cap`; the delay is uniform over `[floor, floor + window)`, so a crowd of clients that lost the
/// same server spreads out instead of arriving together.
pub fn backoff_delay(attempt: u32, floor_ms: f64, rand: f64, policy: &Policy) -> f64 {
    let exp = attempt.saturating_sub(1).min(30);
    let window = (policy.backoff_base_ms * f64::from(1u32 << exp))
        .min((policy.backoff_cap_ms - floor_ms).max(0.0));
    floor_ms + rand.clamp(0.0, 1.0) * window
}

/// One step: `(state, input) -> (state', commands)`.
pub fn step(state: &State, input: &Input, env: Env, policy: &Policy) -> (State, Vec<Command>) {
    let mut s = state.clone();
    let mut cmds = Vec::new();
    let now = env.now;
    match input {
        Input::Start { online, hidden } => {
            s.online = *online;
            s.hidden_since = hidden.then_some(now);
            s.tab_hidden = *hidden;
            s.last_tick = Some((now, env.wall));
            if *online {
                enter(&mut s, Phase::Connecting, Cause::None, now);
                open(&mut s, &mut cmds, now);
            } else {
                enter(&mut s, Phase::Offline, Cause::Offline, now);
            }
        }
        Input::Hello { hello, id } => {
            if s.opening_since.is_none() && s.phase != Phase::Connected {
                return (s, cmds); // a late event from a stream we already closed
            }
            // A hand-over is not a reconnect of this page's link (the old leader's stream was
            // fine), nor is a switch to another stream the page asked for.
            let was_reconnect =
                s.connected_at.is_some() && !matches!(s.cause, Cause::Handover | Cause::Switch);
            s.server_restarted = s
                .hello
                .as_ref()
                .is_some_and(|old| old.server_id != hello.server_id);
            s.hello = Some(hello.clone());
            if id.is_some() {
                s.last_event_id.clone_from(id);
            }
            s.opening_since = None;
            s.retry_at = None;
            s.attempt = 0;
            s.resync = None;
            s.restarting_since = None;
            s.reauth_since = None;
            s.last_event_at = Some(now);
            s.connected_at = Some(now);
            if was_reconnect {
                s.reconnects += 1;
            }
            enter(&mut s, Phase::Connected, Cause::None, now);
        }
        Input::Resync { reason } => {
            if s.stream_open() {
                s.last_event_at = Some(now);
                s.resync = Some(reason.clone());
            }
        }
        Input::Event { id } => {
            if s.stream_open() {
                s.last_event_at = Some(now);
                if id.is_some() {
                    s.last_event_id.clone_from(id);
                }
            }
        }
        Input::Draining { reconnect_after_ms } => {
            if s.stream_open() {
                cmds.push(Command::Close);
                s.opening_since = None;
                s.attempt = 1;
                s.restarting_since = Some(now);
                s.retry_at = Some(now + *reconnect_after_ms as f64);
                enter(&mut s, Phase::Reconnecting, Cause::ServerRestarting, now);
            }
        }
        Input::Error { ready_state } => {
            if s.stream_open() {
                cmds.push(Command::Close);
                s.opening_since = None;
                match ready_state {
                    // The browser gave up for good: learn why before deciding anything.
                    ReadyState::Closed => {
                        s.probing = true;
                        cmds.push(Command::Probe);
                        let cause = if s.phase == Phase::Stale {
                            Cause::HeartbeatMissed
                        } else {
                            Cause::ServerError
                        };
                        enter(&mut s, Phase::Reconnecting, cause, now);
                    }
                    // The browser would retry by itself: take over with our own backoff.
                    ReadyState::Connecting | ReadyState::Open => {
                        schedule_retry(&mut s, Cause::Unreachable, env, policy);
                    }
                }
            }
        }
        Input::Probe(outcome) => {
            if s.probing {
                s.probing = false;
                match outcome {
                    ProbeOutcome::Status(401 | 403) => {
                        let cause = if s.reauth_since.is_some() {
                            Cause::SignedOut
                        } else {
                            Cause::Rejected
                        };
                        enter(&mut s, Phase::Rejected, cause, now);
                        s.retry_at = None;
                    }
                    ProbeOutcome::Status(204) => {
                        enter(&mut s, Phase::Closed, Cause::ServerClosed, now);
                        s.retry_at = None;
                    }
                    ProbeOutcome::Status(_) => {
                        schedule_retry(&mut s, Cause::ServerError, env, policy)
                    }
                    ProbeOutcome::NetworkError => {
                        schedule_retry(&mut s, Cause::Unreachable, env, policy)
                    }
                }
            }
        }
        Input::Tick => tick(&mut s, &mut cmds, env, policy),
        Input::Online => {
            s.online = true;
            if s.phase == Phase::Offline {
                s.attempt = 1;
                enter(&mut s, Phase::Reconnecting, Cause::Offline, now);
                open(&mut s, &mut cmds, now);
            }
        }
        Input::Offline => {
            s.online = false;
            if !matches!(s.phase, Phase::Rejected | Phase::Closed | Phase::Failed) {
                if s.stream_open() {
                    cmds.push(Command::Close);
                }
                s.opening_since = None;
                s.retry_at = None;
                s.probing = false;
                enter(&mut s, Phase::Offline, Cause::Offline, now);
            }
        }
        Input::Visibility { hidden } => {
            tab_visibility(&mut s, *hidden, env);
            audience(&mut s, &mut cmds, *hidden, now);
        }
        Input::TabVisibility { hidden } => tab_visibility(&mut s, *hidden, env),
        Input::Recheck { stream_closed } => {
            // Connected yet silent for more than a heartbeat (plus the watchdog's slack), or
            // closed under us: the watchdog would say so later; say it now.
            let quiet = match (s.hello.as_ref(), s.last_event_at) {
                (Some(h), Some(at)) => now - at >= h.heartbeat_ms as f64 + policy.watchdog_slack_ms,
                _ => false,
            };
            if s.phase == Phase::Connected && (*stream_closed || quiet) {
                cmds.push(Command::Close);
                enter(&mut s, Phase::Stale, Cause::HeartbeatMissed, now);
                open(&mut s, &mut cmds, now);
            }
        }
        Input::Audience { hidden } => audience(&mut s, &mut cmds, *hidden, now),
        Input::Adopt {
            online,
            tab_hidden,
            audience_hidden,
        } => adopt(
            &mut s,
            &mut cmds,
            (*online, *tab_hidden, *audience_hidden),
            env,
        ),
        Input::Reauth { last_event_id } => {
            if s.stream_open() {
                cmds.push(Command::Close);
                s.opening_since = None;
                if last_event_id.is_some() {
                    s.last_event_id.clone_from(last_event_id);
                }
                s.refresh_due = true;
                s.reauth_since = Some(now);
                // Not a failure: no attempt is counted; a renewal within the banner's debounce
                // never shows.
                enter(&mut s, Phase::Reconnecting, Cause::Reauth, now);
                open(&mut s, &mut cmds, now);
            }
        }
        Input::Refreshed(outcome) => {
            if s.refreshing {
                s.refreshing = false;
                match outcome {
                    RefreshOutcome::Done => {
                        s.refresh_due = false;
                        open(&mut s, &mut cmds, now);
                    }
                    RefreshOutcome::Denied => {
                        // Definitive: no loop hammering the server with a dead credential.
                        // `refresh_due` stays, so Retry now tries the renewal again.
                        s.retry_at = None;
                        enter(&mut s, Phase::Rejected, Cause::SignedOut, now);
                    }
                    RefreshOutcome::Failed => {
                        schedule_retry(&mut s, Cause::Unreachable, env, policy)
                    }
                }
            }
        }
        Input::Revoked => {
            if s.stream_open() {
                cmds.push(Command::Close);
            }
            s.opening_since = None;
            s.probing = false;
            s.refreshing = false;
            s.retry_at = None;
            enter(&mut s, Phase::Rejected, Cause::Revoked, now);
        }
        Input::Close => {
            if s.stream_open() {
                cmds.push(Command::Close);
            }
            s.probing = false;
            s.opening_since = None;
            s.retry_at = None;
            s.attempt = 0;
            enter(&mut s, Phase::Closed, Cause::ClosedByPage, now);
        }
        Input::Switch { fresh } => switch(&mut s, &mut cmds, *fresh, now),
        Input::RetryNow => {
            // A page that closed its stream (or has not opened it) opens it itself.
            if s.phase != Phase::Connected && s.phase != Phase::Offline && !s.closed_by_page() {
                if s.stream_open() {
                    cmds.push(Command::Close);
                }
                s.probing = false;
                s.attempt = if matches!(
                    s.phase,
                    Phase::Reconnecting | Phase::Stale | Phase::Connecting
                ) {
                    s.attempt.max(1)
                } else {
                    1
                };
                enter(&mut s, Phase::Reconnecting, Cause::RetryNow, now);
                open(&mut s, &mut cmds, now);
            }
        }
    }
    (s, cmds)
}

fn tab_visibility(s: &mut State, hidden: bool, env: Env) {
    s.tab_hidden = hidden;
    if !hidden {
        // Timers were throttled while hidden: do not mistake that for a clock jump.
        s.last_tick = Some((env.now, env.wall));
    }
}

fn audience(s: &mut State, cmds: &mut Vec<Command>, hidden: bool, now: f64) {
    if hidden {
        s.hidden_since.get_or_insert(now);
    } else {
        s.hidden_since = None;
        if s.phase == Phase::Paused {
            s.attempt = 1;
            enter(s, Phase::Reconnecting, Cause::Hidden, now);
            open(s, cmds, now);
        }
    }
}

/// Take over the stream with the state the previous leader announced. Nothing of its I/O is
/// ours: no stream is open here and no probe is in flight.
fn adopt(s: &mut State, cmds: &mut Vec<Command>, flags: (bool, bool, bool), env: Env) {
    let (online, tab_hidden, audience_hidden) = flags;
    let now = env.now;
    s.online = online;
    s.tab_hidden = tab_hidden;
    s.last_tick = Some((now, env.wall));
    s.opening_since = None;
    let was_probing = std::mem::take(&mut s.probing);
    if !audience_hidden {
        s.hidden_since = None;
    } else if s.hidden_since.is_none() {
        s.hidden_since = Some(now);
    }
    if !online {
        if !matches!(s.phase, Phase::Rejected | Phase::Closed | Phase::Failed) {
            s.retry_at = None;
            enter(s, Phase::Offline, Cause::Offline, now);
        }
        return;
    }
    match s.phase {
        // The truth stands until the user presses Retry now.
        Phase::Rejected | Phase::Closed | Phase::Failed => {}
        Phase::Paused if audience_hidden => {}
        Phase::Paused => {
            s.attempt = 1;
            enter(s, Phase::Reconnecting, Cause::Hidden, now);
            open(s, cmds, now);
        }
        Phase::Offline => {
            s.attempt = 1;
            enter(s, Phase::Reconnecting, Cause::Offline, now);
            open(s, cmds, now);
        }
        Phase::Connected => {
            enter(s, Phase::Connecting, Cause::Handover, now);
            open(s, cmds, now);
        }
        // Waiting out a backoff: keep the schedule (and its countdown); the tick opens when due.
        Phase::Reconnecting | Phase::Stale if s.retry_at.is_some() && !was_probing => {}
        Phase::Connecting | Phase::Reconnecting | Phase::Stale => {
            s.retry_at = None;
            open(s, cmds, now);
        }
    }
}

/// The page now asks for another stream: close this one and open the new one at once, resuming
/// after the last event id unless the URL changed (`fresh`). Not a failure: no attempt is
/// counted, and from `connected` the phase is `connecting` (cause `switch`), which the banner's
/// debounce hides when the new stream answers in time; trouble already under way goes on under
/// its own name and count. Opened by something else: a connection the page closed (the next
/// `open()` goes to the new stream), an offline or paused one (`online` / a visible tab opens
/// it), one waiting out a backoff (the due try opens the new stream), one renewing its access
/// (the renewal opens it). One whose access is gone (signed out, revoked) stays so: the
/// credentials were refused, not the address.
fn switch(s: &mut State, cmds: &mut Vec<Command>, fresh: bool, now: f64) {
    if fresh {
        // Another server (or another log): its ids, its hello, its restart are not this one's.
        s.last_event_id = None;
        s.hello = None;
        s.server_restarted = false;
        s.resync = None;
        s.restarting_since = None;
    }
    let waiting = s.retry_at.is_some() && !s.probing;
    match (s.phase, s.cause) {
        (Phase::Offline | Phase::Paused, _)
        | (Phase::Rejected, Cause::SignedOut | Cause::Revoked) => return,
        (Phase::Reconnecting | Phase::Stale, _) if waiting => return,
        _ if s.closed_by_page() => return,
        _ => {}
    }
    if s.stream_open() {
        cmds.push(Command::Close);
    }
    s.opening_since = None;
    s.probing = false;
    match s.phase {
        Phase::Reconnecting | Phase::Stale => {}
        Phase::Connected | Phase::Connecting => enter(s, Phase::Connecting, Cause::Switch, now),
        // A refusal, a 204 or giving up was the old stream's answer: the new one is asked anew.
        _ => {
            s.attempt = 0;
            s.retry_at = None;
            enter(s, Phase::Connecting, Cause::Switch, now);
        }
    }
    if !s.refreshing {
        open(s, cmds, now);
    }
}

fn tick(s: &mut State, cmds: &mut Vec<Command>, env: Env, policy: &Policy) {
    let now = env.now;
    let prev = s.last_tick.replace((now, env.wall));

    if s.phase.is_settled() {
        return;
    }

    // Hidden past the grace period: stop spending a server connection on an unseen page.
    if let Some(hidden_at) = s.hidden_since {
        if now - hidden_at >= policy.hidden_grace_ms {
            if s.stream_open() {
                cmds.push(Command::Close);
            }
            s.opening_since = None;
            s.retry_at = None;
            s.probing = false;
            enter(s, Phase::Paused, Cause::Hidden, now);
            return;
        }
    }

    // The wall clock moved far more than our timers fired: the machine slept or the tab froze.
    // Nothing the old stream says can be trusted; reconnect at once instead of waiting.
    // (Hidden tabs get throttled timers, so the rule only applies while visible.)
    if let (Some((prev_now, prev_wall)), false) = (prev, s.tab_hidden) {
        let mono = now - prev_now;
        let wall = env.wall - prev_wall;
        if (wall - mono).abs() >= policy.clock_jump_ms || mono >= policy.clock_jump_ms {
            if s.stream_open() {
                cmds.push(Command::Close);
            }
            s.probing = false;
            s.attempt = s.attempt.max(1);
            enter(s, Phase::Reconnecting, Cause::ClockJump, now);
            open(s, cmds, now);
            return;
        }
    }

    // Watchdog: a silent link.
    if let Some(deadline) = s.watchdog_deadline(policy) {
        if now >= deadline {
            cmds.push(Command::Close);
            enter(s, Phase::Stale, Cause::HeartbeatMissed, now);
            open(s, cmds, now);
            return;
        }
    }

    // An open that never said `connected` (e.g. a frozen link accepts but never answers).
    if let Some(opened) = s.opening_since {
        if now - opened >= policy.open_timeout_ms {
            cmds.push(Command::Close);
            s.opening_since = None;
            let cause = match s.cause {
                Cause::None
                | Cause::RetryNow
                | Cause::ClockJump
                | Cause::Hidden
                | Cause::Switch => Cause::Unreachable,
                other => other,
            };
            schedule_retry(s, cause, env, policy);
            return;
        }
    }

    // Backoff elapsed.
    if let Some(at) = s.retry_at {
        if now >= at && s.online {
            s.retry_at = None;
            open(s, cmds, now);
        }
    }
}

/// Enter `phase`, restarting `since` only when the phase actually changes.
fn enter(s: &mut State, phase: Phase, cause: Cause, now: f64) {
    if s.phase != phase {
        if s.phase == Phase::Connected {
            s.left_connected_at = Some(now);
        }
        s.since = now;
    }
    s.phase = phase;
    s.cause = cause;
}

fn open(s: &mut State, cmds: &mut Vec<Command>, now: f64) {
    s.retry_at = None;
    if s.refresh_due {
        // Renew the access first; `Refreshed` opens the stream.
        s.refreshing = true;
        cmds.push(Command::Refresh);
        return;
    }
    s.opening_since = Some(now);
    cmds.push(Command::Open {
        last_event_id: s.last_event_id.clone(),
    });
}

/// Count a failed attempt and wait out the backoff, or give up after `max_attempts`.
fn schedule_retry(s: &mut State, cause: Cause, env: Env, policy: &Policy) {
    // While a server announced restart is under way, its successor not answering yet is
    // expected: keep saying "restarting", not "unreachable".
    let restarting = s
        .restarting_since
        .is_some_and(|t| env.now - t < policy.restart_grace_ms);
    let cause = match cause {
        Cause::Unreachable | Cause::ServerError if restarting => Cause::ServerRestarting,
        other => other,
    };
    let next = s.attempt + 1;
    if policy.max_attempts.is_some_and(|max| next > max) {
        s.retry_at = None;
        enter(s, Phase::Failed, cause, env.now);
        return;
    }
    s.attempt = next;
    let floor = s.hello.as_ref().map_or(0.0, |h| h.retry_ms as f64);
    s.retry_at = Some(env.now + backoff_delay(next, floor, env.rand, policy));
    enter(s, Phase::Reconnecting, cause, env.now);
}

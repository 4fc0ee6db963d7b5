//! Both sides: `use_connection_status()`, the Leptos glue between the pure machine and a
//! component tree. In the browser it starts the driver after hydration (at once in a CSR app);
//! on the server it only provides the initial "connecting" state.
//!
//! # The server contract
//!
//! The hook works against this crate's server (`sse_status::server::LiveHub`, feature `ssr`)
//! out of the box. Another server
//! (or a proxy in between) must keep these, or the banner will say things that are not true:
//!
//! - **The stream**: `GET <url>` answers `200` with `Content-Type: text/event-stream`, unbuffered
//!   (`X-Accel-Buffering: no` for nginx, never compressed). Any other status or content type
//!   makes `EventSource` give up for good: the hook then probes the URL to tell a refusal
//!   (`rejected`) from a network failure, and retries with backoff.
//! - **`connected` first** (event name `connected`), with JSON data
//!   [`Connected`](crate::protocol::Connected): `connection_id`, `server_id` (random per process
//!   start: a change means a restart), `heartbeat_ms` (the watchdog is derived from it),
//!   `retry_ms`, `server_time`, optionally `replayed` and `fleet`. Until it arrives the hook is
//!   not `connected`.
//! - **`ping` every `heartbeat_ms`**, a *named* event with [`Ping`](crate::protocol::Ping)
//!   data (a comment line would be invisible to page code, so it could not feed the watchdog).
//!   Silence longer than the watchdog deadline (2 heartbeats + 1 s by default,
//!   [`super::policy::Policy`]) makes the state `stale`, then the hook reconnects.
//! - **Resumption**: application events carry an `id:`. When the hook reopens the stream it
//!   sends the last id it saw as the query parameter `?last_event_id=<id>`
//!   ([`LAST_EVENT_ID_PARAM`](crate::protocol::LAST_EVENT_ID_PARAM); a new `EventSource`
//!   never sends the `Last-Event-ID` header itself). The server replays what was missed, or —
//!   when it cannot (too old, another server's id, unknown, malformed) — sends **`resync`**
//!   ([`Resync`](crate::protocol::Resync), reason [`ResyncReason`](crate::protocol::ResyncReason))
//!   so the page knows events were lost. Silence is never the answer.
//! - **`draining`** ([`Draining`](crate::protocol::Draining): `reconnect_after_ms`, jittered per
//!   client) before a planned shutdown: the hook says `reconnecting` (not an error) and comes
//!   back after the hint.
//! - **`reauth` and `revoked`** (streams read with an access grant): `reauth`
//!   ([`Reauth`](crate::protocol::Reauth): the grant expired, the stream ends) makes the hook
//!   renew at `refresh_url` and resume after the last event; `revoked`
//!   ([`Revoked`](crate::protocol::Revoked)) makes it `rejected` with cause `revoked`, with no
//!   reconnect of its own.
//! - **Application event names** are delivered by `EventSource` only to listeners of that exact
//!   name. [`use_event`](super::use_event) and [`on_event`](super::on_event) register the names
//!   they are given; list in [`UseConnectionStatusOptions::event_names`] only names read from
//!   `events` without either. The protocol's own names are reserved: `connected`, `ping`,
//!   `resync`, `draining`, `reauth` and `revoked`.

use std::collections::VecDeque;

use leptos::prelude::*;

use super::display::Timeline;
use super::driver;
use super::format::countdown_secs;
use super::machine::{Cause, Phase, State};
use super::policy::Policy;
use super::signals::{Handler, ReceivedEvent, Sinks, UseConnectionStatusOptions};
use super::tabs::TabSharing;
use crate::protocol::Fleet;

/// What [`use_connection_status_with_options`] (and [`use_connection_status`](super::use_connection_status)) returns:
/// signals to read, and actions. The machine's own state, the clock and the timeline behind a
/// dashboard are [`diagnostics`](Self::diagnostics). `#[non_exhaustive]`: new signals are
/// additions.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct UseConnectionStatusReturn {
    /// The phase the banner should show (debounced: no flicker on sub-`debounce_ms` blips).
    pub banner: Signal<Phase>,
    /// Why the connection is not connected (`Cause::None` while connected).
    pub cause: Signal<Cause>,
    /// The reconnect attempt in flight or scheduled next (0 while connected).
    pub attempt: Signal<u32>,
    /// Whole seconds to the next try while waiting out a backoff; `None` otherwise.
    pub countdown: Signal<Option<u64>>,
    /// The id of the last application event received: where a reconnect resumes.
    pub last_event_id: Signal<Option<String>>,
    /// This stream's id (from `connected`), `None` before the first one.
    pub connection_id: Signal<Option<String>>,
    /// The server process's id (from `connected`): a change means the server restarted.
    pub server_id: Signal<Option<String>>,
    /// The machine's state, undebounced: [`ConnectionDiagnostics::state`].
    pub(crate) state: Signal<State>,
    /// Monotonic "now" in ms: [`ConnectionDiagnostics::now`].
    pub(crate) now: Signal<f64>,
    /// Recent phase changes: [`ConnectionDiagnostics::timeline`].
    pub(crate) timeline: Signal<Timeline>,
    /// Recent events, newest first (at most `event_log_capacity`; use
    /// [`on_event`](super::on_event) to see every one).
    pub events: Signal<VecDeque<ReceivedEvent>>,
    /// True once the driver runs in the browser (after hydration).
    pub running: Signal<bool>,
    /// The fleet as the server last described it (`connected` and every `ping`): live clients,
    /// instances, and whether the event log is reachable. `None` until the first word.
    pub fleet: Signal<Option<Fleet>>,
    /// Reconnect immediately, skipping any backoff wait.
    pub retry_now: Callback<()>,
    /// Close the connection: no stream, no retries; the state becomes `closed` with cause
    /// `closed-by-page`. A tab that shared its stream leaves the sharing (another tab takes it).
    pub close: Callback<()>,
    /// Open the connection again after [`close`](Self::close), resuming after the last event
    /// id. Does nothing while it is open (or on the server).
    pub open: Callback<()>,
    /// The policy in use: [`ConnectionDiagnostics::policy`].
    pub(crate) policy: StoredValue<Policy>,
    /// Whether this tab holds the shared stream, gets it from another tab, or has its own, and
    /// how many tabs share it.
    pub sharing: Signal<TabSharing>,
    /// What `use_event`/`on_event` register with.
    pub(crate) registry: Registry,
}

/// What a dashboard shows beyond the banner: the connection machine's own state, the clock its
/// ages and countdowns derive from, its recent phase changes and the policy in use. From
/// [`UseConnectionStatusReturn::diagnostics`] or
/// [`use_connection_diagnostics`](super::use_connection_diagnostics). Not needed for a banner or
/// for events; their shapes may change between minor versions (`#[non_exhaustive]`).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct ConnectionDiagnostics {
    /// The machine's state, undebounced (phase, cause, since, attempt, last event id, the
    /// server's hello, …).
    pub state: Signal<State>,
    /// Monotonic "now" in ms, updated every tick: ages and countdowns derive from it.
    pub now: Signal<f64>,
    /// Recent phase changes, newest first.
    pub timeline: Signal<Timeline>,
    /// The policy in use (deadlines: [`Policy::watchdog_deadline_ms`]).
    pub policy: StoredValue<Policy>,
}

impl UseConnectionStatusReturn {
    /// The machine's state, clock, timeline and policy behind this connection.
    pub fn diagnostics(&self) -> ConnectionDiagnostics {
        ConnectionDiagnostics {
            state: self.state,
            now: self.now,
            timeline: self.timeline,
            policy: self.policy,
        }
    }
}

/// Where `use_event` and `on_event` register names and callbacks.
#[derive(Clone, Copy)]
pub(crate) struct Registry {
    pub(crate) names: StoredValue<Vec<String>>,
    pub(crate) handlers: StoredValue<Vec<Handler>>,
    pub(crate) next_id: StoredValue<u64>,
    /// Start listening for a name now (the stream may be open already).
    pub(crate) listen: Callback<String>,
}

/// Track the page's connection to the SSE stream. See [`UseConnectionStatusOptions`].
///
/// ## Server-Side Rendering
/// SSR returns the `connecting` state and opens nothing: every signal holds its initial value
/// (`state` and `banner` are `connecting`, `role` is `solo`), so the server HTML and the hydrated
/// page match. The stream is opened only in the browser (after hydration, or at once in a CSR
/// app) and closed when the owner is cleaned up.
///
/// Each call opens its own connection. To share one, call
/// [`provide_connection_status`](super::provide_connection_status) once near the root and
/// [`use_connection_status`](super::use_connection_status) below it.
pub fn use_connection_status_with_options(
    options: UseConnectionStatusOptions,
) -> UseConnectionStatusReturn {
    let sinks = Sinks::new(options.timeline_capacity);
    let policy = StoredValue::new(options.policy.clone());
    let handle = driver::new_handle();
    let options = StoredValue::new(options);

    // Effects run only in the browser, after hydration (the first client render still matches),
    // and after the first render of the whole tree: every `use_event` there has registered.
    Effect::new(move |started: Option<()>| {
        if started.is_none() && handle.with_value(Option::is_none) {
            handle.set_value(Some(driver::Driver::start(
                options.get_value(),
                sinks,
                None,
            )));
        }
    });
    on_cleanup(move || {
        if let Some(driver) = handle.try_update_value(Option::take).flatten() {
            driver.stop();
        }
    });

    let with_driver = move |f: &dyn Fn(&driver::Driver)| {
        handle.with_value(|d| {
            if let Some(d) = d {
                f(d);
            }
        });
    };
    let retry_now = Callback::new(move |()| with_driver(&|d| d.retry_now()));
    let close = Callback::new(move |()| {
        if let Some(driver) = handle.try_update_value(Option::take).flatten() {
            driver.close();
        }
    });
    let open = Callback::new(move |()| {
        if sinks.running.get_untracked() && handle.with_value(Option::is_none) {
            let resume = sinks.state.with_untracked(|s| s.last_event_id.clone());
            handle.set_value(Some(driver::Driver::start(
                options.get_value(),
                sinks,
                resume,
            )));
        }
    });
    let listen = Callback::new(move |name: String| with_driver(&|d| d.listen(&name)));

    let state = sinks.state;
    let now = sinks.now;
    UseConnectionStatusReturn {
        banner: sinks.banner.into(),
        cause: Signal::derive(move || state.with(|s| s.cause)),
        attempt: Signal::derive(move || state.with(|s| s.attempt)),
        countdown: Signal::derive(move || {
            let at = state.with(|s| s.retry_at)?;
            Some(countdown_secs(at, now.get()))
        }),
        last_event_id: Signal::derive(move || state.with(|s| s.last_event_id.clone())),
        connection_id: Signal::derive(move || {
            state.with(|s| s.hello.as_ref().map(|h| h.connection_id.clone()))
        }),
        server_id: Signal::derive(move || {
            state.with(|s| s.hello.as_ref().map(|h| h.server_id.clone()))
        }),
        state: state.into(),
        now: now.into(),
        timeline: sinks.timeline.into(),
        events: sinks.events.into(),
        running: sinks.running.into(),
        fleet: sinks.fleet.into(),
        retry_now,
        close,
        open,
        policy,
        sharing: sinks.sharing.into(),
        registry: Registry {
            names: sinks.names,
            handlers: sinks.handlers,
            next_id: StoredValue::new(0),
            listen,
        },
    }
}

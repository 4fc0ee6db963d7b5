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
//! - **Application event names** are delivered by `EventSource` only to listeners of that exact
//!   name: list them in [`UseConnectionStatusOptions::event_names`]. `connected`, `ping`,
//!   `resync` and `draining` are reserved.

use std::collections::VecDeque;

use leptos::prelude::*;

use super::display::Timeline;
use super::driver;
use super::machine::{Phase, State};
use super::policy::Policy;
use super::signals::{ReceivedEvent, Sinks, UseConnectionStatusOptions};
use super::tabs::TabSharing;
use crate::protocol::Fleet;

/// What [`use_connection_status`] returns.
#[derive(Clone, Copy)]
pub struct UseConnectionStatusReturn {
    /// The machine's state, undebounced (for dashboards and logic).
    pub state: Signal<State>,
    /// The phase the banner should show (debounced: no flicker on sub-`debounce_ms` blips).
    pub banner: Signal<Phase>,
    /// Monotonic "now" in ms, updated every tick: ages and countdowns derive from it.
    pub now: Signal<f64>,
    /// Recent phase changes, newest first.
    pub timeline: Signal<Timeline>,
    /// Recent events, newest first.
    pub events: Signal<VecDeque<ReceivedEvent>>,
    /// True once the driver runs in the browser (after hydration).
    pub running: Signal<bool>,
    /// The fleet as the server last described it (`connected` and every `ping`): live clients,
    /// instances, and whether the event log is reachable. `None` until the first word.
    pub fleet: Signal<Option<Fleet>>,
    /// Reconnect immediately, skipping any backoff wait.
    pub retry_now: Callback<()>,
    /// The policy in use (for deadlines on the dashboard).
    pub policy: StoredValue<Policy>,
    /// Whether this tab holds the shared stream, gets it from another tab, or has its own, and
    /// how many tabs share it.
    pub sharing: Signal<TabSharing>,
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
    let sinks = Sinks {
        state: RwSignal::new(State::initial()),
        banner: RwSignal::new(Phase::Connecting),
        now: RwSignal::new(0.0),
        timeline: RwSignal::new(Timeline::new(options.timeline_capacity)),
        events: RwSignal::new(VecDeque::new()),
        running: RwSignal::new(false),
        fleet: RwSignal::new(None),
        sharing: RwSignal::new(TabSharing::default()),
    };
    let policy = StoredValue::new(options.policy.clone());
    let handle = driver::new_handle();

    // Effects run only in the browser, after hydration: the first client render still matches.
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            handle.set_value(Some(driver::Driver::start(options.clone(), sinks)));
        }
    });
    on_cleanup(move || {
        if let Some(driver) = handle.try_update_value(Option::take).flatten() {
            driver.stop();
        }
    });

    let retry_now = Callback::new(move |()| {
        handle.with_value(|d| {
            if let Some(d) = d {
                d.retry_now();
            }
        });
    });

    UseConnectionStatusReturn {
        state: sinks.state.into(),
        banner: sinks.banner.into(),
        now: sinks.now.into(),
        timeline: sinks.timeline.into(),
        events: sinks.events.into(),
        running: sinks.running.into(),
        fleet: sinks.fleet.into(),
        retry_now,
        policy,
        sharing: sinks.sharing.into(),
    }
}

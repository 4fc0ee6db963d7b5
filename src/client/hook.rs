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
use super::target::Target;
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
    /// True once the hook runs in the browser (after hydration; at once in a CSR app), whether
    /// or not the stream is open (`immediate: false`).
    pub running: Signal<bool>,
    /// The fleet as the server last described it (`connected` and every `ping`): live clients,
    /// instances, and whether the event log is reachable. `None` until the first word.
    pub fleet: Signal<Option<Fleet>>,
    /// Reconnect immediately, skipping any backoff wait.
    pub retry_now: Callback<()>,
    /// Close the connection: no stream, no retries; the state becomes `closed` with cause
    /// `closed-by-page`. A tab that shared its stream leaves the sharing (another tab takes it).
    pub close: Callback<()>,
    /// Open the connection: the first time with
    /// [`immediate: false`](UseConnectionStatusOptions::immediate), or again after
    /// [`close`](Self::close), resuming after the last event id (unless the URL changed
    /// meanwhile: a new URL starts fresh). Does nothing while it is open. Called before the hook
    /// runs in the browser (during the first render), it opens as soon as it does; on the server
    /// it does nothing.
    ///
    /// ```
    /// use leptos::prelude::*;
    /// use sse_status::client::{use_connection_status_with_options, UseConnectionStatusOptions};
    ///
    /// #[component]
    /// fn Live() -> impl IntoView {
    ///     let status = use_connection_status_with_options(
    ///         UseConnectionStatusOptions::default().immediate(false),
    ///     );
    ///     view! {
    ///         <button on:click=move |_| status.open.run(())>"Connect"</button>
    ///         <button on:click=move |_| status.close.run(())>"Disconnect"</button>
    ///     }
    /// }
    /// ```
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
/// The options' [`url`](UseConnectionStatusOptions::url) and
/// [`topics`](UseConnectionStatusOptions::topics) are signals: a change reconnects to the new
/// stream (the rules are in their docs). With
/// [`immediate: false`](UseConnectionStatusOptions::immediate) the stream opens on
/// [`open()`](UseConnectionStatusReturn::open).
///
/// ## Server-Side Rendering
/// SSR returns the `connecting` state and opens nothing: every signal holds its initial value
/// (`state` and `banner` are `connecting`, `role` is `solo`; with `immediate: false`, `closed`
/// with cause `not-opened`), so the server HTML and the hydrated page match. The stream is
/// opened only in the browser (after hydration, or at once in a CSR app) and closed when the
/// owner is cleaned up.
///
/// Each call opens its own connection. To share one, call
/// [`provide_connection_status`](super::provide_connection_status) once near the root and
/// [`use_connection_status`](super::use_connection_status) below it.
pub fn use_connection_status_with_options(
    options: UseConnectionStatusOptions,
) -> UseConnectionStatusReturn {
    let sinks = Sinks::new(options.timeline_capacity, options.immediate);
    let policy = StoredValue::new(options.policy.clone());
    let handle = driver::new_handle();
    let (url, topics) = (options.url, options.topics);
    // The stream asked for. A memo: a change to an equal value (the same URL, the same topic set
    // in another order) reaches nobody.
    let target = Memo::new(move |_| topics.with(|t| Target::new(url.get(), t)));
    // Whether the page wants the stream open: `immediate`, then `open()` and `close()`.
    let wanted = StoredValue::new(options.immediate);
    // The stream the driver streams (or last streamed): what a change is measured from, and
    // whose event ids a reopen may resume after.
    let streamed = StoredValue::new(None::<Target>);
    let options = StoredValue::new(options);

    let start = move |last_event_id: Option<String>| {
        let next = target.get_untracked();
        let resume = streamed.with_value(|prev| {
            prev.as_ref()
                .and_then(|prev| prev.resume_point(&next, last_event_id))
        });
        streamed.set_value(Some(next.clone()));
        handle.set_value(Some(driver::Driver::start(
            options.get_value(),
            next,
            sinks,
            resume,
        )));
    };

    // Effects run only in the browser, after hydration (the first client render still matches),
    // and after the first render of the whole tree: every `use_event` there has registered.
    // Later runs are changes of the stream asked for.
    Effect::new(move |ran: Option<()>| {
        let next = target.get();
        if ran.is_none() {
            sinks.running.set(true);
            if wanted.get_value() && handle.with_value(Option::is_none) {
                start(None);
            }
            return;
        }
        // Closed, the next `open()` goes to the new stream; open, the driver switches now.
        if handle.with_value(Option::is_none) {
            return;
        }
        let switch = streamed.with_value(|prev| prev.as_ref().and_then(|p| p.switch_to(&next)));
        if let Some(input) = switch {
            streamed.set_value(Some(next.clone()));
            handle.with_value(|d| {
                if let Some(d) = d {
                    d.switch(next, input);
                }
            });
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
        wanted.set_value(false);
        if let Some(driver) = handle.try_update_value(Option::take).flatten() {
            driver.close();
        }
    });
    let open = Callback::new(move |()| {
        wanted.set_value(true);
        if sinks.running.get_untracked() && handle.with_value(Option::is_none) {
            start(sinks.state.with_untracked(|s| s.last_event_id.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediate_false_renders_not_opened_and_the_default_connecting() {
        Owner::new().with(|| {
            let lazy = use_connection_status_with_options(
                UseConnectionStatusOptions::default().immediate(false),
            );
            assert_eq!(lazy.banner.get_untracked(), Phase::Closed);
            assert_eq!(lazy.cause.get_untracked(), Cause::NotOpened);
            assert!(!lazy.running.get_untracked());
            // Not running in a browser (a server render): open() opens nothing.
            lazy.open.run(());
            assert_eq!(lazy.banner.get_untracked(), Phase::Closed);

            let eager = use_connection_status_with_options(UseConnectionStatusOptions::default());
            assert_eq!(eager.banner.get_untracked(), Phase::Connecting);
            assert_eq!(eager.cause.get_untracked(), Cause::None);
        });
    }

    #[test]
    fn url_and_topics_take_plain_values_and_signals() {
        Owner::new().with(|| {
            let plain = UseConnectionStatusOptions::default()
                .url("/live/events")
                .topics(vec!["b".to_owned(), "a".to_owned()]);
            assert_eq!(plain.url.get_untracked(), "/live/events");
            let doc = RwSignal::new(1u32);
            let reactive = UseConnectionStatusOptions::default()
                .url(String::from("/events"))
                .topics(Signal::derive(move || vec![format!("docs/{}", doc.get())]));
            assert_eq!(reactive.topics.get_untracked(), ["docs/1"]);
            doc.set(2);
            assert_eq!(reactive.topics.get_untracked(), ["docs/2"]);
        });
    }
}

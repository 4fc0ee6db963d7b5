//! Both sides: what the hook and the browser driver share — the hook's options, the events as
//! the page received them, and the signals the driver writes (publishing only what changed).

use std::collections::VecDeque;

use leptos::prelude::*;

use super::display::{banner_due, banner_phase, Timeline};
use super::machine::{Phase, State};
use super::policy::Policy;
use super::tabs::TabSharing;
use crate::protocol::{Fleet, RESERVED_EVENT_NAMES};

/// Options of [`use_connection_status_with_options`](super::use_connection_status_with_options).
///
/// `#[non_exhaustive]`: start from `UseConnectionStatusOptions::default()` and set what you
/// change with the chainable setters, or by assignment. The options hold signals (`url`,
/// `topics`): build them where the page's reactive owner is, in the component that provides
/// the status, as below (outside any owner, creating them panics on the server, where Leptos
/// keeps each request's signals apart):
///
/// ```
/// use leptos::prelude::*;
/// use sse_status::client::UseConnectionStatusOptions;
///
/// # Owner::new().with(|| {
/// // In the component that calls provide_connection_status(options):
/// let options = UseConnectionStatusOptions::default()
///     .url("/live/events")
///     .topics(vec!["orders/42".to_owned()])
///     .immediate(false);
/// # let _ = options;
/// # });
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UseConnectionStatusOptions {
    /// URL of the SSE stream, reactive. Default `"/events"`. The setter takes a plain `&str` or
    /// `String` as well as any signal of a `String`.
    ///
    /// **When it changes** while the stream is open, the hook closes the stream and opens one at
    /// the new URL at once — a fresh one, without `Last-Event-ID`: the event ids of another
    /// server mean nothing there. Tabs sharing a stream regroup: this tab leaves the old URL's
    /// group (if it held the stream, another tab of that group takes it over, as when a leader
    /// tab closes) and joins the new URL's, holding its stream or following the tab that holds
    /// it. The banner shows no failure for it: the phase is `connecting` with cause `switch`
    /// meanwhile, which the banner's debounce hides when the new stream answers in time, as for
    /// any short reconnect; a reconnect already under way keeps its own state and count. A
    /// change to an equal value does nothing. While the stream is closed (by `close()`, or
    /// before `open()` with `immediate: false`), a change only decides where the next `open()`
    /// connects.
    ///
    /// ```
    /// use leptos::prelude::*;
    /// use sse_status::client::{provide_connection_status, UseConnectionStatusOptions};
    ///
    /// #[component]
    /// fn App() -> impl IntoView {
    ///     // The region picker decides which server this page streams from.
    ///     let region = RwSignal::new("eu".to_owned());
    ///     provide_connection_status(
    ///         UseConnectionStatusOptions::default()
    ///             .url(Signal::derive(move || format!("/{}/events", region.get()))),
    ///     );
    ///     view! { <button on:click=move |_| region.set("us".into())>"US"</button> }
    /// }
    /// ```
    pub url: Signal<String>,
    /// Topics to subscribe to (`?topic=` each; a trailing `/*` subscribes to a prefix),
    /// reactive. The server grants them from the request's credentials (the `sse_access`
    /// cookie); a topic outside the grant is refused (`rejected`). Untargeted events
    /// (broadcasts) always arrive. The topics are a set: their order and repeats do not matter.
    /// Tabs share a stream only with tabs that ask for the same URL and topic set. The setter
    /// takes a plain `Vec<String>` or any signal of one. Default: none.
    ///
    /// **When they change** while the stream is open, the hook closes the stream and opens one
    /// for the new set at once, resuming after the last event id it saw: the server's event
    /// ids are one sequence for all its topics, so nothing published after the switch is missed
    /// on a topic of the new set. Events of a newly added topic published *before* the switch
    /// are not replayed: a page that needs that topic's current state fetches it itself (e.g.
    /// `GET /api/values/{key}`, or its own API). Tabs regroup by the new set, and the banner shows
    /// no failure for it, as for a new [`url`](Self::url). A set equal to the old one (another
    /// order, repeats) does nothing.
    ///
    /// ```
    /// use leptos::prelude::*;
    /// use sse_status::client::{provide_connection_status, UseConnectionStatusOptions};
    ///
    /// #[component]
    /// fn Editor() -> impl IntoView {
    ///     // The open document decides the topics; switching documents keeps the connection.
    ///     let document = RwSignal::new(42u32);
    ///     provide_connection_status(UseConnectionStatusOptions::default().topics(Signal::derive(
    ///         move || vec![format!("docs/{}", document.get()), "presence".to_owned()],
    ///     )));
    ///     view! { <button on:click=move |_| document.set(43)>"Next document"</button> }
    /// }
    /// ```
    pub topics: Signal<Vec<String>>,
    /// Open the stream as soon as the hook runs in the browser (after hydration; at once in a
    /// CSR app). Default `true`.
    ///
    /// `false`: the hook opens nothing until the page calls
    /// [`open()`](super::UseConnectionStatusReturn::open) — after a sign-in, say, or when a view
    /// that needs live data is shown. Until then the state is `closed` with cause `not-opened`
    /// (the banner says "Not connected", with no Retry button: the page decides when to open),
    /// in the server render and the first client render alike, and nothing is requested from the
    /// server.
    ///
    /// ```
    /// use leptos::prelude::*;
    /// use sse_status::client::{provide_connection_status, UseConnectionStatusOptions};
    ///
    /// #[component]
    /// fn App() -> impl IntoView {
    ///     let status =
    ///         provide_connection_status(UseConnectionStatusOptions::default().immediate(false));
    ///     view! { <button on:click=move |_| status.open.run(())>"Go live"</button> }
    /// }
    /// ```
    pub immediate: bool,
    /// Where to renew the stream's access when the server says `reauth` (its grant expired):
    /// the hook `POST`s there with credentials (cookies), and reconnects after a 2xx, resuming
    /// after the last event — nothing is missed, and a renewal within the banner's debounce
    /// never shows. A 401/403 there means signed out (`rejected`, cause `signed_out`; no retry
    /// loop). `None`: reconnect at once with whatever credentials the browser holds (a refusal
    /// then also says `signed_out`). Default `None`.
    pub refresh_url: Option<String>,
    /// Detection and retry tuning. Default [`Policy::default()`].
    pub policy: Policy,
    /// More application event names to listen for. `EventSource` only delivers a named event to
    /// listeners of that exact name; [`use_event`](super::use_event) and
    /// [`on_event`](super::on_event) register their names themselves, so list here only names
    /// you read from `events` without either. The protocol's own events (`connected`, `ping`,
    /// `resync`, `draining`, `reauth`, `revoked`) and unnamed `message` events are always
    /// handled. Default: empty.
    pub event_names: Vec<String>,
    /// Send cookies (and HTTP auth) with the stream request when it goes to another origin:
    /// `EventSource`'s `withCredentials` (the failure probe sends `credentials: include` too).
    /// The server must answer with `Access-Control-Allow-Credentials: true` and an explicit
    /// `Access-Control-Allow-Origin`. Same-origin requests send cookies anyway. Default `false`.
    pub with_credentials: bool,
    /// How many received events `events` keeps, newest first. Default 50.
    pub event_log_capacity: usize,
    /// How many phase changes `timeline` keeps. Default 50.
    pub timeline_capacity: usize,
    /// How often the driver ticks (watchdog, countdowns, clock-jump check). Default 250 ms.
    pub tick_ms: u32,
    /// Share one stream between this browser's tabs. Default `true`.
    ///
    /// A browser allows about 6 HTTP/1.1 connections per origin, and every tab's `EventSource`
    /// holds one for good: the 7th tab of the app would never even load. Shared, one tab (the
    /// leader, elected with a Web Lock) holds the stream and passes every event, heartbeat and
    /// its connection state to the others over a `BroadcastChannel`; if it closes or hangs,
    /// another tab takes over and resumes from the last event id, so nothing is lost. The server
    /// holds one stream per browser instead of one per tab.
    ///
    /// Trade-offs: the leader's options decide for every sharing tab (policy, URL; tabs listening
    /// for different `event_names` do not share); a hung leader is replaced only after the
    /// watchdog deadline; a hidden leader whose timers the browser throttles may be replaced by a
    /// visible tab. Where Web Locks or `BroadcastChannel` are missing the tab keeps its own
    /// stream (`solo`), as with `false`.
    pub share_across_tabs: bool,
}

setters!(UseConnectionStatusOptions {
    url: into Signal<String>,
    topics: into Signal<Vec<String>>,
    immediate: = bool,
    refresh_url: some String,
    policy: = Policy,
    event_names: list String,
    with_credentials: = bool,
    event_log_capacity: = usize,
    timeline_capacity: = usize,
    tick_ms: = u32,
    share_across_tabs: = bool,
});

impl Default for UseConnectionStatusOptions {
    fn default() -> Self {
        UseConnectionStatusOptions {
            url: Signal::stored("/events".to_owned()),
            topics: Signal::stored(Vec::new()),
            immediate: true,
            refresh_url: None,
            policy: Policy::default(),
            event_names: Vec::new(),
            with_credentials: false,
            event_log_capacity: 50,
            timeline_capacity: 50,
            tick_ms: 250,
            share_across_tabs: true,
        }
    }
}

/// An event as the page received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The `event:` name (`message` if none).
    pub name: String,
    /// The `id:`, if any.
    pub id: Option<String>,
    /// The raw `data:`.
    pub data: String,
    /// Wall-clock receive time, Unix ms.
    pub received_at: f64,
    /// The receive time as the page's language writes a time of day (views that can switch
    /// language format `received_at` themselves: [`clock_time`](super::clock_time)).
    pub time: String,
    /// Position in this page's log (0 for the first event received): a stable key for views.
    pub seq: u64,
}

/// Signals the driver writes. Copy handles into the reactive arena.
#[derive(Clone, Copy)]
pub(crate) struct Sinks {
    pub state: RwSignal<State>,
    pub banner: RwSignal<Phase>,
    pub now: RwSignal<f64>,
    pub timeline: RwSignal<Timeline>,
    pub events: RwSignal<VecDeque<ReceivedEvent>>,
    pub running: RwSignal<bool>,
    pub fleet: RwSignal<Option<Fleet>>,
    pub sharing: RwSignal<TabSharing>,
    /// Names registered by `use_event`/`on_event` (besides the options' `event_names`).
    pub names: StoredValue<Vec<String>>,
    /// `on_event` callbacks: `(registration id, event name, callback)`.
    pub handlers: StoredValue<Vec<Handler>>,
}

/// One `on_event` registration: its id (to unregister), the event name, the callback.
pub(crate) type Handler = (u64, String, Callback<ReceivedEvent>);

// Only the browser driver writes; the server never runs it.
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
impl Sinks {
    /// Every signal at its initial value: what the server renders (`connecting`, solo; with
    /// `immediate: false`, `closed` and not opened).
    pub(crate) fn new(timeline_capacity: usize, immediate: bool) -> Sinks {
        let state = if immediate {
            State::initial()
        } else {
            State::not_opened()
        };
        Sinks {
            banner: RwSignal::new(state.phase),
            state: RwSignal::new(state),
            now: RwSignal::new(0.0),
            timeline: RwSignal::new(Timeline::new(timeline_capacity)),
            events: RwSignal::new(VecDeque::new()),
            running: RwSignal::new(false),
            fleet: RwSignal::new(None),
            sharing: RwSignal::new(TabSharing::default()),
            names: StoredValue::new(Vec::new()),
            handlers: StoredValue::new(Vec::new()),
        }
    }

    /// Publish a new machine state observed at `now`. Only what changed is set, so a view
    /// re-renders only when its own value does: the tick's bookkeeping (`last_tick`) is not
    /// published, and the timeline changes only when the phase or cause does. Returns when the
    /// banner, held back by its debounce, must be published again.
    pub(crate) fn publish(&self, state: &State, now: f64, policy: &Policy) -> Option<f64> {
        let shown = self.banner.get_untracked();
        let next = banner_phase(shown, state, now, policy);
        if next != shown {
            self.banner.set(next);
        }
        let published = State {
            last_tick: None,
            ..state.clone()
        };
        if self.state.with_untracked(|s| *s != published) {
            self.state.set(published);
            if self.timeline.with_untracked(|t| t.is_new(state)) {
                self.timeline.update(|t| t.record(state, now));
            }
        }
        self.now.set(now);
        banner_due(next, state, now, policy)
    }

    /// Add a received event (numbering it), keeping at most `capacity`.
    /// Every `on_event` callback for its name runs with it at once, so none is lost when several
    /// arrive between two renders.
    pub(crate) fn push_event(&self, mut event: ReceivedEvent, capacity: usize) {
        event.seq = self
            .events
            .with_untracked(|log| log.front().map_or(0, |e| e.seq + 1));
        let handlers: Vec<Callback<ReceivedEvent>> = self.handlers.with_value(|hs| {
            hs.iter()
                .filter(|(_, name, _)| *name == event.name)
                .map(|(_, _, cb)| *cb)
                .collect()
        });
        for cb in handlers {
            cb.run(event.clone());
        }
        self.events.update(|log| {
            log.push_front(event);
            log.truncate(capacity);
        });
    }

    /// The application event names to listen for: the options' and the registered ones.
    pub(crate) fn all_names(&self, options: &UseConnectionStatusOptions) -> Vec<String> {
        let mut names = options.event_names.clone();
        self.names.with_value(|registered| {
            for name in registered {
                // The protocol's own events (and unnamed `message`) are always listened for.
                let built_in = name == "message" || RESERVED_EVENT_NAMES.contains(&name.as_str());
                if !built_in && !names.contains(name) {
                    names.push(name.clone());
                }
            }
        });
        names
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn sinks() -> Sinks {
        Sinks::new(4, true)
    }

    fn event(name: &str, data: &str) -> ReceivedEvent {
        ReceivedEvent {
            name: name.into(),
            id: None,
            data: data.into(),
            received_at: 0.0,
            time: String::new(),
            seq: 0,
        }
    }

    #[test]
    fn every_event_of_a_burst_reaches_its_callbacks_even_past_the_log_capacity() {
        Owner::new().with(|| {
            let sinks = sinks();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&seen);
            sinks.handlers.update_value(|hs| {
                hs.push((
                    0,
                    "update".into(),
                    Callback::new(move |e: ReceivedEvent| log.lock().unwrap().push(e.seq)),
                ))
            });
            for i in 0..10 {
                sinks.push_event(event(if i % 2 == 0 { "update" } else { "other" }, "{}"), 3);
            }
            assert_eq!(
                *seen.lock().unwrap(),
                [0, 2, 4, 6, 8],
                "numbered, none lost"
            );
            assert_eq!(
                sinks.events.with_untracked(VecDeque::len),
                3,
                "the log stays bounded"
            );
        });
    }

    #[test]
    fn registered_names_join_the_options_but_never_the_built_in_ones() {
        Owner::new().with(|| {
            let sinks = sinks();
            sinks.names.update_value(|n| {
                n.extend(["update", "ping", "message", "notice", "update"].map(String::from))
            });
            let options = UseConnectionStatusOptions {
                event_names: vec!["notice".into(), "deploy".into()],
                ..Default::default()
            };
            assert_eq!(sinks.all_names(&options), ["notice", "deploy", "update"]);
        });
    }
}

//! Both sides: what the hook and the browser driver share — the hook's options, the events as
//! the page received them, and the signals the driver writes (publishing only what changed).

use std::collections::VecDeque;

use leptos::prelude::*;

use super::display::{banner_due, banner_phase, Timeline};
use super::machine::{Phase, State};
use super::policy::Policy;
use super::tabs::TabSharing;
use crate::protocol::Fleet;

/// Options of [`use_connection_status_with_options`](super::use_connection_status_with_options).
#[derive(Debug, Clone)]
pub struct UseConnectionStatusOptions {
    /// URL of the SSE stream. Default `"/events"`.
    pub url: String,
    /// Detection and retry tuning. Default [`Policy::default()`].
    pub policy: Policy,
    /// Application event names to listen for. `EventSource` only delivers a named event to
    /// listeners of that exact name, so list the names you publish. `connected`, `ping`,
    /// `resync`, `draining` and unnamed `message` events are always handled. Default: empty.
    pub event_names: Vec<String>,
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

impl Default for UseConnectionStatusOptions {
    fn default() -> Self {
        UseConnectionStatusOptions {
            url: "/events".to_owned(),
            policy: Policy::default(),
            event_names: Vec::new(),
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
}

// Only the browser driver writes; the server never runs it.
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
impl Sinks {
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
    pub(crate) fn push_event(&self, mut event: ReceivedEvent, capacity: usize) {
        self.events.update(|log| {
            event.seq = log.front().map_or(0, |e| e.seq + 1);
            log.push_front(event);
            log.truncate(capacity);
        });
    }
}

//! Browser only (hydrate): the I/O around the pure machines — the `EventSource`, the tick timer,
//! the classification probe, the `online`/`offline`/`visibilitychange`/`pagehide` events, and,
//! when tabs share the stream, the Web Lock and the `BroadcastChannel`. Every browser callback
//! becomes an [`Input`] (or a [`TabsInput`]); every command becomes a browser call. No decisions
//! here.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, EventSource, EventTarget, MessageEvent, RequestCache, RequestInit};

use super::hook::{ReceivedEvent, Sinks, UseConnectionStatusOptions};
use super::machine::{step, Command, Env, Input, ProbeOutcome, ReadyState, ServerHello, State};
use crate::protocol::{self, Connected, Draining, Ping, Resync};
use super::tabs::{LoggedEvent, TabRole, TabsInput};

/// The sharing glue: Web Lock, channel, and the commands of the pure tabs piece.
#[path = "browser_share.rs"]
mod share;
use share::{comparable, post_state, tabs_step, Share};

/// How long the probe may take before it counts as a network error (a frozen link never answers).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// A query parameter of the page's URL (`?name=value`).
pub fn page_query_param(name: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// Where the hook keeps its driver: the driver holds browser objects, so it stays on the one
/// browser thread (local storage).
pub(crate) fn new_handle() -> StoredValue<Option<Driver>, LocalStorage> {
    StoredValue::new_local(None)
}

/// Drives one connection. Dropping it does not stop it; call [`Driver::stop`].
pub(crate) struct Driver {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    state: State,
    options: UseConnectionStatusOptions,
    sinks: Sinks,
    source: Option<Source>,
    /// Bumped on every open so callbacks of a closed stream are ignored.
    generation: u64,
    tick: Option<IntervalHandle>,
    /// A one-shot wake-up at the next due moment (backoff end, watchdog, banner debounce), so
    /// timers fire when they are due rather than on the next regular tick: `(at, handle)`.
    wake: Option<(f64, TimeoutHandle)>,
    listeners: Vec<(EventTarget, &'static str, Listener)>,
    probe: Option<AbortController>,
    /// Present while this tab shares the stream with the browser's other tabs.
    share: Option<Share>,
}

struct Source {
    es: EventSource,
    _listeners: Vec<Listener>,
}

impl Driver {
    /// Start the machine: open the stream (unless offline) and begin ticking.
    pub(crate) fn start(options: UseConnectionStatusOptions, sinks: Sinks) -> Self {
        let tick_ms = u64::from(options.tick_ms.max(10));
        let share = Share::new(&options);
        let inner = Rc::new(RefCell::new(Inner {
            state: State::initial(),
            options,
            sinks,
            source: None,
            generation: 0,
            tick: None,
            wake: None,
            listeners: Vec::new(),
            probe: None,
            share,
        }));
        let weak = Rc::downgrade(&inner);

        let w = weak.clone();
        let tick = set_interval_with_handle(move || with(&w, on_tick), {
            Duration::from_millis(tick_ms)
        })
        .ok();
        inner.borrow_mut().tick = tick;

        let window: EventTarget = window().into();
        let document: EventTarget = document().into();
        listen(&inner, &window, "online", |rc, _| on_online(rc, true));
        listen(&inner, &window, "offline", |rc, _| on_online(rc, false));
        listen(&inner, &document, "visibilitychange", |rc, _| {
            let hidden = document_hidden();
            if sharing(rc) {
                tabs_step(rc, TabsInput::Visibility { hidden });
            } else {
                dispatch(rc, Input::Visibility { hidden });
            }
        });
        listen(&inner, &window, "pagehide", |rc, _| {
            tabs_step(rc, TabsInput::Leave);
        });

        sinks.running.set(true);
        let online = window_navigator_online();
        let hidden = document_hidden();
        if sharing(&inner) {
            share::listen_channel(&inner);
            tabs_step(&inner, TabsInput::Start { online, hidden });
        } else {
            dispatch(&inner, Input::Start { online, hidden });
        }
        Driver { inner }
    }

    /// The user asked to reconnect now (in a follower: the leader does, for every tab).
    pub(crate) fn retry_now(&self) {
        if sharing(&self.inner) {
            tabs_step(&self.inner, TabsInput::RetryNow);
        } else {
            dispatch(&self.inner, Input::RetryNow);
        }
    }

    /// Close everything and stop ticking.
    pub(crate) fn stop(self) {
        let mut me = self.inner.borrow_mut();
        if let Some(tick) = me.tick.take() {
            tick.clear();
        }
        if let Some((_, wake)) = me.wake.take() {
            wake.clear();
        }
        for (target, name, listener) in me.listeners.drain(..) {
            let _ =
                target.remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
        if let Some(source) = me.source.take() {
            source.es.close();
        }
        if let Some(probe) = me.probe.take() {
            probe.abort();
        }
        if let Some(share) = me.share.take() {
            share.close();
        }
    }
}

fn sharing(inner: &Rc<RefCell<Inner>>) -> bool {
    inner.borrow().share.is_some()
}

fn role(inner: &Rc<RefCell<Inner>>) -> TabRole {
    inner
        .borrow()
        .share
        .as_ref()
        .map_or(TabRole::Solo, |s| s.tabs.role)
}

fn on_tick(inner: &Rc<RefCell<Inner>>) {
    advance(inner);
    tabs_step(inner, TabsInput::Tick);
}

/// Move time on: the machine's tick (watchdog, backoff, …), or for a follower, which has no
/// machine of its own, the clock (ages, countdowns, banner debounce).
fn advance(inner: &Rc<RefCell<Inner>>) {
    if role(inner) == TabRole::Follower {
        let state = inner.borrow().state.clone();
        publish(inner, &state, env().now);
    } else {
        dispatch(inner, Input::Tick);
    }
}

/// Publish `state` to the views, and wake up when the next thing is due: the banner's debounce,
/// or (for a tab that runs the machine) the machine's next deadline.
fn publish(inner: &Rc<RefCell<Inner>>, state: &State, now: f64) {
    let (sinks, policy) = {
        let me = inner.borrow();
        (me.sinks, me.options.policy.clone())
    };
    let banner_due = sinks.publish(state, now, &policy);
    let machine_due = if role(inner) == TabRole::Follower {
        None
    } else {
        state.next_due(&policy)
    };
    let due = [banner_due, machine_due]
        .into_iter()
        .flatten()
        .reduce(f64::min);
    if let Some(due) = due {
        wake_at(inner, due, now);
    }
}

/// Arm the one-shot wake-up for `due` unless one is armed for no later.
fn wake_at(inner: &Rc<RefCell<Inner>>, due: f64, now: f64) {
    let mut me = inner.borrow_mut();
    if me.wake.as_ref().is_some_and(|(at, _)| *at <= due) {
        return;
    }
    if let Some((_, old)) = me.wake.take() {
        old.clear();
    }
    let weak = Rc::downgrade(inner);
    // A millisecond late rather than early: a timer that fires before the deadline finds
    // nothing due and the next tick would have to catch it.
    let delay = Duration::from_millis((due - now).max(0.0).ceil() as u64 + 1);
    me.wake = set_timeout_with_handle(
        move || {
            with(&weak, |rc| {
                rc.borrow_mut().wake = None;
                advance(rc);
            })
        },
        delay,
    )
    .ok()
    .map(|handle| (due, handle));
}

fn on_online(inner: &Rc<RefCell<Inner>>, online: bool) {
    if sharing(inner) {
        tabs_step(inner, TabsInput::Online(online));
    } else {
        dispatch(
            inner,
            if online {
                Input::Online
            } else {
                Input::Offline
            },
        );
    }
}

fn with(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&Rc<RefCell<Inner>>)) {
    if let Some(rc) = weak.upgrade() {
        f(&rc);
    }
}

fn env() -> Env {
    let now = window()
        .performance()
        .map_or_else(js_sys::Date::now, |p| p.now());
    Env {
        now,
        wall: js_sys::Date::now(),
        rand: js_sys::Math::random(),
    }
}

fn document_hidden() -> bool {
    document().hidden()
}

fn window_navigator_online() -> bool {
    window().navigator().on_line()
}

/// Feed one input to the machine, publish the new state, then carry out its commands.
fn dispatch(inner: &Rc<RefCell<Inner>>, input: Input) {
    // A follower has no stream: its state is the leader's (late callbacks of a stream it closed
    // when it stepped down must not move it).
    if role(inner) == TabRole::Follower {
        return;
    }
    let env = env();
    let (state, cmds, changed) = {
        let mut me = inner.borrow_mut();
        let (next, cmds) = step(&me.state, &input, env, &me.options.policy);
        me.state = next;
        let changed = me.share.as_ref().is_some_and(|s| {
            s.posted
                .as_ref()
                .is_none_or(|p| *p != comparable(&me.state))
        });
        (me.state.clone(), cmds, changed)
    };
    publish(inner, &state, env.now);
    if changed {
        post_state(inner, env.now);
    }
    for cmd in cmds {
        run(inner, cmd);
    }
}

fn run(inner: &Rc<RefCell<Inner>>, cmd: Command) {
    match cmd {
        Command::Close => {
            if let Some(source) = inner.borrow_mut().source.take() {
                source.es.close();
            }
        }
        Command::Open { last_event_id } => open(inner, last_event_id),
        Command::Probe => probe(inner),
    }
}

fn stream_url(base: &str, last_event_id: Option<&str>) -> String {
    match last_event_id {
        None => base.to_owned(),
        Some(id) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            let id: String = js_sys::encode_uri_component(id).into();
            format!("{base}{sep}{}={id}", protocol::LAST_EVENT_ID_PARAM)
        }
    }
}

fn open(inner: &Rc<RefCell<Inner>>, last_event_id: Option<String>) {
    let (url, names, generation) = {
        let mut me = inner.borrow_mut();
        if let Some(old) = me.source.take() {
            old.es.close();
        }
        me.generation += 1;
        (
            stream_url(&me.options.url, last_event_id.as_deref()),
            me.options.event_names.clone(),
            me.generation,
        )
    };
    let Ok(es) = EventSource::new(&url) else {
        // Only a malformed URL throws; the machine's open timeout turns this into a retry.
        leptos::logging::warn!("sse-status: cannot open EventSource at {url}");
        return;
    };
    let weak = Rc::downgrade(inner);
    let mut listeners = Vec::new();
    let mut on = |name: &str, handler: fn(&str, &MessageEvent) -> Option<Input>| {
        let w = weak.clone();
        let event_name = name.to_owned();
        let listener: Listener = Closure::new(move |e: web_sys::Event| {
            let Ok(msg) = e.dyn_into::<MessageEvent>() else {
                return;
            };
            with(&w, |rc| {
                if rc.borrow().generation != generation {
                    return;
                }
                log_event(rc, &event_name, &msg);
                note_fleet(rc, &event_name, &message_data(&msg));
                if let Some(input) = handler(&event_name, &msg) {
                    dispatch(rc, input);
                }
            });
        });
        let _ = es.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        listeners.push(listener);
    };
    on(protocol::EVENT_CONNECTED, |_, msg| {
        let hello: Connected = serde_json::from_str(&message_data(msg)).ok()?;
        Some(Input::Hello {
            hello: ServerHello {
                connection_id: hello.connection_id,
                server_id: hello.server_id,
                heartbeat_ms: hello.heartbeat_ms,
                retry_ms: hello.retry_ms,
                replayed: hello.replayed,
            },
            id: non_empty(msg.last_event_id()),
        })
    });
    on(protocol::EVENT_PING, |_, _| Some(Input::Event { id: None }));
    on(protocol::EVENT_DRAINING, |_, msg| {
        let d: Draining = serde_json::from_str(&message_data(msg)).ok()?;
        Some(Input::Draining {
            reconnect_after_ms: d.reconnect_after_ms,
        })
    });
    let app_event = |_: &str, msg: &MessageEvent| {
        Some(Input::Event {
            id: non_empty(msg.last_event_id()),
        })
    };
    on(protocol::EVENT_RESYNC, |_, msg| {
        let r: Resync = serde_json::from_str(&message_data(msg)).ok()?;
        Some(Input::Resync {
            reason: r.reason.as_str().to_owned(),
        })
    });
    on("message", app_event);
    for name in &names {
        on(name, app_event);
    }

    let w = weak.clone();
    let es_for_error = es.clone();
    let on_error: Listener = Closure::new(move |_e: web_sys::Event| {
        let ready_state = ReadyState::from_u16(es_for_error.ready_state());
        with(&w, |rc| {
            if rc.borrow().generation == generation {
                dispatch(rc, Input::Error { ready_state });
            }
        });
    });
    let _ = es.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
    listeners.push(on_error);

    inner.borrow_mut().source = Some(Source {
        es,
        _listeners: listeners,
    });
}

fn message_data(msg: &MessageEvent) -> String {
    msg.data().as_string().unwrap_or_default()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn log_event(inner: &Rc<RefCell<Inner>>, name: &str, msg: &MessageEvent) {
    let (sinks, capacity) = {
        let me = inner.borrow();
        (me.sinks, me.options.event_log_capacity)
    };
    // `lastEventId` is sticky across events without an id; a ping has none of its own.
    let id = if name == protocol::EVENT_PING {
        None
    } else {
        non_empty(msg.last_event_id())
    };
    if sharing(inner) {
        // Leader: logged once (by id) and passed on to the followers.
        tabs_step(
            inner,
            TabsInput::StreamEvent(LoggedEvent {
                name: name.to_owned(),
                id,
                data: message_data(msg),
                time: local_time(),
            }),
        );
        return;
    }
    sinks.push_event(
        ReceivedEvent {
            name: name.to_owned(),
            id,
            data: message_data(msg),
            received_at: js_sys::Date::now(),
            time: local_time(),
            seq: 0,
        },
        capacity,
    );
}

/// `connected` and `ping` carry the fleet view (live clients, the event log's health). A
/// follower tab gets them from the leader over the channel and notes them the same way.
fn note_fleet(inner: &Rc<RefCell<Inner>>, name: &str, data: &str) {
    let fleet = match name {
        protocol::EVENT_PING => serde_json::from_str::<Ping>(data)
            .ok()
            .and_then(|p| p.fleet),
        protocol::EVENT_CONNECTED => serde_json::from_str::<Connected>(data)
            .ok()
            .and_then(|c| c.fleet),
        _ => return,
    };
    if let Some(fleet) = fleet {
        let sinks = inner.borrow().sinks;
        if sinks.fleet.with_untracked(|f| f.as_ref() != Some(&fleet)) {
            sinks.fleet.set(Some(fleet));
        }
    }
}

/// Now as the page's language writes a time of day.
fn local_time() -> String {
    crate::client::i18n::clock_time(js_sys::Date::now(), crate::client::i18n::initial_language())
}

/// `EventSource` hides the HTTP status of a failed stream: ask once with `fetch`.
fn probe(inner: &Rc<RefCell<Inner>>) {
    let Ok(controller) = AbortController::new() else {
        dispatch(inner, Input::Probe(ProbeOutcome::NetworkError));
        return;
    };
    let init = RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    init.set_cache(RequestCache::NoStore);
    let url = inner.borrow().options.url.clone();
    let promise = window().fetch_with_str_and_init(&url, &init);
    if let Some(old) = inner.borrow_mut().probe.replace(controller.clone()) {
        old.abort();
    }
    let timeout_ctrl = controller.clone();
    let _ = set_timeout_with_handle(move || timeout_ctrl.abort(), PROBE_TIMEOUT);
    let weak = Rc::downgrade(inner);
    leptos::task::spawn_local(async move {
        let outcome = match JsFuture::from(promise).await {
            Ok(resp) => resp
                .dyn_into::<web_sys::Response>()
                .map_or(ProbeOutcome::NetworkError, |r| {
                    ProbeOutcome::Status(r.status())
                }),
            Err(_) => ProbeOutcome::NetworkError,
        };
        // Do not keep a healthy stream open just for the probe.
        controller.abort();
        with(&weak, |rc| {
            rc.borrow_mut().probe = None;
            dispatch(rc, Input::Probe(outcome));
        });
    });
}

fn listen(
    inner: &Rc<RefCell<Inner>>,
    target: &EventTarget,
    name: &'static str,
    handler: fn(&Rc<RefCell<Inner>>, &web_sys::Event),
) {
    let weak = Rc::downgrade(inner);
    let listener: Listener = Closure::new(move |e: web_sys::Event| {
        with(&weak, |rc| handler(rc, &e));
    });
    let _ = target.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
    inner
        .borrow_mut()
        .listeners
        .push((target.clone(), name, listener));
}

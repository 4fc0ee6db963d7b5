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

use super::machine::{
    step, Command, Env, Input, ProbeOutcome, ReadyState, RefreshOutcome, ServerHello, State,
};
use super::signals::{ReceivedEvent, Sinks, UseConnectionStatusOptions};
use super::tabs::{group_key, LoggedEvent, TabRole, TabsInput};
use super::target::Target;
use crate::protocol::{self, Connected, Draining, FromJson, Ping, Resync};

use share::{comparable, post_state, tabs_step, Share};

/// How long the probe may take before it counts as a network error (a frozen link never answers).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// A query parameter of the page's URL (`?name=value`).
#[cfg(feature = "app")]
pub(crate) fn page_query_param(name: &str) -> Option<String> {
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
    /// The stream's request URL (its topics included): `Target::stream_url`.
    url: String,
    /// The event names the group of sharing tabs is named after: those listened for at start
    /// (`group_key`; a name registered later does not move the tab to another group).
    group_names: Vec<String>,
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
    /// Start the machine for the stream `target`: open it (unless offline) and begin ticking.
    pub(crate) fn start(
        mut options: UseConnectionStatusOptions,
        target: Target,
        sinks: Sinks,
        resume: Option<String>,
    ) -> Self {
        // The names `use_event`/`on_event` registered during the first render join the options'
        // (and so the sharing key: tabs share only with tabs that listen for the same names).
        options.event_names = sinks.all_names(&options);
        // The topics are part of the stream's address (and so of the sharing key).
        let url = target.stream_url();
        let group_names = options.event_names.clone();
        let tick_ms = u64::from(options.tick_ms.max(10));
        let share = Share::new(&options, group_key(&url, &group_names));
        let inner = Rc::new(RefCell::new(Inner {
            state: State {
                last_event_id: resume,
                ..State::initial()
            },
            options,
            url,
            group_names,
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
                if !hidden {
                    recheck(rc);
                }
            }
        });
        listen(&inner, &window, "pagehide", |rc, _| {
            tabs_step(rc, TabsInput::Leave);
        });
        listen(&inner, &window, "pageshow", |rc, e| {
            // Only a page restored from the back/forward cache: its stream may be dead.
            let persisted =
                js_sys::Reflect::get(e, &"persisted".into()).is_ok_and(|p| p.is_truthy());
            if !persisted {
                return;
            }
            if sharing(rc) {
                let hidden = document_hidden();
                tabs_step(rc, TabsInput::Return { hidden });
            } else {
                recheck(rc);
            }
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

    /// The page asks for another stream (`input`: the [`Input::Switch`] of `Target::switch_to`).
    /// The machine closes this stream and opens the new one; a tab sharing its stream moves to
    /// the new stream's group of tabs first (`Tabs::regroup`), and that group decides whether it
    /// opens the stream or follows the tab that holds it.
    pub(crate) fn switch(&self, target: Target, input: Input) {
        self.inner.borrow_mut().url = target.stream_url();
        if sharing(&self.inner) {
            share::regroup(&self.inner, input);
        } else {
            dispatch(&self.inner, input);
        }
    }

    /// Listen for one more application event name from now on (`use_event`/`on_event` in a
    /// component mounted after the connection started).
    pub(crate) fn listen(&self, name: &str) {
        let mut me = self.inner.borrow_mut();
        let built_in = name == "message" || protocol::RESERVED_EVENT_NAMES.contains(&name);
        if built_in || me.options.event_names.iter().any(|n| n == name) {
            return;
        }
        me.options.event_names.push(name.to_owned());
        if me.share.is_some() {
            // The leader's stream decides what every sharing tab hears.
            leptos::logging::warn!(
                "sse-status: event {name:?} was first asked for after the connection started; \
                 tabs sharing the stream hear it only if the leading tab listens for it too: \
                 list it in UseConnectionStatusOptions::event_names"
            );
        }
        let generation = me.generation;
        let weak = Rc::downgrade(&self.inner);
        if let Some(source) = me.source.as_mut() {
            let listener = app_listener(weak, name, generation);
            let _ = source
                .es
                .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            source._listeners.push(listener);
        }
    }

    /// The page closes the connection: this tab's state becomes `closed` (cause
    /// `closed-by-page`), then everything stops. A leader leaves the sharing first, so another
    /// tab takes the stream over; the other tabs' states are theirs.
    pub(crate) fn close(self) {
        let (state, sinks, policy) = {
            let me = self.inner.borrow();
            (me.state.clone(), me.sinks, me.options.policy.clone())
        };
        self.stop();
        let e = env();
        let (closed, _) = step(&state, &Input::Close, e, &policy);
        sinks.publish(&closed, e.now, &policy);
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

/// Tell the machine to check its stream now, with what the browser says of it.
fn recheck(inner: &Rc<RefCell<Inner>>) {
    let stream_closed = inner
        .borrow()
        .source
        .as_ref()
        .is_none_or(|s| s.es.ready_state() == EventSource::CLOSED);
    dispatch(inner, Input::Recheck { stream_closed });
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
        Command::Refresh => refresh(inner),
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
            stream_url(&me.url, last_event_id.as_deref()),
            me.options.event_names.clone(),
            me.generation,
        )
    };
    let init = web_sys::EventSourceInit::new();
    init.set_with_credentials(inner.borrow().options.with_credentials);
    let Ok(es) = EventSource::new_with_event_source_init_dict(&url, &init) else {
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
        let hello = Connected::from_json(&message_data(msg))?;
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
        let d = Draining::from_json(&message_data(msg))?;
        Some(Input::Draining {
            reconnect_after_ms: d.reconnect_after_ms,
        })
    });
    let app_event = |_: &str, msg: &MessageEvent| {
        Some(Input::Event {
            id: non_empty(msg.last_event_id()),
        })
    };
    on(protocol::EVENT_REAUTH, |_, msg| {
        let r = protocol::Reauth::from_json(&message_data(msg))?;
        Some(Input::Reauth {
            last_event_id: r.last_event_id,
        })
    });
    on(protocol::EVENT_REVOKED, |_, _| Some(Input::Revoked));
    on(protocol::EVENT_RESYNC, |_, msg| {
        let r = Resync::from_json(&message_data(msg))?;
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

/// A listener for an application event `name` of the stream opened as `generation`.
fn app_listener(weak: Weak<RefCell<Inner>>, name: &str, generation: u64) -> Listener {
    let event_name = name.to_owned();
    Closure::new(move |e: web_sys::Event| {
        let Ok(msg) = e.dyn_into::<MessageEvent>() else {
            return;
        };
        with(&weak, |rc| {
            if rc.borrow().generation != generation {
                return;
            }
            log_event(rc, &event_name, &msg);
            dispatch(
                rc,
                Input::Event {
                    id: non_empty(msg.last_event_id()),
                },
            );
        });
    })
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
        protocol::EVENT_PING => Ping::from_json(data).and_then(|p| p.fleet),
        protocol::EVENT_CONNECTED => Connected::from_json(data).and_then(|c| c.fleet),
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
    crate::client::i18n::clock_time(js_sys::Date::now(), crate::client::i18n::page_lang())
}

/// Renew the stream's access after `reauth`: `POST` the options' `refresh_url` with cookies
/// (or nothing to do without one), then tell the machine how it went.
fn refresh(inner: &Rc<RefCell<Inner>>) {
    let Some(url) = inner.borrow().options.refresh_url.clone() else {
        dispatch(inner, Input::Refreshed(RefreshOutcome::Done));
        return;
    };
    let Ok(controller) = AbortController::new() else {
        dispatch(inner, Input::Refreshed(RefreshOutcome::Failed));
        return;
    };
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_signal(Some(&controller.signal()));
    init.set_cache(RequestCache::NoStore);
    init.set_credentials(web_sys::RequestCredentials::Include);
    let promise = window().fetch_with_str_and_init(&url, &init);
    let timeout_ctrl = controller.clone();
    let _ = set_timeout_with_handle(move || timeout_ctrl.abort(), PROBE_TIMEOUT);
    let weak = Rc::downgrade(inner);
    leptos::task::spawn_local(async move {
        let outcome = match JsFuture::from(promise).await {
            Ok(resp) => match resp.dyn_into::<web_sys::Response>().map(|r| r.status()) {
                Ok(200..=299) => RefreshOutcome::Done,
                Ok(401 | 403) => RefreshOutcome::Denied,
                _ => RefreshOutcome::Failed,
            },
            Err(_) => RefreshOutcome::Failed,
        };
        with(&weak, |rc| dispatch(rc, Input::Refreshed(outcome)));
    });
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
    if inner.borrow().options.with_credentials {
        init.set_credentials(web_sys::RequestCredentials::Include);
    }
    let url = inner.borrow().url.clone();
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

mod share {
    //! Browser only (hydrate): the sharing half of the driver — the tab's Web Lock requests, its
    //! `BroadcastChannel`, and the commands of the pure tabs piece (`tabs.rs`) turned into browser
    //! calls and machine inputs. No decisions here.

    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{AbortController, MessageEvent};

    use super::{dispatch, document_hidden, env, window_navigator_online, with, Inner, Listener};
    use crate::client::machine::{step, Input, State};
    use crate::client::share_io::{self, LockManager};
    use crate::client::signals::{ReceivedEvent, UseConnectionStatusOptions};
    use crate::client::tabs::{
        group_key, Election, Msg, Snapshot, TabRole, TabSharing, Tabs, TabsCommand, TabsInput,
    };

    /// The sharing side of a tab: the pure [`Tabs`] and the browser objects it commands.
    pub(super) struct Share {
        pub(super) tabs: Tabs,
        /// `navigator.locks`, where it exists (else the tabs elect over the channel alone).
        pub(super) locks: Option<LockManager>,
        pub(super) channel: web_sys::BroadcastChannel,
        /// Name of the lock and of the channel: one per stream (and set of event names) and origin
        /// (`group_key`).
        pub(super) name: String,
        /// Bumped per lock request, so the settling of an abandoned request is ignored. It goes on
        /// counting in the next group after a regroup, so neither does one of the old group's.
        pub(super) lock_gen: u64,
        /// Aborts the queued request (before a steal, or on stop).
        pub(super) pending: Option<AbortController>,
        /// Lets go of the lock while this tab holds it.
        pub(super) release: Option<js_sys::Function>,
        /// The last state posted to the followers (leader), to post only changes.
        pub(super) posted: Option<State>,
        /// A one-shot tick when the tabs piece is next due (`Tabs::next_due`): `(at, handle)`.
        pub(super) wake: Option<(f64, TimeoutHandle)>,
        pub(super) _on_message: Option<Listener>,
    }

    impl Share {
        /// Sharing for this tab in the group `name`, if the options want it and the browser can
        /// (else: solo).
        pub(super) fn new(options: &UseConnectionStatusOptions, name: String) -> Option<Share> {
            if !options.share_across_tabs {
                return None;
            }
            if !share_io::has_channel() {
                return None;
            }
            let locks = share_io::locks();
            let election = if locks.is_some() {
                Election::Locks
            } else {
                Election::Channel
            };
            let tabs = Tabs::new(tab_id(), js_sys::Math::random(), election);
            Share::join(name, tabs, locks, 0)
        }

        /// The group `name`'s channel for `tabs` (about to start); `None` if the browser refuses
        /// the channel.
        fn join(
            name: String,
            tabs: Tabs,
            locks: Option<LockManager>,
            lock_gen: u64,
        ) -> Option<Share> {
            let channel = share_io::channel(&name)?;
            Some(Share {
                tabs,
                locks,
                channel,
                name,
                lock_gen,
                pending: None,
                release: None,
                posted: None,
                wake: None,
                _on_message: None,
            })
        }

        /// Let go of the lock (or the place in its queue), say goodbye (a leader electing over
        /// the channel names its heir), close the channel.
        pub(super) fn close(self) {
            if let Some((_, wake)) = self.wake {
                wake.clear();
            }
            if let Some(pending) = self.pending {
                pending.abort();
            }
            if let Some(release) = self.release {
                let _ = release.call0(&JsValue::UNDEFINED);
            }
            if !self.tabs.left {
                let leave = Msg::Leave {
                    heir: self.tabs.heir(),
                    from: self.tabs.me,
                };
                post(&self.channel, &leave);
            }
            self.channel.close();
        }
    }

    /// Feed the other tabs' messages to the tabs piece.
    pub(super) fn listen_channel(inner: &Rc<RefCell<Inner>>) {
        let w = Rc::downgrade(inner);
        let on_message: Listener = Closure::new(move |e: web_sys::Event| {
            let Ok(msg) = e.dyn_into::<MessageEvent>() else {
                return;
            };
            let Some(text) = msg.data().as_string() else {
                return;
            };
            if let Some(msg) = Msg::decode(&text) {
                with(&w, |rc| tabs_step(rc, TabsInput::Message(Box::new(msg))));
            }
        });
        if let Some(share) = inner.borrow_mut().share.as_mut() {
            let _ = share
                .channel
                .add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref());
            share._on_message = Some(on_message);
        }
    }

    /// A random id for this tab (only needs to differ between the tabs of one browser).
    fn tab_id() -> String {
        let a = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        let b = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        format!("{:x}", (a << 32) | b)
    }

    fn post(channel: &web_sys::BroadcastChannel, msg: &Msg) {
        let _ = channel.post_message(&JsValue::from_str(&msg.encode()));
    }

    /// What followers need not hear about again: the tick bookkeeping.
    pub(super) fn comparable(state: &State) -> State {
        let mut s = state.clone();
        s.last_tick = None;
        s.tab_hidden = false;
        s
    }

    /// Leader: tell the followers the machine's state (and the count of sharing tabs).
    pub(super) fn post_state(inner: &Rc<RefCell<Inner>>, now: f64) {
        let mut me = inner.borrow_mut();
        let state = comparable(&me.state);
        let Some(share) = me.share.as_mut() else {
            return;
        };
        if share.tabs.role != TabRole::Leader {
            return;
        }
        let msg = Msg::State {
            from: share.tabs.me.clone(),
            term: share.tabs.term,
            hidden: share.tabs.hidden,
            tabs: share.tabs.count(),
            state: Box::new(Snapshot::of(&state, now)),
        };
        post(&share.channel, &msg);
        share.posted = Some(state);
    }

    /// The page asks for another stream (`input`: [`Input::Switch`]): this tab leaves its group
    /// (`Tabs::regroup`: as on `pagehide`, so a leader hands the stream over) and joins the new
    /// stream's. The machine takes the switch's bookkeeping (the resume point; `connecting`,
    /// cause `switch`) but opens nothing yet: the new group decides — this tab leads it (and
    /// opens from that state) if nobody does, else follows its leader. Where the browser refuses
    /// the new channel, the tab goes on alone.
    pub(super) fn regroup(inner: &Rc<RefCell<Inner>>, input: Input) {
        let Input::Switch { fresh } = input else {
            return;
        };
        let now = env().now;
        let left = {
            let mut me = inner.borrow_mut();
            let policy = me.options.policy.clone();
            me.share
                .as_mut()
                .map(|share| share.tabs.regroup(fresh, now, &policy))
        };
        let Some((cmds, tabs)) = left else {
            return;
        };
        for cmd in cmds {
            run_tabs(inner, cmd, now);
        }
        let (old, name) = {
            let mut me = inner.borrow_mut();
            (me.share.take(), group_key(&me.url, &me.group_names))
        };
        let (locks, lock_gen) = old
            .as_ref()
            .map_or((None, 0), |s| (s.locks.clone(), s.lock_gen + 1));
        if let Some(old) = old {
            old.close();
        }
        let joined = {
            let mut me = inner.borrow_mut();
            me.share = Share::join(name, tabs, locks, lock_gen);
            me.share.is_some()
        };
        if !joined {
            let sinks = inner.borrow().sinks;
            sinks.sharing.set(TabSharing::default());
            dispatch(inner, input);
            return;
        }
        let e = env();
        let state = {
            let mut me = inner.borrow_mut();
            let (next, _opened_by_the_group) = step(&me.state, &input, e, &me.options.policy);
            me.state = next;
            me.state.clone()
        };
        super::publish(inner, &state, e.now);
        listen_channel(inner);
        let online = window_navigator_online();
        let hidden = document_hidden();
        tabs_step(inner, TabsInput::Start { online, hidden });
    }

    /// Feed one input to the tabs piece, then carry out its commands.
    pub(super) fn tabs_step(inner: &Rc<RefCell<Inner>>, input: TabsInput) {
        let now = env().now;
        let cmds = {
            let mut me = inner.borrow_mut();
            let policy = me.options.policy.clone();
            let Some(share) = me.share.as_mut() else {
                return;
            };
            share.tabs.step(input, now, &policy)
        };
        for cmd in cmds {
            run_tabs(inner, cmd, now);
        }
        wake_tabs(inner, now);
        let (sinks, sharing) = {
            let me = inner.borrow();
            let Some(share) = me.share.as_ref() else {
                return;
            };
            let sharing = TabSharing {
                role: share.tabs.role,
                tabs: share.tabs.count(),
            };
            (me.sinks, sharing)
        };
        if sinks.sharing.get_untracked() != sharing {
            sinks.sharing.set(sharing);
        }
    }

    /// Arm the one-shot tick for when the tabs piece is next due, unless one is armed for no
    /// later.
    fn wake_tabs(inner: &Rc<RefCell<Inner>>, now: f64) {
        let mut me = inner.borrow_mut();
        let policy = me.options.policy.clone();
        let Some(share) = me.share.as_mut() else {
            return;
        };
        let Some(due) = share.tabs.next_due(&policy) else {
            return;
        };
        if share
            .wake
            .as_ref()
            .is_some_and(|(at, _)| *at <= due && *at >= now)
        {
            return;
        }
        if let Some((_, old)) = share.wake.take() {
            old.clear();
        }
        let weak = Rc::downgrade(inner);
        let delay = Duration::from_millis((due - now).max(0.0).ceil() as u64 + 1);
        share.wake = set_timeout_with_handle(
            move || {
                with(&weak, |rc| {
                    if let Some(share) = rc.borrow_mut().share.as_mut() {
                        share.wake = None;
                    }
                    tabs_step(rc, TabsInput::Tick);
                })
            },
            delay,
        )
        .ok()
        .map(|handle| (due, handle));
    }

    fn run_tabs(inner: &Rc<RefCell<Inner>>, cmd: TabsCommand, now: f64) {
        match cmd {
            TabsCommand::Post(msg) => {
                if let Some(share) = inner.borrow().share.as_ref() {
                    post(&share.channel, &msg);
                }
            }
            TabsCommand::PostState => post_state(inner, now),
            TabsCommand::RequestLock => request_lock(inner, false),
            TabsCommand::StealLock => request_lock(inner, true),
            TabsCommand::CancelLock => {
                if let Some(share) = inner.borrow_mut().share.as_mut() {
                    // A grant still on its way is for an abandoned request: let go at once.
                    share.lock_gen += 1;
                    if let Some(pending) = share.pending.take() {
                        pending.abort();
                    }
                }
            }
            TabsCommand::Recheck => super::recheck(inner),
            TabsCommand::Lead { state, input } => {
                {
                    let mut me = inner.borrow_mut();
                    if let Some(state) = state {
                        me.state = *state;
                    }
                    if let Some(share) = me.share.as_mut() {
                        share.posted = None;
                    }
                }
                dispatch(inner, input);
            }
            TabsCommand::StepDown => {
                let mut me = inner.borrow_mut();
                me.generation += 1;
                if let Some(source) = me.source.take() {
                    source.es.close();
                }
                if let Some(probe) = me.probe.take() {
                    probe.abort();
                }
                if let Some(share) = me.share.as_mut() {
                    // Normally the lock is gone already (stolen); if not, let the queue have it.
                    if let Some(release) = share.release.take() {
                        let _ = release.call0(&JsValue::UNDEFINED);
                    }
                    share.posted = None;
                }
            }
            TabsCommand::Machine(input) => dispatch(inner, input),
            TabsCommand::Show(state) => {
                inner.borrow_mut().state = (*state).clone();
                super::publish(inner, &state, now);
            }
            TabsCommand::Log(event) => {
                // Followers learn the fleet view (live clients, store notice) from the relayed
                // `connected` and `ping` events, as the leader does from its stream.
                super::note_fleet(inner, &event.name, &event.data);
                let (sinks, capacity) = {
                    let me = inner.borrow();
                    (me.sinks, me.options.event_log_capacity)
                };
                sinks.push_event(
                    ReceivedEvent {
                        name: event.name,
                        id: event.id,
                        data: event.data,
                        received_at: js_sys::Date::now(),
                        time: event.time,
                        seq: 0,
                    },
                    capacity,
                );
            }
        }
    }

    /// Ask for the lock: queued (granted when the holder leaves) or stealing it from a silent one.
    fn request_lock(inner: &Rc<RefCell<Inner>>, steal: bool) {
        let (locks, name, gen, controller) = {
            let mut me = inner.borrow_mut();
            let Some(share) = me.share.as_mut() else {
                return;
            };
            let Some(locks) = share.locks.clone() else {
                return;
            };
            if let Some(pending) = share.pending.take() {
                pending.abort();
            }
            share.lock_gen += 1;
            // The API refuses a signal together with `steal`.
            let controller = (!steal).then(share_io::abort_controller).flatten();
            share.pending.clone_from(&controller);
            (locks, share.name.clone(), share.lock_gen, controller)
        };
        let current = move |rc: &Rc<RefCell<Inner>>| {
            rc.borrow()
                .share
                .as_ref()
                .is_some_and(|s| s.lock_gen == gen)
        };
        let granted_to = Rc::downgrade(inner);
        let signal = controller.map(|c| c.signal());
        let settled = share_io::request(&locks, &name, steal, signal.as_ref(), move || {
            let (hold, release) = share_io::hold();
            let mut ours = false;
            with(&granted_to, |rc| {
                if current(rc) {
                    ours = true;
                    if let Some(share) = rc.borrow_mut().share.as_mut() {
                        share.pending = None;
                        share.release = Some(release.clone());
                    }
                    tabs_step(rc, TabsInput::LockGranted);
                }
            });
            // A grant for a request we abandoned (or after stop): let go at once.
            if ours {
                hold
            } else {
                js_sys::Promise::resolve(&JsValue::UNDEFINED)
            }
        });
        let lost_by = Rc::downgrade(inner);
        leptos::task::spawn_local(async move {
            if JsFuture::from(settled).await.is_err() {
                with(&lost_by, |rc| {
                    if current(rc) {
                        tabs_step(rc, TabsInput::LockLost);
                    }
                });
            }
        });
    }
}

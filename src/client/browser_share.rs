//! Browser only (hydrate): the sharing half of the driver — the tab's Web Lock requests, its
//! `BroadcastChannel`, and the commands of the pure tabs piece (`tabs.rs`) turned into browser
//! calls and machine inputs. No decisions here.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, MessageEvent};

use super::{dispatch, env, with, Inner, Listener};
use crate::client::hook::{ReceivedEvent, UseConnectionStatusOptions};
use crate::client::machine::State;
use crate::client::share_io::{self, LockManager};
use crate::client::tabs::{Msg, Snapshot, TabRole, TabSharing, Tabs, TabsCommand, TabsInput};

/// The sharing side of a tab: the pure [`Tabs`] and the browser objects it commands.
pub(super) struct Share {
    pub(super) tabs: Tabs,
    pub(super) locks: LockManager,
    pub(super) channel: web_sys::BroadcastChannel,
    /// Name of the lock and of the channel: one per stream (and set of event names) and origin.
    pub(super) name: String,
    /// Bumped per lock request, so the settling of an abandoned request is ignored.
    pub(super) lock_gen: u64,
    /// Aborts the queued request (before a steal, or on stop).
    pub(super) pending: Option<AbortController>,
    /// Lets go of the lock while this tab holds it.
    pub(super) release: Option<js_sys::Function>,
    /// The last state posted to the followers (leader), to post only changes.
    pub(super) posted: Option<State>,
    pub(super) _on_message: Option<Listener>,
}

impl Share {
    /// Sharing for this tab, if the options want it and the browser can (else: solo).
    pub(super) fn new(options: &UseConnectionStatusOptions) -> Option<Share> {
        if !options.share_across_tabs {
            return None;
        }
        let locks = share_io::supported()?;
        let name = share_name(options);
        let channel = share_io::channel(&name)?;
        Some(Share {
            tabs: Tabs::new(tab_id(), js_sys::Math::random()),
            locks,
            channel,
            name,
            lock_gen: 0,
            pending: None,
            release: None,
            posted: None,
            _on_message: None,
        })
    }

    /// Let go of the lock (or the place in its queue), say goodbye, close the channel.
    pub(super) fn close(self) {
        if let Some(pending) = self.pending {
            pending.abort();
        }
        if let Some(release) = self.release {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
        post(&self.channel, &Msg::Leave { from: self.tabs.me });
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

/// One lock and channel per message format version, stream URL and set of listened-for event
/// names (a leader only passes on the events it listens for). Both APIs are scoped to the origin
/// already.
fn share_name(options: &UseConnectionStatusOptions) -> String {
    // In the given order (sorting would cost the bundle a sort): the same page asks the same.
    let mut name = format!(
        "sse-status/{} {}",
        crate::client::tabs::WIRE_VERSION,
        options.url
    );
    for event in &options.event_names {
        name.push(' ');
        name.push_str(event);
    }
    name
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
        TabsCommand::Lead { state, input } => {
            {
                let mut me = inner.borrow_mut();
                me.state = *state;
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
        if let Some(pending) = share.pending.take() {
            pending.abort();
        }
        share.lock_gen += 1;
        // The API refuses a signal together with `steal`.
        let controller = (!steal).then(share_io::abort_controller).flatten();
        share.pending.clone_from(&controller);
        (
            share.locks.clone(),
            share.name.clone(),
            share.lock_gen,
            controller,
        )
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

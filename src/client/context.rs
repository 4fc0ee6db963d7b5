//! Both sides: one connection per page, shared through Leptos context —
//! [`provide_connection_status`] at the root, [`use_connection_status`] and the typed
//! [`use_event`] anywhere below it. The rule: only `provide_connection_status` (or an explicit
//! `use_connection_status_with_options`) opens a connection; `use_connection_status` never does.

use leptos::prelude::*;
use serde::de::DeserializeOwned;

use super::hook::{
    use_connection_status_with_options, ConnectionDiagnostics, Registry, UseConnectionStatusReturn,
};
use super::signals::{ReceivedEvent, UseConnectionStatusOptions};

/// Open the page's connection with `options` and share it with every component below through
/// context: [`use_connection_status`] and [`use_event`] there read
/// this one instead of opening their own. Call it once, near the root of your app (typically in
/// `App`). Returns the same handles, for the component that calls it.
///
/// [`use_event`] and [`on_event`] below register the event names they need; list in
/// [`event_names`](UseConnectionStatusOptions::event_names) only names you read from `events`
/// without them (`EventSource` only delivers a named event to a listener of that exact name).
///
/// ## Server-Side Rendering
/// As [`use_connection_status_with_options`]: the server renders `connecting`, and the stream is
/// opened in the browser only (after hydration, or at once in a CSR app).
///
/// ```
/// use leptos::prelude::*;
/// use sse_status::client::{provide_connection_status, UseConnectionStatusOptions};
///
/// #[component]
/// fn App() -> impl IntoView {
///     provide_connection_status(UseConnectionStatusOptions::default().url("/live/events"));
///     view! { <main>"…"</main> }
/// }
/// ```
pub fn provide_connection_status(options: UseConnectionStatusOptions) -> UseConnectionStatusReturn {
    let status = use_connection_status_with_options(options);
    provide_context(status);
    status
}

/// The connection [`provide_connection_status`] shared, if an ancestor provided one.
pub(crate) fn connection_status_from_context() -> Option<UseConnectionStatusReturn> {
    use_context::<UseConnectionStatusReturn>()
}

/// The page's connection: the one an ancestor shared with [`provide_connection_status`].
///
/// It never opens a connection of its own: a second, silent `/events` stream per component
/// would double the server's load and hide which options are in force.
///
/// # Panics
/// Without [`provide_connection_status`] in an ancestor, with a message saying so (as Leptos's
/// `expect_context` does). A component that wants its own connection calls
/// [`use_connection_status_with_options`] instead.
///
/// ## Server-Side Rendering
/// The provided connection's initial values: `connecting` (see
/// [`use_connection_status_with_options`]).
pub fn use_connection_status() -> UseConnectionStatusReturn {
    connection_status_from_context().unwrap_or_else(|| {
        panic!(
            "use_connection_status(): no connection in context. Call \
             provide_connection_status(options) in an ancestor component (once per page), or \
             use_connection_status_with_options(options) for a connection of this component's own"
        )
    })
}

/// The diagnostics of the page's connection (the one [`provide_connection_status`] opened): the
/// machine's state, clock, timeline and policy, for a dashboard. Panics like
/// [`use_connection_status`] without a provider.
pub fn use_connection_diagnostics() -> ConnectionDiagnostics {
    use_connection_status().diagnostics()
}

/// Call `callback` with every event named `name` on the shared connection, as it arrives —
/// none is lost when several arrive between two renders (the `events` log and [`use_event`]
/// show the newest). Registers the name itself: no need to list it in
/// [`event_names`](UseConnectionStatusOptions::event_names). The callback is removed when the
/// calling component is cleaned up.
///
/// # Panics
/// Without [`provide_connection_status`] in an ancestor (see [`use_connection_status`]).
///
/// ## Server-Side Rendering
/// Never called (nothing is received on the server).
///
/// ```
/// use leptos::prelude::*;
/// use sse_status::client::on_event;
///
/// #[component]
/// fn Ticker() -> impl IntoView {
///     let count = RwSignal::new(0u32);
///     on_event("update", move |_event| count.update(|n| *n += 1));
///     view! { <p>{count}</p> }
/// }
/// ```
pub fn on_event(name: &str, callback: impl Fn(ReceivedEvent) + Send + Sync + 'static) {
    let registry = use_connection_status().registry;
    let id = registry.next_id.get_value();
    registry.next_id.set_value(id + 1);
    registry
        .handlers
        .update_value(|hs| hs.push((id, name.to_owned(), Callback::new(callback))));
    register_name(registry, name);
    on_cleanup(move || {
        registry
            .handlers
            .try_update_value(|hs| hs.retain(|(i, _, _)| *i != id));
    });
}

/// Listen for `name` on the connection (from now on, if it is open already).
fn register_name(registry: Registry, name: &str) {
    let new = registry
        .names
        .with_value(|names| !names.iter().any(|n| n == name));
    if new {
        registry
            .names
            .update_value(|names| names.push(name.to_owned()));
        registry.listen.run(name.to_owned());
    }
}

/// The latest application event named `name` from the shared connection, decoded from its JSON
/// `data:` with serde: `None` until the first one arrives. Registers the name itself (no need
/// to list it in [`event_names`](UseConnectionStatusOptions::event_names)). Every event of the
/// name is decoded as it arrives ([`on_event`]); the signal holds the newest. Data that does not
/// decode as `T` leaves the previous value and logs a warning to the console (the server accepts
/// any JSON, so a typed reader must not trust it).
///
/// # Panics
/// Without [`provide_connection_status`] in an ancestor (see [`use_connection_status`]).
///
/// ## Server-Side Rendering
/// `None` (nothing is received on the server).
///
/// ```
/// use leptos::prelude::*;
/// use serde::Deserialize;
/// use sse_status::client::use_event;
///
/// #[derive(Clone, PartialEq, Deserialize)]
/// struct Update {
///     n: u64,
/// }
///
/// #[component]
/// fn Counter() -> impl IntoView {
///     let update = use_event::<Update>("update");
///     view! { <p>{move || update.get().map(|u| u.n.to_string()).unwrap_or_default()}</p> }
/// }
/// ```
pub fn use_event<T>(name: &str) -> Signal<Option<T>>
where
    T: DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    let value = RwSignal::new(None::<T>);
    on_event(name, move |event| {
        match serde_json::from_str::<T>(&event.data) {
            Ok(decoded) => value.set(Some(decoded)),
            Err(err) => leptos::logging::warn!(
                "use_event({:?}): event {:?} does not decode: {err}",
                event.name,
                event.id
            ),
        }
    });
    value.into()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    #[should_panic(expected = "provide_connection_status")]
    fn without_a_provider_use_connection_status_says_so_instead_of_connecting() {
        Owner::new().with(|| {
            let _ = use_connection_status();
        });
    }

    #[test]
    fn below_a_provider_every_reader_gets_the_one_connection_and_names_register_once() {
        Owner::new().with(|| {
            let provided = provide_connection_status(UseConnectionStatusOptions::default());
            let read = use_connection_status();
            // The same registry, so the same connection (no second one was opened).
            read.registry.names.update_value(|n| n.push("probe".into()));
            assert!(provided
                .registry
                .names
                .with_value(|n| n.contains(&"probe".to_owned())));
            let _a = use_event::<u32>("update");
            let _b = use_event::<u32>("update");
            on_event("notice", |_| {});
            let names = provided.registry.names.get_value();
            assert_eq!(names, ["probe", "update", "notice"]);
            assert_eq!(provided.registry.handlers.with_value(Vec::len), 3);
        });
    }

    #[test]
    fn a_component_that_goes_away_takes_its_callbacks_with_it() {
        Owner::new().with(|| {
            let status = provide_connection_status(UseConnectionStatusOptions::default());
            let child = Owner::new();
            child.with(|| on_event("update", |_| {}));
            assert_eq!(status.registry.handlers.with_value(Vec::len), 1);
            child.cleanup();
            assert_eq!(status.registry.handlers.with_value(Vec::len), 0);
        });
    }

    #[test]
    fn the_latest_event_decodes_and_bad_data_keeps_the_previous_value() {
        Owner::new().with(|| {
            let status = provide_connection_status(UseConnectionStatusOptions::default());
            let latest = use_event::<u32>("update");
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&seen);
            on_event("update", move |e| log.lock().unwrap().push(e.data));
            let run = |data: &str| {
                let handlers = status.registry.handlers.get_value();
                for (_, name, cb) in handlers {
                    if name == "update" {
                        cb.run(ReceivedEvent {
                            name: "update".into(),
                            id: None,
                            data: data.into(),
                            received_at: 0.0,
                            time: String::new(),
                            seq: 0,
                        });
                    }
                }
            };
            assert_eq!(latest.get_untracked(), None);
            // A burst: three in one tick, each seen, the newest kept.
            for data in ["1", "2", "3"] {
                run(data);
            }
            assert_eq!(*seen.lock().unwrap(), ["1", "2", "3"]);
            assert_eq!(latest.get_untracked(), Some(3));
            run("\"not a number\"");
            assert_eq!(latest.get_untracked(), Some(3));
        });
    }
}

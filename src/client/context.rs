//! Both sides: one connection per page, shared through Leptos context —
//! [`provide_connection_status`] at the root, [`use_connection_status`] and the typed
//! [`use_event`] anywhere below it. The rule: only `provide_connection_status` (or an explicit
//! `use_connection_status_with_options`) opens a connection; `use_connection_status` never does.

use leptos::prelude::*;
use serde::de::DeserializeOwned;

use super::hook::{use_connection_status_with_options, UseConnectionStatusReturn};
use super::signals::{ReceivedEvent, UseConnectionStatusOptions};

/// Open the page's connection with `options` and share it with every component below through
/// context: [`use_connection_status`](super::use_connection_status) and [`use_event`] there read
/// this one instead of opening their own. Call it once, near the root of your app (typically in
/// `App`). Returns the same handles, for the component that calls it.
///
/// List every application event name you want to receive in
/// [`event_names`](UseConnectionStatusOptions::event_names): `EventSource` only delivers a
/// named event to a listener of that exact name.
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
///     provide_connection_status(UseConnectionStatusOptions {
///         url: "/live/events".into(),
///         event_names: vec!["update".into()],
///         ..Default::default()
///     });
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

/// The latest application event named `name` from the shared connection, decoded from its JSON
/// `data:` with serde: `None` until the first one arrives. The value stays when newer events of
/// other names push it out of the event log. Data that does not decode as `T` leaves the
/// previous value and logs a warning to the console (the server accepts any JSON, so a typed
/// reader must not trust it).
///
/// Needs [`provide_connection_status`] above, with `name` in its
/// [`event_names`](UseConnectionStatusOptions::event_names); without the context it logs a
/// warning and stays `None`.
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
    let Some(status) = connection_status_from_context() else {
        leptos::logging::warn!(
            "use_event({name:?}): no connection in context; call provide_connection_status \
             in an ancestor component"
        );
        return Signal::stored(None);
    };
    let name = name.to_owned();
    let events = status.events;
    // The newest event of that name; kept when it leaves the (bounded) event log.
    let last = Memo::new(move |prev: Option<&Option<ReceivedEvent>>| {
        events
            .with(|log| log.iter().find(|e| e.name == name).cloned())
            .or_else(|| prev.cloned().flatten())
    });
    let value = Memo::new(move |prev: Option<&Option<T>>| {
        last.with(|event| match event {
            None => None,
            Some(event) => match serde_json::from_str::<T>(&event.data) {
                Ok(value) => Some(value),
                Err(err) => {
                    leptos::logging::warn!(
                        "use_event({:?}): event {:?} does not decode: {err}",
                        event.name,
                        event.id
                    );
                    prev.cloned().flatten()
                }
            },
        })
    });
    value.into()
}

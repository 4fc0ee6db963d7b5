//! Server (and host tests): the driver's API with nothing behind it. Effects never run outside
//! the browser, so this only has to exist for the hook to compile without `cfg` in its body.
//! (And, for this repo's app, the page's query as the request being rendered has it.)

use leptos::prelude::StoredValue;

use super::machine::Input;
use super::signals::{Sinks, UseConnectionStatusOptions};
use super::target::Target;

/// Where the hook keeps its driver. Thread-safe storage: a server render may move threads
/// (thread-local storage would panic when touched from another one).
pub(crate) fn new_handle() -> StoredValue<Option<Driver>> {
    StoredValue::new(None)
}

/// A query parameter of the page's URL, as the request this render answers has it (this repo's
/// server provides the request's `Parts` to each render), so the server renders what the browser
/// will where a first render depends on one (`?immediate=0`). None outside a request.
#[cfg(feature = "app-server")]
pub(crate) fn page_query_param(name: &str) -> Option<String> {
    let parts = leptos::prelude::use_context::<axum::http::request::Parts>()?;
    form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A query parameter of the page's URL: none outside the browser and this repo's server.
#[cfg(all(feature = "app", not(feature = "app-server")))]
pub(crate) fn page_query_param(_name: &str) -> Option<String> {
    None
}

/// Stand-in for the browser driver.
pub(crate) struct Driver;

impl Driver {
    /// Does nothing: there is no `EventSource` outside a browser.
    pub(crate) fn start(
        _options: UseConnectionStatusOptions,
        _target: Target,
        _sinks: Sinks,
        _resume: Option<String>,
    ) -> Self {
        Driver
    }

    /// Does nothing.
    pub(crate) fn listen(&self, _name: &str) {}

    /// Does nothing.
    pub(crate) fn switch(&self, _target: Target, _input: Input) {}

    /// Does nothing.
    pub(crate) fn close(self) {}

    /// Does nothing.
    pub(crate) fn retry_now(&self) {}

    /// Does nothing.
    pub(crate) fn stop(self) {}
}

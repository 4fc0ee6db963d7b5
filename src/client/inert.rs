//! Server (and host tests): the driver's API with nothing behind it. Effects never run outside
//! the browser, so this only has to exist for the hook to compile without `cfg` in its body.

use leptos::prelude::StoredValue;

use super::signals::{Sinks, UseConnectionStatusOptions};

/// Where the hook keeps its driver. Thread-safe storage: a server render may move threads
/// (thread-local storage would panic when touched from another one).
pub(crate) fn new_handle() -> StoredValue<Option<Driver>> {
    StoredValue::new(None)
}

/// A query parameter of the page's URL: none outside the browser.
#[cfg(feature = "app")]
pub(crate) fn page_query_param(_name: &str) -> Option<String> {
    None
}

/// Stand-in for the browser driver.
pub(crate) struct Driver;

impl Driver {
    /// Does nothing: there is no `EventSource` outside a browser.
    pub(crate) fn start(
        _options: UseConnectionStatusOptions,
        _sinks: Sinks,
        _resume: Option<String>,
    ) -> Self {
        Driver
    }

    /// Does nothing.
    pub(crate) fn listen(&self, _name: &str) {}

    /// Does nothing.
    pub(crate) fn close(self) {}

    /// Does nothing.
    pub(crate) fn retry_now(&self) {}

    /// Does nothing.
    pub(crate) fn stop(self) {}
}

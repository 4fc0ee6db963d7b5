//! Both sides: the crate's module map and the browser entry point `hydrate()`.

// Leptos view types nest deeply; without `erase_components` the default limit is too low.
#![recursion_limit = "256"]

pub mod app;
pub mod components;
pub mod connection;
pub mod i18n;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: attach the client to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

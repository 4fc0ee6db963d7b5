//! Both sides: the crate's module map and the browser entry point `hydrate()`.

// Leptos view types nest deeply; without `erase_components` the default limit is too low.
#![recursion_limit = "256"]

#[cfg(feature = "app")]
pub mod app;
pub mod components;
pub mod connection;
#[cfg(feature = "app")]
pub mod pages;

#[cfg(feature = "ssr")]
pub mod server;

/// This repo's browser entry point (features `hydrate` + `app`): attach the dashboard to the
/// server-rendered page. An embedding app has its own and leaves `app` off.
#[cfg(all(feature = "hydrate", feature = "app"))]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

//! Both sides: an example Leptos 0.8 app that embeds sse-status — the module map and the
//! browser entry point `hydrate()` (this app's own; sse-status's stays off without its `app`
//! feature).

pub mod app;

/// Browser entry point: attach the client to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

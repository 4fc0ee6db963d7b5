//! Browser only (feature `csr`): the example's module map and its wasm entry point, which mounts
//! the [`app::App`] on `<body>`. The server (`main.rs`, feature `ssr`) only serves what
//! `build.sh` builds from here; nothing is rendered on the server.

#[cfg(feature = "csr")]
pub mod app;

/// Browser entry point: runs as soon as `pkg/csr.js`'s `init()` has instantiated the module.
#[cfg(feature = "csr")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}

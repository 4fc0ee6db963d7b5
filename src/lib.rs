//! Both sides: the crate's module map and guide, and this repo's browser entry point `hydrate()`.
//!
//! # sse-status: a connection status that never lies, for your Leptos app
//!
//! A Server-Sent Events stream on the server ([`server::LiveHub`], feature `ssr`) and, in the
//! browser, a hook that tells the truth about it ([`client::provide_connection_status`]: a
//! sans-IO state machine behind heartbeats, watchdogs, backoff and resumption) plus a banner
//! ([`client::ConnectionBanner`]). This repository's own dashboard is one user of it (feature
//! `app`); `examples/embed` and `examples/csr` are others.
//!
//! Four layers, arrows pointing one way: [`protocol`] (both sides, pure) ← [`server`] (feature
//! `ssr`) and [`client`] (both sides) ← `app` (this repo's dashboard, feature `app`).
//!
//! ## Add it to your app in five steps
//!
//! **1. Depend on it** with default features off, and pass your app's sides through (plus serde,
//! for the events you publish and read):
//!
//! ```toml
//! [dependencies]
//! sse-status = { git = "…", default-features = false }
//! serde = { version = "1", features = ["derive"] }
//!
//! [features]
//! ssr = ["sse-status/ssr", "leptos/ssr", "dep:leptos_axum", …]   # + "sse-status/redis" for a fleet
//! hydrate = ["sse-status/hydrate", "leptos/hydrate", …]   # or, in a CSR app: ["sse-status/csr", …]
//! ```
//!
//! Features: `ssr` is the server library (and the hook/banner rendering `connecting` on the
//! server), `redis` adds the shared Redis Streams log for a fleet, `hydrate` is the client library
//! in an SSR + hydration app, `csr` in a client-side rendered app. None of them brings this repo's
//! app; `app` does, and you leave it off.
//!
//! **2. Create the hub and mount its stream** in your own axum router, with your own listener
//! (`no_run`: it serves until Ctrl-C or SIGTERM):
//!
//! ```no_run
//! # #[cfg(feature = "ssr")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::Router;
//! use sse_status::server::{shutdown_signal, HubConfig, LiveHub};
//!
//! let hub = LiveHub::new(HubConfig::default())?; // inside the Tokio runtime
//! let app: Router = Router::new()
//!     // .route("/", …your Leptos routes…)
//!     // GET /live/events (the stream); /live/healthz, /live/readyz, /live/metrics.
//!     .nest("/live", hub.stream_router().merge(hub.ops_router()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let stopping = hub.clone();
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         shutdown_signal().await; // Ctrl-C or SIGTERM (docker, k8s, systemd)
//!         stopping.shutdown().await; // open streams would hold the shutdown forever
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`LiveHub::router`](server::LiveHub::router) mounts everything at once, including
//! `POST /api/publish` for publishers outside the process (the bearer token is
//! [`HubConfig::publish_token`](server::HubConfig::publish_token)). [`server::serve`] is an
//! optional serving loop: it owns the listener and writes `/events` straight to the socket (the
//! lean path for ~20k held streams per process), with header/idle/body timeouts and a socket cap.
//!
//! **3. Publish from Rust**, e.g. in a server function. Give it the hub through context, the
//! start-axum way: `.leptos_routes_with_context(&options, routes, move || provide_context(hub.clone()), …)`.
//!
//! ```no_run
//! # #[cfg(feature = "ssr")]
//! # async fn publish(hub: sse_status::server::LiveHub) -> Result<(), sse_status::server::PublishError> {
//! #[derive(serde::Serialize)]
//! struct Update { n: u64 }
//! let id = hub.publish("update", &Update { n: 1 }).await?; // the event's id once stored
//! # let _ = id; Ok(())
//! # }
//! ```
//!
//! **4. Connect the page once and show the banner** (the stream opens in the browser only):
//!
//! ```
//! use leptos::prelude::*;
//! use sse_status::client::{provide_connection_status, use_event, ConnectionBanner, UseConnectionStatusOptions};
//!
//! #[derive(Clone, PartialEq, serde::Deserialize)]
//! struct Update { n: u64 }
//!
//! #[component]
//! fn App() -> impl IntoView {
//!     // Where step 2 mounted the stream; `use_event("update")` below registers its own name.
//!     let status = provide_connection_status(UseConnectionStatusOptions::default().url("/live/events"));
//!     view! { <header><ConnectionBanner status/></header><Counter/> }
//! }
//!
//! #[component]
//! fn Counter() -> impl IntoView {
//!     // The latest `update`, decoded with serde; `None` until one arrives.
//!     let update = use_event::<Update>("update");
//!     view! { <p>{move || update.get().map(|u| u.n)}</p> }
//! }
//! ```
//!
//! The banner's look is its own stylesheet, `style/sse-status-banner.css` in this crate: copy it
//! next to your `style/main.css` and `@import` it (cargo-leptos's `style-bundle` inlines it); from
//! a git or registry dependency, take its text from [`client::BANNER_CSS`] (serve it, or write it
//! out in a `build.rs`); or style the classes yourself ([`client::BannerClasses`]).
//!
//! **5. Build and run** as any cargo-leptos app. Complete ones: `examples/embed` (SSR +
//! hydration) and `examples/csr` (client-side rendered).
//!
//! What the hook expects from the server, and therefore what to keep if you put a proxy in
//! between, is in `docs/architecture.md` ("The server contract").

// Leptos view types nest deeply; without `erase_components` the default limit is too low.
#![recursion_limit = "256"]
#![warn(missing_docs)]

/// Both sides: chainable setters for an options struct's public fields
/// (`Options::default().field(value)`), so options marked `#[non_exhaustive]` can grow without
/// breaking an app. `=`: the value as is; `into`: anything `Into` the field's type; `some`: sets
/// `Some(value.into())`; `list`: any iterator of values `Into` the item type.
macro_rules! setters {
    ($ty:ty { $($(#[$attr:meta])* $name:ident: $kind:tt $arg:ty),* $(,)? }) => {
        impl $ty {
            $( setters!(@one $(#[$attr])* $name $kind $arg); )*
        }
    };
    (@one $(#[$attr:meta])* $name:ident = $arg:ty) => {
        #[doc = concat!("Sets `", stringify!($name), "` (see the field).")]
        $(#[$attr])*
        #[must_use]
        pub fn $name(mut self, value: $arg) -> Self {
            self.$name = value;
            self
        }
    };
    (@one $(#[$attr:meta])* $name:ident into $arg:ty) => {
        $(#[$attr])*
        #[doc = concat!("Sets `", stringify!($name), "` (see the field).")]
        #[must_use]
        pub fn $name(mut self, value: impl Into<$arg>) -> Self {
            self.$name = value.into();
            self
        }
    };
    (@one $(#[$attr:meta])* $name:ident some $arg:ty) => {
        $(#[$attr])*
        #[doc = concat!("Sets `", stringify!($name), "` to `Some(value)` (see the field).")]
        #[must_use]
        pub fn $name(mut self, value: impl Into<$arg>) -> Self {
            self.$name = Some(value.into());
            self
        }
    };
    (@one $(#[$attr:meta])* $name:ident list $arg:ty) => {
        $(#[$attr])*
        #[doc = concat!("Sets `", stringify!($name), "` (see the field).")]
        #[must_use]
        pub fn $name(mut self, values: impl IntoIterator<Item = impl Into<$arg>>) -> Self {
            self.$name = values.into_iter().map(Into::into).collect();
            self
        }
    };
}

pub mod client;
pub mod protocol;
#[cfg(feature = "ssr")]
pub mod server;

/// This repository's own app (the dashboard). Not part of the library's API: an embedding app
/// leaves the `app` feature off.
#[cfg(feature = "app")]
#[doc(hidden)]
pub mod app;

/// This repo's browser entry point (features `hydrate` + `app`): attach the dashboard to the
/// server-rendered page. An embedding app has its own and leaves `app` off.
#[cfg(all(feature = "hydrate", feature = "app"))]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

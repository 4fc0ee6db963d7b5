//! Both sides (feature `app`; the top layer, imports everything below it): this repository's own
//! app, one user of the library. The HTML documents (rendered on the server) and the `App` root
//! the browser hydrates; its pages and their texts, the language choice, and on the server the
//! command line, logging, routes and `main`'s wiring.
//!
//! One page needs no client router: the server picks the document per route, and the browser
//! bundle stays small (no router, no head management). The language is chosen per request
//! (cookie, else `Accept-Language`: `language.rs`) and written into `<html lang>`, where the
//! browser reads it back before hydrating.

mod access;
mod actions;
mod language;
mod pages;
mod texts;

#[cfg(feature = "app-server")]
mod cli;
#[cfg(feature = "app-server")]
mod demo;
#[cfg(feature = "app-server")]
mod page_cache;
#[cfg(feature = "app-server")]
mod routes;
#[cfg(feature = "app-server")]
mod run;
#[cfg(feature = "app-server")]
mod telemetry;

#[cfg(feature = "app-server")]
pub use routes::site_router;
#[cfg(feature = "app-server")]
pub use run::main;

#[cfg(feature = "app-server")]
mod documents;
mod shell;

pub use shell::App;

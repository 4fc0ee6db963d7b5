//! Both sides (feature `app`; the top layer, imports everything below it): this repository's own
//! app, one user of the library. The HTML documents (rendered on the server) and the `App` root
//! the browser hydrates; its pages and their texts, the language choice, and on the server the
//! command line, logging, routes and `main`'s wiring.
//!
//! One page needs no client router: the server picks the document per route, and the browser
//! bundle stays small (no router, no head management). The language is chosen per request
//! (cookie, else `Accept-Language`: `language.rs`) and written into `<html lang>`, where the
//! browser reads it back before hydrating.

use leptos::prelude::*;

mod language;
mod pages;
mod texts;

#[cfg(feature = "app-server")]
mod cli;
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

use crate::client::i18n::Lang;
use language::initial_language;
use pages::{Dashboard, NotFound};
use texts::Texts;

/// The static `<head>` content every document shares.
#[component]
fn Head(
    /// The document title.
    title: &'static str,
    /// The page's language.
    lang: Lang,
) -> impl IntoView {
    view! {
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="description" content=Texts::of(lang).description/>
        <meta name="color-scheme" content="light dark"/>
        <title>{title}</title>
        <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
        <link id="leptos" rel="stylesheet" href="/pkg/sse-status.css"/>
    }
}

/// The dashboard document, rendered on the server; the browser hydrates its `<body>` with [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let lang = initial_language();
    view! {
        <!DOCTYPE html>
        <html lang=lang.tag()>
            <head>
                <Head title=Texts::of(lang).title lang/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The 404 document: static, nothing to hydrate (the server answers it with status 404).
pub fn not_found_shell(_options: LeptosOptions) -> impl IntoView {
    let lang = initial_language();
    view! {
        <!DOCTYPE html>
        <html lang=lang.tag()>
            <head>
                <Head title=Texts::of(lang).not_found_title lang/>
            </head>
            <body>
                <NotFound lang/>
            </body>
        </html>
    }
}

/// The application root: the dashboard, in the request's language (the server's choice, read
/// back from `<html lang>` in the browser).
#[component]
pub fn App() -> impl IntoView {
    view! { <Dashboard lang=initial_language()/> }
}

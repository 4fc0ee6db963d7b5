//! Both sides: the HTML documents (rendered on the server) and the `App` root the browser
//! hydrates. One page needs no client router: the server picks the document per route, and the
//! browser bundle stays small (no router, no head management).

use leptos::prelude::*;

use crate::pages::{Dashboard, NotFound};

/// The static `<head>` content every document shares.
#[component]
fn Head(
    /// The document title.
    title: &'static str,
) -> impl IntoView {
    view! {
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="description" content="Live connection status of this page, truthfully."/>
        <meta name="color-scheme" content="light dark"/>
        <title>{title}</title>
        <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
        <link id="leptos" rel="stylesheet" href="/pkg/sse-status.css"/>
    }
}

/// The dashboard document, rendered on the server; the browser hydrates its `<body>` with [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <Head title="sse-status — is this page live?"/>
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
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <Head title="Not found — sse-status"/>
            </head>
            <body>
                <NotFound/>
            </body>
        </html>
    }
}

/// The application root: the dashboard.
#[component]
pub fn App() -> impl IntoView {
    view! { <Dashboard/> }
}

//! Server only (feature `app-server`): the HTML documents, rendered on the server around [`App`].

use leptos::prelude::*;

use crate::app::access::initial_access;
use crate::app::language::initial_language;
use crate::app::pages::NotFound;
use crate::app::shell::App;
use crate::app::texts::Texts;
use crate::client::i18n::Lang;

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
    // The grant is read back from here before hydrating (the cookie is HttpOnly).
    let access = initial_access();
    view! {
        <!DOCTYPE html>
        <html
            lang=lang.tag()
            data-subject=access.subject.unwrap_or_default()
            data-topics=access.topics.join(" ")
            data-demo-users=access.demo_users.join(" ")
        >
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

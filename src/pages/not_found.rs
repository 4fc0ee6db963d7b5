//! Both sides: the app's 404 page (the server render also sets the 404 status).

use leptos::prelude::*;
use leptos_meta::Title;

/// Shown for every unknown path.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found — sse-status"/>
        <main class="page page--narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. The dashboard is at " <a href="/">"/"</a> "."</p>
        </main>
    }
}

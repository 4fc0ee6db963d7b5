//! Both sides (rendered by the server only): the app's 404 page.

use leptos::prelude::*;

/// Shown for every unknown path.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="page page--narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. The dashboard is at " <a href="/">"/"</a> "."</p>
        </main>
    }
}

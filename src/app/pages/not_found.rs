//! Both sides (rendered by the server only): the app's 404 page.

use leptos::prelude::*;

use crate::app::texts::Texts;
use crate::client::i18n::Lang;

/// Shown for every unknown path.
#[component]
pub fn NotFound(
    /// The request's language.
    lang: Lang,
) -> impl IntoView {
    let t = Texts::of(lang);
    view! {
        <main class="page page--narrow">
            <h1>{t.not_found_heading}</h1>
            <p>{t.not_found_before_link} <a href="/">"/"</a> {t.not_found_after_link}</p>
        </main>
    }
}

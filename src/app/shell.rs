//! Both sides (feature `app`): the `App` root the browser hydrates.

use leptos::prelude::*;

use crate::app::language::initial_language;
use crate::app::pages::Dashboard;

/// The application root: the dashboard, in the request's language (the server's choice, read
/// back from `<html lang>` in the browser).
#[component]
pub fn App() -> impl IntoView {
    view! { <Dashboard lang=initial_language()/> }
}

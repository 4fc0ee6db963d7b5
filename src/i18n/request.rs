//! Server (and host tests): the language of the request being rendered, from its `Cookie` and
//! `Accept-Language` headers (leptos_axum provides the request's parts to every render).

use super::Lang;

/// The request's language; English outside a request.
pub fn initial() -> Lang {
    #[cfg(feature = "ssr")]
    if let Some(parts) = leptos::prelude::use_context::<axum::http::request::Parts>() {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        return Lang::negotiate(header("cookie"), header("accept-language"));
    }
    Lang::En
}

/// Nothing to reload outside a browser.
pub fn reload() {}

/// Nothing to remember outside a browser.
pub fn remember(_lang: Lang) {}

/// `HH:MM:SS` in UTC: a server has no reader's time zone (and never renders received events).
pub fn clock_time(wall_ms: f64, _lang: Lang) -> String {
    let secs = (wall_ms.max(0.0) / 1000.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

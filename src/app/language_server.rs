//! Server (and host tests; feature `app`): the language of the request being rendered, from its
//! `Cookie` and `Accept-Language` headers (leptos_axum provides the request's parts to every
//! render).

use crate::client::i18n::Lang;

/// The request's language by `negotiate`; English outside a request.
pub fn initial(negotiate: fn(Option<&str>, Option<&str>) -> Lang) -> Lang {
    #[cfg(feature = "ssr")]
    if let Some(parts) = leptos::prelude::use_context::<axum::http::request::Parts>() {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        return negotiate(header("cookie"), header("accept-language"));
    }
    Lang::En
}

/// Nothing to reload outside a browser.
pub fn reload() {}

/// Nothing to remember outside a browser.
pub fn remember(_lang: Lang, _cookie_name: &str) {}

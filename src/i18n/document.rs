//! Browser only (hydrate): the language the server chose, read back from `<html lang>`, and a
//! new choice written to the document and the `lang` cookie.

use leptos::prelude::document;
use wasm_bindgen::JsCast;

use super::{Lang, COOKIE};

/// The language the server rendered (`<html lang>`), so hydration renders the same texts.
pub fn initial() -> Lang {
    document()
        .document_element()
        .and_then(|html| html.get_attribute("lang"))
        .and_then(|tag| Lang::from_tag(&tag))
        .unwrap_or_default()
}

/// Keep `lang` for this page and the next: `<html lang>`, the title, and a cookie for a year.
pub fn remember(lang: Lang) {
    let doc = document();
    if let Some(html) = doc.document_element() {
        let _ = html.set_attribute("lang", lang.tag());
    }
    doc.set_title(lang.texts().title);
    if let Ok(html_doc) = doc.dyn_into::<web_sys::HtmlDocument>() {
        let cookie = format!(
            "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.tag()
        );
        let _ = html_doc.set_cookie(&cookie);
    }
}

/// Load the page again from the server.
pub fn reload() {
    let _ = leptos::prelude::window().location().reload();
}

/// The time of day in the reader's time zone, as `lang` writes it.
pub fn clock_time(wall_ms: f64, lang: Lang) -> String {
    let date = js_sys::Date::new(&wall_ms.into());
    date.to_locale_time_string(lang.time_locale()).into()
}

//! Browser only (feature `app`): the language the server chose, read back from `<html lang>`,
//! and a new choice written to the document and the `lang` cookie.

use leptos::prelude::document;
use wasm_bindgen::JsCast;

use crate::app::texts::Texts;
use crate::client::i18n::{page_lang, Lang};

/// The language the server rendered (`<html lang>`), so hydration renders the same texts (the
/// server negotiated it; nothing to negotiate here).
pub fn initial(_negotiate: fn(Option<&str>, Option<&str>) -> Lang) -> Lang {
    page_lang()
}

/// Keep `lang` for this page and the next: `<html lang>`, the title, and a cookie for a year.
pub fn remember(lang: Lang, cookie_name: &str) {
    let doc = document();
    if let Some(html) = doc.document_element() {
        let _ = html.set_attribute("lang", lang.tag());
    }
    doc.set_title(Texts::of(lang).title);
    if let Ok(html_doc) = doc.dyn_into::<web_sys::HtmlDocument>() {
        let cookie = format!(
            "{cookie_name}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.tag()
        );
        let _ = html_doc.set_cookie(&cookie);
    }
}

/// Load the page again from the server.
pub fn reload() {
    let _ = leptos::prelude::window().location().reload();
}

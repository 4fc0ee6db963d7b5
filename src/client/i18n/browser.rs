//! Browser only: times of day through the browser's `Intl`, and the page's `<html lang>`.

use super::lang::Lang;

/// The time of day in the reader's time zone, as `lang` writes it.
pub fn clock_time(wall_ms: f64, lang: Lang) -> String {
    let date = js_sys::Date::new(&wall_ms.into());
    date.to_locale_time_string(lang.time_locale()).into()
}

/// The language `<html lang>` declares.
pub fn page_lang() -> Lang {
    leptos::prelude::document()
        .document_element()
        .and_then(|html| html.get_attribute("lang"))
        .and_then(|tag| Lang::from_tag(&tag))
        .unwrap_or_default()
}

//! Both sides (feature `app`): how this app chooses a page's language — the `lang` cookie, else
//! `Accept-Language`, else English — and how the dashboard's switch changes it.
//!
//! The server picks the language and writes it into `<html lang>`; the browser reads it back from
//! there before hydrating, so both render the same texts (no hydration mismatch). The switch sets
//! the cookie and reloads, so a reload keeps the choice.

use crate::client::i18n::Lang;

/// Name of the cookie that keeps a reader's choice.
pub(crate) const COOKIE: &str = "lang";

/// The language for a request: the cookie's if it names one we have, else the first
/// supported language of `Accept-Language` by quality, else English.
pub(crate) fn negotiate(cookie_header: Option<&str>, accept_language: Option<&str>) -> Lang {
    cookie_header
        .and_then(|h| cookie_value(h, COOKIE))
        .and_then(Lang::from_tag)
        .or_else(|| accept_language.and_then(preferred))
        .unwrap_or_default()
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The supported language an `Accept-Language` header prefers most (`q=0` means "not this").
fn preferred(header: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = Lang::from_tag(parts.next().unwrap_or("")) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1000), quality)
            .unwrap_or(0);
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// A `q` value in thousandths (`0.8` → 800), as RFC 9110 writes it (at most three decimals).
fn quality(q: &str) -> Option<u16> {
    let (int, frac) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    let int: u16 = int.parse().ok()?;
    let mut thousandths = 0u16;
    for (i, c) in frac.chars().take(3).enumerate() {
        thousandths += c.to_digit(10)? as u16 * [100, 10, 1][i];
    }
    Some((int * 1000 + thousandths).min(1000))
}

/// The language this render starts in: on the server, the request's (cookie, then
/// `Accept-Language`); in the browser, the one the server wrote into `<html lang>`.
pub(crate) fn initial_language() -> Lang {
    side::initial(negotiate)
}

/// Switch to `lang`: in the browser, set the `lang` cookie (and `<html lang>` and the title),
/// then reload, so the server renders the page in it. Texts are fixed per render: reactive texts
/// on every node would cost ~10 KB of browser bundle; a reload costs nothing.
pub(crate) fn switch_language(lang: Lang) {
    side::remember(lang, COOKIE);
    side::reload();
}

#[cfg(feature = "browser")]
#[path = "language_browser.rs"]
mod side;
#[cfg(not(feature = "browser"))]
#[path = "language_server.rs"]
mod side;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_wins_then_accept_language_by_quality_then_english() {
        let cases = [
            (Some("lang=zh-CN"), Some("en"), Lang::ZhCn),
            (Some("a=1; lang=en; b=2"), Some("zh-CN"), Lang::En),
            (Some("lang=fr"), Some("zh-CN,zh;q=0.9"), Lang::ZhCn),
            (Some("xlang=zh-CN"), None, Lang::En),
            (None, Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::ZhCn),
            (None, Some("fr-FR, en;q=0.5, zh;q=0.7"), Lang::ZhCn),
            (None, Some("en;q=0.9, zh;q=0.91"), Lang::ZhCn),
            (None, Some("zh;q=0, en;q=0.1"), Lang::En),
            (None, Some("zh;q=0"), Lang::En),
            (None, Some("de, fr"), Lang::En),
            (None, Some("en-US,en;q=0.9,zh-CN;q=0.8"), Lang::En),
            (None, Some("zh;q=1.0, en"), Lang::ZhCn),
            (None, Some("zh;q=bad, en;q=0.5"), Lang::En),
            (None, None, Lang::En),
        ];
        for (cookie, accept, want) in cases {
            assert_eq!(negotiate(cookie, accept), want, "{cookie:?} {accept:?}");
        }
    }

    #[test]
    fn qualities_parse_as_thousandths() {
        assert_eq!(quality("1"), Some(1000));
        assert_eq!(quality("1.000"), Some(1000));
        assert_eq!(quality("0.8"), Some(800));
        assert_eq!(quality("0.125"), Some(125));
        assert_eq!(quality("0"), Some(0));
        assert_eq!(quality("x"), None);
    }
}

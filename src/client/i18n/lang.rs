//! Both sides, pure: [`Lang`], the languages the library speaks.

/// A language of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English (the default when nothing asks for Chinese).
    #[default]
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    /// Every language, in the switch's order.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag (`<html lang>`, the cookie's value).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The locale that writes this language's times of day: British English for `en` (the
    /// texts' spelling, and a 24-hour clock that fits the event log), `zh-CN` for Chinese.
    pub fn time_locale(self) -> &'static str {
        match self {
            Lang::En => "en-GB",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language a tag asks for: `en`, `en-US`, … → English; `zh`, `zh-CN`, `zh-Hans`, and
    /// the other Chinese tags → Simplified Chinese (the one Chinese we have). Case-insensitive.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::ZhCn)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }
}

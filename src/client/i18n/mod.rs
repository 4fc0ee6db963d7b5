//! Both sides: the languages the banner speaks. [`Lang`], the banner's texts per language
//! (`en.rs`, `zh_cn.rs`), the context the banner reads the language from, and how a time of day
//! is written. Which language a page uses is the app's choice (this repo's: `app::language`).

use leptos::prelude::*;

mod en;
mod lang;
mod texts;
mod zh_cn;

pub use lang::Lang;
pub use texts::{BannerTexts, CauseTexts};

impl BannerTexts {
    /// The banner texts of `lang`.
    pub fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::En => en::BANNER,
            Lang::ZhCn => zh_cn::BANNER,
        }
    }
}

/// English.
impl Default for BannerTexts {
    fn default() -> Self {
        en::BANNER
    }
}

/// The language of a component tree (see [`provide_language`]).
#[derive(Debug, Clone, Copy)]
struct LanguageContext(Lang);

/// Make `lang` the language of this component tree (what [`use_language`] returns below it).
pub fn provide_language(lang: Lang) {
    provide_context(LanguageContext(lang));
}

/// The language of this component tree: what an ancestor provided with [`provide_language`],
/// else English (the same on the server and in the browser, so hydration matches).
pub fn use_language() -> Lang {
    use_context::<LanguageContext>().map_or(Lang::En, |c| c.0)
}

/// A wall-clock time (Unix ms) as the language writes a time of day: in the browser in the
/// reader's time zone (`Intl`), on the server as `HH:MM:SS` UTC (a server has no reader's zone).
pub fn clock_time(wall_ms: f64, lang: Lang) -> String {
    side::clock_time(wall_ms, lang)
}

/// The language the page declares in `<html lang>` (English if it names none the banner
/// speaks); on the server, English. A CSR app passes it to [`provide_language`]; the browser
/// driver writes received events' times in it.
pub fn page_lang() -> Lang {
    side::page_lang()
}

#[cfg(feature = "browser")]
#[path = "browser.rs"]
mod side;
#[cfg(not(feature = "browser"))]
#[path = "host.rs"]
mod side;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_to_languages() {
        for (tag, want) in [
            ("en", Some(Lang::En)),
            ("en-US", Some(Lang::En)),
            ("EN-gb", Some(Lang::En)),
            ("zh", Some(Lang::ZhCn)),
            ("zh-CN", Some(Lang::ZhCn)),
            ("zh-Hans-CN", Some(Lang::ZhCn)),
            ("zh_TW", Some(Lang::ZhCn)),
            ("fr", None),
            ("", None),
            ("*", None),
        ] {
            assert_eq!(Lang::from_tag(tag), want, "{tag:?}");
        }
        for lang in Lang::ALL {
            assert_eq!(Lang::from_tag(lang.tag()), Some(lang));
        }
    }

    #[test]
    fn the_host_side_writes_utc_and_reads_english() {
        assert_eq!(clock_time(3_723_000.0, Lang::ZhCn), "01:02:03");
        assert_eq!(clock_time(-5.0, Lang::En), "00:00:00");
        assert_eq!(page_lang(), Lang::En);
    }

    #[test]
    fn the_cause_line_never_repeats_the_title() {
        use crate::client::machine::{Cause, Phase};
        for lang in Lang::ALL {
            let t = BannerTexts::for_lang(lang);
            for phase in [
                Phase::Reconnecting,
                Phase::Stale,
                Phase::Offline,
                Phase::Failed,
            ] {
                for cause in [
                    Cause::ServerRestarting,
                    Cause::Unreachable,
                    Cause::HeartbeatMissed,
                ] {
                    let (title, line) = (t.title(phase, cause), t.cause_line(phase, cause));
                    assert!(
                        !title.trim_end_matches('…').contains(line) || line.is_empty(),
                        "{lang:?} {phase:?} {cause:?}: {title:?} / {line:?}"
                    );
                }
            }
            assert_eq!(
                t.cause_line(Phase::Reconnecting, Cause::ServerRestarting),
                ""
            );
            assert_eq!(
                t.cause_line(Phase::Reconnecting, Cause::Unreachable),
                t.causes.unreachable
            );
        }
    }

    #[test]
    fn banner_texts_follow_the_language() {
        assert_eq!(BannerTexts::for_lang(Lang::En), BannerTexts::default());
        assert_ne!(
            BannerTexts::for_lang(Lang::ZhCn).live,
            BannerTexts::default().live
        );
    }
}

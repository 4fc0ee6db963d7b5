//! Both sides: `StateTimeline`, the machine's recent state changes with their durations.

use leptos::prelude::*;

use crate::app::texts::Texts;
use crate::client::display::Timeline;
use crate::client::format::duration;
use crate::client::i18n::{BannerTexts, Lang};

/// Newest first; each item carries `data-state` and `data-cause`, and once it is over
/// `data-duration-ms`. Keyed: an entry renders once when it starts and once when it ends, and
/// nothing re-renders while the state holds (the running entry says "now", not a ticking age).
#[component]
pub fn StateTimeline(
    /// From `use_connection_status()`.
    timeline: Signal<Timeline>,
    /// The language of the texts.
    lang: Lang,
) -> impl IntoView {
    let t = Texts::of(lang);
    view! {
        // Scrollable: focusable, so a keyboard can scroll it.
        <ol class="timeline" data-testid="state-timeline" aria-label=t.timeline_label tabindex="0">
            {move || timeline.with(|tl| tl.entries().iter().map(|e| {
                    let ms = e.until.map(|until| until - e.at);
                    view! {
                        <li
                            class="timeline__item"
                            data-state=e.phase.as_str()
                            data-cause=e.cause.code()
                            data-duration-ms=ms.map(|ms| format!("{}", ms.round() as i64))
                        >
                            <span class=format!("pill pill--{}", e.phase.as_str())>
                                {t.phase(e.phase)}
                            </span>
                            <span class="timeline__cause">{BannerTexts::for_lang(lang).causes.get(e.cause)}</span>
                            <span class="timeline__duration">
                                {match ms {
                                    Some(ms) => duration(ms, lang),
                                    None => t.now.to_owned(),
                                }}
                            </span>
                        </li>
                    }
                }).collect_view())}
        </ol>
    }
}

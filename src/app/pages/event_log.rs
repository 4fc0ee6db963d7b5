//! Both sides: `EventLog`, the list of events this page received, newest first.

use std::collections::VecDeque;

use leptos::prelude::*;

use crate::app::texts::Texts;
use crate::client::i18n::{clock_time, Lang};
use crate::client::ReceivedEvent;

/// Longest data preview shown per event.
const PREVIEW_CHARS: usize = 120;

fn preview(data: &str) -> String {
    let mut out: String = data.chars().take(PREVIEW_CHARS).collect();
    if data.chars().count() > PREVIEW_CHARS {
        out.push('…');
    }
    out
}

/// The received events. Each item carries `data-event-id` and `data-event-name`.
#[component]
pub fn EventLog(
    /// From `use_connection_status()`.
    events: Signal<VecDeque<ReceivedEvent>>,
    /// The language of the texts and times.
    lang: Lang,
) -> impl IntoView {
    let t = Texts::of(lang);
    view! {
        <ol class="log" data-testid="event-log" aria-label=t.events_label tabindex="0">
            // Keyed: a new event renders one item; the others stay as they are.
            {move || events.with(|log| log.iter().map(|e| {
                    let kind = match e.name.as_str() {
                        "ping" => "log__item log__item--ping",
                        "connected" | "resync" | "draining" => "log__item log__item--protocol",
                        _ => "log__item log__item--app",
                    };
                    view! {
                        <li
                            class=kind
                            data-event-id=e.id.clone().unwrap_or_default()
                            data-event-name=e.name.clone()
                        >
                            <span class="log__time">{clock_time(e.received_at, lang)}</span>
                            <span class="log__name">{e.name.clone()}</span>
                            <span class="log__id">{e.id.clone().unwrap_or_else(|| "—".into())}</span>
                            <code class="log__data">{preview(&e.data)}</code>
                        </li>
                    }
                }).collect_view())}
        </ol>
        <p class="empty" hidden=move || events.with(|l| !l.is_empty())>
            {t.no_events}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn preview_truncates_long_data_on_char_boundaries() {
        assert_eq!(preview("{\"a\":1}"), "{\"a\":1}");
        let long = "é".repeat(200);
        let p = preview(&long);
        assert_eq!(p.chars().count(), 121);
        assert!(p.ends_with('…'));
    }
}

//! Both sides: `StateTimeline`, the machine's recent state changes with their durations.

use leptos::prelude::*;

use super::format::duration;
use crate::connection::display::Timeline;

/// Newest first; each item carries `data-state`, `data-cause` and `data-duration-ms`.
#[component]
pub fn StateTimeline(
    /// From `use_connection_status()`.
    timeline: Signal<Timeline>,
    /// Monotonic now, for the running entry's duration.
    now: Signal<f64>,
) -> impl IntoView {
    let items = move || {
        let now = now.get();
        timeline.with(|t| {
            t.entries()
                .iter()
                .map(|e| {
                    let ms = e.duration(now);
                    let cause = e.cause.describe();
                    view! {
                        <li
                            class="timeline__item"
                            data-state=e.phase.as_str()
                            data-cause=e.cause.code()
                            data-duration-ms=format!("{}", ms.round() as i64)
                        >
                            <span class=format!("pill pill--{}", e.phase.as_str())>
                                {e.phase.as_str()}
                            </span>
                            <span class="timeline__cause">{cause}</span>
                            <span class="timeline__duration">
                                {duration(ms)} {e.until.is_none().then_some(" (now)")}
                            </span>
                        </li>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <ol class="timeline" data-testid="state-timeline" aria-label="State changes, newest first">
            {items}
        </ol>
    }
}

//! Both sides: `ConnectionBanner`, the status line a user sees. A pure view of the hook's
//! signals; the live region itself is rendered once (server side) and never re-created.

use leptos::prelude::*;

use super::format::countdown_secs;
use crate::connection::machine::{Cause, Phase};
use crate::connection::UseConnectionStatusReturn;

/// The headline of each phase, in plain words.
fn title(phase: Phase, cause: Cause) -> &'static str {
    match phase {
        Phase::Connecting => "Connecting…",
        Phase::Connected => "Live",
        Phase::Reconnecting if cause == Cause::ServerRestarting => "Server restarting…",
        Phase::Reconnecting => "Reconnecting…",
        Phase::Stale => "Connection stale — checking…",
        Phase::Offline => "You are offline",
        Phase::Rejected => "Access refused",
        Phase::Paused => "Paused",
        Phase::Closed => "Stream closed",
        Phase::Failed => "Connection failed",
    }
}

fn can_retry(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Reconnecting
            | Phase::Stale
            | Phase::Failed
            | Phase::Rejected
            | Phase::Closed
            | Phase::Paused
    )
}

/// The connection banner: `data-state` is the debounced phase; `role="status"` from the first
/// byte of HTML; failures switch the region to assertive. While connected, the visible "Live"
/// mark is `aria-hidden`, so a healthy page is not announced.
#[component]
pub fn ConnectionBanner(
    /// From `use_connection_status()`.
    status: UseConnectionStatusReturn,
) -> impl IntoView {
    let UseConnectionStatusReturn {
        state,
        banner,
        now,
        retry_now,
        ..
    } = status;
    let phase = move || banner.get();
    let cause = move || {
        if phase() == Phase::Connected {
            Cause::None
        } else {
            state.with(|s| s.cause)
        }
    };
    let live = move || match phase() {
        Phase::Failed | Phase::Rejected => "assertive",
        _ => "polite",
    };
    let details = move || {
        let p = phase();
        (p != Phase::Connected).then(|| {
            let cause_text = cause().describe();
            view! {
                <strong class="banner__title" data-testid="banner-title">{title(p, cause())}</strong>
                <span class="banner__cause" data-testid="banner-cause">{cause_text}</span>
            }
        })
    };
    let countdown = move || {
        (phase() == Phase::Reconnecting).then(|| {
            let attempt = state.with(|s| s.attempt.max(1));
            let secs = state.with(|s| s.retry_at.map(|at| countdown_secs(at, now.get())));
            let next = match secs {
                Some(_) => "next try in",
                None => "trying now",
            };
            view! {
                <span class="banner__attempt">
                    "Attempt " <span data-testid="reconnect-attempt">{attempt}</span>
                </span>
                <span class="banner__countdown">
                    {next} " "
                    <span data-testid="reconnect-countdown">{secs.unwrap_or(0)}</span>
                    {secs.map(|_| " s")}
                </span>
            }
        })
    };
    let button = move || {
        can_retry(phase()).then(|| {
            view! {
                <button
                    type="button"
                    class="banner__retry"
                    data-testid="retry-now"
                    on:click=move |_| retry_now.run(())
                >
                    "Retry now"
                </button>
            }
        })
    };

    view! {
        <div
            class="banner"
            data-testid="connection-banner"
            data-state=move || phase().as_str()
            role="status"
            aria-live=live
        >
            <span class="banner__dot" aria-hidden="true"></span>
            <span class="banner__live" aria-hidden="true" hidden=move || phase() != Phase::Connected>
                "Live"
            </span>
            <span class="banner__text">{details}</span>
            // Ticking numbers would be re-announced every second: keep them out of the live region.
            <span class="banner__progress" aria-live="off">{countdown}</span>
            {button}
        </div>
    }
}

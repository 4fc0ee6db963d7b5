//! Both sides: `ConnectionBanner`, the status line a user sees. A pure view of a few signals
//! ([`BannerStatus`]); the live region itself is rendered once (server side) and never
//! re-created, and each part of it re-renders only when what it shows changes.
//!
//! Texts default to the page's language ([`crate::client::i18n::use_language`]) and can be replaced
//! ([`BannerTexts`]); so can the CSS classes ([`BannerClasses`]). The default classes are styled by
//! `style/sse-status-banner.css`, which a host app can include as it is.

use leptos::prelude::*;

use super::format::countdown_secs;
use crate::client::hook::UseConnectionStatusReturn;
use crate::client::i18n::{use_language, BannerTexts};
use crate::client::machine::{Cause, Phase};

/// The banner's stylesheet (`style/sse-status-banner.css` of this crate), for an app that
/// depends on the crate from git or a registry and so has no path to the file: serve it (e.g. a
/// route answering it as `text/css`), or write it next to your own CSS from a `build.rs`. It
/// styles [`BannerClasses::default`]'s classes; the state is on the root's `data-state`.
pub const BANNER_CSS: &str = include_str!("../../style/sse-status-banner.css");

/// What the banner shows besides the phase. One value, so the banner needs one signal for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BannerDetails {
    /// Why the connection is not connected (ignored while connected).
    pub cause: Cause,
    /// The reconnect attempt (shown while reconnecting).
    pub attempt: u32,
    /// Seconds to the next try; `None` while a try is in flight.
    pub countdown: Option<u64>,
}

/// What the banner shows, as signals. Make it from the hook's return (`status.into()`, or pass
/// the return itself as the `status` prop), or from your own signals.
#[derive(Clone, Copy)]
pub struct BannerStatus {
    /// The phase to show (debounced: [`UseConnectionStatusReturn::banner`]).
    pub phase: Signal<Phase>,
    /// Cause, attempt, countdown.
    pub details: Signal<BannerDetails>,
    /// What "Retry now" does; no button without it.
    pub retry_now: Option<Callback<()>>,
}

impl From<UseConnectionStatusReturn> for BannerStatus {
    /// A memo over the hook's state: it changes only when the cause, the attempt or the
    /// countdown's whole seconds do (and reads the ticking clock only while a retry waits).
    fn from(status: UseConnectionStatusReturn) -> Self {
        let state = status.state;
        let now = status.now;
        let details = Memo::new(move |_| {
            state.with(|s| BannerDetails {
                cause: s.cause,
                attempt: s.attempt.max(1),
                countdown: s.retry_at.map(|at| countdown_secs(at, now.get())),
            })
        });
        BannerStatus {
            phase: status.banner,
            details: details.into(),
            retry_now: Some(status.retry_now),
        }
    }
}

/// CSS classes of the banner's parts. The defaults (`banner`, `banner__dot`, …) are the ones
/// `style/sse-status-banner.css` styles; the state is on the root's `data-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BannerClasses {
    /// The banner itself.
    pub root: &'static str,
    /// The coloured dot.
    pub dot: &'static str,
    /// The mark shown while connected.
    pub live: &'static str,
    /// Headline and cause.
    pub text: &'static str,
    /// The headline.
    pub title: &'static str,
    /// The cause.
    pub cause: &'static str,
    /// Attempt and countdown.
    pub progress: &'static str,
    /// The attempt.
    pub attempt: &'static str,
    /// The countdown.
    pub countdown: &'static str,
    /// The "Retry now" button.
    pub retry: &'static str,
}

impl Default for BannerClasses {
    fn default() -> Self {
        BannerClasses {
            root: "banner",
            dot: "banner__dot",
            live: "banner__live",
            text: "banner__text",
            title: "banner__title",
            cause: "banner__cause",
            progress: "banner__progress",
            attempt: "banner__attempt",
            countdown: "banner__countdown",
            retry: "banner__retry",
        }
    }
}

/// Whether "Retry now" can do something: not while connected, connecting or offline, nor when the
/// page itself closed the stream or has not opened it (the page opens it: `open()`).
fn can_retry(phase: Phase, cause: Cause) -> bool {
    match phase {
        Phase::Closed => !matches!(cause, Cause::ClosedByPage | Cause::NotOpened),
        Phase::Reconnecting | Phase::Stale | Phase::Failed | Phase::Rejected | Phase::Paused => {
            true
        }
        Phase::Connecting | Phase::Connected | Phase::Offline => false,
    }
}

/// The connection banner: `data-state` is the debounced phase; `role="status"` from the first
/// byte of HTML; failures switch the region to assertive. While connected, the visible "Live"
/// mark is `aria-hidden`, so a healthy page is not announced.
#[component]
pub fn ConnectionBanner(
    /// What to show: the hook's return (`status=status`) or a [`BannerStatus`].
    #[prop(into)]
    status: BannerStatus,
    /// The texts; default: the table of the page's language ([`use_language`]).
    #[prop(optional)]
    texts: Option<BannerTexts>,
    /// The CSS classes; default: [`BannerClasses::default`].
    #[prop(optional)]
    classes: BannerClasses,
) -> impl IntoView {
    let BannerStatus {
        phase,
        details: facts,
        retry_now,
    } = status;
    let t = texts.unwrap_or_else(|| BannerTexts::for_lang(use_language()));
    let cause = move || facts.with(|f| f.cause);
    let attempt = move || facts.with(|f| f.attempt);
    let countdown = move || facts.with(|f| f.countdown);
    let connected = move || phase.get() == Phase::Connected;
    let reconnecting = move || phase.get() == Phase::Reconnecting;
    let retry = move || retry_now.is_some() && can_retry(phase.get(), cause());
    let live = move || match phase.get() {
        Phase::Failed | Phase::Rejected => "assertive",
        _ => "polite",
    };
    let details = move || {
        let p = phase.get();
        (p != Phase::Connected).then(|| {
            let c = cause();
            view! {
                <strong class=classes.title data-testid="banner-title">{t.title(p, c)}</strong>
                <span class=classes.cause data-testid="banner-cause">{t.cause_line(p, c)}</span>
            }
        })
    };
    let progress = move || {
        reconnecting().then(|| {
            view! {
                <span class=classes.attempt>
                    {t.attempt_before}
                    <span data-testid="reconnect-attempt">{move || attempt()}</span>
                    {t.attempt_after}
                </span>
                <span class=classes.countdown>
                    {move || match countdown() {
                        Some(_) => t.next_try_before,
                        None => t.trying_now,
                    }}
                    <span data-testid="reconnect-countdown" hidden=move || countdown().is_none()>
                        {move || countdown().unwrap_or(0)}
                    </span>
                    {move || countdown().map(|_| t.next_try_after)}
                </span>
            }
        })
    };
    let button = move || {
        retry().then(|| {
            view! {
                <button
                    type="button"
                    class=classes.retry
                    data-testid="retry-now"
                    on:click=move |_| {
                        if let Some(retry_now) = retry_now {
                            retry_now.run(());
                        }
                    }
                >
                    {t.retry_now}
                </button>
            }
        })
    };

    view! {
        <div
            class=classes.root
            data-testid="connection-banner"
            data-state=move || phase.get().as_str()
            data-cause=move || {
                (phase.get() != Phase::Connected && cause() != Cause::None).then(|| cause().code())
            }
            role="status"
            aria-live=live
        >
            <span class=classes.dot aria-hidden="true"></span>
            <span class=classes.live aria-hidden="true" hidden=move || !connected()>
                {t.live}
            </span>
            <span class=classes.text>{details}</span>
            // Ticking numbers would be re-announced every second: keep them out of the live region.
            <span class=classes.progress aria-live="off">{progress}</span>
            {button}
        </div>
    }
}

#[cfg(test)]
mod css_tests {
    use super::*;

    #[test]
    fn the_shipped_stylesheet_styles_every_default_class_and_state() {
        let c = BannerClasses::default();
        for class in [c.root, c.dot, c.text, c.cause, c.progress, c.retry] {
            assert!(
                BANNER_CSS.contains(&format!(".{class}")),
                "{class} unstyled"
            );
        }
        for state in [
            "connected",
            "reconnecting",
            "stale",
            "offline",
            "rejected",
            "failed",
        ] {
            assert!(
                BANNER_CSS.contains(&format!("[data-state=\"{state}\"]")),
                "{state} unstyled"
            );
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::client::i18n::{provide_language, Lang};

    fn status(phase: Phase) -> BannerStatus {
        BannerStatus {
            phase: Signal::stored(phase),
            details: Signal::stored(BannerDetails {
                cause: Cause::ServerError,
                attempt: 2,
                countdown: Some(3),
            }),
            retry_now: Some(Callback::new(|()| {})),
        }
    }

    fn render(view: impl FnOnce() -> AnyView) -> String {
        Owner::new().with(|| view().to_html())
    }

    #[test]
    fn texts_follow_the_language_and_can_be_overridden() {
        let en =
            render(|| view! { <ConnectionBanner status=status(Phase::Reconnecting)/> }.into_any());
        assert!(
            en.contains("Reconnecting…") && en.contains("Server error"),
            "{en}"
        );
        assert!(
            en.contains("Retry now") && en.contains("next try in"),
            "{en}"
        );

        let zh = render(|| {
            provide_language(Lang::ZhCn);
            view! { <ConnectionBanner status=status(Phase::Reconnecting)/> }.into_any()
        });
        assert!(
            zh.contains("正在重新连接…") && zh.contains("服务器错误"),
            "{zh}"
        );
        assert!(zh.contains("立即重试") && zh.contains("秒后重试"), "{zh}");

        let custom = render(|| {
            let texts = BannerTexts {
                retry_now: "Try again",
                ..BannerTexts::for_lang(Lang::En)
            };
            let classes = BannerClasses {
                root: "my-banner",
                retry: "my-button",
                ..BannerClasses::default()
            };
            view! { <ConnectionBanner status=status(Phase::Failed) texts=texts classes=classes/> }
                .into_any()
        });
        assert!(
            custom.contains("Try again") && !custom.contains("Retry now"),
            "{custom}"
        );
        assert!(custom.contains(r#"class="my-banner""#), "{custom}");
        assert!(custom.contains(r#"class="my-button""#), "{custom}");
        assert!(custom.contains(r#"aria-live="assertive""#), "{custom}");
    }

    #[test]
    fn not_opened_says_not_connected_and_leaves_opening_to_the_page() {
        let closed = |cause| {
            render(move || {
                let status = BannerStatus {
                    details: Signal::stored(BannerDetails {
                        cause,
                        attempt: 1,
                        countdown: None,
                    }),
                    ..status(Phase::Closed)
                };
                view! { <ConnectionBanner status=status/> }.into_any()
            })
        };
        let html = closed(Cause::NotOpened);
        assert!(html.contains("Not connected"), "{html}");
        assert!(html.contains(r#"data-cause="not-opened""#), "{html}");
        assert!(!html.contains("retry-now"), "the page opens it: {html}");
        let html = closed(Cause::ClosedByPage);
        assert!(html.contains("Stream closed"), "{html}");
        assert!(!html.contains("retry-now"), "the page reopens it: {html}");
        // The server ended it (204): the user may try again.
        assert!(closed(Cause::ServerClosed).contains("retry-now"));
        let zh = render(|| {
            provide_language(Lang::ZhCn);
            let status = BannerStatus {
                details: Signal::stored(BannerDetails {
                    cause: Cause::NotOpened,
                    attempt: 1,
                    countdown: None,
                }),
                ..status(Phase::Closed)
            };
            view! { <ConnectionBanner status=status/> }.into_any()
        });
        assert!(
            zh.contains("未连接") && zh.contains("此页面尚未打开数据流"),
            "{zh}"
        );
    }

    #[test]
    fn no_retry_button_without_a_callback() {
        let html = render(|| {
            let status = BannerStatus {
                retry_now: None,
                ..status(Phase::Failed)
            };
            view! { <ConnectionBanner status=status/> }.into_any()
        });
        assert!(!html.contains("retry-now"), "{html}");
    }
}

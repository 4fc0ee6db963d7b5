//! Both sides: the dashboard at `/` — this page's own connection, live: banner, machine state,
//! heartbeat, reconnects, a timeline of state changes and the received events.

use leptos::prelude::*;

use super::event_log::EventLog;
use super::timeline::StateTimeline;
use crate::app::access::{initial_access, PageAccess, PUBLIC_TOPIC};
use crate::app::actions::post_json;
use crate::app::language::switch_language;
use crate::app::texts::Texts;
use crate::client::format::duration;
use crate::client::i18n::{BannerTexts, Lang};
use crate::client::machine::{Cause, Phase, State};
use crate::client::policy::Policy;
use crate::client::ConnectionBanner;
use crate::client::{
    page_query_param, use_connection_status_with_options, UseConnectionStatusOptions,
};
use crate::protocol::json::write_object;
use crate::protocol::Fleet;

/// Application event names the dashboard listens for unless `?events=a,b` adds others
/// (`EventSource` only delivers named events to listeners of that name).
const DEFAULT_EVENT_NAMES: [&str; 6] = ["update", "notice", "alert", "deploy", "chat", "demo"];

/// Client options from the query string: `max_attempts`, `hidden_grace_ms`, `events`, `share`
/// (`share=0`: this tab keeps its own stream instead of sharing one with the browser's others),
/// `immediate` (`immediate=0`: the page opens its stream only when asked to — the Connection
/// card's button — as an app with `immediate: false` does, say after a sign-in). The topics:
/// [`topics_from_query`].
fn options_from_query(get: impl Fn(&str) -> Option<String>) -> UseConnectionStatusOptions {
    let mut policy = Policy::default();
    if let Some(n) = get("max_attempts").and_then(|v| v.parse().ok()) {
        policy.max_attempts = Some(n);
    }
    if let Some(ms) = get("hidden_grace_ms").and_then(|v| v.parse::<f64>().ok()) {
        policy.hidden_grace_ms = ms.max(0.0);
    }
    let mut event_names: Vec<String> = DEFAULT_EVENT_NAMES.iter().map(|s| s.to_string()).collect();
    if let Some(extra) = get("events") {
        event_names.extend(
            extra
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    let off = |name| matches!(get(name).as_deref(), Some("0" | "false" | "off"));
    UseConnectionStatusOptions {
        policy,
        event_names,
        share_across_tabs: !off("share"),
        immediate: !off("immediate"),
        ..UseConnectionStatusOptions::default()
    }
}

/// The topics `?topics=a,b` asks this page to stream (`None` without it: the whole grant). The
/// server checks them against the grant as always, so one outside it is refused.
fn topics_from_query(get: impl Fn(&str) -> Option<String>) -> Option<Vec<String>> {
    // A topic never contains a comma (see the protocol's topic rules).
    get("topics").map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// What the last reconnect meant for the data: replayed, lost, or a new server.
#[component]
fn Notices(state: Signal<State>, lang: Lang) -> impl IntoView {
    let t = Texts::of(lang);
    let resync = move || state.with(|s| s.resync.clone());
    let replayed = move || {
        state.with(|s| {
            (s.phase == Phase::Connected && s.reconnects > 0 && s.resync.is_none())
                .then(|| s.hello.as_ref().map_or(0, |h| h.replayed))
        })
    };
    let restarted = move || state.with(|s| s.server_restarted);
    view! {
        <p class="notice notice--warn" data-testid="resync-notice" hidden=move || resync().is_none()>
            {t.resync_before}
            {move || resync().map(|r| t.resync_reason(&r)).unwrap_or_default()}
            {t.resync_after}
        </p>
        <p
            class="notice"
            data-testid="replay-notice"
            data-replayed=move || replayed().map(|n| n.to_string()).unwrap_or_default()
            hidden=move || replayed().is_none()
        >
            {move || replayed().map(t.replayed).unwrap_or_default()}
        </p>
        <p class="notice" data-testid="restart-notice" hidden=move || !restarted()>
            {t.server_restarted}
        </p>
    }
}

/// Live clients across the fleet (this process's own with the embedded log), and a notice
/// while the event log is unreachable: updates are delayed, the page's link itself is fine.
#[component]
fn FleetView(fleet: Signal<Option<Fleet>>, state: Signal<State>, lang: Lang) -> impl IntoView {
    let t = Texts::of(lang);
    let clients = move || fleet.with(|f| f.as_ref().map(|f| f.clients));
    let instances = move || fleet.with(|f| f.as_ref().map(|f| f.instances));
    let store_down = move || {
        state.with(|s| s.phase == Phase::Connected)
            && fleet.with(|f| f.as_ref().is_some_and(|f| !f.store_ok()))
    };
    view! {
        <p
            class="big"
            data-testid="live-clients"
            data-count=move || clients().map(|n| n.to_string()).unwrap_or_default()
            data-instances=move || instances().map(|n| n.to_string()).unwrap_or_default()
        >
            {move || match (clients(), instances()) {
                (Some(c), Some(i)) => (t.live_clients_text)(c, i),
                _ => "—".to_owned(),
            }}
        </p>
        <Show when=store_down>
            <p class="notice notice--warn" data-testid="store-notice" role="status">
                {t.store_notice}
            </p>
        </Show>
    }
}

/// The language switch (a `<select>` of the languages, each named in itself): a choice sets the
/// `lang` cookie and reloads, so the server renders the page in it.
fn on_language_change(ev: leptos::ev::Event) {
    if let Some(next) = Lang::from_tag(&event_target_value(&ev)) {
        switch_language(next);
    }
}

/// Whom the page streams as, the granted topics — a checkbox each: ticked, the page streams it;
/// a change switches the stream without a reload — and (with `--demo-users`) the demo's sign-in
/// and publish form.
#[component]
fn AccessCard(
    access: PageAccess,
    lang: Lang,
    /// The topics the page streams (the hook's `topics`).
    streamed: RwSignal<Vec<String>>,
) -> impl IntoView {
    let t = Texts::of(lang);
    let PageAccess {
        subject,
        topics,
        demo_users,
    } = access;
    let signed_in = subject.is_some();
    let demo = (!demo_users.is_empty()).then(|| {
        let mut targets = vec![PUBLIC_TOPIC.to_owned()];
        targets.extend(demo_users.iter().map(|u| format!("users/{u}")));
        let topic = RwSignal::new(PUBLIC_TOPIC.to_owned());
        let text = RwSignal::new(String::new());
        let send = move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            // Keys sorted, as serde_json's `json!` wrote them.
            let body = write_object(&[("text", &text.get_untracked()), ("topic", &topic.get_untracked())]);
            post_json("/demo/publish", body, false);
        };
        view! {
            <div class="demo" data-testid="demo">
                <p>
                    {t.sign_in_as} " "
                    {demo_users
                        .into_iter()
                        .map(|user| {
                            let body = write_object(&[("user", &user)]);
                            view! {
                                <button
                                    type="button"
                                    data-testid=format!("sign-in-{user}")
                                    on:click=move |_| post_json("/demo/sign-in", body.clone(), true)
                                >
                                    {user.clone()}
                                </button>
                                " "
                            }
                        })
                        .collect::<Vec<_>>()}
                    {signed_in.then(|| view! {
                        <button
                            type="button"
                            data-testid="sign-out"
                            on:click=move |_| post_json("/demo/sign-out", "{}".into(), true)
                        >
                            {t.sign_out}
                        </button>
                    })}
                </p>
                <form class="demo__publish" data-testid="demo-publish" on:submit=send hidden=!signed_in>
                    <label>
                        {t.publish_to} " "
                        <select
                            data-testid="demo-topic"
                            on:change=move |ev| topic.set(event_target_value(&ev))
                        >
                            {targets
                                .into_iter()
                                .map(|target| view! { <option value=target.clone()>{target.clone()}</option> })
                                .collect::<Vec<_>>()}
                        </select>
                    </label>
                    " "
                    <label>
                        {t.message} " "
                        <input
                            data-testid="demo-text"
                            on:input=move |ev| text.set(event_target_value(&ev))
                        />
                    </label>
                    " "
                    <button type="submit" data-testid="demo-send">{t.send}</button>
                </form>
            </div>
        }
    });
    view! {
        <article class="card">
            <h2>{t.access}</h2>
            <p class="big">
                <strong data-testid="subject">{subject.clone().unwrap_or_default()}</strong>
                <span class="muted">{subject.is_none().then_some(t.anonymous)}</span>
            </p>
            <p class="muted" hidden=topics.is_empty()>{t.topics_label}</p>
            <p class="muted" hidden=topics.is_empty()>{t.topics_hint}</p>
            <ul class="topics" data-testid="topics">
                {topics
                    .into_iter()
                    .map(|topic| {
                        let name = topic.clone();
                        let ticked = move || streamed.with(|s| s.contains(&name));
                        let name = topic.clone();
                        let toggle = move |ev: leptos::ev::Event| {
                            let on = event_target_checked(&ev);
                            streamed.update(|s| {
                                s.retain(|t| *t != name);
                                if on {
                                    s.push(name.clone());
                                }
                            });
                        };
                        view! {
                            <li data-topic=topic.clone()>
                                <label>
                                    <input
                                        type="checkbox"
                                        data-testid="follow-topic"
                                        value=topic.clone()
                                        checked=ticked()
                                        prop:checked=ticked
                                        on:change=toggle
                                    />
                                    " "
                                    <code>{topic.clone()}</code>
                                </label>
                            </li>
                        }
                    })
                    .collect::<Vec<_>>()}
            </ul>
            {demo}
        </article>
    }
}

/// The dashboard. The machine's state is published only when it changes (not on every tick), and
/// each view reads just its own field of it.
#[component]
pub fn Dashboard(
    /// The page's language (fixed per render: the switch reloads).
    lang: Lang,
) -> impl IntoView {
    // The server renders with the request's query and the browser with the page's: both render
    // the same (the options steer the browser's driver; `immediate` and the topics also show).
    // Who this page streams as: the server read it from the access cookie (see `access.rs`).
    let access = initial_access();
    let mut options = options_from_query(page_query_param);
    // The topics this page streams: `?topics=`, else the whole grant. The access card's
    // checkboxes change them, and the stream follows without a reload.
    let streamed =
        RwSignal::new(topics_from_query(page_query_param).unwrap_or_else(|| access.topics.clone()));
    options.topics = streamed.into();
    if !access.demo_users.is_empty() {
        // The demo renews the access token there when the stream says `reauth`.
        options.refresh_url = Some("/demo/refresh".into());
    }
    let status = use_connection_status_with_options(options);
    let diagnostics = status.diagnostics();
    let state = diagnostics.state;
    let now = diagnostics.now;

    // The page's texts: the language this page was rendered in.
    let l = lang;
    let t = Texts::of(l);
    let phase = move || state.with(|s| s.phase);
    let cause = move || state.with(|s| s.cause);
    let since_at = move || state.with(|s| s.since);
    let last_event_at = move || state.with(|s| s.last_event_at);
    let attempt = move || state.with(|s| s.attempt);
    let reconnects = move || state.with(|s| s.reconnects);
    let last_event_id = move || state.with(|s| s.last_event_id.clone());
    let role = move || status.sharing.with(|s| s.role);
    // The page closed its stream (or has not opened it): its button opens it, else closes it.
    let page_closed = move || {
        state.with(|s| {
            s.phase == Phase::Closed && matches!(s.cause, Cause::ClosedByPage | Cause::NotOpened)
        })
    };
    let toggle_stream = move |_| {
        if page_closed() {
            status.open.run(());
        } else {
            status.close.run(());
        }
    };
    let shared_tabs = move || status.sharing.with(|s| s.tabs);
    let age = move || last_event_at().map(|at| (now.get() - at).max(0.0));
    let deadline = move || {
        let policy = diagnostics.policy.get_value();
        state.with(|s| {
            s.hello
                .as_ref()
                .map(|h| policy.watchdog_deadline_ms(h.heartbeat_ms as f64))
        })
    };
    let heartbeat_fill = move || match (age(), deadline()) {
        (Some(a), Some(d)) if d > 0.0 => format!("width: {}%", (a / d * 100.0).min(100.0) as u32),
        _ => "width: 0%".to_owned(),
    };

    view! {
        <main class="page" data-hydrated=move || status.running.get().to_string()>
            <header class="top">
                <div class="brand">
                    <h1>"sse-status"</h1>
                    <p class="tagline">{t.tagline}</p>
                </div>
                <div class="top__side">
                    <label class="lang">
                        {t.language_label}
                        <select data-testid="language-switch" on:change=on_language_change>
                            <option value=Lang::En.tag() lang=Lang::En.tag() selected=l == Lang::En>
                                {Texts::of(Lang::En).name}
                            </option>
                            <option value=Lang::ZhCn.tag() lang=Lang::ZhCn.tag() selected=l == Lang::ZhCn>
                                {Texts::of(Lang::ZhCn).name}
                            </option>
                        </select>
                    </label>
                    <ConnectionBanner status=status texts=BannerTexts::for_lang(l)/>
                </div>
            </header>
            <section class="grid">
                <article class="card">
                    <h2>{t.connection}</h2>
                    <p class="big">
                        <span
                            class=move || format!("pill pill--{}", phase().as_str())
                            data-testid="machine-state"
                            data-state=move || phase().as_str()
                            data-cause=move || cause().code()
                        >
                            {move || t.phase(phase())}
                        </span>
                        <span class="muted">
                            {t.state_for} {move || duration(now.get() - since_at(), l)}
                        </span>
                    </p>
                    <p class="muted" data-testid="state-cause">
                        {move || BannerTexts::for_lang(l).causes.get(cause())}
                    </p>
                    <Notices state=state lang=l/>
                    <dl class="facts">
                        <dt>{t.connection_id}</dt>
                        <dd>
                            <code data-testid="connection-id">
                                {move || state.with(|s| s.hello.as_ref().map_or_else(|| "—".to_owned(), |h| h.connection_id.clone()))}
                            </code>
                        </dd>
                        <dt>{t.server_id}</dt>
                        <dd>
                            <code data-testid="server-id">
                                {move || state.with(|s| s.hello.as_ref().map_or_else(|| "—".to_owned(), |h| h.server_id.clone()))}
                            </code>
                        </dd>
                        <dt>{t.this_tab}</dt>
                        <dd>
                            <span
                                class=move || format!("role role--{}", role().as_str())
                                data-testid="tab-role"
                                data-role=move || role().as_str()
                            >
                                {move || t.role(role()).0}
                            </span>
                            <span class="role__hint">{move || t.role(role()).1}</span>
                        </dd>
                        <dt>{t.tabs_sharing}</dt>
                        <dd data-testid="shared-tabs" data-count=move || shared_tabs().to_string()>
                            {move || shared_tabs().to_string()}
                        </dd>
                    </dl>
                    <p>
                        <button
                            type="button"
                            data-testid="stream-toggle"
                            data-action=move || if page_closed() { "open" } else { "close" }
                            on:click=toggle_stream
                        >
                            {move || if page_closed() { t.open_stream } else { t.close_stream }}
                        </button>
                    </p>
                </article>

                <article class="card">
                    <h2>{t.heartbeat}</h2>
                    <p class="big">
                        <span
                            data-testid="last-heartbeat"
                            data-age-ms=move || age().map(|a| format!("{}", a.round() as i64)).unwrap_or_default()
                        >
                            {move || age().map_or_else(
                                || "—".to_owned(),
                                |a| format!("{}{}{}", t.ago_before, duration(a, l), t.ago_after),
                            )}
                        </span>
                    </p>
                    <div class="meter" aria-hidden="true">
                        <div class="meter__fill" style=heartbeat_fill></div>
                    </div>
                    <p class="muted">
                        {move || match (state.with(|s| s.hello.as_ref().map(|h| h.heartbeat_ms)), deadline()) {
                            (Some(ms), Some(d)) => {
                                let [a, b, c] = t.ping_every;
                                format!("{a}{}{b}{}{c}", duration(ms as f64, l), duration(d, l))
                            }
                            _ => t.waiting_first_event.to_owned(),
                        }}
                    </p>
                </article>

                <article class="card">
                    <h2>{t.reconnects}</h2>
                    <dl class="facts">
                        <dt>{t.current_attempt}</dt>
                        <dd data-testid="reconnect-attempts">{move || attempt()}</dd>
                        <dt>{t.successful_reconnects}</dt>
                        <dd data-testid="reconnect-count">{move || reconnects()}</dd>
                        <dt>{t.last_event_id}</dt>
                        <dd><code>{move || last_event_id().unwrap_or_else(|| "—".into())}</code></dd>
                    </dl>
                    <p class="muted" hidden=move || phase() == Phase::Connected>
                        {t.retries_by_itself}
                    </p>
                </article>

                <AccessCard access lang=l streamed/>

                <article class="card">
                    <h2>{t.live_clients}</h2>
                    <FleetView fleet=status.fleet state=state lang=l/>
                </article>

                <article class="card card--wide">
                    <h2>{t.timeline}</h2>
                    <StateTimeline timeline=diagnostics.timeline lang=l/>
                </article>

                <article class="card card--wide">
                    <h2>{t.events}</h2>
                    <EventLog events=status.events lang=l/>
                </article>
            </section>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options hold signals: build them under a reactive owner, as the page does.
    fn options_from_query(get: impl Fn(&str) -> Option<String>) -> UseConnectionStatusOptions {
        Owner::new().with(|| super::options_from_query(get))
    }

    #[test]
    fn query_sets_policy_and_extra_event_names() {
        let opts = options_from_query(|k| match k {
            "max_attempts" => Some("3".into()),
            "hidden_grace_ms" => Some("2000".into()),
            "events" => Some("price, ,news".into()),
            _ => None,
        });
        assert_eq!(opts.policy.max_attempts, Some(3));
        assert_eq!(opts.policy.hidden_grace_ms, 2000.0);
        assert!(opts.event_names.iter().any(|n| n == "price"));
        assert!(opts.event_names.iter().any(|n| n == "news"));
        assert!(!opts.event_names.iter().any(|n| n.is_empty()));
        assert!(opts.share_across_tabs, "sharing is on unless ?share=0");
    }

    #[test]
    fn share_zero_turns_tab_sharing_off() {
        for off in ["0", "false", "off"] {
            let opts = options_from_query(|k| (k == "share").then(|| off.into()));
            assert!(!opts.share_across_tabs, "share={off}");
        }
        let opts = options_from_query(|k| (k == "share").then(|| "1".into()));
        assert!(opts.share_across_tabs);
    }

    #[test]
    fn topics_narrow_the_stream() {
        let topics = topics_from_query(|k| (k == "topics").then(|| "users/alice, ,public".into()));
        assert_eq!(topics.unwrap(), ["users/alice", "public"]);
        assert_eq!(
            topics_from_query(|_| None),
            None,
            "default: the grant decides"
        );
    }

    #[test]
    fn immediate_zero_leaves_opening_to_the_page() {
        assert!(options_from_query(|_| None).immediate);
        for off in ["0", "false", "off"] {
            let opts = options_from_query(|k| (k == "immediate").then(|| off.into()));
            assert!(!opts.immediate, "immediate={off}");
        }
    }

    #[test]
    fn bad_query_values_keep_defaults() {
        let opts = options_from_query(|k| match k {
            "max_attempts" => Some("many".into()),
            "hidden_grace_ms" => Some("soon".into()),
            _ => None,
        });
        assert_eq!(opts.policy, Policy::default());
    }
}

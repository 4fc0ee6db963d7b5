//! Both sides: the dashboard at `/` — this page's own connection, live: banner, machine state,
//! heartbeat, reconnects, a timeline of state changes and the received events.

use leptos::prelude::*;

use crate::components::format::duration;
use crate::components::{ConnectionBanner, EventLog, StateTimeline};
use crate::connection::machine::{Phase, State};
use crate::connection::policy::Policy;
use crate::connection::protocol::Fleet;
use crate::connection::tabs::TabRole;
use crate::connection::{
    page_query_param, use_connection_status_with_options, UseConnectionStatusOptions,
};

/// Application event names the dashboard listens for unless `?events=a,b` adds others
/// (`EventSource` only delivers named events to listeners of that name).
const DEFAULT_EVENT_NAMES: [&str; 6] = ["update", "notice", "alert", "deploy", "chat", "demo"];

/// Client options from the query string: `max_attempts`, `hidden_grace_ms`, `events`, `share`
/// (`share=0`: this tab keeps its own stream instead of sharing one with the browser's others).
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
    let share_across_tabs = !matches!(get("share").as_deref(), Some("0" | "false" | "off"));
    UseConnectionStatusOptions {
        policy,
        event_names,
        share_across_tabs,
        ..UseConnectionStatusOptions::default()
    }
}

/// What the last reconnect meant for the data: replayed, lost, or a new server.
#[component]
fn Notices(state: Signal<State>) -> impl IntoView {
    let resync = move || state.with(|s| s.resync.clone());
    let replayed = move || {
        state.with(|s| {
            (s.phase == Phase::Connected && s.reconnects > 0 && s.resync.is_none())
                .then(|| s.hello.as_ref().map_or(0, |h| h.replayed))
        })
    };
    view! {
        <p class="notice notice--warn" data-testid="resync-notice" hidden=move || resync().is_none()>
            "Missed updates — how many is unknown ("
            {move || resync().map(|r| resync_reason(&r)).unwrap_or_default()}
            "). Refetch to be sure."
        </p>
        <p
            class="notice"
            data-testid="replay-notice"
            data-replayed=move || replayed().map(|n| n.to_string()).unwrap_or_default()
            hidden=move || replayed().is_none()
        >
            {move || match replayed() {
                Some(0) => "Reconnected, nothing missed.".to_owned(),
                Some(1) => "Reconnected, 1 missed event replayed.".to_owned(),
                Some(n) => format!("Reconnected, {n} missed events replayed."),
                None => String::new(),
            }}
        </p>
        <p class="notice" data-testid="restart-notice" hidden=move || !state.with(|s| s.server_restarted)>
            "Server restarted: this page now talks to a new server process."
        </p>
    }
}

/// Live clients across the fleet (this process's own with the embedded log), and a notice
/// while the event log is unreachable: updates are delayed, the page's link itself is fine.
#[component]
fn FleetView(fleet: Signal<Option<Fleet>>, state: Signal<State>) -> impl IntoView {
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
                (Some(c), Some(i)) => live_clients_text(c, i),
                _ => "—".to_owned(),
            }}
        </p>
        <Show when=store_down>
            <p class="notice notice--warn" data-testid="store-notice" role="status">
                "Updates delayed: the event log is unreachable. This page stays connected and gets every stored update once it is back."
            </p>
        </Show>
    }
}

/// "1,234 live clients on 3 instances".
fn live_clients_text(clients: u64, instances: u32) -> String {
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            one.to_owned()
        } else {
            many.to_owned()
        }
    };
    format!(
        "{} {} on {} {}",
        thousands(clients),
        plural(clients, "live client", "live clients"),
        thousands(u64::from(instances)),
        plural(u64::from(instances), "instance", "instances"),
    )
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// This tab's role and what it means, in plain words.
fn role_text(role: TabRole) -> (&'static str, &'static str) {
    match role {
        TabRole::Leader => ("Leader", "holds the stream for the other tabs"),
        TabRole::Follower => ("Follower", "gets the stream from another tab"),
        TabRole::Solo => ("Solo", "has its own stream"),
    }
}

fn resync_reason(code: &str) -> &'static str {
    match code {
        "other-server" => "the server restarted",
        "other-log" => "the server now keeps events elsewhere",
        "too-old" => "too many events while away",
        _ => "the server did not know our last event",
    }
}

/// The dashboard.
#[component]
pub fn Dashboard() -> impl IntoView {
    // The options only steer the browser's driver, so the server render (which has no query
    // here) and the hydrated page still match.
    let status = use_connection_status_with_options(options_from_query(page_query_param));
    let state = status.state;
    let now = status.now;

    let phase = move || state.with(|s| s.phase);
    let role = move || status.sharing.get().role;
    let shared_tabs = move || status.sharing.get().tabs;
    let since = move || duration(now.get() - state.with(|s| s.since));
    let hello = move || state.with(|s| s.hello.clone());
    let connection_id = move || hello().map_or_else(|| "—".to_owned(), |h| h.connection_id);
    let server_id = move || hello().map_or_else(|| "—".to_owned(), |h| h.server_id);
    let age = move || {
        state
            .with(|s| s.last_event_at)
            .map(|at| (now.get() - at).max(0.0))
    };
    let deadline = move || {
        let policy = status.policy.get_value();
        hello().map(|h| policy.watchdog_deadline_ms(h.heartbeat_ms as f64))
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
                    <p class="tagline">"Is this page live? The truth, fast."</p>
                </div>
                <ConnectionBanner status=status/>
            </header>

            <section class="grid">
                <article class="card">
                    <h2>"Connection"</h2>
                    <p class="big">
                        <span
                            class=move || format!("pill pill--{}", phase().as_str())
                            data-testid="machine-state"
                            data-state=move || phase().as_str()
                            data-cause=move || state.with(|s| s.cause.code())
                        >
                            {move || phase().as_str()}
                        </span>
                        <span class="muted">" for " {since}</span>
                    </p>
                    <p class="muted" data-testid="state-cause">
                        {move || state.with(|s| s.cause.describe())}
                    </p>
                    <Notices state=state/>
                    <dl class="facts">
                        <dt>"Connection id"</dt>
                        <dd><code data-testid="connection-id">{connection_id}</code></dd>
                        <dt>"Server id"</dt>
                        <dd><code data-testid="server-id">{server_id}</code></dd>
                        <dt>"This tab"</dt>
                        <dd>
                            <span
                                class=move || format!("role role--{}", role().as_str())
                                data-testid="tab-role"
                                data-role=move || role().as_str()
                            >
                                {move || role_text(role()).0}
                            </span>
                            <span class="role__hint">{move || role_text(role()).1}</span>
                        </dd>
                        <dt>"Tabs sharing the stream"</dt>
                        <dd
                            data-testid="shared-tabs"
                            data-count=move || shared_tabs().to_string()
                        >
                            {move || shared_tabs().to_string()}
                        </dd>
                    </dl>
                </article>

                <article class="card">
                    <h2>"Heartbeat"</h2>
                    <p class="big">
                        <span
                            data-testid="last-heartbeat"
                            data-age-ms=move || age().map(|a| format!("{}", a.round() as i64)).unwrap_or_default()
                        >
                            {move || age().map_or_else(|| "—".to_owned(), |a| format!("{} ago", duration(a)))}
                        </span>
                    </p>
                    <div class="meter" aria-hidden="true">
                        <div class="meter__fill" style=heartbeat_fill></div>
                    </div>
                    <p class="muted">
                        {move || match (hello(), deadline()) {
                            (Some(h), Some(d)) => format!(
                                "Ping every {}; stale after {} of silence.",
                                duration(h.heartbeat_ms as f64),
                                duration(d)
                            ),
                            _ => "Waiting for the server's first event.".to_owned(),
                        }}
                    </p>
                </article>

                <article class="card">
                    <h2>"Reconnects"</h2>
                    <dl class="facts">
                        <dt>"Current attempt"</dt>
                        <dd data-testid="reconnect-attempts">{move || state.with(|s| s.attempt)}</dd>
                        <dt>"Successful reconnects"</dt>
                        <dd data-testid="reconnect-count">{move || state.with(|s| s.reconnects)}</dd>
                        <dt>"Last event id"</dt>
                        <dd><code>{move || state.with(|s| s.last_event_id.clone()).unwrap_or_else(|| "—".into())}</code></dd>
                    </dl>
                    <p class="muted" hidden=move || phase() == Phase::Connected>
                        "The page retries by itself with backoff and jitter."
                    </p>
                </article>

                <article class="card">
                    <h2>"Live clients"</h2>
                    <FleetView fleet=status.fleet state=state/>
                </article>

                <article class="card card--wide">
                    <h2>"State timeline"</h2>
                    <StateTimeline timeline=status.timeline now=now/>
                </article>

                <article class="card card--wide">
                    <h2>"Events"</h2>
                    <EventLog events=status.events/>
                </article>
            </section>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn live_clients_read_naturally() {
        assert_eq!(
            live_clients_text(1234, 3),
            "1,234 live clients on 3 instances"
        );
        assert_eq!(live_clients_text(1, 1), "1 live client on 1 instance");
        assert_eq!(live_clients_text(0, 2), "0 live clients on 2 instances");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
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

//! Both sides (feature `app`): the dashboard's English texts.

use super::table::Texts;
use crate::client::format::thousands;

fn live_clients(clients: u64, instances: u32) -> String {
    let client = if clients == 1 {
        "live client"
    } else {
        "live clients"
    };
    let instance = if instances == 1 {
        "instance"
    } else {
        "instances"
    };
    format!(
        "{} {client} on {} {instance}",
        thousands(clients),
        thousands(u64::from(instances))
    )
}

fn replayed(n: u64) -> String {
    match n {
        0 => "Reconnected, nothing missed.".to_owned(),
        1 => "Reconnected, 1 missed event replayed.".to_owned(),
        n => format!("Reconnected, {} missed events replayed.", thousands(n)),
    }
}

/// English.
pub(crate) static TEXTS: Texts = Texts {
    name: "English",
    language_label: "Language",
    title: "sse-status — is this page live?",
    description: "Live connection status of this page, truthfully.",
    not_found_title: "Not found — sse-status",
    not_found_heading: "Page not found",
    not_found_before_link: "There is nothing at this address. The dashboard is at ",
    not_found_after_link: ".",

    phases: [
        "connecting",
        "connected",
        "reconnecting",
        "stale",
        "offline",
        "rejected",
        "paused",
        "closed",
        "failed",
    ],

    tagline: "Is this page live? The truth, fast.",
    connection: "Connection",
    state_for: " for ",
    connection_id: "Connection id",
    server_id: "Server id",
    this_tab: "This tab",
    roles: [
        ("Leader", "holds the stream for the other tabs"),
        ("Follower", "gets the stream from another tab"),
        ("Solo", "has its own stream"),
    ],
    tabs_sharing: "Tabs sharing the stream",
    heartbeat: "Heartbeat",
    ago_before: "",
    ago_after: " ago",
    ping_every: ["Ping every ", "; stale after ", " of silence."],
    waiting_first_event: "Waiting for the server's first event.",
    reconnects: "Reconnects",
    current_attempt: "Current attempt",
    successful_reconnects: "Successful reconnects",
    last_event_id: "Last event id",
    retries_by_itself: "The page retries by itself with backoff and jitter.",
    open_stream: "Open the stream",
    close_stream: "Close the stream",
    live_clients: "Live clients",
    live_clients_text: live_clients,
    store_notice: "Updates delayed: the event log is unreachable. This page stays connected and gets every stored update once it is back.",
    timeline: "State timeline",
    timeline_label: "State changes, newest first",
    now: "now",
    events: "Events",
    events_label: "Received events, newest first",
    no_events: "No events yet.",
    resync_before: "Missed updates — how many is unknown (",
    resync_after: "). Refetch to be sure.",
    resync_other_server: "the server restarted",
    resync_other_log: "the server now keeps events elsewhere",
    resync_too_old: "too many events while away",
    resync_unknown: "the server did not know our last event",
    replayed,
    server_restarted: "Server restarted: this page now talks to a new server process.",
    access: "Access",
    anonymous: "anonymous (broadcasts only)",
    topics_label: "Topics",
    topics_hint: "This page streams the ticked ones; a change switches the stream without a reload.",
    sign_in_as: "Sign in as",
    sign_out: "Sign out",
    publish_to: "Publish to",
    message: "Message",
    send: "Send",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(live_clients(1234, 3), "1,234 live clients on 3 instances");
        assert_eq!(live_clients(1, 1), "1 live client on 1 instance");
        assert_eq!(live_clients(0, 2), "0 live clients on 2 instances");
        assert_eq!(replayed(0), "Reconnected, nothing missed.");
        assert_eq!(replayed(1), "Reconnected, 1 missed event replayed.");
        assert_eq!(replayed(5), "Reconnected, 5 missed events replayed.");
    }
}

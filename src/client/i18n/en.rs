//! Both sides: the banner's texts in English.

use super::texts::{BannerTexts, CauseTexts};

/// English.
pub(crate) static BANNER: BannerTexts = BannerTexts {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    server_restarting: "Server restarting…",
    stale: "Connection stale — checking…",
    offline: "You are offline",
    rejected: "Access refused",
    paused: "Paused",
    closed: "Stream closed",
    not_opened: "Not connected",
    failed: "Connection failed",
    attempt_before: "Attempt ",
    attempt_after: "",
    next_try_before: "next try in ",
    next_try_after: " s",
    trying_now: "trying now",
    retry_now: "Retry now",
    causes: CauseTexts {
        unreachable: "Server unreachable",
        server_error: "Server error",
        heartbeat_missed: "No heartbeat from the server in time",
        offline: "Your device is offline",
        rejected: "The server refused this page (not authorised)",
        server_closed: "The server ended the stream",
        hidden: "Paused while the tab was hidden",
        clock_jump: "Woke up from sleep",
        retry_now: "Retrying at your request",
        server_restarting: "Server restarting",
        handover: "Taking over the stream from another tab",
        closed_by_page: "Closed by this page",
        reauth: "Renewing access",
        signed_out: "You are signed out",
        revoked: "Your access was revoked",
        switch: "Switching to the page's new stream",
        not_opened: "The page has not opened the stream yet",
    },
};

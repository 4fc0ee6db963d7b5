//! Both sides, pure: the shape of a text table. One `static` of it per language (`en.rs`,
//! `zh_cn.rs`); a field per text a person sees, and a function where a number goes inside.

use crate::connection::machine::{Cause, Phase};
use crate::connection::tabs::TabRole;

/// Everything the banner says. Defaults to English; [`BannerTexts::for_lang`] picks a table's,
/// and an embedding app may change any field (`BannerTexts { retry_now: "Try again", ..default }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BannerTexts {
    /// Headline while the first connection is in flight.
    pub connecting: &'static str,
    /// The visible (not announced) mark while connected.
    pub live: &'static str,
    /// Headline while reconnecting.
    pub reconnecting: &'static str,
    /// Headline while reconnecting after the server announced a restart.
    pub server_restarting: &'static str,
    /// Headline while checking a silent link.
    pub stale: &'static str,
    /// Headline while the device is offline.
    pub offline: &'static str,
    /// Headline when the server refused the stream (401/403).
    pub rejected: &'static str,
    /// Headline while paused (tab hidden too long).
    pub paused: &'static str,
    /// Headline when the server ended the stream (204).
    pub closed: &'static str,
    /// Headline after giving up (`max_attempts`).
    pub failed: &'static str,
    /// Before the attempt number ("Attempt ").
    pub attempt_before: &'static str,
    /// After the attempt number.
    pub attempt_after: &'static str,
    /// Before the seconds to the next try ("next try in ").
    pub next_try_before: &'static str,
    /// After the seconds to the next try (" s").
    pub next_try_after: &'static str,
    /// Instead of the countdown while a try is in flight.
    pub trying_now: &'static str,
    /// The retry button.
    pub retry_now: &'static str,
    /// Why the connection is not connected.
    pub causes: CauseTexts,
}

impl BannerTexts {
    /// The banner texts of `lang`'s table.
    pub fn for_lang(lang: crate::i18n::Lang) -> Self {
        lang.texts().banner
    }

    /// The headline of a phase.
    pub fn title(&self, phase: Phase, cause: Cause) -> &'static str {
        match phase {
            Phase::Connecting => self.connecting,
            Phase::Connected => self.live,
            Phase::Reconnecting if cause == Cause::ServerRestarting => self.server_restarting,
            Phase::Reconnecting => self.reconnecting,
            Phase::Stale => self.stale,
            Phase::Offline => self.offline,
            Phase::Rejected => self.rejected,
            Phase::Paused => self.paused,
            Phase::Closed => self.closed,
            Phase::Failed => self.failed,
        }
    }
}

impl Default for BannerTexts {
    fn default() -> Self {
        super::en::TEXTS.banner
    }
}

/// A cause in plain words (the contract's `data-cause` codes, for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // one field per `Cause` variant, documented there
pub struct CauseTexts {
    pub unreachable: &'static str,
    pub server_error: &'static str,
    pub heartbeat_missed: &'static str,
    pub offline: &'static str,
    pub rejected: &'static str,
    pub server_closed: &'static str,
    pub hidden: &'static str,
    pub clock_jump: &'static str,
    pub retry_now: &'static str,
    pub server_restarting: &'static str,
    pub handover: &'static str,
}

impl CauseTexts {
    /// The words for `cause` (empty for `Cause::None`).
    pub fn get(&self, cause: Cause) -> &'static str {
        match cause {
            Cause::None => "",
            Cause::Unreachable => self.unreachable,
            Cause::ServerError => self.server_error,
            Cause::HeartbeatMissed => self.heartbeat_missed,
            Cause::Offline => self.offline,
            Cause::Rejected => self.rejected,
            Cause::ServerClosed => self.server_closed,
            Cause::Hidden => self.hidden,
            Cause::ClockJump => self.clock_jump,
            Cause::RetryNow => self.retry_now,
            Cause::ServerRestarting => self.server_restarting,
            Cause::Handover => self.handover,
        }
    }
}

/// One language's texts: the documents, the banner, the dashboard and the 404 page.
#[derive(Debug)]
#[allow(missing_docs)] // the field names say where each text goes
pub struct Texts {
    /// The language's own name, for the switch ("English", "简体中文").
    pub name: &'static str,
    pub language_label: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub not_found_title: &'static str,
    pub not_found_heading: &'static str,
    pub not_found_before_link: &'static str,
    pub not_found_after_link: &'static str,

    pub banner: BannerTexts,
    /// Short names of the phases (state pills, the timeline), in `Phase` order.
    pub phases: [&'static str; 9],
    /// Units of durations: seconds, minutes, hours.
    pub second: &'static str,
    pub minute: &'static str,
    pub hour: &'static str,

    pub tagline: &'static str,
    pub connection: &'static str,
    /// Between the state and how long it has lasted (" for ").
    pub state_for: &'static str,
    pub connection_id: &'static str,
    pub server_id: &'static str,
    pub this_tab: &'static str,
    /// Each tab role's name and what it means: leader, follower, solo.
    pub roles: [(&'static str, &'static str); 3],
    pub tabs_sharing: &'static str,
    pub heartbeat: &'static str,
    /// Around the age of the last event ("12 s ago").
    pub ago_before: &'static str,
    pub ago_after: &'static str,
    /// "Ping every {interval}; stale after {deadline} of silence."
    pub ping_every: [&'static str; 3],
    pub waiting_first_event: &'static str,
    pub reconnects: &'static str,
    pub current_attempt: &'static str,
    pub successful_reconnects: &'static str,
    pub last_event_id: &'static str,
    pub retries_by_itself: &'static str,
    pub live_clients: &'static str,
    /// "1,234 live clients on 3 instances".
    pub live_clients_text: fn(clients: u64, instances: u32) -> String,
    pub store_notice: &'static str,
    pub timeline: &'static str,
    pub timeline_label: &'static str,
    /// Instead of a duration on the running entry of the timeline.
    pub now: &'static str,
    pub events: &'static str,
    pub events_label: &'static str,
    pub no_events: &'static str,
    /// Around the reason of a resync.
    pub resync_before: &'static str,
    pub resync_after: &'static str,
    /// Reasons of a resync: the server restarted, another log, too old, unknown id.
    pub resync_other_server: &'static str,
    pub resync_other_log: &'static str,
    pub resync_too_old: &'static str,
    pub resync_unknown: &'static str,
    /// "Reconnected, N missed events replayed."
    pub replayed: fn(u64) -> String,
    pub server_restarted: &'static str,
}

impl Texts {
    /// The short name of `phase`.
    pub fn phase(&self, phase: Phase) -> &'static str {
        let i = match phase {
            Phase::Connecting => 0,
            Phase::Connected => 1,
            Phase::Reconnecting => 2,
            Phase::Stale => 3,
            Phase::Offline => 4,
            Phase::Rejected => 5,
            Phase::Paused => 6,
            Phase::Closed => 7,
            Phase::Failed => 8,
        };
        self.phases[i]
    }

    /// A tab role's name and what it means.
    pub fn role(&self, role: TabRole) -> (&'static str, &'static str) {
        self.roles[match role {
            TabRole::Leader => 0,
            TabRole::Follower => 1,
            TabRole::Solo => 2,
        }]
    }

    /// Why a resync happened, from the server's reason code.
    pub fn resync_reason(&self, code: &str) -> &'static str {
        match code {
            "other-server" => self.resync_other_server,
            "other-log" => self.resync_other_log,
            "too-old" => self.resync_too_old,
            _ => self.resync_unknown,
        }
    }
}

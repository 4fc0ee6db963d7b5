//! Both sides (feature `app`), pure: the shape of the dashboard's text table — a field per text a
//! person sees, and a function where a number goes inside.

use crate::client::machine::Phase;
use crate::client::tabs::TabRole;

/// One language's page texts: the documents, the dashboard and the 404 page (the banner's are
/// the library's: [`BannerTexts`](crate::client::i18n::BannerTexts)).
#[derive(Debug)]
#[allow(missing_docs)] // the field names say where each text goes
#[cfg_attr(not(feature = "ssr"), allow(dead_code))] // the documents' texts: server only
pub(crate) struct Texts {
    /// The language's own name, for the switch ("English", "简体中文").
    pub name: &'static str,
    pub language_label: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub not_found_title: &'static str,
    pub not_found_heading: &'static str,
    pub not_found_before_link: &'static str,
    pub not_found_after_link: &'static str,

    /// Short names of the phases (state pills, the timeline), in `Phase` order.
    pub phases: [&'static str; 9],

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
    /// The Connection card's button: open the stream (closed by the page, or not opened yet) or
    /// close it.
    pub open_stream: &'static str,
    pub close_stream: &'static str,
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
    /// The access card: heading, "anonymous", the granted topics' label, sign-in/out buttons,
    /// the publish form.
    pub access: &'static str,
    pub anonymous: &'static str,
    pub topics_label: &'static str,
    /// Under the label: the ticked topics are streamed, and a change switches without a reload.
    pub topics_hint: &'static str,
    pub sign_in_as: &'static str,
    pub sign_out: &'static str,
    pub publish_to: &'static str,
    pub message: &'static str,
    pub send: &'static str,
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

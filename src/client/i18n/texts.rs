//! Both sides, pure: the shape of the banner's texts. One `static` of it per language (`en.rs`,
//! `zh_cn.rs`); a field per text a person sees.

use crate::client::machine::{Cause, Phase};

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
    /// Headline when the server ended the stream (204), or the page closed it.
    pub closed: &'static str,
    /// Headline before the page opens the stream (`immediate: false`, until `open()`).
    pub not_opened: &'static str,
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
    /// The cause line under [`title`](Self::title): empty when the title already says it (after
    /// a drain the title is "Server restarting…"; repeating "Server restarting" below it says
    /// nothing new).
    pub fn cause_line(&self, phase: Phase, cause: Cause) -> &'static str {
        if phase == Phase::Reconnecting && cause == Cause::ServerRestarting {
            ""
        } else {
            self.causes.get(cause)
        }
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
            Phase::Closed if cause == Cause::NotOpened => self.not_opened,
            Phase::Closed => self.closed,
            Phase::Failed => self.failed,
        }
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
    pub closed_by_page: &'static str,
    pub reauth: &'static str,
    pub signed_out: &'static str,
    pub revoked: &'static str,
    pub switch: &'static str,
    pub not_opened: &'static str,
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
            Cause::ClosedByPage => self.closed_by_page,
            Cause::Reauth => self.reauth,
            Cause::SignedOut => self.signed_out,
            Cause::Revoked => self.revoked,
            Cause::Switch => self.switch,
            Cause::NotOpened => self.not_opened,
        }
    }
}

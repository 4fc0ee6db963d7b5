//! Shared, pure: what the user is shown — the debounced banner phase and the timeline of state
//! changes — derived from machine states. No I/O, no clock.

use super::machine::{Cause, Phase, State};
use super::policy::Policy;

/// The banner's phase: the machine's, except that a transient trouble state right after being
/// connected waits `debounce_ms` before it shows (no flicker on blips). Definitive states
/// (offline, rejected, closed, failed, paused) show at once, and so does `stale`: it is only
/// entered after the watchdog's whole deadline of silence, which is debounce enough.
pub fn banner_phase(shown: Phase, machine: &State, now: f64, policy: &Policy) -> Phase {
    let transient = matches!(machine.phase, Phase::Reconnecting | Phase::Connecting);
    if shown == Phase::Connected && transient {
        if let Some(left) = machine.left_connected_at {
            if now - left < policy.debounce_ms {
                return Phase::Connected;
            }
        }
    }
    machine.phase
}

/// When the banner, held back by the debounce, must show the machine's phase (`None`: it
/// already does, or nothing is held back).
pub fn banner_due(shown: Phase, machine: &State, now: f64, policy: &Policy) -> Option<f64> {
    let held = banner_phase(shown, machine, now, policy) != machine.phase;
    held.then(|| {
        machine
            .left_connected_at
            .map(|left| left + policy.debounce_ms)
    })
    .flatten()
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// The phase entered.
    pub phase: Phase,
    /// Its cause.
    pub cause: Cause,
    /// When it was entered (monotonic ms).
    pub at: f64,
    /// When it was left; `None` while it is the current phase.
    pub until: Option<f64>,
}

impl TimelineEntry {
    /// How long it lasted (or has lasted so far).
    pub fn duration(&self, now: f64) -> f64 {
        self.until.unwrap_or(now) - self.at
    }
}

/// The most recent phase changes, newest first, bounded. (No `Default`: a capacity is needed.)
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
    capacity: usize,
}

impl Timeline {
    /// An empty timeline keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Timeline {
            entries: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `state` would add an entry (its phase or cause differs from the newest one).
    pub fn is_new(&self, state: &State) -> bool {
        self.entries
            .first()
            .is_none_or(|top| top.phase != state.phase || top.cause != state.cause)
    }

    /// Record `state` (observed at `now`) if its phase or cause differs from the newest entry.
    pub fn record(&mut self, state: &State, now: f64) {
        if !self.is_new(state) {
            return;
        }
        if let Some(top) = self.entries.first_mut() {
            top.until = Some(now.max(top.at));
        }
        self.entries.insert(
            0,
            TimelineEntry {
                phase: state.phase,
                cause: state.cause,
                at: now,
                until: None,
            },
        );
        self.entries.truncate(self.capacity);
    }

    /// Newest first.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }
}

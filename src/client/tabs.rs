//! Shared, pure: the tabs of one browser sharing one stream. One tab (the leader, chosen by a
//! Web Lock) holds the `EventSource` and passes on every event and its machine's state over a
//! `BroadcastChannel`; the others (followers) show what it says, watch that it keeps talking,
//! and take the lock over when it falls silent. Inputs (lock grants, channel messages, ticks,
//! visibility) go in with the time; commands for the browser glue come out. No I/O, no clock.

use std::collections::VecDeque;

mod wire;

pub use wire::Msg;
#[cfg(any(test, feature = "browser"))]
pub use wire::Snapshot;
#[cfg(feature = "browser")]
pub use wire::WIRE_VERSION;

use super::machine::{Cause, Input, Phase, State};
use super::policy::Policy;
use crate::protocol::EVENT_CONNECTED;

/// Heartbeat assumed for the leader deadline until the leader's state says the real one.
const DEFAULT_HEARTBEAT_MS: f64 = 5_000.0;
/// How many application event ids a tab remembers to drop duplicates.
const SEEN_IDS: usize = 512;

/// What this tab does with the stream (the contract's `data-role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TabRole {
    /// Holds the stream for every sharing tab.
    Leader,
    /// Gets the stream from the leader tab.
    Follower,
    /// Holds its own stream: sharing is off or the browser lacks Web Locks or BroadcastChannel.
    Solo,
}

impl TabRole {
    /// The contract name (`data-role`).
    pub fn as_str(self) -> &'static str {
        match self {
            TabRole::Leader => "leader",
            TabRole::Follower => "follower",
            TabRole::Solo => "solo",
        }
    }
}

/// What the page shows about sharing: this tab's role and how many tabs share the stream.
/// (One value, one signal: every signal type costs the browser bundle its own code.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabSharing {
    /// This tab's role.
    pub role: TabRole,
    /// How many tabs share the stream (1 when solo).
    pub tabs: u32,
}

impl Default for TabSharing {
    /// What the server renders and a tab shows until it knows better: solo, 1 tab.
    fn default() -> Self {
        TabSharing {
            role: TabRole::Solo,
            tabs: 1,
        }
    }
}

/// An event to show in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// The `event:` name.
    pub name: String,
    /// The `id:`.
    pub id: Option<String>,
    /// The data.
    pub data: String,
    /// Local clock time of receipt.
    pub time: String,
}

/// Something that happened to this tab.
#[derive(Debug, Clone, PartialEq)]
pub enum TabsInput {
    /// Sharing starts (after hydration).
    Start {
        /// `navigator.onLine`.
        online: bool,
        /// `document.hidden`.
        hidden: bool,
    },
    /// The Web Lock was granted: this tab leads.
    LockGranted,
    /// Another tab stole the lock.
    LockLost,
    /// A message from another tab.
    Message(Box<Msg>),
    /// Periodic timer.
    Tick,
    /// `online` (true) / `offline` (false) window event.
    Online(bool),
    /// This tab's `visibilitychange`.
    Visibility {
        /// `document.hidden`.
        hidden: bool,
    },
    /// The user pressed Retry now in this tab.
    RetryNow,
    /// `pagehide`: the tab goes away.
    Leave,
    /// The leader's own stream delivered an event.
    StreamEvent(LoggedEvent),
}

/// What the browser glue must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum TabsCommand {
    /// Post on the channel.
    Post(Msg),
    /// Post this tab's machine state (`Msg::State`, built by the glue from the machine).
    PostState,
    /// Queue for the lock (granted when the leader leaves).
    RequestLock,
    /// Take the lock from a silent leader (`steal: true`).
    StealLock,
    /// This tab leads now: make `state` the machine's state, then feed it `input`.
    Lead {
        /// The last state the previous leader announced (or the initial state).
        state: Box<State>,
        /// An [`Input::Adopt`].
        input: Input,
    },
    /// Another tab leads now: close this tab's stream; show what the leader says from now on.
    StepDown,
    /// Feed the machine (leader only).
    Machine(Input),
    /// Show this state (follower only): the leader's, on this tab's clock.
    Show(Box<State>),
    /// Put an event in this tab's log.
    Log(LoggedEvent),
}

/// Another tab, as this one last heard from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its tab id.
    pub id: String,
    /// Its `document.hidden`, as last said.
    pub hidden: bool,
    /// When it was last heard from.
    pub seen_at: f64,
}

/// One tab's view of the sharing.
#[derive(Debug, Clone, PartialEq)]
pub struct Tabs {
    /// This tab's random id.
    pub me: String,
    /// Leader or follower (never solo: a solo tab has no `Tabs`).
    pub role: TabRole,
    /// The highest leadership term seen (this tab's own while it leads).
    pub term: u64,
    /// When the leader was last heard from (followers), or when this tab started to wait.
    pub leader_heard_at: f64,
    /// Uniform in `[0, 1)`, fixed per tab: its place in the take-over order.
    pub patience: f64,
    /// `navigator.onLine` of this tab.
    pub online: bool,
    /// `document.hidden` of this tab.
    pub hidden: bool,
    /// What the leader last told its machine: every sharing tab is hidden.
    pub audience_hidden: bool,
    /// The other tabs heard from recently.
    pub peers: Vec<Peer>,
    /// The count the leader last announced (followers).
    pub leader_count: Option<u32>,
    /// When this tab last posted its state (leader) or presence (follower).
    pub last_post_at: Option<f64>,
    /// The leader's last announced state, on this tab's clock.
    pub mirror: Option<State>,
    /// When this tab's own browser went offline, if it is.
    pub offline_since: Option<f64>,
    seen: VecDeque<String>,
}

impl Tabs {
    /// A tab about to join, with its random id and patience.
    pub fn new(me: String, patience: f64) -> Tabs {
        Tabs {
            me,
            role: TabRole::Follower,
            term: 0,
            leader_heard_at: 0.0,
            patience,
            online: true,
            hidden: false,
            audience_hidden: false,
            peers: Vec::new(),
            leader_count: None,
            last_post_at: None,
            mirror: None,
            offline_since: None,
            seen: VecDeque::new(),
        }
    }

    /// How many tabs share the stream: the leader counts; followers show the leader's count.
    pub fn count(&self) -> u32 {
        let own = 1 + self.peers.len() as u32;
        match self.role {
            TabRole::Follower => self.leader_count.unwrap_or(own),
            _ => own,
        }
    }

    /// Every sharing tab is hidden (this one included).
    pub fn all_hidden(&self) -> bool {
        self.hidden && self.peers.iter().all(|p| p.hidden)
    }

    /// When a follower gives up on a silent leader.
    pub fn steal_at(&self, policy: &Policy) -> f64 {
        let hb = self
            .mirror
            .as_ref()
            .and_then(|s| s.hello.as_ref())
            .map_or(DEFAULT_HEARTBEAT_MS, |h| h.heartbeat_ms as f64);
        self.leader_heard_at + policy.leader_deadline_ms(hb, self.patience)
    }

    /// First sighting of an application event id: `true` (and remembered); a repeat: `false`.
    /// Events without an id (pings) and `connected` (its id is the resume point, not an event)
    /// always pass.
    fn admit(&mut self, name: &str, id: Option<&str>) -> bool {
        let Some(id) = id else { return true };
        if name == EVENT_CONNECTED {
            return true;
        }
        if self.seen.iter().any(|s| s == id) {
            return false;
        }
        if self.seen.len() == SEEN_IDS {
            self.seen.pop_front();
        }
        self.seen.push_back(id.to_owned());
        true
    }

    /// What a follower shows: the leader's state, except that this tab's own `offline` wins.
    fn view(&self) -> State {
        let mut s = self.mirror.clone().unwrap_or_else(State::initial);
        if !self.online && !matches!(s.phase, Phase::Rejected | Phase::Closed | Phase::Failed) {
            if s.phase != Phase::Offline {
                s.since = self.offline_since.unwrap_or(s.since);
            }
            s.phase = Phase::Offline;
            s.cause = Cause::Offline;
            s.online = false;
        }
        s
    }

    fn touch(&mut self, id: &str, hidden: Option<bool>, now: f64) {
        if id == self.me {
            return;
        }
        if let Some(p) = self.peers.iter_mut().find(|p| p.id == id) {
            p.seen_at = now;
            if let Some(h) = hidden {
                p.hidden = h;
            }
        } else {
            self.peers.push(Peer {
                id: id.to_owned(),
                hidden: hidden.unwrap_or(false),
                seen_at: now,
            });
        }
    }

    /// Leader: tell the machine when "every tab hidden" changed.
    fn audience(&mut self, cmds: &mut Vec<TabsCommand>) {
        if self.role == TabRole::Leader {
            let all = self.all_hidden();
            if all != self.audience_hidden {
                self.audience_hidden = all;
                cmds.push(TabsCommand::Machine(Input::Audience { hidden: all }));
            }
        }
    }

    fn presence(&mut self, now: f64) -> TabsCommand {
        self.last_post_at = Some(now);
        TabsCommand::Post(Msg::Presence {
            from: self.me.clone(),
            hidden: self.hidden,
        })
    }

    /// One step. (In place rather than `state -> state'`: the id memory is not worth a clone
    /// per message; it is still pure — same inputs, same outputs.)
    pub fn step(&mut self, input: TabsInput, now: f64, policy: &Policy) -> Vec<TabsCommand> {
        let mut cmds = Vec::new();
        match input {
            TabsInput::Start { online, hidden } => {
                self.online = online;
                self.offline_since = (!online).then_some(now);
                self.hidden = hidden;
                self.role = TabRole::Follower;
                self.leader_heard_at = now;
                self.last_post_at = Some(now);
                cmds.push(TabsCommand::Post(Msg::Join {
                    from: self.me.clone(),
                    hidden,
                }));
                cmds.push(TabsCommand::RequestLock);
            }
            TabsInput::LockGranted => {
                if self.role != TabRole::Leader {
                    self.role = TabRole::Leader;
                    self.term += 1;
                    self.leader_count = None;
                    self.audience_hidden = self.all_hidden();
                    self.last_post_at = Some(now);
                    let state = self.mirror.take().unwrap_or_else(State::initial);
                    cmds.push(TabsCommand::Lead {
                        state: Box::new(state),
                        input: Input::Adopt {
                            online: self.online,
                            tab_hidden: self.hidden,
                            audience_hidden: self.audience_hidden,
                        },
                    });
                    cmds.push(TabsCommand::PostState);
                }
            }
            TabsInput::LockLost => {
                if self.role == TabRole::Leader {
                    self.role = TabRole::Follower;
                    self.leader_heard_at = now;
                    cmds.push(TabsCommand::StepDown);
                    cmds.push(TabsCommand::RequestLock);
                }
            }
            TabsInput::Message(msg) => self.message(*msg, now, policy, &mut cmds),
            TabsInput::Tick => {
                let timeout = policy.share_peer_timeout_ms;
                self.peers.retain(|p| now - p.seen_at < timeout);
                let due = self
                    .last_post_at
                    .is_none_or(|t| now - t >= policy.share_beacon_ms);
                match self.role {
                    TabRole::Leader => {
                        self.audience(&mut cmds);
                        if due {
                            self.last_post_at = Some(now);
                            cmds.push(TabsCommand::PostState);
                        }
                    }
                    _ => {
                        if due {
                            cmds.push(self.presence(now));
                        }
                        if now >= self.steal_at(policy) {
                            // Re-arm: if the steal itself hangs, try again a deadline later.
                            self.leader_heard_at = now;
                            cmds.push(TabsCommand::StealLock);
                        }
                    }
                }
            }
            TabsInput::Online(online) => {
                self.online = online;
                self.offline_since = if online {
                    None
                } else {
                    self.offline_since.or(Some(now))
                };
                match self.role {
                    TabRole::Leader => cmds.push(TabsCommand::Machine(if online {
                        Input::Online
                    } else {
                        Input::Offline
                    })),
                    _ => cmds.push(TabsCommand::Show(Box::new(self.view()))),
                }
            }
            TabsInput::Visibility { hidden } => {
                self.hidden = hidden;
                match self.role {
                    TabRole::Leader => {
                        cmds.push(TabsCommand::Machine(Input::TabVisibility { hidden }));
                        self.audience(&mut cmds);
                        // Followers learn at once that the leader's tab changed.
                        self.last_post_at = Some(now);
                        cmds.push(TabsCommand::PostState);
                    }
                    _ => cmds.push(self.presence(now)),
                }
            }
            TabsInput::RetryNow => match self.role {
                TabRole::Leader => cmds.push(TabsCommand::Machine(Input::RetryNow)),
                _ => {
                    cmds.push(TabsCommand::Post(Msg::RetryNow {
                        from: self.me.clone(),
                    }));
                    // A leader that missed two beacons may be hung: do not wait for the deadline.
                    if now - self.leader_heard_at >= 2.0 * policy.share_beacon_ms {
                        self.leader_heard_at = now;
                        cmds.push(TabsCommand::StealLock);
                    }
                }
            },
            TabsInput::Leave => cmds.push(TabsCommand::Post(Msg::Leave {
                from: self.me.clone(),
            })),
            TabsInput::StreamEvent(event) => {
                if self.role == TabRole::Leader && self.admit(&event.name, event.id.as_deref()) {
                    cmds.push(TabsCommand::Post(Msg::Event {
                        from: self.me.clone(),
                        term: self.term,
                        name: event.name.clone(),
                        id: event.id.clone(),
                        data: event.data.clone(),
                        time: event.time.clone(),
                    }));
                    cmds.push(TabsCommand::Log(event));
                }
            }
        }
        cmds
    }

    fn message(&mut self, msg: Msg, now: f64, policy: &Policy, cmds: &mut Vec<TabsCommand>) {
        if msg.from() == self.me {
            return;
        }
        // A leader hearing a later term was deposed (the lock was stolen while it could not run):
        // stop at once rather than wait for the lock's rejection, then follow.
        if let Msg::State { term, .. } | Msg::Event { term, .. } = &msg {
            if self.role == TabRole::Leader && *term > self.term {
                self.role = TabRole::Follower;
                cmds.push(TabsCommand::StepDown);
                cmds.push(TabsCommand::RequestLock);
            }
        }
        match msg {
            Msg::Join { from, hidden } => {
                self.touch(&from, Some(hidden), now);
                if self.role == TabRole::Leader {
                    // The newcomer learns the state (and the count) without waiting a beacon.
                    self.last_post_at = Some(now);
                    cmds.push(TabsCommand::PostState);
                }
                self.audience(cmds);
            }
            Msg::Presence { from, hidden } => {
                self.touch(&from, Some(hidden), now);
                self.audience(cmds);
            }
            Msg::Leave { from } => {
                self.peers.retain(|p| p.id != from);
                self.audience(cmds);
            }
            Msg::RetryNow { from } => {
                self.touch(&from, None, now);
                if self.role == TabRole::Leader {
                    cmds.push(TabsCommand::Machine(Input::RetryNow));
                }
            }
            Msg::State {
                from,
                term,
                hidden,
                tabs,
                state,
            } => {
                self.touch(&from, Some(hidden), now);
                if term < self.term {
                    return; // a deposed leader speaking late
                }
                self.term = term;
                if self.role == TabRole::Leader {
                    return; // a rival of the same term: losing the lock (LockLost) settles it
                }
                let Some(state) = state.to_state(now) else {
                    return;
                };
                self.leader_heard_at = now;
                self.leader_count = Some(tabs);
                self.mirror = Some(state);
                cmds.push(TabsCommand::Show(Box::new(self.view())));
                // Answer the beacon: a hidden tab's own timers may be throttled to a crawl.
                if self
                    .last_post_at
                    .is_none_or(|t| now - t >= 0.5 * policy.share_beacon_ms)
                {
                    cmds.push(self.presence(now));
                }
            }
            Msg::Event {
                from,
                term,
                name,
                id,
                data,
                time,
            } => {
                self.touch(&from, None, now);
                if term < self.term || self.role == TabRole::Leader {
                    return;
                }
                self.leader_heard_at = now;
                if self.admit(&name, id.as_deref()) {
                    cmds.push(TabsCommand::Log(LoggedEvent {
                        name,
                        id,
                        data,
                        time,
                    }));
                }
            }
        }
    }
}

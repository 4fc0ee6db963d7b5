//! Shared, pure: the tabs of one browser sharing one stream. One tab (the leader) holds the
//! `EventSource` and passes on every event and its machine's state over a `BroadcastChannel`;
//! the others (followers) show what it says, watch that it keeps talking, and take the stream
//! over when it falls silent, leaves, or hides while they are in view. Inputs (lock grants,
//! channel messages, ticks, visibility) go in with the time; commands for the browser glue come
//! out. No I/O, no clock.
//!
//! # Who leads
//! - **With Web Locks** ([`Election::Locks`], secure origins): the browser grants one exclusive
//!   lock to one tab and queues the others; a follower steals it from a silent leader.
//! - **Without** ([`Election::Channel`]: plain-HTTP host names are not secure contexts and have
//!   no `navigator.locks`; old browsers): a lease over the channel alone. The leader's state
//!   message, at least every `share_beacon_ms`, is its lease. A new tab that hears no leader
//!   within `share_join_wait_ms` leads (a live leader answers a `Join` at once). A follower
//!   takes over when the lease lapses (the same deadline as with locks; visible tabs first,
//!   hidden ones a beacon later), or at once when the leader leaves and names it heir. Each
//!   take-over raises the term; any leader hearing a leader of a later term, or of the same term
//!   and a better rank (visible before hidden, then the higher tab id: a total order), steps
//!   down on that message, and a leader hearing a worse one answers at once — so two running
//!   leaders hold streams for at most one beacon, normally for the time of one message.
//! - **Either way**: a visible follower takes over from a leader that has been hidden for
//!   `share_visible_ms` (and it visible as long: quick tab switching moves nothing), the best
//!   ranked visible follower first; `pagehide` gives the stream up at once; a new leader reopens
//!   with the last event id the tabs saw (`Last-Event-ID`), so a hand-over loses nothing, and
//!   every tab drops event ids it has logged already.
//!
//! Why a `BroadcastChannel` and not a `SharedWorker` holding the stream: Chrome on Android has
//! no `SharedWorker`, Safari had none from 6 to 15; a worker needs a script of its own served
//! beside the app (an embedder's build makes one wasm bundle, not two); it cannot see which tabs
//! are in view (the pause rule) and lives on while every tab is hidden. The channel exists in
//! every engine, on insecure origins too, and keeps one design with and without Web Locks.

use std::collections::VecDeque;

mod wire;

pub use wire::Msg;
#[cfg(any(test, feature = "browser"))]
pub use wire::Snapshot;
use wire::WIRE_VERSION;

use super::machine::{Cause, Input, Phase, State};
use super::policy::Policy;
use crate::protocol::EVENT_CONNECTED;

/// Heartbeat assumed for the leader deadline until the leader's state says the real one.
const DEFAULT_HEARTBEAT_MS: f64 = 5_000.0;
/// How many application event ids a tab remembers to drop duplicates.
const SEEN_IDS: usize = 512;

/// How the tabs agree on their leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// A Web Lock (`navigator.locks`): the browser grants it to one tab at a time.
    Locks,
    /// The `BroadcastChannel` alone: a lease renewed by the leader's messages.
    Channel,
}

/// What this tab does with the stream (the contract's `data-role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TabRole {
    /// Holds the stream for every sharing tab.
    Leader,
    /// Gets the stream from the leader tab.
    Follower,
    /// Holds its own stream: sharing is off or the browser lacks `BroadcastChannel`.
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

/// The name of a group of sharing tabs — of its Web Lock and its `BroadcastChannel`, both scoped
/// to the origin already. Tabs share one stream only within a group: the same message format
/// version, the same request URL (`stream_url`: the URL with the topic set, in set order, so the
/// same set in another order is the same group) and the same event names listened for (a leader
/// only passes on the events it listens for). A page that changes its URL or topics moves to
/// another group ([`Tabs::regroup`]).
pub fn group_key(stream_url: &str, event_names: &[String]) -> String {
    // Event names in the given order (sorting would cost the bundle a sort): the same page asks
    // the same.
    let mut name = format!("sse-status/{WIRE_VERSION} {stream_url}");
    for event in event_names {
        name.push(' ');
        name.push_str(event);
    }
    name
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
    /// `pagehide`: the tab goes away (for good, or into the back/forward cache).
    Leave,
    /// `pageshow` from the back/forward cache: the tab is back and joins again.
    Return {
        /// `document.hidden`.
        hidden: bool,
    },
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
    /// Give up this tab's place in the lock's queue (it is going away).
    CancelLock,
    /// This tab leads now: make `state` the machine's state (`None`: keep the machine's own, the
    /// freshest this tab knows), then feed it `input`.
    Lead {
        /// The last state the previous leader announced, if this tab heard one.
        state: Option<Box<State>>,
        /// An [`Input::Adopt`].
        input: Input,
    },
    /// Another tab leads now: close this tab's stream (and let go of the lock if it still holds
    /// it); show what the leader says from now on.
    StepDown,
    /// Feed the machine (leader only).
    Machine(Input),
    /// Feed the machine an [`Input::Recheck`] with what the browser says of the stream.
    Recheck,
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

/// `a` leads before `b`: visible before hidden, then the higher tab id (ids are unique, so two
/// tabs never tie).
fn outranks(a: (bool, &str), b: (bool, &str)) -> bool {
    (!a.0, a.1) > (!b.0, b.1)
}

/// One tab's view of the sharing.
#[derive(Debug, Clone, PartialEq)]
pub struct Tabs {
    /// This tab's random id.
    pub me: String,
    /// How the leader is chosen here.
    pub election: Election,
    /// Leader or follower (never solo: a solo tab has no `Tabs`).
    pub role: TabRole,
    /// The highest leadership term seen (this tab's own while it leads).
    pub term: u64,
    /// The tab this one follows (the last to announce its state), `None` until one did.
    pub leader: Option<String>,
    /// When the leader was last heard from (followers), or when this tab started to wait.
    pub leader_heard_at: f64,
    /// Since when the leader says its tab is hidden (on this tab's clock).
    pub leader_hidden_since: Option<f64>,
    /// Uniform in `[0, 1)`, fixed per tab: its place in the take-over order.
    pub patience: f64,
    /// `navigator.onLine` of this tab.
    pub online: bool,
    /// `document.hidden` of this tab.
    pub hidden: bool,
    /// Since when this tab is visible (`None` while hidden).
    pub visible_since: Option<f64>,
    /// Gone (`pagehide`) until `pageshow` brings it back: it takes part in nothing.
    pub left: bool,
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
    /// A tab about to join, with its random id, patience and way of electing.
    pub fn new(me: String, patience: f64, election: Election) -> Tabs {
        Tabs {
            me,
            election,
            role: TabRole::Follower,
            term: 0,
            leader: None,
            leader_heard_at: 0.0,
            leader_hidden_since: None,
            patience,
            online: true,
            hidden: false,
            visible_since: None,
            left: false,
            audience_hidden: false,
            peers: Vec::new(),
            leader_count: None,
            last_post_at: None,
            mirror: None,
            offline_since: None,
            seen: VecDeque::new(),
        }
    }

    /// This tab moves to another group ([`group_key`]: the page's URL or topics changed). It
    /// leaves this one as on `pagehide` — a leader names its heir or lets go of the lock, so
    /// another tab of the group takes the stream over, resuming from the last event id — and
    /// gets the commands for that (run them against this group's lock and channel), and the tab
    /// for the new group, about to join it (feed it [`TabsInput::Start`]): leading it if nobody
    /// does, else following its leader. It keeps its id and patience, and the event ids it has
    /// logged (a broadcast both groups relay is listed once) unless `fresh` (another URL:
    /// another server's ids).
    pub fn regroup(&mut self, fresh: bool, now: f64, policy: &Policy) -> (Vec<TabsCommand>, Tabs) {
        let cmds = self.step(TabsInput::Leave, now, policy);
        let mut next = Tabs::new(self.me.clone(), self.patience, self.election);
        if !fresh {
            next.seen = std::mem::take(&mut self.seen);
        }
        (cmds, next)
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

    /// When a follower gives up on a silent leader. A hidden tab waits a beacon longer, so a
    /// visible one takes over first.
    pub fn steal_at(&self, policy: &Policy) -> f64 {
        let hb = self
            .mirror
            .as_ref()
            .and_then(|s| s.hello.as_ref())
            .map_or(DEFAULT_HEARTBEAT_MS, |h| h.heartbeat_ms as f64);
        let hidden = if self.hidden {
            policy.share_beacon_ms
        } else {
            0.0
        };
        self.leader_heard_at + policy.leader_deadline_ms(hb, self.patience) + hidden
    }

    /// The tab a leaving leader names to take over at once: the best ranked it knows.
    pub fn heir(&self) -> Option<String> {
        if self.role != TabRole::Leader || self.election != Election::Channel {
            return None;
        }
        self.peers
            .iter()
            .fold(None::<&Peer>, |best, p| match best {
                Some(b) if !outranks((p.hidden, &p.id), (b.hidden, &b.id)) => Some(b),
                _ => Some(p),
            })
            .map(|p| p.id.clone())
    }

    /// No other follower this tab knows of (visible ones only, if `visible_only`) outranks it.
    fn first_in_line(&self, visible_only: bool) -> bool {
        !self.peers.iter().any(|p| {
            self.leader.as_deref() != Some(p.id.as_str())
                && (!visible_only || !p.hidden)
                && outranks((p.hidden, &p.id), (self.hidden, &self.me))
        })
    }

    /// A visible follower takes over from a hidden leader once both have been so for the
    /// hysteresis, if no visible follower outranks it.
    fn visible_take_over_due(&self, now: f64, policy: &Policy) -> bool {
        let (Some(hidden_at), Some(visible_at)) = (self.leader_hidden_since, self.visible_since)
        else {
            return false;
        };
        now - hidden_at.max(visible_at) >= policy.share_visible_ms && self.first_in_line(true)
    }

    /// The next moment a tick could make this tab lead by itself (the end of the join wait, or
    /// of the hysteresis before taking over from a hidden leader), so the driver wakes then
    /// rather than on its next regular tick. (The lease deadline needs no precision.)
    pub fn next_due(&self, policy: &Policy) -> Option<f64> {
        if self.left || self.role == TabRole::Leader {
            return None;
        }
        if self.election == Election::Channel && self.leader.is_none() {
            return Some(self.leader_heard_at + policy.share_join_wait_ms);
        }
        let (Some(hidden_at), Some(visible_at)) = (self.leader_hidden_since, self.visible_since)
        else {
            return None;
        };
        Some(hidden_at.max(visible_at) + policy.share_visible_ms)
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

    fn set_hidden(&mut self, hidden: bool, now: f64) {
        self.hidden = hidden;
        self.visible_since = if hidden {
            None
        } else {
            Some(self.visible_since.unwrap_or(now))
        };
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

    /// Say hello and wait for the leader (queued for the lock, or listening for the lease).
    fn join(&mut self, now: f64, cmds: &mut Vec<TabsCommand>) {
        self.role = TabRole::Follower;
        self.leader = None;
        self.leader_hidden_since = None;
        self.leader_heard_at = now;
        self.last_post_at = Some(now);
        cmds.push(TabsCommand::Post(Msg::Join {
            from: self.me.clone(),
            hidden: self.hidden,
        }));
        if self.election == Election::Locks {
            cmds.push(TabsCommand::RequestLock);
        }
    }

    /// Become the leader: the next term, the last state heard, the stream reopened from there.
    fn lead(&mut self, now: f64, cmds: &mut Vec<TabsCommand>) {
        if self.role == TabRole::Leader {
            return;
        }
        self.role = TabRole::Leader;
        self.term += 1;
        self.leader = None;
        self.leader_hidden_since = None;
        self.leader_count = None;
        self.audience_hidden = self.all_hidden();
        self.last_post_at = Some(now);
        cmds.push(TabsCommand::Lead {
            state: self.mirror.take().map(Box::new),
            input: Input::Adopt {
                online: self.online,
                tab_hidden: self.hidden,
                audience_hidden: self.audience_hidden,
            },
        });
        cmds.push(TabsCommand::PostState);
    }

    /// Take the stream over from the leader: steal its lock, or (channel) lead at once.
    fn take_over(&mut self, now: f64, cmds: &mut Vec<TabsCommand>) {
        match self.election {
            Election::Locks => {
                // Re-arm: if the steal itself hangs, try again a deadline later.
                self.leader_heard_at = now;
                cmds.push(TabsCommand::StealLock);
            }
            Election::Channel => self.lead(now, cmds),
        }
    }

    /// Stop leading: another tab does (or this one goes away).
    fn step_down(&mut self, now: f64, cmds: &mut Vec<TabsCommand>) {
        if self.role != TabRole::Leader {
            return;
        }
        self.role = TabRole::Follower;
        self.leader_heard_at = now;
        cmds.push(TabsCommand::StepDown);
        if self.election == Election::Locks && !self.left {
            cmds.push(TabsCommand::RequestLock);
        }
    }

    /// One step. (In place rather than `state -> state'`: the id memory is not worth a clone
    /// per message; it is still pure — same inputs, same outputs.)
    pub fn step(&mut self, input: TabsInput, now: f64, policy: &Policy) -> Vec<TabsCommand> {
        let mut cmds = Vec::new();
        if self.left && !matches!(input, TabsInput::Return { .. } | TabsInput::LockGranted) {
            return cmds;
        }
        match input {
            TabsInput::Start { online, hidden } => {
                self.online = online;
                self.offline_since = (!online).then_some(now);
                self.set_hidden(hidden, now);
                self.join(now, &mut cmds);
            }
            TabsInput::Return { hidden } => {
                if self.left {
                    self.left = false;
                    self.set_hidden(hidden, now);
                    self.join(now, &mut cmds);
                }
            }
            TabsInput::LockGranted => {
                if self.left {
                    // Granted on the way out: let go at once.
                    cmds.push(TabsCommand::StepDown);
                } else if self.election == Election::Locks {
                    self.lead(now, &mut cmds);
                }
            }
            TabsInput::LockLost => self.step_down(now, &mut cmds),
            TabsInput::Message(msg) => self.message(*msg, now, policy, &mut cmds),
            TabsInput::Tick => self.tick(now, policy, &mut cmds),
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
                self.set_hidden(hidden, now);
                match self.role {
                    TabRole::Leader => {
                        cmds.push(TabsCommand::Machine(Input::TabVisibility { hidden }));
                        self.audience(&mut cmds);
                        // Followers learn at once that the leader's tab changed.
                        self.last_post_at = Some(now);
                        cmds.push(TabsCommand::PostState);
                        if !hidden {
                            cmds.push(TabsCommand::Recheck);
                        }
                    }
                    _ => {
                        cmds.push(self.presence(now));
                        // Back in view: is the leader still there? (Not a watchdog later.)
                        let waiting = self.election == Election::Channel && self.leader.is_none();
                        if !hidden
                            && !waiting
                            && now - self.leader_heard_at >= 2.0 * policy.share_beacon_ms
                        {
                            self.take_over(now, &mut cmds);
                        }
                    }
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
                        self.take_over(now, &mut cmds);
                    }
                }
            },
            TabsInput::Leave => {
                cmds.push(TabsCommand::Post(Msg::Leave {
                    from: self.me.clone(),
                    heir: self.heir(),
                }));
                self.left = true;
                self.step_down(now, &mut cmds);
                if self.election == Election::Locks {
                    cmds.push(TabsCommand::CancelLock);
                }
                self.peers.clear();
                self.leader_count = None;
            }
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

    fn tick(&mut self, now: f64, policy: &Policy, cmds: &mut Vec<TabsCommand>) {
        let timeout = policy.share_peer_timeout_ms;
        self.peers.retain(|p| now - p.seen_at < timeout);
        let due = self
            .last_post_at
            .is_none_or(|t| now - t >= policy.share_beacon_ms);
        if self.role == TabRole::Leader {
            self.audience(cmds);
            if due {
                self.last_post_at = Some(now);
                cmds.push(TabsCommand::PostState);
            }
            return;
        }
        if due {
            cmds.push(self.presence(now));
        }
        if self.election == Election::Channel && self.leader.is_none() {
            // Nobody answered this tab's hello: there is no leader.
            if now - self.leader_heard_at >= policy.share_join_wait_ms {
                self.lead(now, cmds);
            }
        } else if now >= self.steal_at(policy) {
            self.take_over(now, cmds);
        } else if self.visible_take_over_due(now, policy) {
            // Re-arm: with locks, the grant comes later; try again a hysteresis later if not.
            self.leader_hidden_since = Some(now);
            self.take_over(now, cmds);
        }
    }

    fn message(&mut self, msg: Msg, now: f64, policy: &Policy, cmds: &mut Vec<TabsCommand>) {
        if msg.from() == self.me {
            return;
        }
        // A leader hearing a leader of a later term was deposed (its lock stolen, or its lease
        // taken over while it could not run); over the channel alone, a rival of the same term
        // that outranks it wins too. Stop at once, then follow.
        let better = match &msg {
            Msg::State {
                term, hidden, from, ..
            } => {
                *term > self.term
                    || (self.election == Election::Channel
                        && *term == self.term
                        && outranks((*hidden, from), (self.hidden, &self.me)))
            }
            Msg::Event { term, .. } => *term > self.term,
            _ => false,
        };
        if better {
            self.step_down(now, cmds);
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
            Msg::Leave { from, heir } => {
                self.peers.retain(|p| p.id != from);
                self.audience(cmds);
                if self.role == TabRole::Follower
                    && self.election == Election::Channel
                    && self.leader.as_deref() == Some(from.as_str())
                {
                    // The leader gave the stream up: its heir (or, unnamed, the best ranked
                    // follower) takes over now; the others give it a lease from now.
                    self.leader_heard_at = now;
                    let mine = match heir {
                        Some(heir) => heir == self.me,
                        None => self.first_in_line(false),
                    };
                    if mine {
                        self.lead(now, cmds);
                    }
                }
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
                if self.role == TabRole::Leader {
                    // A deposed leader speaking late or a losing rival: over the channel, answer
                    // at once so it steps down now rather than at this tab's next beacon. (With
                    // locks, losing the lock settles it.)
                    if self.election == Election::Channel {
                        self.last_post_at = Some(now);
                        cmds.push(TabsCommand::PostState);
                    }
                    return;
                }
                if term < self.term {
                    return; // a deposed leader speaking late
                }
                let Some(state) = state.to_state(now) else {
                    return;
                };
                self.term = term;
                if self.leader.as_deref() != Some(from.as_str()) {
                    self.leader = Some(from);
                    self.leader_hidden_since = None;
                }
                self.leader_hidden_since = if hidden {
                    self.leader_hidden_since.or(Some(now))
                } else {
                    None
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
                    // The resume point a take-over reopens from: the last event this tab saw.
                    if let (Some(mirror), Some(id), false) =
                        (self.mirror.as_mut(), id.as_ref(), name == EVENT_CONNECTED)
                    {
                        mirror.last_event_id = Some(id.clone());
                    }
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

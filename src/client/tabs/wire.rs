//! Shared, pure: what tabs say to each other on the `BroadcastChannel` — the messages, the
//! leader's machine state on the wire (times relative to the sender's clock), and their small
//! text form. No I/O.

use crate::client::machine::{Cause, Phase, ServerHello, State};

/// A machine [`State`] on the wire. Times are milliseconds relative to the sender's "now"
/// (negative: in the past): every tab has its own monotonic clock origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    phase: String,
    cause: String,
    since: i64,
    connected_at: Option<i64>,
    left_connected_at: Option<i64>,
    attempt: u32,
    retry_at: Option<i64>,
    opening_since: Option<i64>,
    probing: bool,
    last_event_at: Option<i64>,
    hello: Option<(String, String, u64, u64, u64)>,
    server_restarted: bool,
    last_event_id: Option<String>,
    online: bool,
    hidden_since: Option<i64>,
    reconnects: u32,
    resync: Option<String>,
    restarting_since: Option<i64>,
}

impl Snapshot {
    /// `state` as seen at `now` (the sender's clock).
    pub fn of(state: &State, now: f64) -> Snapshot {
        let rel = |t: f64| (t - now).round() as i64;
        let rel_opt = |t: Option<f64>| t.map(rel);
        Snapshot {
            phase: state.phase.as_str().to_owned(),
            cause: state.cause.code().to_owned(),
            since: rel(state.since),
            connected_at: rel_opt(state.connected_at),
            left_connected_at: rel_opt(state.left_connected_at),
            attempt: state.attempt,
            retry_at: rel_opt(state.retry_at),
            opening_since: rel_opt(state.opening_since),
            probing: state.probing,
            last_event_at: rel_opt(state.last_event_at),
            hello: state.hello.as_ref().map(|h| {
                (
                    h.connection_id.clone(),
                    h.server_id.clone(),
                    h.heartbeat_ms,
                    h.retry_ms,
                    h.replayed,
                )
            }),
            server_restarted: state.server_restarted,
            last_event_id: state.last_event_id.clone(),
            online: state.online,
            hidden_since: rel_opt(state.hidden_since),
            reconnects: state.reconnects,
            resync: state.resync.clone(),
            restarting_since: rel_opt(state.restarting_since),
        }
    }

    /// The state on the receiver's clock at `now` (`None` if a name is unknown: another version).
    pub fn to_state(&self, now: f64) -> Option<State> {
        let abs = |t: i64| now + t as f64;
        let abs_opt = |t: Option<i64>| t.map(abs);
        let cause = Cause::from_code(&self.cause)?;
        // A leader that was renewing access hands the renewal over with its state.
        let renewing = cause == Cause::Reauth;
        Some(State {
            phase: Phase::from_code(&self.phase)?,
            cause,
            since: abs(self.since),
            connected_at: abs_opt(self.connected_at),
            left_connected_at: abs_opt(self.left_connected_at),
            attempt: self.attempt,
            retry_at: abs_opt(self.retry_at),
            opening_since: abs_opt(self.opening_since),
            probing: self.probing,
            last_event_at: abs_opt(self.last_event_at),
            hello: self.hello.as_ref().map(|h| ServerHello {
                connection_id: h.0.clone(),
                server_id: h.1.clone(),
                heartbeat_ms: h.2,
                retry_ms: h.3,
                replayed: h.4,
            }),
            server_restarted: self.server_restarted,
            last_event_id: self.last_event_id.clone(),
            online: self.online,
            hidden_since: abs_opt(self.hidden_since),
            tab_hidden: false,
            last_tick: None,
            reconnects: self.reconnects,
            resync: self.resync.clone(),
            restarting_since: abs_opt(self.restarting_since),
            refresh_due: renewing,
            refreshing: false,
            reauth_since: renewing.then(|| abs(self.since)),
        })
    }
}

/// A message on the tabs' `BroadcastChannel` (text, see [`Msg::encode`]). `from` is the sender's
/// random tab id;
/// `term` counts leaderships (each new leader takes the highest it saw + 1), so messages of a
/// deposed leader that wakes up late are recognised and dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A tab opened.
    Join {
        /// Sender.
        from: String,
        /// Its `document.hidden`.
        hidden: bool,
    },
    /// A follower is still there (every beacon interval, and at once when its visibility changes).
    Presence {
        /// Sender.
        from: String,
        /// Its `document.hidden`.
        hidden: bool,
    },
    /// A tab is going away (`pagehide`).
    Leave {
        /// Sender.
        from: String,
        /// A leader electing over the channel alone names the tab that takes the stream over
        /// at once (the best one it knows: visible first).
        heir: Option<String>,
    },
    /// The leader's machine state: on every change and at least every beacon interval.
    State {
        /// Sender.
        from: String,
        /// Its leadership term.
        term: u64,
        /// Its `document.hidden`.
        hidden: bool,
        /// How many tabs share the stream, as the leader counts them.
        tabs: u32,
        /// Its machine's state.
        state: Box<Snapshot>,
    },
    /// An event the leader's stream delivered (pings included).
    Event {
        /// Sender.
        from: String,
        /// Its leadership term.
        term: u64,
        /// The event's name.
        name: String,
        /// Its `id:`.
        id: Option<String>,
        /// Its data.
        data: String,
        /// When the leader received it, as local clock time.
        time: String,
    },
    /// A follower's user pressed Retry now: the leader acts on the shared stream.
    RetryNow {
        /// Sender.
        from: String,
    },
}

/// Version of the message format. It is part of the lock and channel name, so tabs running
/// different versions of the app (old tabs after a deploy) never share and never misread.
/// 3: a state may carry the causes `switch` and `not-opened`.
pub const WIRE_VERSION: u32 = 3;

/// Field separator of the text form: a control character that valid JSON never holds raw; the
/// one field that may hold anything (an event's data) comes last and is not split.
const SEP: char = '\u{1f}';

struct Writer(String);

impl Writer {
    fn field(&mut self, s: &str) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push(SEP);
        }
        self.0
            .extend(s.chars().map(|c| if c == SEP { ' ' } else { c }));
        self
    }
    fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.field(""),
            Some(s) => self.field(&format!("+{s}")),
        }
    }
    fn int(&mut self, i: i64) -> &mut Self {
        self.field(&i.to_string())
    }
    fn opt_int(&mut self, i: Option<i64>) -> &mut Self {
        self.opt(i.map(|i| i.to_string()).as_deref())
    }
    fn flag(&mut self, b: bool) -> &mut Self {
        self.field(if b { "1" } else { "0" })
    }
}

/// One integer parser for every field (a generic `str::parse` per type costs bundle size).
fn parse_int(s: &str) -> Option<i64> {
    s.parse().ok()
}

struct Reader<'a>(Option<&'a str>);

impl<'a> Reader<'a> {
    fn field(&mut self) -> Option<&'a str> {
        let rest = self.0?;
        match rest.split_once(SEP) {
            Some((field, rest)) => {
                self.0 = Some(rest);
                Some(field)
            }
            None => {
                self.0 = None;
                Some(rest)
            }
        }
    }
    fn string(&mut self) -> Option<String> {
        self.field().map(str::to_owned)
    }
    fn opt(&mut self) -> Option<Option<String>> {
        let f = self.field()?;
        if f.is_empty() {
            Some(None)
        } else {
            f.strip_prefix('+').map(|s| Some(s.to_owned()))
        }
    }
    fn int<T: TryFrom<i64>>(&mut self) -> Option<T> {
        parse_int(self.field()?).and_then(|i| T::try_from(i).ok())
    }
    fn opt_int(&mut self) -> Option<Option<i64>> {
        match self.opt()? {
            None => Some(None),
            Some(s) => parse_int(&s).map(Some),
        }
    }
    fn flag(&mut self) -> Option<bool> {
        match self.field()? {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        }
    }
    /// Everything left, separators included.
    fn rest(&mut self) -> Option<String> {
        self.0.take().map(str::to_owned)
    }
}

impl Snapshot {
    fn write(&self, w: &mut Writer) {
        w.field(&self.phase).field(&self.cause).int(self.since);
        w.opt_int(self.connected_at).opt_int(self.left_connected_at);
        w.int(i64::from(self.attempt)).opt_int(self.retry_at);
        w.opt_int(self.opening_since)
            .flag(self.probing)
            .opt_int(self.last_event_at);
        match &self.hello {
            None => w.flag(false).field("").field("").int(0).int(0).int(0),
            Some((c, s, hb, retry, replayed)) => w
                .flag(true)
                .field(c)
                .field(s)
                .field(&hb.to_string())
                .field(&retry.to_string())
                .field(&replayed.to_string()),
        };
        w.flag(self.server_restarted)
            .opt(self.last_event_id.as_deref());
        w.flag(self.online).opt_int(self.hidden_since);
        w.int(i64::from(self.reconnects))
            .opt(self.resync.as_deref());
        w.opt_int(self.restarting_since);
    }

    fn read(r: &mut Reader<'_>) -> Option<Snapshot> {
        let phase = r.string()?;
        let cause = r.string()?;
        let since = r.int()?;
        let connected_at = r.opt_int()?;
        let left_connected_at = r.opt_int()?;
        let attempt = r.int()?;
        let retry_at = r.opt_int()?;
        let opening_since = r.opt_int()?;
        let probing = r.flag()?;
        let last_event_at = r.opt_int()?;
        let has_hello = r.flag()?;
        let hello = (r.string()?, r.string()?, r.int()?, r.int()?, r.int()?);
        Some(Snapshot {
            phase,
            cause,
            since,
            connected_at,
            left_connected_at,
            attempt,
            retry_at,
            opening_since,
            probing,
            last_event_at,
            hello: has_hello.then_some(hello),
            server_restarted: r.flag()?,
            last_event_id: r.opt()?,
            online: r.flag()?,
            hidden_since: r.opt_int()?,
            reconnects: r.int()?,
            resync: r.opt()?,
            restarting_since: r.opt_int()?,
        })
    }
}

impl Msg {
    /// The text posted on the channel: a tag, then the fields, separated by U+001F. (Hand-written
    /// rather than serde: a derived JSON codec for these types cost ~30 KB of gzipped wasm.)
    pub fn encode(&self) -> String {
        let mut w = Writer(String::new());
        match self {
            Msg::Join { from, hidden } => w.field("join").field(from).flag(*hidden),
            Msg::Presence { from, hidden } => w.field("presence").field(from).flag(*hidden),
            Msg::Leave { from, heir } => w.field("leave").field(from).opt(heir.as_deref()),
            Msg::RetryNow { from } => w.field("retry-now").field(from),
            Msg::State {
                from,
                term,
                hidden,
                tabs,
                state,
            } => {
                w.field("state")
                    .field(from)
                    .field(&term.to_string())
                    .flag(*hidden)
                    .int(i64::from(*tabs));
                state.write(&mut w);
                &mut w
            }
            Msg::Event {
                from,
                term,
                name,
                id,
                data,
                time,
            } => {
                w.field("event")
                    .field(from)
                    .field(&term.to_string())
                    .field(name)
                    .opt(id.as_deref())
                    .field(time);
                // Last and unsplit: the data may hold anything.
                w.0.push(SEP);
                w.0.push_str(data);
                &mut w
            }
        };
        w.0
    }

    /// Parse [`Msg::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Msg> {
        let mut r = Reader(Some(text));
        let msg = match r.field()? {
            "join" => Msg::Join {
                from: r.string()?,
                hidden: r.flag()?,
            },
            "presence" => Msg::Presence {
                from: r.string()?,
                hidden: r.flag()?,
            },
            "leave" => Msg::Leave {
                from: r.string()?,
                heir: r.opt()?,
            },
            "retry-now" => Msg::RetryNow { from: r.string()? },
            "state" => Msg::State {
                from: r.string()?,
                term: r.int()?,
                hidden: r.flag()?,
                tabs: r.int()?,
                state: Box::new(Snapshot::read(&mut r)?),
            },
            "event" => Msg::Event {
                from: r.string()?,
                term: r.int()?,
                name: r.string()?,
                id: r.opt()?,
                time: r.string()?,
                data: r.rest()?,
            },
            _ => return None,
        };
        Some(msg)
    }

    /// The sender's tab id.
    pub(super) fn from(&self) -> &str {
        match self {
            Msg::Join { from, .. }
            | Msg::Presence { from, .. }
            | Msg::Leave { from, .. }
            | Msg::State { from, .. }
            | Msg::Event { from, .. }
            | Msg::RetryNow { from } => from,
        }
    }
}

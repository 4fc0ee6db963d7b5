//! Both sides, pure: the wire types of `/events` — event names, one serde type per event, the
//! event-id format, and SSE frame encoding.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// First event of every stream.
pub const EVENT_CONNECTED: &str = "connected";
/// Heartbeat, sent every `heartbeat_ms`. Named (not a comment) so page code can see it.
pub const EVENT_PING: &str = "ping";
/// The client's `Last-Event-ID` could not be resumed.
pub const EVENT_RESYNC: &str = "resync";
/// The server is shutting down; reconnect after the hint.
pub const EVENT_DRAINING: &str = "draining";

/// The stream's access grant expired: refresh the credentials, then resume by `Last-Event-ID`.
pub const EVENT_REAUTH: &str = "reauth";
/// The subject's access was revoked: the stream ends and the client does not reconnect by itself.
pub const EVENT_REVOKED: &str = "revoked";

/// Names application events may not use: the protocol's own.
pub const RESERVED_EVENT_NAMES: [&str; 6] = [
    EVENT_CONNECTED,
    EVENT_PING,
    EVENT_RESYNC,
    EVENT_DRAINING,
    EVENT_REAUTH,
    EVENT_REVOKED,
];

/// Query parameter a reopened `EventSource` uses to carry its last event id (a new
/// `EventSource` object never sends the `Last-Event-ID` header by itself).
pub const LAST_EVENT_ID_PARAM: &str = "last_event_id";

/// Data of the `connected` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connected {
    /// Unique per stream.
    pub connection_id: String,
    /// Random per server process start: a new value means the server restarted.
    pub server_id: String,
    /// Interval of `ping` events; the client's watchdog is derived from it.
    pub heartbeat_ms: u64,
    /// The server's `retry:` value (the `EventSource` API hides that field from page code).
    pub retry_ms: u64,
    /// Unix time in milliseconds.
    pub server_time: u64,
    /// How many missed events follow as replay (0 for a fresh stream).
    #[serde(default)]
    pub replayed: u64,
    /// Live clients and the event log's health when the stream opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
}

/// The fleet as one server sees it: carried by `connected` and every `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    /// Open streams on every instance (this process's own count with the embedded log).
    pub clients: u64,
    /// Instances counted (1 with the embedded log).
    pub instances: u32,
    /// Whether the event log is reachable: `"ok"` or `"unreachable"` ([`Fleet::store_ok`]
    /// reads it; other values may come from newer servers and count as reachable). While it is
    /// not, published events are refused and updates are delayed (the stream itself is fine).
    pub store: String,
}

/// [`Fleet::store`]: the event log answers.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) const STORE_OK: &str = "ok";
/// [`Fleet::store`]: the event log (Redis) cannot be reached; updates are delayed.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) const STORE_UNREACHABLE: &str = "unreachable";

impl Fleet {
    /// Whether the event log is reachable.
    pub fn store_ok(&self) -> bool {
        self.store != STORE_UNREACHABLE
    }
}

/// Data of the `ping` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Per server process, starting at 1.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub server_time: u64,
    /// Live clients and the event log's health now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
}

/// Why a resume point (`Last-Event-ID` or `?last_event_id=`) could not be honoured: the
/// `reason` of a `resync` event. The server picks one, the client decodes the same enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResyncReason {
    /// `other-server`: the id was assigned by another server process (restart, or another
    /// instance) of the embedded log.
    OtherServer,
    /// `other-log`: the id has the shape of another log's ids (an embedded id sent to the Redis
    /// log).
    OtherLog,
    /// `too-old`: the id is older than the oldest kept event: some events are gone.
    TooOld,
    /// `unknown-id`: the id is unknown to this log (beyond its newest event, never assigned, or
    /// malformed).
    #[serde(rename = "unknown-id")]
    Unknown,
    /// A reason this client does not know (a newer server): still a resync.
    #[serde(other)]
    Other,
}

impl ResyncReason {
    /// The wire text (`other-server`, `other-log`, `too-old`, `unknown-id`; `other` for
    /// [`ResyncReason::Other`]).
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::OtherServer => "other-server",
            ResyncReason::OtherLog => "other-log",
            ResyncReason::TooOld => "too-old",
            ResyncReason::Unknown => "unknown-id",
            ResyncReason::Other => "other",
        }
    }
}

impl fmt::Display for ResyncReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Data of the `resync` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// Why the requested id could not be resumed.
    pub reason: ResyncReason,
    /// The id the client asked to resume after.
    pub requested_id: String,
    /// The first id this stream will deliver, if any event is buffered.
    pub first_id: Option<String>,
}

/// Data of the `draining` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draining {
    /// Jittered per client so a restart does not bring every client back at once.
    pub reconnect_after_ms: u64,
}

/// Why a stream asks its client to authenticate again: the `reason` of a `reauth` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReauthReason {
    /// `expired`: the grant the stream was opened with has expired.
    Expired,
    /// A reason this client does not know (a newer server): still a reauth.
    #[serde(other)]
    Other,
}

/// Data of the `reauth` event: the stream ends right after it; the client refreshes its
/// credentials and reconnects with `last_event_id`, missing nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reauth {
    /// Why.
    pub reason: ReauthReason,
    /// The id to resume after: the last event this stream delivered (or its `connected` id).
    pub last_event_id: Option<String>,
}

/// [`Revoked::reason`] when a publisher revoked the subject (`POST /api/revoke`).
pub const REVOKED_BY_PUBLISHER: &str = "revoked";

/// Data of the `revoked` event: the subject's access was revoked; the stream ends and the
/// client does not reconnect on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// Why ([`REVOKED_BY_PUBLISHER`]).
    pub reason: String,
}

/// Id of an event: `<server_id>-<seq>`. Unique across restarts (the server id is random per
/// process) and monotonic within one server process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId {
    /// The server id of the process that assigned it.
    pub epoch: String,
    /// Sequence within that process; 0 means "before the first event".
    pub seq: u64,
}

/// Why a `Last-Event-ID` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    /// No `-` separating epoch and sequence.
    #[error("event id has no '-' separator")]
    MissingSeparator,
    /// The epoch is empty, too long or has characters outside `[0-9a-zA-Z]`.
    #[error("event id has an invalid epoch")]
    BadEpoch,
    /// The sequence is not a decimal u64.
    #[error("event id has an invalid sequence number")]
    BadSeq,
}

/// Longest epoch accepted from the outside.
const MAX_EPOCH_LEN: usize = 32;

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

impl FromStr for EventId {
    type Err = EventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (epoch, seq) = s
            .trim()
            .rsplit_once('-')
            .ok_or(EventIdError::MissingSeparator)?;
        if epoch.is_empty()
            || epoch.len() > MAX_EPOCH_LEN
            || !epoch.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(EventIdError::BadEpoch);
        }
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EventIdError::BadSeq);
        }
        let seq = seq.parse().map_err(|_| EventIdError::BadSeq)?;
        Ok(EventId {
            epoch: epoch.to_owned(),
            seq,
        })
    }
}

/// Append one SSE frame to `out`: `event:`, `id:`, `retry:` and one `data:` line per line of
/// `data`, then the blank line that dispatches it. Line breaks inside `event`/`id` would end the
/// field early, so they are replaced by spaces (our names and ids never contain any).
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) fn encode_frame(
    out: &mut String,
    event: Option<&str>,
    id: Option<&str>,
    retry_ms: Option<u64>,
    data: &str,
) {
    fn field(out: &mut String, name: &str, value: &str) {
        out.push_str(name);
        out.push_str(": ");
        out.extend(value.chars().map(|c| match c {
            '\r' | '\n' | '\0' => ' ',
            c => c,
        }));
        out.push('\n');
    }
    if let Some(event) = event {
        field(out, "event", event);
    }
    if let Some(id) = id {
        field(out, "id", id);
    }
    if let Some(ms) = retry_ms {
        out.push_str("retry: ");
        out.push_str(&ms.to_string());
        out.push('\n');
    }
    // A data line ends at CR, LF or CRLF; each line becomes its own `data:` field.
    let normalised = data.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalised.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

/// [`encode_frame`] for a serde type as JSON data.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) fn encode_json_frame(
    out: &mut String,
    event: &str,
    id: Option<&str>,
    retry_ms: Option<u64>,
    data: &impl Serialize,
) -> Result<(), serde_json::Error> {
    let json = serde_json::to_string(data)?;
    encode_frame(out, Some(event), id, retry_ms, &json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse frames back with an independent SSE parser (eventsource-stream).
    fn parse(text: &str) -> Vec<eventsource_stream::Event> {
        use futures::StreamExt;
        let chunks = vec![Ok::<_, std::convert::Infallible>(text.as_bytes().to_vec())];
        futures::executor::block_on(
            eventsource_stream::Eventsource::eventsource(futures::stream::iter(chunks))
                .map(|e| e.unwrap())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn frames_round_trip_through_an_independent_parser() {
        let mut out = String::new();
        encode_frame(
            &mut out,
            Some("update"),
            Some("ab12-7"),
            Some(1500),
            "{\"a\":1}",
        );
        encode_frame(
            &mut out,
            None,
            None,
            None,
            "line one\nline two\r\nthree\rfour",
        );
        encode_frame(&mut out, Some("x\ny"), Some("id\r1"), None, "");
        let events = parse(&out);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event, "update");
        assert_eq!(events[0].id, "ab12-7");
        assert_eq!(
            events[0].retry,
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(events[0].data, "{\"a\":1}");
        assert_eq!(events[1].event, "message");
        assert_eq!(events[1].data, "line one\nline two\nthree\nfour");
        assert_eq!(
            events[2].event, "x y",
            "a line break cannot end the name early"
        );
        assert_eq!(events[2].id, "id 1");
        assert_eq!(events[2].data, "");
    }

    #[test]
    fn json_frames_match_the_wire_format() {
        let mut out = String::new();
        encode_json_frame(
            &mut out,
            EVENT_PING,
            None,
            None,
            &Ping {
                seq: 1,
                server_time: 2,
                fleet: None,
            },
        )
        .unwrap();
        assert_eq!(out, "event: ping\ndata: {\"seq\":1,\"server_time\":2}\n\n");
        let mut out = String::new();
        let fleet = Fleet {
            clients: 1234,
            instances: 3,
            store: STORE_UNREACHABLE.into(),
        };
        let ping = Ping {
            seq: 2,
            server_time: 3,
            fleet: Some(fleet.clone()),
        };
        encode_json_frame(&mut out, EVENT_PING, None, None, &ping).unwrap();
        assert_eq!(
            out,
            "event: ping\ndata: {\"seq\":2,\"server_time\":3,\"fleet\":{\"clients\":1234,\"instances\":3,\"store\":\"unreachable\"}}\n\n"
        );
        assert!(!fleet.store_ok());
    }

    #[test]
    fn connected_round_trips_through_json() {
        let c = Connected {
            connection_id: "c1".into(),
            server_id: "s1".into(),
            heartbeat_ms: 5000,
            retry_ms: 1000,
            server_time: 1_700_000_000_000,
            replayed: 3,
            fleet: None,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Connected>(&json).unwrap(), c);
        assert!(json.contains("\"heartbeat_ms\":5000"));
    }

    #[test]
    fn ping_and_draining_round_trip() {
        let p = Ping {
            seq: 7,
            server_time: 3,
            fleet: Some(Fleet {
                clients: 2,
                instances: 1,
                store: STORE_OK.into(),
            }),
        };
        let back: Ping = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let d = Draining {
            reconnect_after_ms: 1234,
        };
        let back: Draining = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn reauth_and_revoked_speak_the_contract() {
        let r = Reauth {
            reason: ReauthReason::Expired,
            last_event_id: Some("a1-4".into()),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"reason":"expired","last_event_id":"a1-4"}"#);
        assert_eq!(serde_json::from_str::<Reauth>(&json).unwrap(), r);
        let newer: Reauth =
            serde_json::from_str(r#"{"reason":"policy","last_event_id":null}"#).unwrap();
        assert_eq!(newer.reason, ReauthReason::Other);
        let v = Revoked {
            reason: REVOKED_BY_PUBLISHER.into(),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"reason":"revoked"}"#
        );
        assert!(RESERVED_EVENT_NAMES.contains(&"reauth"));
        assert!(RESERVED_EVENT_NAMES.contains(&"revoked"));
    }

    #[test]
    fn event_id_round_trips() {
        let id = EventId {
            epoch: "a1b2c3d4".into(),
            seq: 42,
        };
        assert_eq!(id.to_string(), "a1b2c3d4-42");
        assert_eq!("a1b2c3d4-42".parse::<EventId>().unwrap(), id);
        assert_eq!(" a1b2c3d4-42 ".parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn malformed_event_ids_are_rejected() {
        use EventIdError::*;
        let cases = [
            ("", MissingSeparator),
            ("abc", MissingSeparator),
            ("-5", BadEpoch),
            ("a/b-5", BadEpoch),
            (&"x".repeat(33), MissingSeparator),
            ("abc-", BadSeq),
            ("abc-+5", BadSeq),
            ("abc-5x", BadSeq),
            ("abc-99999999999999999999999", BadSeq),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<EventId>(), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn reserved_names_are_the_protocol_events() {
        let mut names = RESERVED_EVENT_NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "connected",
                "draining",
                "ping",
                "reauth",
                "resync",
                "revoked"
            ]
        );
    }

    #[test]
    fn resync_reasons_round_trip_and_unknown_ones_still_decode() {
        for reason in [
            ResyncReason::OtherServer,
            ResyncReason::OtherLog,
            ResyncReason::TooOld,
            ResyncReason::Unknown,
        ] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
            assert_eq!(serde_json::from_str::<ResyncReason>(&json).unwrap(), reason);
        }
        assert_eq!(
            serde_json::from_str::<ResyncReason>("\"gone-fishing\"").unwrap(),
            ResyncReason::Other
        );
    }
}

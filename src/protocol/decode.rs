//! Both sides, pure: the event types the browser reads, decoded from their JSON `data:` without
//! serde (see [`json`]: it keeps serde_json out of the wasm). Each decoder accepts
//! and refuses what `serde_json::from_str` does for the type; the tests hold them to that.

use super::json::{self, Fields, Value};
use super::wire::{Connected, Draining, Fleet, Ping, Reauth, ReauthReason, Resync, ResyncReason};

/// A type the browser decodes from an event's `data:`.
pub(crate) trait FromJson: Sized {
    /// `data` decoded, or `None` where serde_json would fail.
    fn from_json(data: &str) -> Option<Self> {
        Self::from_fields(&json::object(data)?)
    }

    /// The type from the fields of its object.
    fn from_fields(o: &Fields) -> Option<Self>;
}

impl FromJson for Connected {
    fn from_fields(o: &Fields) -> Option<Self> {
        Some(Connected {
            connection_id: o.str("connection_id")?,
            server_id: o.str("server_id")?,
            heartbeat_ms: o.uint("heartbeat_ms")?,
            retry_ms: o.uint("retry_ms")?,
            server_time: o.uint("server_time")?,
            replayed: o.uint_or_zero("replayed")?,
            fleet: o.opt("fleet", fleet)?,
        })
    }
}

fn fleet(v: &Value) -> Option<Fleet> {
    match v {
        Value::Object(o) => Fleet::from_fields(o),
        _ => None,
    }
}

impl FromJson for Fleet {
    fn from_fields(o: &Fields) -> Option<Self> {
        Some(Fleet {
            clients: o.uint("clients")?,
            instances: u32::try_from(o.uint("instances")?).ok()?,
            store: o.str("store")?,
        })
    }
}

impl FromJson for Ping {
    fn from_fields(o: &Fields) -> Option<Self> {
        Some(Ping {
            seq: o.uint("seq")?,
            server_time: o.uint("server_time")?,
            fleet: o.opt("fleet", fleet)?,
        })
    }
}

impl FromJson for Draining {
    fn from_fields(o: &Fields) -> Option<Self> {
        Some(Draining {
            reconnect_after_ms: o.uint("reconnect_after_ms")?,
        })
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl FromJson for Reauth {
    fn from_fields(o: &Fields) -> Option<Self> {
        let reason = match o.str("reason")?.as_str() {
            "expired" => ReauthReason::Expired,
            _ => ReauthReason::Other,
        };
        Some(Reauth {
            reason,
            last_event_id: o.opt("last_event_id", string)?,
        })
    }
}

impl FromJson for Resync {
    fn from_fields(o: &Fields) -> Option<Self> {
        // The names are `ResyncReason::as_str`'s; an unknown (newer) one reads as `Other`.
        let name = o.str("reason")?;
        let reason = [
            ResyncReason::OtherServer,
            ResyncReason::OtherLog,
            ResyncReason::TooOld,
            ResyncReason::Unknown,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
        .unwrap_or(ResyncReason::Other);
        Some(Resync {
            reason,
            requested_id: o.str("requested_id")?,
            first_id: o.opt("first_id", string)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{STORE_OK, STORE_UNREACHABLE};
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use std::fmt::Debug;

    /// Ours and serde_json agree on `text`.
    fn agree<T: FromJson + DeserializeOwned + PartialEq + Debug>(text: &str) -> Option<T> {
        let ours = T::from_json(text);
        assert_eq!(ours, serde_json::from_str::<T>(text).ok(), "{text}");
        ours
    }

    fn round_trip<T: FromJson + DeserializeOwned + Serialize + PartialEq + Debug>(value: T) {
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(agree::<T>(&text), Some(value));
    }

    fn fleet(store: &str) -> Fleet {
        Fleet {
            clients: 1234,
            instances: 3,
            store: store.into(),
        }
    }

    #[test]
    fn what_the_server_writes_decodes_to_the_same_value() {
        for fleet in [None, Some(fleet(STORE_OK)), Some(fleet(STORE_UNREACHABLE))] {
            round_trip(Connected {
                connection_id: "c-\"1\" é".into(),
                server_id: "s1".into(),
                heartbeat_ms: 15_000,
                retry_ms: 1000,
                server_time: 1_700_000_000_000,
                replayed: 3,
                fleet: fleet.clone(),
            });
            round_trip(Ping {
                seq: u64::MAX,
                server_time: 3,
                fleet,
            });
        }
        round_trip(Draining {
            reconnect_after_ms: 1234,
        });
        for last_event_id in [None, Some("a1-4".to_owned())] {
            round_trip(Reauth {
                reason: ReauthReason::Expired,
                last_event_id,
            });
        }
        for reason in [
            ResyncReason::OtherServer,
            ResyncReason::OtherLog,
            ResyncReason::TooOld,
            ResyncReason::Unknown,
        ] {
            for first_id in [None, Some("b2-1".to_owned())] {
                round_trip(Resync {
                    reason,
                    requested_id: "a1-9".into(),
                    first_id,
                });
            }
        }
    }

    #[test]
    fn defaults_unknown_fields_and_newer_reasons_as_serde_reads_them() {
        let c: Connected = agree(
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3,"extra":[{"x":null}]}"#,
        )
        .unwrap();
        assert_eq!((c.replayed, c.fleet), (0, None));
        agree::<Connected>(
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3,"fleet":null}"#,
        )
        .unwrap();
        let r: Reauth = agree(r#"{"reason":"policy"}"#).unwrap();
        assert_eq!((r.reason, r.last_event_id), (ReauthReason::Other, None));
        let r: Resync = agree(r#"{"reason":"gone-fishing","requested_id":"x"}"#).unwrap();
        assert_eq!(r.reason, ResyncReason::Other);
    }

    #[test]
    fn refuses_what_serde_refuses() {
        let connected = [
            "",
            "null",
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1,"retry_ms":2}"#,
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":-1,"retry_ms":2,"server_time":3}"#,
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1.5,"retry_ms":2,"server_time":3}"#,
            r#"{"connection_id":1,"server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3}"#,
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3,"replayed":null}"#,
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3,"fleet":{"clients":1,"instances":4294967296,"store":"ok"}}"#,
            r#"{"connection_id":"c","server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3,"fleet":"ok"}"#,
            r#"{"connection_id":"c","connection_id":"d","server_id":"s","heartbeat_ms":1,"retry_ms":2,"server_time":3}"#,
        ];
        for text in connected {
            assert_eq!(agree::<Connected>(text), None);
        }
        assert_eq!(agree::<Ping>(r#"{"seq":1}"#), None);
        assert_eq!(agree::<Draining>(r#"{"reconnect_after_ms":"5"}"#), None);
        assert_eq!(
            agree::<Reauth>(r#"{"reason":1,"last_event_id":null}"#),
            None
        );
        assert_eq!(
            agree::<Reauth>(r#"{"reason":"expired","last_event_id":7}"#),
            None
        );
        assert_eq!(agree::<Resync>(r#"{"reason":"too-old"}"#), None);
    }
}

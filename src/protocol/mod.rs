//! Both sides, pure (the bottom layer: imports nothing from the crate): the wire protocol of
//! `/events` — event names and their rules, topics and their patterns, one serde type per event, the event-id format, the
//! resume point of a request, SSE frame encoding, and the browser's serde-free readers of the
//! event data. No I/O.

// The browser's readers of the event types (no serde in the wasm); the server writes with serde.
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
mod decode;
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
pub(crate) mod json;
mod names;
mod resume;
mod topics;
mod wire;

#[cfg_attr(not(feature = "browser"), allow(unused_imports))]
pub(crate) use decode::FromJson;

pub use names::{validate_event_name, EventNameError, MAX_EVENT_NAME_LEN};
pub use resume::{resume_point, Resume, ResumeError};
pub use topics::{
    topics_from_query, validate_topic, validate_topics, TopicError, TopicPattern, MAX_TOPICS,
    MAX_TOPIC_LEN, TOPIC_PARAM,
};
pub use wire::*;

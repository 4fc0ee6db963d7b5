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
#[cfg_attr(not(feature = "ssr"), allow(unused_imports))]
pub(crate) use resume::resume_point;
pub use resume::{Resume, ResumeError};
#[cfg_attr(not(feature = "ssr"), allow(unused_imports))]
pub(crate) use topics::topics_from_query;
pub use topics::{
    validate_topic, validate_topics, TopicError, TopicPattern, MAX_TOPICS, MAX_TOPIC_LEN,
    TOPIC_PARAM,
};
pub use wire::*;
#[cfg_attr(not(feature = "ssr"), allow(unused_imports))]
pub(crate) use wire::{encode_frame, encode_json_frame, STORE_OK, STORE_UNREACHABLE};

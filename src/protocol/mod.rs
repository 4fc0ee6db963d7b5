//! Both sides, pure (the bottom layer: imports nothing from the crate): the wire protocol of
//! `/events` — event names and their rules, topics and their patterns, one serde type per event, the event-id format, the
//! resume point of a request, and SSE frame encoding. No I/O.

mod names;
mod resume;
mod topics;
mod wire;

pub use names::{validate_event_name, EventNameError, MAX_EVENT_NAME_LEN};
pub use resume::{resume_point, Resume, ResumeError};
pub use topics::{
    topics_from_query, validate_topic, validate_topics, TopicError, TopicPattern, MAX_TOPICS,
    MAX_TOPIC_LEN, TOPIC_PARAM,
};
pub use wire::*;

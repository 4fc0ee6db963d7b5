//! Both sides, pure: topics — what a topic may be called, subscription and grant patterns
//! (a trailing `/*` is a prefix), which patterns cover which, and the `?topic=` list of an
//! `/events` request.

use std::fmt;

/// Query parameter naming one topic of an `/events` stream (repeated for several).
pub const TOPIC_PARAM: &str = "topic";
/// Longest topic (or the topic part of a pattern, before `/*`).
pub const MAX_TOPIC_LEN: usize = 200;
/// Most topics a stream subscribes to, and most topics one event is published to.
pub const MAX_TOPICS: usize = 64;

/// Why a topic, a pattern or a list of them is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic is empty.
    #[error("a topic may not be empty")]
    Empty,
    /// Longer than [`MAX_TOPIC_LEN`].
    #[error("a topic is at most 200 characters")]
    TooLong,
    /// A character outside `[A-Za-z0-9._~:/-]` (a pattern may also end in `/*`).
    #[error("a topic uses only letters, digits and . _ ~ : / - (a subscription may end in /*)")]
    BadCharacter,
    /// More than [`MAX_TOPICS`] topics.
    #[error("at most 64 topics")]
    TooMany,
}

fn topic_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'/' | b'-')
}

/// A topic an event is published to: 1–200 characters of `[A-Za-z0-9._~:/-]`.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    if !topic.bytes().all(topic_byte) {
        return Err(TopicError::BadCharacter);
    }
    Ok(())
}

/// What a stream subscribes to, or what a grant lets it read: one topic, or every topic under a
/// prefix (`users/*` matches `users/42` and `users/42/inbox`, not `users`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicPattern {
    /// Exactly this topic.
    Exact(String),
    /// Every topic that starts with this prefix (which ends with `/`).
    Prefix(String),
}

impl TopicPattern {
    /// Parse `users/42` or `users/*`. The part before a trailing `/*` follows the topic rule.
    pub fn parse(text: &str) -> Result<TopicPattern, TopicError> {
        if let Some(stem) = text.strip_suffix("/*") {
            validate_topic(stem)?;
            return Ok(TopicPattern::Prefix(format!("{stem}/")));
        }
        validate_topic(text)?;
        Ok(TopicPattern::Exact(text.to_owned()))
    }

    /// Whether an event published to `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicPattern::Exact(t) => t == topic,
            TopicPattern::Prefix(p) => topic.len() > p.len() && topic.starts_with(p.as_str()),
        }
    }

    /// Whether everything `other` matches is matched by `self` (a grant covering a
    /// subscription).
    pub fn covers(&self, other: &TopicPattern) -> bool {
        match (self, other) {
            (TopicPattern::Exact(a), TopicPattern::Exact(b)) => a == b,
            (TopicPattern::Exact(_), TopicPattern::Prefix(_)) => false,
            (TopicPattern::Prefix(_), TopicPattern::Exact(b)) => self.matches(b),
            (TopicPattern::Prefix(a), TopicPattern::Prefix(b)) => b.starts_with(a.as_str()),
        }
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicPattern::Exact(t) => f.write_str(t),
            TopicPattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// A list of topics an event is published to: 1–64 valid topics (duplicates removed, order
/// kept). Stops at the first bad one or at the 65th, so a huge list costs little.
pub fn validate_topics<S: AsRef<str>>(
    topics: impl IntoIterator<Item = S>,
) -> Result<Vec<String>, TopicError> {
    let mut out: Vec<String> = Vec::new();
    for topic in topics {
        let topic = topic.as_ref();
        validate_topic(topic)?;
        if out.iter().any(|t| t == topic) {
            continue;
        }
        if out.len() == MAX_TOPICS {
            return Err(TopicError::TooMany);
        }
        out.push(topic.to_owned());
    }
    if out.is_empty() {
        return Err(TopicError::Empty);
    }
    Ok(out)
}

/// The `?topic=` patterns of an `/events` query string (none: broadcasts only). At most 64
/// (duplicates removed); stops at the first bad one or at the 65th.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) fn topics_from_query(query: &str) -> Result<Vec<TopicPattern>, TopicError> {
    let mut out: Vec<TopicPattern> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != TOPIC_PARAM {
            continue;
        }
        let pattern = TopicPattern::parse(&value)?;
        if out.contains(&pattern) {
            continue;
        }
        if out.len() == MAX_TOPICS {
            return Err(TopicError::TooMany);
        }
        out.push(pattern);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_rules() {
        let long = "x".repeat(200);
        for ok in [
            "users/42",
            "a",
            "docs/7",
            "A.b_c~d:e/f-g",
            &long,
            "/",
            "a//b",
        ] {
            assert_eq!(validate_topic(ok), Ok(()), "{ok:?} should be allowed");
        }
        let too_long = "x".repeat(201);
        let table: [(&str, TopicError); 12] = [
            ("", TopicError::Empty),
            (&too_long, TopicError::TooLong),
            ("new\nline", TopicError::BadCharacter),
            ("nul\0byte", TopicError::BadCharacter),
            ("cr\r", TopicError::BadCharacter),
            ("with space", TopicError::BadCharacter),
            ("users/*", TopicError::BadCharacter),
            ("a,b", TopicError::BadCharacter),
            ("a?b", TopicError::BadCharacter),
            ("a&b", TopicError::BadCharacter),
            ("émoji", TopicError::BadCharacter),
            ("a%2Fb", TopicError::BadCharacter),
        ];
        for (topic, want) in table {
            assert_eq!(validate_topic(topic), Err(want), "{topic:?}");
        }
    }

    #[test]
    fn patterns_parse_match_and_cover() {
        let p = |s| TopicPattern::parse(s).unwrap();
        assert_eq!(p("users/42"), TopicPattern::Exact("users/42".into()));
        assert_eq!(p("users/*"), TopicPattern::Prefix("users/".into()));
        assert_eq!(p("users/*").to_string(), "users/*");
        for bad in ["*", "/*", "users*", "users/*/x", "a/**", "a\n/*", "a b/*"] {
            assert!(TopicPattern::parse(bad).is_err(), "{bad:?}");
        }
        let stem = "x".repeat(200);
        assert!(TopicPattern::parse(&format!("{stem}/*")).is_ok());
        assert!(TopicPattern::parse(&format!("x{stem}/*")).is_err());
        // matches
        assert!(p("users/*").matches("users/42"));
        assert!(p("users/*").matches("users/42/inbox"));
        assert!(!p("users/*").matches("users"));
        assert!(!p("users/*").matches("users/"));
        assert!(!p("users/*").matches("usersx/1"));
        assert!(p("users/42").matches("users/42"));
        assert!(!p("users/42").matches("users/420"));
        // covers
        assert!(p("users/*").covers(&p("users/42")));
        assert!(p("users/*").covers(&p("users/42/*")));
        assert!(p("users/*").covers(&p("users/*")));
        assert!(!p("users/42").covers(&p("users/*")));
        assert!(!p("users/42/*").covers(&p("users/*")));
        assert!(!p("users/42").covers(&p("users/43")));
        assert!(!p("docs/*").covers(&p("users/42")));
    }

    #[test]
    fn event_topic_lists_are_bounded() {
        assert_eq!(validate_topics(["a", "b", "a"]).unwrap(), vec!["a", "b"]);
        assert_eq!(
            validate_topics(Vec::<String>::new()),
            Err(TopicError::Empty)
        );
        let many: Vec<String> = (0..64).map(|i| format!("t{i}")).collect();
        assert_eq!(validate_topics(&many).unwrap().len(), 64);
        let ten_thousand: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
        assert_eq!(validate_topics(&ten_thousand), Err(TopicError::TooMany));
        assert_eq!(
            validate_topics(["ok", "bad\n"]),
            Err(TopicError::BadCharacter)
        );
    }

    #[test]
    fn query_topics() {
        let q = |s: &str| topics_from_query(s);
        assert_eq!(q(""), Ok(vec![]));
        assert_eq!(q("last_event_id=a-1"), Ok(vec![]));
        assert_eq!(
            q("topic=users%2F42&topic=docs/*&topic=users/42"),
            Ok(vec![
                TopicPattern::Exact("users/42".into()),
                TopicPattern::Prefix("docs/".into())
            ])
        );
        assert_eq!(q("topic="), Err(TopicError::Empty));
        assert_eq!(q("topic=a%0Ab"), Err(TopicError::BadCharacter));
        assert_eq!(q("topic=a%00b"), Err(TopicError::BadCharacter));
        let query = |n: usize| {
            (0..n)
                .map(|i| format!("topic=t{i}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(q(&query(64)).map(|t| t.len()), Ok(64));
        assert_eq!(q(&query(65)), Err(TopicError::TooMany));
        assert_eq!(q(&query(10_000)), Err(TopicError::TooMany));
    }
}

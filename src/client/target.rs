//! Shared, pure: where the stream is — its URL and topic set — and what a change of either means
//! for the connection (the rule of [`UseConnectionStatusOptions::url`] and
//! [`topics`](UseConnectionStatusOptions::topics)). No I/O; the rules' tests are in
//! `machine_tests.rs`.
//!
//! [`UseConnectionStatusOptions::url`]: super::UseConnectionStatusOptions::url

use super::machine::Input;

/// The stream a page asks for: the URL, and the topics as a set (sorted, without repeats), so
/// the same set in another order is the same stream — one request URL, one group of sharing
/// tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The stream's URL as the page gave it.
    pub(crate) url: String,
    /// The topics, sorted and deduplicated.
    pub(crate) topics: Vec<String>,
}

impl Target {
    /// The stream at `url` with `topics` (in any order, repeats allowed).
    pub(crate) fn new(url: impl Into<String>, topics: &[String]) -> Target {
        let mut topics = topics.to_vec();
        topics.sort_unstable();
        topics.dedup();
        Target {
            url: url.into(),
            topics,
        }
    }

    /// The request URL: `url?topic=a&topic=b` (percent-encoded, in set order), or `url`.
    #[cfg_attr(not(feature = "browser"), allow(dead_code))]
    pub(crate) fn stream_url(&self) -> String {
        let mut url = self.url.clone();
        for (i, topic) in self.topics.iter().enumerate() {
            let sep = if i == 0 && !self.url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(sep);
            url.push_str("topic=");
            url.extend(form_urlencoded::byte_serialize(topic.as_bytes()));
        }
        url
    }

    /// What moving from this stream to `next` asks of the connection: nothing when they are the
    /// same stream (an equal URL and topic set); else [`Input::Switch`], `fresh` when the URL
    /// changed — the event ids of another URL's server mean nothing here, so the new stream
    /// must not resume after one of them.
    pub(crate) fn switch_to(&self, next: &Target) -> Option<Input> {
        (self != next).then(|| Input::Switch {
            fresh: self.url != next.url,
        })
    }

    /// The resume point a stream of `next` may start from, given `last_event_id` seen on this
    /// one: the same id on the same URL (the server's ids are one sequence for all its topics),
    /// none on another.
    pub(crate) fn resume_point(
        &self,
        next: &Target,
        last_event_id: Option<String>,
    ) -> Option<String> {
        last_event_id.filter(|_| self.url == next.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, topics: &[&str]) -> Target {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        Target::new(url, &topics)
    }

    #[test]
    fn topics_go_into_the_stream_url_encoded_in_set_order() {
        assert_eq!(target("/events", &[]).stream_url(), "/events");
        assert_eq!(
            target("/events", &["users/42", "docs/*"]).stream_url(),
            "/events?topic=docs%2F*&topic=users%2F42"
        );
        assert_eq!(
            target("/events", &["b", "a", "b"]).stream_url(),
            target("/events", &["a", "b"]).stream_url(),
            "one set, one request (and one group of sharing tabs)"
        );
        assert_eq!(target("/e?x=1", &["a"]).stream_url(), "/e?x=1&topic=a");
    }
}

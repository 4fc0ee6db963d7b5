//! Both sides, pure: the resume point of an `/events` request — where a client asks to continue,
//! from its `Last-Event-ID` header and the `last_event_id` query parameter.

use super::wire::{EventId, LAST_EVENT_ID_PARAM};

/// Why a request's resume point is ambiguous (the server answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Two `Last-Event-ID` headers.
    #[error("the Last-Event-ID header is given more than once")]
    DuplicateHeader,
    /// Two `last_event_id` query parameters.
    #[error("the last_event_id query parameter is given more than once")]
    DuplicateParam,
}

/// Longest resume point taken from a request (an id is far shorter).
pub(crate) const MAX_RESUME_LEN: usize = 256;

/// Where a client asked to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No resume point: a fresh start with the live stream.
    Fresh,
    /// A well-formed id.
    Id(EventId),
    /// Something that is not an id; the client expects continuity, so it gets a `resync`.
    Malformed(String),
}

/// The resume point of an `/events` request, from its `Last-Event-ID` header values and its
/// query string — the one parser both transports use, so they answer alike.
///
/// Rules: the header (what a browser's own retry sends, so the newest) wins when it is a
/// well-formed id, else the `last_event_id` query parameter when it is; if neither is, a
/// non-empty value is [`Resume::Malformed`]; empty values count as absent. The same field given
/// twice (two headers, or the parameter twice) is ambiguous: 400.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) fn resume_point<'a>(
    header_values: impl IntoIterator<Item = &'a [u8]>,
    query: &str,
) -> Result<Resume, ResumeError> {
    let mut headers = header_values.into_iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(ResumeError::DuplicateHeader);
    }
    let mut from_query = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == LAST_EVENT_ID_PARAM {
            if from_query.is_some() {
                return Err(ResumeError::DuplicateParam);
            }
            from_query = Some(value.into_owned());
        }
    }
    let from_header = header.map(|raw| String::from_utf8_lossy(raw).into_owned());
    let candidates = [from_header, from_query];
    let present = candidates
        .iter()
        .flatten()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    let mut first_malformed: Option<String> = None;
    for raw in present {
        match raw.parse::<EventId>() {
            Ok(id) if raw.len() <= MAX_RESUME_LEN => return Ok(Resume::Id(id)),
            _ => {
                first_malformed.get_or_insert_with(|| raw.chars().take(MAX_RESUME_LEN).collect());
            }
        }
    }
    Ok(match first_malformed {
        Some(raw) => Resume::Malformed(raw),
        None => Resume::Fresh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resume(headers: &[&str], query: &str) -> Result<Resume, String> {
        resume_point(headers.iter().map(|h| h.as_bytes()), query).map_err(|e| e.to_string())
    }

    fn id(s: &str) -> Resume {
        Resume::Id(s.parse().unwrap())
    }

    #[test]
    fn one_parser_for_both_transports() {
        let cases: Vec<(&[&str], &str, Result<Resume, &str>)> = vec![
            (&[], "", Ok(Resume::Fresh)),
            (&[], "x=1", Ok(Resume::Fresh)),
            (&["ab-3"], "", Ok(id("ab-3"))),
            (&[], "last_event_id=ab-3", Ok(id("ab-3"))),
            (&[], "last_event_id=ab%2D3&x=1", Ok(id("ab-3"))),
            // The header is the newer (the browser's own retry): it wins when well-formed...
            (&["cd-4"], "last_event_id=ab-3", Ok(id("cd-4"))),
            // ...but a malformed header does not hide a good query value.
            (&["garbage"], "last_event_id=ab-3", Ok(id("ab-3"))),
            (&["ab-3"], "last_event_id=garbage", Ok(id("ab-3"))),
            // Only malformed values: resync, never silence.
            (&["garbage"], "", Ok(Resume::Malformed("garbage".into()))),
            (&[], "last_event_id=%00", Ok(Resume::Malformed("\0".into()))),
            (&["x"], "last_event_id=y", Ok(Resume::Malformed("x".into()))),
            // Empty values are absent.
            (&[""], "last_event_id=", Ok(Resume::Fresh)),
            (&[" "], "last_event_id=ab-1", Ok(id("ab-1"))),
            // Ambiguous requests are refused, whatever the values.
            (
                &[],
                "last_event_id=ab-1&last_event_id=ab-1",
                Err("more than once"),
            ),
            (&["ab-1", "ab-2"], "", Err("more than once")),
        ];
        for (headers, query, want) in cases {
            let got = resume(headers, query);
            match want {
                Ok(want) => assert_eq!(got, Ok(want), "{headers:?} {query:?}"),
                Err(text) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(text)),
                    "{headers:?} {query:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn huge_values_are_cut_before_they_are_echoed() {
        let long = format!("ab-{}", "1".repeat(400));
        match resume(&[&long], "").unwrap() {
            Resume::Malformed(raw) => assert_eq!(raw.len(), MAX_RESUME_LEN),
            other => panic!("{other:?}"),
        }
    }
}

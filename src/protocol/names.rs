//! Both sides, pure: what an application event may be called.

use super::wire::RESERVED_EVENT_NAMES;

/// Longest application event name.
pub const MAX_EVENT_NAME_LEN: usize = 64;

/// Why an application event name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventNameError {
    /// The name is empty.
    #[error("it is empty")]
    Empty,
    /// The name is longer than [`MAX_EVENT_NAME_LEN`].
    #[error("it is longer than 64 characters")]
    TooLong,
    /// A character outside `[A-Za-z0-9_.:-]`.
    #[error("use only letters, digits and _ . : -")]
    BadCharacter,
    /// One of the protocol's own event names.
    #[error("connected, ping, resync, draining, reauth and revoked are reserved by the protocol")]
    Reserved,
}

/// 1–64 characters of `[A-Za-z0-9_.:-]`, and not a protocol event name.
pub fn validate_event_name(name: &str) -> Result<(), EventNameError> {
    if name.is_empty() {
        return Err(EventNameError::Empty);
    }
    if name.len() > MAX_EVENT_NAME_LEN {
        return Err(EventNameError::TooLong);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(EventNameError::BadCharacter);
    }
    if RESERVED_EVENT_NAMES.contains(&name) {
        return Err(EventNameError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_name_rules() {
        let ok = [
            "update",
            "a",
            "chat.message",
            "user:42",
            "A_b-c",
            &"x".repeat(64),
        ];
        for name in ok {
            assert!(
                validate_event_name(name).is_ok(),
                "{name:?} should be allowed"
            );
        }
        let long = "x".repeat(65);
        let bad = [
            "",
            &long,
            "with space",
            "new\nline",
            "émoji",
            "ping",
            "connected",
            "resync",
            "draining",
            "reauth",
            "revoked",
            "a/b",
        ];
        for name in bad {
            assert!(
                validate_event_name(name).is_err(),
                "{name:?} should be refused"
            );
        }
    }
}

//! Property tests: the parsers that take outside input never panic, and accept exactly what
//! they should.

use proptest::prelude::*;
use sse_status::protocol::validate_event_name;
use sse_status::protocol::EventId;

proptest! {
    #[test]
    fn last_event_id_parser_never_panics(s in any::<String>()) {
        let _ = s.parse::<EventId>();
    }

    #[test]
    fn valid_event_ids_round_trip(epoch in "[0-9a-zA-Z]{1,32}", seq in any::<u64>()) {
        let id = EventId { epoch, seq };
        prop_assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn event_names_are_accepted_exactly_by_the_rule(name in any::<String>()) {
        let rule = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
            && !["connected", "ping", "resync", "draining"].contains(&name.as_str());
        prop_assert_eq!(validate_event_name(&name).is_ok(), rule);
    }

    #[test]
    fn allowed_names_pass(name in "[A-Za-z0-9_.:-]{1,64}") {
        prop_assume!(!["connected", "ping", "resync", "draining"].contains(&name.as_str()));
        prop_assert!(validate_event_name(&name).is_ok());
    }
}

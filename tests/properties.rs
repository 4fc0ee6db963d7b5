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
    fn event_names_are_accepted_exactly_by_the_rule(name in names()) {
        let rule = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
            && !RESERVED.contains(&name.as_str());
        prop_assert_eq!(validate_event_name(&name).is_ok(), rule);
    }

    #[test]
    fn allowed_names_pass(name in "[A-Za-z0-9_.:-]{1,64}") {
        prop_assume!(!RESERVED.contains(&name.as_str()));
        prop_assert!(validate_event_name(&name).is_ok());
    }
}

/// The names the protocol reserves, as `docs/contract.md` lists them: written out here, not
/// taken from the code under test.
const RESERVED: [&str; 6] = [
    "connected",
    "ping",
    "resync",
    "draining",
    "reauth",
    "revoked",
];

/// Any string, names that fit the rule's alphabet, around its length limit, and the reserved
/// names themselves (random strings alone never hit those).
fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.:-]{1,64}",
        "[a-z]{60,70}",
        prop::sample::select(RESERVED.to_vec()).prop_map(String::from),
    ]
}

#[test]
fn every_reserved_name_is_refused() {
    for name in RESERVED {
        assert!(
            validate_event_name(name).is_err(),
            "{name} is reserved by the protocol"
        );
    }
}

//! The embedded log's resume rules, table-driven (the Redis log is tested on a real Redis in
//! `tests/fleet_*.rs`).

use super::*;
use crate::protocol::EventId;
use crate::server::config::HubConfig;
use crate::server::stream::ring::{Next, Reading};

fn embedded(capacity: u64) -> EventLog {
    let config = HubConfig {
        replay_capacity: capacity,
        ..HubConfig::default()
    };
    EventLog::new(&config, 100, &Metrics::new())
}

fn plan(log: &EventLog, resume: Resume) -> Plan {
    let sub = log.hub().subscribe(&[]);
    match log
        .open(&resume, &sub)
        .expect("the embedded log always opens")
    {
        Start::Ready(plan) => plan,
        Start::Fetch(_) => panic!("the embedded log never fetches"),
    }
}

/// The events a stream starting with `plan` replays: read from the ring after its cursor.
fn seqs(log: &EventLog, plan: &Plan) -> Vec<u64> {
    let ring = log.hub().ring();
    let (mut cursor, mut out) = (plan.from, Vec::new());
    while let Next::Frame(f) = ring.next(cursor, ring.head(), Reading::Broadcasts) {
        out.push(f.pos.seq);
        cursor = f.seq;
    }
    out
}

#[test]
fn embedded_resume_table() {
    let log = embedded(5);
    let hub = Arc::clone(log.hub());
    for i in 0..8 {
        hub.publish("update", &format!("{i}"), None); // the window keeps 4..=8
    }
    let id = |seq| Resume::Id(hub.event_id(seq));
    let other = Resume::Id(EventId {
        epoch: "0000beef".into(),
        seq: 3,
    });
    let sid = hub.server_id().to_owned();
    type Case = (Resume, Vec<u64>, Option<&'static str>, u64);
    let cases: Vec<Case> = vec![
        (Resume::Fresh, vec![], None, 8),
        (id(8), vec![], None, 8),
        (id(5), vec![6, 7, 8], None, 5),
        (id(3), vec![4, 5, 6, 7, 8], None, 3),
        (id(2), vec![4, 5, 6, 7, 8], Some("too-old"), 3),
        (id(0), vec![4, 5, 6, 7, 8], Some("too-old"), 3),
        (id(9), vec![4, 5, 6, 7, 8], Some("unknown-id"), 3),
        (other, vec![4, 5, 6, 7, 8], Some("other-server"), 3),
        (
            Resume::Malformed("garbage\n".into()),
            vec![4, 5, 6, 7, 8],
            Some("unknown-id"),
            3,
        ),
    ];
    for (resume, want, resync, cursor) in cases {
        let label = format!("{resume:?}");
        let p = plan(&log, resume);
        assert_eq!(seqs(&log, &p), want, "resume from {label}");
        assert_eq!(p.resync.as_ref().map(|r| r.0.as_str()), resync, "{label}");
        assert_eq!(p.cursor, format!("{sid}-{cursor}"), "{label}");
        assert_eq!(p.last.seq, cursor, "{label}");
    }
}

#[test]
fn the_window_is_the_replay_capacity_even_when_the_ring_keeps_more_for_live_readers() {
    // send_queue (256 by default) sizes the ring; only the newest 5 answer a resume point.
    let log = embedded(5);
    let hub = Arc::clone(log.hub());
    for i in 0..20 {
        hub.publish("update", &format!("{i}"), None);
    }
    let p = plan(&log, Resume::Id(hub.event_id(14)));
    assert_eq!(p.resync.map(|r| r.0), Some(ResyncReason::TooOld));
    let p = plan(&log, Resume::Id(hub.event_id(15)));
    assert!(p.resync.is_none());
    assert_eq!(seqs(&log, &p), vec![16, 17, 18, 19, 20]);
}

#[test]
fn a_cursor_behind_the_ring_catches_up_with_a_resync_and_what_is_kept() {
    let log = embedded(5);
    let hub = Arc::clone(log.hub());
    for i in 0..8 {
        hub.publish("update", &format!("{i}"), None);
    }
    let Start::Ready(p) = log.catch_up(Pos { ms: 0, seq: 1 }) else {
        panic!("the embedded log never fetches");
    };
    assert_eq!(p.resync.as_ref().map(|r| r.0), Some(ResyncReason::TooOld));
    assert_eq!(
        p.resync.as_ref().map(|r| r.1.clone()),
        Some(hub.id_text(Pos { ms: 0, seq: 1 }))
    );
    assert_eq!(seqs(&log, &p), vec![4, 5, 6, 7, 8]);
}

#[test]
fn a_malformed_id_is_echoed_back_shortened() {
    let log = embedded(5);
    let long = "x".repeat(500);
    let p = plan(&log, Resume::Malformed(long));
    let (reason, requested) = p.resync.expect("resync");
    assert_eq!(reason, ResyncReason::Unknown);
    assert_eq!(requested.len(), MAX_ECHO);
}

#[test]
fn resuming_at_zero_before_any_event_is_complete() {
    let log = embedded(5);
    let hub = Arc::clone(log.hub());
    let p = plan(&log, Resume::Id(hub.event_id(0)));
    assert!(p.resync.is_none());
    hub.publish("a", "1", None);
    hub.publish("a", "2", None);
    let p = plan(&log, Resume::Id(hub.event_id(0)));
    assert_eq!((seqs(&log, &p), p.resync.is_none()), (vec![1, 2], true));
}

#[tokio::test]
async fn appends_get_ids_in_order_and_land_in_the_ring() {
    let log = embedded(5);
    let sub = log.hub().subscribe(&[]);
    let a = log.append("update".into(), "1".into(), &[]).await.unwrap();
    let b = log.append("update".into(), "2".into(), &[]).await.unwrap();
    let sid = log.hub().server_id().to_owned();
    assert_eq!((a, b), (format!("{sid}-1"), format!("{sid}-2")));
    let ring = log.hub().ring();
    let Next::Frame(first) = ring.next(sub.head, ring.head(), Reading::Broadcasts) else {
        panic!("the first append is in the ring");
    };
    assert_eq!(first.pos.seq, 1);
}

#[cfg(feature = "redis")]
#[test]
fn the_redis_log_maps_foreign_and_malformed_ids_without_asking_redis() {
    let config = HubConfig {
        // Nothing listens there: these cases must be decided locally.
        redis_url: Some("redis://127.0.0.1:1/0".into()),
        ..HubConfig::default()
    };
    let log = EventLog::new(&config, 100, &Metrics::new());
    assert!(log.is_shared());
    let embedded_id = Resume::Id(EventId {
        epoch: "a1b2c3d4".into(),
        seq: 3,
    });
    let p = plan(&log, embedded_id);
    assert_eq!(p.resync.map(|r| r.0), Some(ResyncReason::OtherLog));
    let p = plan(&log, Resume::Malformed("nope".into()));
    assert_eq!(p.resync.map(|r| r.0), Some(ResyncReason::Unknown));
    assert_eq!(p.cursor, "0-0");
    let p = plan(&log, Resume::Fresh);
    assert!(p.resync.is_none());
    // A stream id the local cache cannot answer needs Redis, which is unreachable: refused.
    let stream_id = Resume::Id("1700000000000-0".parse().unwrap());
    let sub = log.hub().subscribe(&[]);
    assert!(log.open(&stream_id, &sub).is_err());
    // A cursor behind the ring reads its gap from Redis (not a resync).
    assert!(matches!(
        log.catch_up(Pos {
            ms: 1_700_000_000_000,
            seq: 0
        }),
        Start::Fetch(_)
    ));
}

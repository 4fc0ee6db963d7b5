//! The hub's rules: admission, ids, appends visible in order, topic routing, the signals.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::server::stream::ring::{topics_of, Next, Reading};
use crate::server::stream::topics::Routed;

fn hub(max_streams: usize, replay: usize, live: usize) -> Arc<Hub> {
    Hub::new(
        HubSize {
            max_streams,
            replay,
            live,
        },
        IdStyle::Process,
    )
}

fn topics(list: &[&str]) -> Option<Topics> {
    topics_of(&list.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>())
}

fn at(ms: u64, seq: u64) -> Pos {
    Pos { ms, seq }
}

fn rung(bell: &Bell) -> bool {
    let mut waiting = Box::pin(bell.rung());
    let waker = futures::task::noop_waker();
    waiting
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_ready()
}

#[test]
fn admission_respects_the_cap_and_frees_on_drop() {
    let hub = hub(2, 8, 8);
    let a = hub.admit().expect("first");
    let b = hub.admit().expect("second");
    assert!(hub.admit().is_none());
    assert_eq!(hub.open_streams(), 2);
    assert_ne!(hub.connection_id(a.number()), hub.connection_id(b.number()));
    drop(a);
    assert_eq!(hub.open_streams(), 1);
    assert!(hub.admit().is_some());
}

#[tokio::test(start_paused = true)]
async fn all_closed_waits_for_the_last_stream_and_no_longer() {
    let hub = hub(4, 8, 8);
    let slot = hub.admit().unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let waiting = {
        let hub = Arc::clone(&hub);
        tokio::spawn(async move { hub.all_closed(until).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished());
    drop(slot);
    assert!(waiting.await.unwrap());
    let _held = hub.admit().unwrap();
    let start = tokio::time::Instant::now();
    assert!(!hub.all_closed(start + Duration::from_secs(2)).await);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[test]
fn server_ids_are_random_hex() {
    let (a, b) = (hub(1, 1, 1), hub(1, 1, 1));
    assert_eq!(a.server_id().len(), 8);
    assert!(a.server_id().bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.server_id(), b.server_id());
}

#[test]
fn events_are_encoded_once_with_name_id_and_data_and_ids_rise() {
    let hub = hub(1, 8, 8);
    let a = hub.publish("update", "{\"a\":1}", None);
    let b = hub.publish("update", "2", None);
    assert_eq!(a.epoch, hub.server_id());
    assert_eq!((a.seq, b.seq), (1, 2));
    let Next::Frame(frame) = hub.ring().next(0, hub.ring().head(), Reading::Broadcasts) else {
        panic!("the first event is in the ring");
    };
    assert_eq!(
        std::str::from_utf8(&frame.bytes).unwrap(),
        format!("event: update\nid: {a}\ndata: {{\"a\":1}}\n\n")
    );
}

#[test]
fn stream_ids_parse_and_order() {
    assert_eq!(
        Pos::parse_stream_id("1700000000000-3"),
        Some(at(1_700_000_000_000, 3))
    );
    assert_eq!(Pos::parse_stream_id("0-0"), Some(Pos::ZERO));
    for bad in [
        "",
        "1",
        "a-1",
        "1-",
        "-1",
        "1-2-3",
        "1-+2",
        "123456789012345678901-0",
    ] {
        assert_eq!(Pos::parse_stream_id(bad), None, "{bad:?}");
    }
    assert!(at(1, 9) < at(2, 0));
    assert!(at(2, 0) < at(2, 1));
}

#[test]
fn delivered_positions_only_move_forward_and_resume_points_are_found_in_the_window() {
    let hub = Hub::new(
        HubSize {
            max_streams: 10,
            replay: 3,
            live: 3,
        },
        IdStyle::Stream,
    );
    for p in [at(10, 0), at(10, 1), at(11, 0), at(12, 0)] {
        assert!(hub.deliver(p, "x", "1", None));
    }
    assert!(
        !hub.deliver(at(11, 0), "x", "1", None),
        "old positions are ignored"
    );
    // The ring holds 10-1, 11-0, 12-0 (seqs 2..=4); 10-0 was evicted, so it is the base.
    let ring = hub.ring();
    assert_eq!(ring.resume_at(at(12, 0)), Some(4));
    assert_eq!(ring.resume_at(at(11, 0)), Some(3));
    assert_eq!(ring.resume_at(at(10, 1)), Some(2));
    assert_eq!(
        ring.resume_at(at(10, 0)),
        Some(1),
        "the evicted event is the base"
    );
    assert_eq!(ring.resume_at(at(9, 0)), None, "older: ask the log");
    assert_eq!(ring.resume_at(at(11, 5)), None, "not an id the ring knows");
    assert_eq!(ring.resume_at(at(13, 0)), None, "beyond the head");
    assert_eq!(hub.id_text(at(12, 0)), "12-0");
    assert_eq!(hub.subscribe(&[]).head_pos, at(12, 0));
}

#[test]
fn preload_fills_the_ring_without_waking_anyone() {
    let hub = Hub::new(
        HubSize {
            max_streams: 10,
            replay: 2,
            live: 2,
        },
        IdStyle::Stream,
    );
    let bell = hub.bell();
    let frames = [at(1, 0), at(2, 0), at(3, 0)]
        .into_iter()
        .map(|pos| {
            Arc::new(crate::server::stream::ring::Frame {
                pos,
                seq: 0,
                bytes: hub.encode_app(pos, "x", "1"),
                topics: None,
            })
        })
        .collect();
    hub.preload(frames);
    assert!(!rung(&bell));
    assert_eq!(hub.head(), at(3, 0));
    assert_eq!(hub.ring().resume_at(at(2, 0)), Some(2));
    assert_eq!(hub.ring().resume_at(at(1, 0)), Some(1), "the base");
}

#[test]
fn a_topic_event_reaches_its_subscribers_inboxes_and_no_broadcast_reader() {
    let hub = hub(10, 8, 8);
    let everyone = hub.subscribe(&[]);
    let alice = hub.subscribe(&["users/alice".into()]);
    let bob = hub.subscribe(&["users/bob".into()]);
    hub.publish("x", "1", topics(&["users/alice"]));
    hub.publish("x", "2", None);
    let head = hub.ring().head();
    let (_, alice_inbox) = alice.inbox.as_ref().unwrap();
    let (_, bob_inbox) = bob.inbox.as_ref().unwrap();
    assert_eq!(alice_inbox.after(alice.head), Routed::Next(Some(1)));
    assert_eq!(bob_inbox.after(bob.head), Routed::Next(None));
    let first = |how| match hub.ring().next(everyone.head, head, how) {
        Next::Frame(f) => Some(f.seq),
        _ => None,
    };
    assert_eq!(
        first(Reading::Broadcasts),
        Some(2),
        "the topic event is skipped"
    );
    assert_eq!(first(Reading::Routed(Some(1))), Some(1), "in log order");
    // Given back, an inbox leaves the index.
    hub.unsubscribe(alice.inbox.as_ref().unwrap().0);
    hub.publish("x", "3", topics(&["users/alice"]));
    assert_eq!(alice_inbox.newest(), 1);
}

#[test]
fn a_broadcast_reader_is_not_behind_when_only_topic_events_left_the_ring() {
    let hub = hub(10, 4, 4);
    let sub = hub.subscribe(&[]);
    for _ in 0..10 {
        hub.publish("x", "t", topics(&["docs/1"]));
    }
    let head = hub.ring().head();
    assert!(matches!(
        hub.ring().next(sub.head, head, Reading::Broadcasts),
        Next::Idle
    ));
    hub.publish("x", "b", None);
    for _ in 0..4 {
        hub.publish("x", "t", topics(&["docs/1"]));
    }
    // The broadcast is gone from the ring now: a reader before it is behind.
    assert!(matches!(
        hub.ring()
            .next(sub.head, hub.ring().head(), Reading::Broadcasts),
        Next::Behind
    ));
}

#[test]
fn bells_ring_for_what_every_stream_reads_not_for_topic_events() {
    let hub = hub(4, 8, 8);
    let bell = hub.bell();
    assert!(!rung(&bell) && !bell.take(), "nothing happened yet");
    hub.publish("update", "1", None);
    assert!(rung(&bell) && bell.take());
    assert!(!bell.take(), "taken once");
    hub.publish("update", "1", topics(&["docs/7"]));
    assert!(
        !rung(&bell) && !bell.take(),
        "a topic event wakes its subscribers only"
    );
    hub.revoke("alice");
    assert!(rung(&bell) && bell.take());
    hub.set_ping(1, Bytes::from_static(b"x"));
    assert!(rung(&bell) && bell.take());
    hub.start_draining();
    assert!(rung(&bell) && bell.take());
    assert_eq!(hub.phase(), Phase::Draining);
    drop(bell);
    let _other = hub.bell();
    assert_eq!(
        hub.bells.read().unwrap().len(),
        1,
        "a dropped bell is let go"
    );
}

#[test]
fn revocations_are_kept_briefly_and_a_reader_too_far_behind_is_told_it_cannot_know() {
    let hub = hub(4, 8, 8);
    assert_eq!(hub.revocations(), 0);
    hub.revoke("alice");
    assert_eq!(hub.revoked_since(0, "alice"), Some(true));
    assert_eq!(hub.revoked_since(0, "bob"), Some(false));
    assert_eq!(hub.revoked_since(1, "alice"), Some(false));
    for _ in 0..REVOCATIONS_KEPT {
        hub.revoke("carol");
    }
    assert_eq!(hub.revoked_since(0, "bob"), None);
    let recent = hub.revocations() - 1;
    assert_eq!(hub.revoked_since(recent, "carol"), Some(true));
}

#[test]
fn the_drain_lets_out_what_was_published_before_it() {
    let hub = hub(4, 8, 8);
    hub.publish("x", "1", None);
    hub.start_draining();
    hub.publish("x", "2", None);
    assert_eq!(hub.drain_at(), 1);
    hub.close();
    assert_eq!(hub.phase(), Phase::Closed);
}

#[test]
fn store_changes_are_kept_and_the_embedded_count_is_live() {
    let hub = Hub::new(
        HubSize {
            max_streams: 10,
            replay: 8,
            live: 8,
        },
        IdStyle::Stream,
    );
    assert!(
        !hub.store_ok(),
        "Redis counts as unreachable until it answers"
    );
    hub.set_store_ok(true);
    hub.set_fleet_size(1234, 3);
    let fleet = hub.fleet();
    assert_eq!(
        (fleet.clients, fleet.instances, fleet.store_ok()),
        (1234, 3, true)
    );
    let embedded = self::hub(10, 8, 8);
    let _slot = embedded.admit();
    assert_eq!(embedded.fleet().clients, 1);
    assert!(embedded.store_ok());
}

#[tokio::test(start_paused = true)]
async fn heartbeat_pings_every_interval_with_rising_seq() {
    let hub = hub(10, 8, 8);
    let bell = hub.bell();
    let stop = CancellationToken::new();
    let task =
        tokio::spawn(Arc::clone(&hub).run_heartbeat(Duration::from_millis(500), stop.clone()));
    let start = tokio::time::Instant::now();
    for want in 1..=3 {
        bell.rung().await;
        let (seq, frame) = hub.ping();
        assert_eq!(seq, want);
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("event: ping\ndata: {\"seq\":"), "{text}");
        assert!(
            text.contains("\"fleet\":{\"clients\":0,\"instances\":1,\"store\":\"ok\"}"),
            "{text}"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(500 * want));
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_store_outage_is_announced_at_once() {
    let hub = Hub::new(
        HubSize {
            max_streams: 10,
            replay: 8,
            live: 8,
        },
        IdStyle::Stream,
    );
    hub.set_store_ok(true);
    let bell = hub.bell();
    let stop = CancellationToken::new();
    let task = tokio::spawn(Arc::clone(&hub).run_heartbeat(Duration::from_secs(60), stop.clone()));
    tokio::task::yield_now().await;
    let start = tokio::time::Instant::now();
    hub.set_store_ok(false);
    bell.rung().await;
    let (_, frame) = hub.ping();
    let text = std::str::from_utf8(&frame).unwrap();
    assert!(text.contains("\"store\":\"unreachable\""), "{text}");
    assert!(start.elapsed() < Duration::from_secs(1));
    stop.cancel();
    task.await.unwrap();
}

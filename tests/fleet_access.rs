//! Fleet tests of private streams on a real Redis (started per test): topics travel with their
//! event in the one stream, replay read back from Redis filters by grant, presence counts every
//! instance, and a revocation on one instance ends the subject's streams on every instance
//! within a second.

#![cfg(feature = "redis")]

mod support;

use std::time::{Duration, Instant};

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use serde_json::json;
use sse_status::server::{JwtAuthorizer, LiveHub};
use support::redis_server::RedisServer;
use support::*;

const SECRET: &str = "a-fleet-secret-for-access-tokens";

fn token(sub: &str, topics: &[&str]) -> String {
    JwtAuthorizer::new(SECRET)
        .issue(sub, topics, Duration::from_secs(600))
        .expect("a token")
}

/// An instance of a fleet on `url` with the JWT authorizer, ready. The ring keeps only
/// `capacity` events, so older resume points are read back from Redis.
async fn member(url: &str, capacity: u64) -> TestServer {
    let mut c = publishing(500);
    c.redis_url = Some(url.to_owned());
    c.replay_capacity = capacity;
    let hub = LiveHub::builder(c)
        .authorizer(JwtAuthorizer::new(SECRET))
        .build()
        .expect("a valid config");
    let server = TestServer::start_hub(hub).await;
    wait_ready(&server).await;
    server
}

async fn stream(
    c: &reqwest::Client,
    server: &TestServer,
    query: &str,
    token: &str,
    resume: Option<&str>,
) -> impl Stream<Item = Event> + Unpin {
    let cookie = format!("sse_access={token}");
    let mut headers = vec![("cookie", cookie.as_str())];
    if let Some(id) = resume {
        headers.push(("last-event-id", id));
    }
    let (status, _, mut events) = open(c, &server.url(&format!("/events{query}")), &headers).await;
    assert_eq!(status, 200);
    let first = next_event(&mut events, Duration::from_secs(5)).await;
    assert_eq!(first.event, "connected");
    events
}

/// The next application event that is not a leftover `end`.
async fn next_news(events: &mut (impl Stream<Item = Event> + Unpin)) -> Event {
    loop {
        let e = next_app(events).await;
        if e.event != "end" {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_replay_presence_and_revocation_hold_across_the_fleet() {
    let redis = RedisServer::start().await;
    let a = member(&redis.url(), 2).await;
    let b = member(&redis.url(), 2).await;
    let c = client();
    let alice = token("alice", &["users/alice"]);
    let bob = token("bob", &["users/bob"]);
    let mut alice_a = stream(&c, &a, "?topic=users/alice", &alice, None).await;
    let mut alice_b = stream(&c, &b, "?topic=users/alice", &alice, None).await;
    let mut bob_b = stream(&c, &b, "?topic=users/bob", &bob, None).await;

    // Live: published on A, delivered on B only to the streams it is for.
    let first = publish_to(&c, &a, &["users/alice"], "update", json!("a1")).await;
    publish_to(&c, &a, &["users/bob"], "update", json!("b1")).await;
    for i in 0..5 {
        publish_to(
            &c,
            &b,
            &["users/alice"],
            "update",
            json!(&format!("a{}", i + 2)),
        )
        .await;
    }
    publish(&c, &a, "end", json!(null)).await;
    let alice_sees: Vec<String> = (1..=6).map(|i| format!("\"a{i}\"")).collect();
    assert_eq!(until_end(&mut alice_a).await, alice_sees);
    assert_eq!(until_end(&mut alice_b).await, alice_sees);
    assert_eq!(until_end(&mut bob_b).await, vec!["\"b1\""]);

    // Replay from Redis (the ring keeps 2): bob resuming from alice's first id gets only his.
    let mut again = stream(&c, &b, "?topic=users/bob", &bob, Some(&first)).await;
    publish(&c, &b, "end", json!(null)).await;
    assert_eq!(until_end(&mut again).await, vec!["\"b1\""]);
    drop(again);

    // Presence: alice's two streams, counted on either instance.
    eventually(
        "presence: 2 on 2 instances",
        Duration::from_secs(5),
        || async {
            let p: serde_json::Value = c
                .get(b.url("/api/presence?topic=users/alice"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            when(p, |p| {
                *p == json!({"topic": "users/alice", "subscribers": 2, "instances": 2})
            })
        },
    )
    .await;

    // Revocation on A ends alice's streams on both instances within a second; bob's stays.
    let started = Instant::now();
    let resp = c
        .post(a.url("/api/revoke"))
        .bearer_auth(TOKEN)
        .json(&json!({"subject": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for s in [&mut alice_a, &mut alice_b] {
        let e = next_news(s).await;
        assert_eq!(e.event, "revoked");
        let end = tokio::time::timeout(Duration::from_secs(1), s.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ends after revoked");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "revoked everywhere in {:?}",
        started.elapsed()
    );
    eventually(
        "alice holds no stream on B",
        Duration::from_secs(1),
        || async { when(b.hub.open_streams(), |n| *n == 1) },
    )
    .await;
    assert_eq!(a.hub.open_streams(), 0);
    publish_to(&c, &a, &["users/bob"], "update", json!("b2")).await;
    assert_eq!(next_news(&mut bob_b).await.data, "\"b2\"");
}

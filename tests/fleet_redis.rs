//! Fleet tests on a real Redis (started per test): several instances share one Redis Streams
//! log. A publish on one reaches every instance's clients in one order; a client may move or an
//! instance restart without a resync; a Redis outage refuses publishes honestly (503) and loses
//! nothing that was accepted.

#![cfg(feature = "redis")]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use sse_status::protocol::{Connected, Ping, Resync};
use support::redis_server::RedisServer;
use support::*;

/// The next `n` application events' ids (pings skipped).
async fn app_ids(events: &mut (impl Stream<Item = Event> + Unpin), n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        ids.push(next_app(events).await.id);
    }
    ids
}

async fn connected(events: &mut (impl Stream<Item = Event> + Unpin)) -> (Event, Connected) {
    let e = next_event(events, Duration::from_secs(5)).await;
    assert_eq!(e.event, "connected");
    let hello = serde_json::from_str(&e.data).expect("connected data");
    (e, hello)
}

fn as_stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("a stream id");
    (ms.parse().expect("ms"), seq.parse().expect("seq"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_instance_reaches_every_instance_in_one_order() {
    let redis = RedisServer::start().await;
    let a = fleet_member(&redis.url(), 64).await;
    let b = fleet_member(&redis.url(), 64).await;
    let c3 = fleet_member(&redis.url(), 64).await;
    let c = client();
    let mut streams = Vec::new();
    for server in [&a, &b, &c3] {
        let (_, _, mut s) = open(&c, &server.url("/events"), &[]).await;
        connected(&mut s).await;
        streams.push(s);
    }
    // Publishes land on all three instances, interleaved: one log orders them.
    let mut published = Vec::new();
    for i in 0..30 {
        let on = [&a, &b, &c3][i % 3];
        published.push(publish(&c, on, "update", serde_json::json!(i)).await);
    }
    let mut sorted = published.clone();
    sorted.sort_by_key(|id| as_stream_id(id));
    assert_eq!(sorted, published, "202 ids are the stream's, in order");
    for s in &mut streams {
        assert_eq!(app_ids(s, 30).await, published);
    }
    // The fleet view counts every instance's streams.
    let metrics = eventually(
        "the fleet gauges count 3",
        Duration::from_secs(5),
        || async {
            when(text(&c, a.url("/metrics")).await, |m| {
                m.contains("sse_fleet_connections_open 3") && m.contains("sse_fleet_instances 3")
            })
        },
    )
    .await;
    assert!(metrics.contains("sse_connections_open 1"), "{metrics}");
    assert!(metrics.contains("sse_store_up 1"), "{metrics}");
    // ... and every instance says so in its pings (leases are renewed every second).
    for s in &mut streams {
        next_where(
            s,
            "a ping saying 3 clients on 3 instances",
            Duration::from_secs(5),
            |e| {
                if e.event != "ping" {
                    return None;
                }
                let fleet = serde_json::from_str::<Ping>(&e.data)
                    .unwrap()
                    .fleet
                    .expect("fleet in ping");
                assert!(fleet.store_ok());
                ((fleet.clients, fleet.instances) == (3, 3)).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moving_to_another_instance_gets_exactly_what_it_missed() {
    let redis = RedisServer::start().await;
    // A small local cache: the move reads from Redis (XRANGE), not from B's memory.
    let a = fleet_member(&redis.url(), 4).await;
    let b = fleet_member(&redis.url(), 4).await;
    let c = client();
    let (_, _, mut s) = open(&c, &a.url("/events"), &[]).await;
    connected(&mut s).await;
    let mut first = Vec::new();
    for i in 0..3 {
        first.push(publish(&c, &a, "update", serde_json::json!(i)).await);
    }
    assert_eq!(app_ids(&mut s, 3).await, first);
    drop(s);
    let mut missed = Vec::new();
    for i in 0..10 {
        missed.push(publish(&c, &a, "update", serde_json::json!(i)).await);
    }
    let last = first.last().unwrap();
    let (status, _, mut s) = open(&c, &b.url("/events"), &[("last-event-id", last)]).await;
    assert_eq!(status, 200);
    let (hello_event, hello) = connected(&mut s).await;
    assert_eq!(hello.replayed, 10);
    assert_eq!(&hello_event.id, last, "the resume point is kept");
    assert_eq!(
        app_ids(&mut s, 10).await,
        missed,
        "no resync, no gap, no duplicate"
    );
    let live = publish(&c, &b, "update", serde_json::json!("live")).await;
    assert_eq!(app_ids(&mut s, 1).await, vec![live]);

    // Moving within the local cache works the same (no Redis read needed).
    let (_, _, mut s2) = open(&c, &a.url("/events"), &[("last-event-id", &missed[7])]).await;
    let (_, hello) = connected(&mut s2).await;
    assert_eq!(hello.replayed, 3);
    assert_eq!(app_ids(&mut s2, 2).await, missed[8..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_instance_loses_nothing_and_needs_no_resync() {
    let redis = RedisServer::start().await;
    let a = fleet_member(&redis.url(), 5).await;
    let b = fleet_member(&redis.url(), 5).await;
    let c = client();
    let (_, _, mut s) = open(&c, &a.url("/events"), &[]).await;
    connected(&mut s).await;
    let seen = publish(&c, &b, "update", serde_json::json!(0)).await;
    assert_eq!(app_ids(&mut s, 1).await, vec![seen.clone()]);
    drop(s);
    let mut missed = Vec::new();
    for i in 0..12 {
        missed.push(publish(&c, &b, "update", serde_json::json!(i)).await);
    }
    stop(a).await;
    stop(b).await;
    let a = fleet_member(&redis.url(), 5).await;
    let b = fleet_member(&redis.url(), 5).await;
    for server in [&a, &b] {
        let (_, _, mut s) = open(&c, &server.url("/events"), &[("last-event-id", &seen)]).await;
        let (_, hello) = connected(&mut s).await;
        assert_eq!(hello.replayed, 12, "everything since the last seen event");
        assert_eq!(app_ids(&mut s, 12).await, missed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_refuses_honestly_and_loses_nothing_accepted() {
    let mut redis = RedisServer::start().await;
    let a = fleet_member(&redis.url(), 10_000).await;
    let b = fleet_member(&redis.url(), 10_000).await;
    let c = client();
    let (_, _, mut s) = open(&c, &b.url("/events"), &[]).await;
    connected(&mut s).await;

    // A publish storm on A for ~6 s; Redis is down for 3 s in the middle.
    let url = a.url("/api/publish");
    let storm = tokio::spawn(async move {
        let c = client();
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        let until = Instant::now() + Duration::from_secs(6);
        let mut i = 0u64;
        while Instant::now() < until {
            i += 1;
            let r = c
                .post(&url)
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({ "event": "update", "data": i }))
                .send()
                .await
                .expect("publish request");
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            let body: serde_json::Value = r.json().await.expect("JSON answer");
            if status == 202 {
                accepted.push(body["id"].as_str().expect("id").to_owned());
            } else {
                refused.push((status, body["error"].to_string(), retry_after));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (accepted, refused)
    });
    // The storm runs on its own clock (its results come at its end): 1.5 s of it before the
    // outage is the scenario, not a wait for something.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.stop();
    let down_at = Instant::now();
    // While it is down: pages say so, readiness says so, the stream stays open (pings go on).
    let mut saw_notice = false;
    let mut during = Vec::new();
    while down_at.elapsed() < Duration::from_secs(3) {
        match tokio::time::timeout(Duration::from_millis(200), s.next()).await {
            Ok(Some(e)) if e.event == "ping" => {
                let ping: Ping = serde_json::from_str(&e.data).unwrap();
                saw_notice |= ping.fleet.is_some_and(|f| !f.store_ok());
            }
            Ok(Some(e)) => during.push(e.id),
            Ok(None) => panic!("the stream ended during the outage"),
            Err(_) => {}
        }
    }
    assert!(saw_notice, "a ping said the store is unreachable");
    let ready = c.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "store_unavailable");
    redis.restart().await;
    let (accepted, refused) = storm.await.unwrap();
    assert!(!refused.is_empty(), "the outage refused some publishes");
    assert!(accepted.len() > 50, "publishes succeeded around the outage");
    for (status, code, retry_after) in &refused {
        assert_eq!(*status, 503, "{code}");
        assert_eq!(code, "\"store_unavailable\"");
        assert!(retry_after, "503 carries Retry-After");
    }
    // Every accepted event arrives on B exactly once and in order (on the same stream).
    let wanted: HashSet<&String> = accepted.iter().collect();
    let mut got = during;
    if !wanted.iter().all(|id| got.contains(id)) {
        next_where(
            &mut s,
            "every event after the outage",
            Duration::from_secs(20),
            |e| {
                if e.event != "ping" {
                    got.push(e.id.clone());
                }
                wanted.iter().all(|id| got.contains(id)).then_some(())
            },
        )
        .await;
    }
    let keys: Vec<_> = got.iter().map(|id| as_stream_id(id)).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "delivered once, in order"
    );
    // Accepted ones in their order: the stream's order equals the publish order.
    let delivered_accepted: Vec<&String> = got.iter().filter(|id| wanted.contains(id)).collect();
    assert_eq!(delivered_accepted, accepted.iter().collect::<Vec<_>>());
    // Ready again means publishing works again, at once, on either instance (B published
    // nothing during the outage: its kept connection died with Redis).
    wait_ready(&a).await;
    wait_ready(&b).await;
    publish(&c, &b, "update", serde_json::json!("after")).await;
    publish(&c, &a, "update", serde_json::json!("after")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimmed_malformed_and_foreign_ids_get_a_resync() {
    let redis = RedisServer::start().await;
    let a = fleet_member(&redis.url(), 5).await;
    let c = client();
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(publish(&c, &a, "update", serde_json::json!(i)).await);
    }
    // MAXLEN ~ 5 trims whole nodes of the stream: the first ids are gone from Redis, and the
    // local cache holds only the last 5.
    let mut conn = redis.conn().await;
    let first: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("sse-status:events")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_ne!(first[0].0, ids[0], "the oldest was trimmed");
    for (last, reason) in [
        (ids[0].clone(), "too-old"),
        ("garbage".to_owned(), "unknown-id"),
        ("a1b2c3d4-7".to_owned(), "other-log"),
        ("99999999999999-0".to_owned(), "unknown-id"),
    ] {
        let (status, _, mut s) = open(&c, &a.url("/events"), &[("last-event-id", &last)]).await;
        assert_eq!(status, 200);
        connected(&mut s).await;
        let e = next_event(&mut s, Duration::from_secs(5)).await;
        assert_eq!(e.event, "resync", "{last}");
        let data: Resync = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data.reason.as_str(), reason, "{last}");
        assert_eq!(data.requested_id, last);
        // Then live, from now on.
        let live = publish(&c, &a, "update", serde_json::json!("live")).await;
        assert_eq!(app_ids(&mut s, 1).await, vec![live]);
    }
    let metrics = text(&c, a.url("/metrics")).await;
    assert!(metrics.contains("sse_resyncs_total 4"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_port_lets_several_instances_share_one_port() {
    use sse_status::server::bind as bind_with;
    let redis = RedisServer::start().await;
    let first = bind_with("127.0.0.1:0".parse().unwrap(), true).expect("bind");
    let addr = first.local_addr().unwrap();
    assert!(
        bind_with(addr, false).is_err(),
        "without --reuse-port the port is taken"
    );
    let second = bind_with(addr, true).expect("a second listener with SO_REUSEPORT");
    let mut config = publishing(500);
    config.redis_url = Some(redis.url());
    let a = TestServer::start_on(first, config.clone()).await;
    let b = TestServer::start_on(second, config).await;
    wait_ready(&a).await;
    wait_ready(&b).await;
    assert_eq!(a.addr, b.addr);
    // The kernel spreads new connections over both processes' listeners.
    let c = client();
    let mut streams = Vec::new();
    let mut servers = HashSet::new();
    for _ in 0..24 {
        let (_, _, mut s) = open(&c, &a.url("/events"), &[]).await;
        let (_, hello) = connected(&mut s).await;
        servers.insert(hello.server_id);
        streams.push(s);
    }
    assert_eq!(servers.len(), 2, "both instances took streams");
    let id = publish(&c, &a, "update", serde_json::json!("one port")).await;
    for s in &mut streams {
        assert_eq!(app_ids(s, 1).await, vec![id.clone()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_starts_and_serves_without_redis_and_catches_up_when_it_comes() {
    let mut redis = RedisServer::not_started();
    let mut config = publishing(200);
    config.redis_url = Some(redis.url());
    let a = TestServer::start(config).await;
    let c = client();
    // Pages and streams are served; readiness and publishing say why not.
    let health = c.get(a.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = c.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "store_unavailable");
    let page = c.get(a.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (status, _, mut s) = open(&c, &a.url("/events"), &[]).await;
    assert_eq!(status, 200);
    let (_, hello) = connected(&mut s).await;
    assert!(!hello.fleet.expect("fleet in connected").store_ok());
    let refused = c
        .post(a.url("/api/publish"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "event": "update", "data": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable");
    // Pings go on meanwhile, saying the store is unreachable.
    let e = next_event(&mut s, Duration::from_secs(2)).await;
    assert_eq!(e.event, "ping");
    let ping: Ping = serde_json::from_str(&e.data).unwrap();
    assert!(!ping.fleet.unwrap().store_ok());

    redis.restart().await;
    wait_ready(&a).await;
    // The open stream is told at once, then gets what is published now.
    next_where(
        &mut s,
        "a ping saying the store is back",
        Duration::from_secs(5),
        |e| {
            (e.event == "ping"
                && serde_json::from_str::<Ping>(&e.data)
                    .unwrap()
                    .fleet
                    .unwrap()
                    .store_ok())
            .then_some(())
        },
    )
    .await;
    let id = publish(&c, &a, "update", serde_json::json!(2)).await;
    assert_eq!(app_ids(&mut s, 1).await, vec![id]);
}

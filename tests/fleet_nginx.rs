//! Fleet through a real load balancer: nginx running `deploy/nginx.conf` in front of two
//! instances on one Redis. Streams pass unbuffered; when the instance holding a stream goes
//! away, the client comes back through nginx to the other one and gets exactly what it missed.

#![cfg(feature = "redis")]

mod support;

use std::time::Duration;

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use sse_status::protocol::Connected;
use support::nginx::Nginx;
use support::redis_server::RedisServer;
use support::*;

async fn connected(events: &mut (impl Stream<Item = Event> + Unpin)) -> (Event, Connected) {
    let e = next_event(events, Duration::from_secs(5)).await;
    assert_eq!(e.event, "connected");
    let hello = serde_json::from_str(&e.data).expect("connected data");
    (e, hello)
}

/// Publish through nginx (must be accepted); the event's id.
async fn publish_via(c: &reqwest::Client, lb: &Nginx, i: u32) -> String {
    let r = c
        .post(lb.url("/api/publish"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "event": "update", "data": i }))
        .send()
        .await
        .expect("publish through nginx");
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.expect("JSON");
    body["id"].as_str().expect("id").to_owned()
}

#[test]
fn the_shipped_config_has_what_sse_needs() {
    let conf = support::nginx::config_for(
        "127.0.0.1:1".parse().unwrap(),
        &[
            "127.0.0.1:2".parse().unwrap(),
            "127.0.0.1:3".parse().unwrap(),
        ],
    );
    for needed in [
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
        "keepalive 32;",
        "proxy_next_upstream error timeout http_502 http_503;",
        "server 127.0.0.1:2 ",
        "server 127.0.0.1:3 ",
        "listen 127.0.0.1:1;",
    ] {
        assert!(conf.contains(needed), "deploy/nginx.conf lacks {needed:?}");
    }
    let read_timeout: u64 = conf
        .split("proxy_read_timeout ")
        .nth(1)
        .and_then(|rest| rest.split("s;").next())
        .and_then(|n| n.parse().ok())
        .expect("a proxy_read_timeout in seconds");
    assert!(
        read_timeout * 1000 >= 3 * 5_000,
        "read timeout {read_timeout}s must sit well above the 5 s default heartbeat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_moves_through_nginx_when_its_instance_stops() {
    let redis = RedisServer::start().await;
    let a = fleet_member(&redis.url(), 4).await;
    let b = fleet_member(&redis.url(), 4).await;
    let lb = Nginx::start(&[a.addr, b.addr]);
    let c = client();

    let (status, headers, mut s) = open(&c, &lb.url("/events"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let (_, hello) = connected(&mut s).await;
    let mut seen = Vec::new();
    for i in 0..3 {
        seen.push(publish_via(&c, &lb, i).await);
    }
    for id in &seen {
        // Unbuffered: each event comes through nginx as soon as it is published.
        assert_eq!(&next_app(&mut s).await.id, id);
    }
    let (serving, other) = if hello.server_id == a.hub.server_id() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(hello.server_id, serving.hub.server_id());
    stop(serving).await;
    // The stream was told to go (draining) and ended.
    let mut tail = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), s.next()).await {
        tail.push(e.event);
    }
    assert!(tail.contains(&"draining".to_owned()), "{tail:?}");

    // Meanwhile events go on (nginx sends publishes to the instance that is left).
    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(publish_via(&c, &lb, 10 + i).await);
    }
    let last = seen.last().unwrap();
    let (status, _, mut s) = open(&c, &lb.url("/events"), &[("last-event-id", last)]).await;
    assert_eq!(status, 200);
    let (_, hello) = connected(&mut s).await;
    assert_eq!(hello.server_id, other.hub.server_id());
    assert_eq!(hello.replayed, 5);
    for id in &missed {
        assert_eq!(
            &next_app(&mut s).await.id,
            id,
            "exactly what it missed, no resync"
        );
    }
}

//! Server tests on a real socket: `/events` speaks the contract.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use futures::StreamExt;
use sse_status::protocol::{Connected, EventId, Ping, Resync};
use support::*;

#[tokio::test]
async fn connected_comes_first_with_id_retry_and_contract_fields() {
    let server = TestServer::start(config(5_000)).await;
    let (status, _, mut events) = open(&client(), &server.url("/events"), &[]).await;
    assert_eq!(status, 200);
    let first = next_event(&mut events, Duration::from_secs(2)).await;
    assert_eq!(first.event, "connected");
    assert_eq!(first.retry, Some(Duration::from_millis(1_000)));
    let id: EventId = first.id.parse().expect("connected carries a parseable id");
    let hello: Connected = serde_json::from_str(&first.data).unwrap();
    assert_eq!(hello.heartbeat_ms, 5_000);
    assert_eq!(hello.server_id, server.hub.server_id());
    assert_eq!(id.epoch, hello.server_id);
    assert!(!hello.connection_id.is_empty());
    assert!(hello.server_time > 1_600_000_000_000);
}

#[tokio::test]
async fn each_stream_gets_its_own_connection_id_and_the_same_server_id() {
    let server = TestServer::start(config(5_000)).await;
    let c = client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, _, mut events) = open(&c, &server.url("/events"), &[]).await;
        let hello: Connected =
            serde_json::from_str(&next_event(&mut events, Duration::from_secs(2)).await.data)
                .unwrap();
        ids.push((hello.connection_id, hello.server_id));
    }
    assert_ne!(ids[0].0, ids[1].0);
    assert_ne!(ids[1].0, ids[2].0);
    assert!(ids.iter().all(|(_, s)| *s == ids[0].1));
}

#[tokio::test]
async fn pings_arrive_at_the_heartbeat_interval_without_an_id() {
    let server = TestServer::start(config(200)).await;
    let (_, _, mut events) = open(&client(), &server.url("/events"), &[]).await;
    let first = next_event(&mut events, Duration::from_secs(2)).await;
    let mut pings = Vec::new();
    while pings.len() < 7 {
        let e = next_event(&mut events, Duration::from_secs(2)).await;
        assert_eq!(e.event, "ping");
        // eventsource-stream reports the last id seen; a ping must not set a new one
        assert_eq!(e.id, first.id, "pings carry no id");
        pings.push(serde_json::from_str::<Ping>(&e.data).unwrap());
    }
    let mut gaps = Vec::new();
    for pair in pings.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "consecutive");
        gaps.push(pair[1].server_time - pair[0].server_time);
    }
    // Never early; on a busy test machine one tick may come late, so judge the median.
    assert!(
        gaps.iter().all(|g| *g >= 150),
        "ping gaps {gaps:?} for a 200 ms heartbeat"
    );
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!(
        (150..=300).contains(&median),
        "ping gaps {gaps:?} for a 200 ms heartbeat"
    );
}

// This app's whole router (dashboard, compression, 404 page).
#[cfg(feature = "app-server")]
#[tokio::test]
async fn stream_headers_are_right_and_never_compressed() {
    let server = TestServer::start(config(5_000)).await;
    let c = client();
    let (_, headers, mut events) =
        open(&c, &server.url("/events"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(
        headers.get("content-encoding").is_none(),
        "SSE must not be compressed"
    );
    // the client does not decompress: a parseable event proves the bytes are plain
    assert_eq!(
        next_event(&mut events, Duration::from_secs(2)).await.event,
        "connected"
    );

    // the page itself *is* compressed, so the exemption above is real, not an absent layer
    let page = c
        .get(server.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn a_malformed_last_event_id_gets_a_resync_not_silence() {
    let server = TestServer::start(config(5_000)).await;
    let c = client();
    for bad in [
        "garbage",
        "abc-",
        "-1",
        "x/y-3",
        "zz-99999999999999999999999",
    ] {
        let (status, _, mut events) =
            open(&c, &server.url("/events"), &[("last-event-id", bad)]).await;
        assert_eq!(status, 200, "header {bad:?}");
        assert_eq!(
            next_event(&mut events, Duration::from_secs(2)).await.event,
            "connected"
        );
        let resync = next_event(&mut events, Duration::from_secs(2)).await;
        assert_eq!(resync.event, "resync", "header {bad:?}");
        let data: Resync = serde_json::from_str(&resync.data).unwrap();
        assert_eq!(data.reason.as_str(), "unknown-id");
        assert_eq!(data.requested_id, bad);
    }
    // An empty id is no id (as browsers treat it): a fresh start, no resync.
    let (status, _, mut events) = open(&c, &server.url("/events"), &[("last-event-id", "")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(2)).await.event,
        "connected"
    );
    let (status, _, _) = open(&c, &server.url("/events?last_event_id=%00%FF"), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_slot() {
    let server = TestServer::start(config(100)).await;
    let (_, _, mut events) = open(&client(), &server.url("/events"), &[]).await;
    next_event(&mut events, Duration::from_secs(2)).await;
    assert_eq!(server.hub.open_streams(), 1);
    drop(events);
    // the server notices on its next write (a ping within 100 ms)
    eventually("the disconnect noticed", Duration::from_secs(3), || async {
        when(server.hub.open_streams(), |n| *n == 0)
    })
    .await;
}

#[tokio::test]
async fn beyond_max_streams_streams_get_503_with_retry_after_and_json() {
    let mut cfg = config(5_000);
    cfg.max_streams = 2;
    let server = TestServer::start(cfg).await;
    let c = client();
    let (_, _, mut a) = open(&c, &server.url("/events"), &[]).await;
    let (_, _, mut b) = open(&c, &server.url("/events"), &[]).await;
    next_event(&mut a, Duration::from_secs(2)).await;
    next_event(&mut b, Duration::from_secs(2)).await;
    let refused = c.get(server.url("/events")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_connections");
    assert!(body["message"].as_str().unwrap().contains("maximum"));
    // the rest keeps working
    assert_eq!(
        c.get(server.url("/healthz")).send().await.unwrap().status(),
        200
    );
    drop(a);
    eventually("the slot freed", Duration::from_secs(2), || async {
        when(server.hub.open_streams(), |n| *n < 2)
    })
    .await;
    let (status, _, _) = open(&c, &server.url("/events"), &[]).await;
    assert_eq!(status, 200);
}

// This app's whole router (dashboard, compression, 404 page).
#[cfg(feature = "app-server")]
#[tokio::test]
async fn health_ready_and_404() {
    let server = TestServer::start(config(5_000)).await;
    let c = client();
    let health = c.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(
        c.get(server.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let missing = c.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("Page not found"));
}

// This app's whole router (dashboard, compression, 404 page).
#[cfg(feature = "app-server")]
#[tokio::test]
async fn dashboard_server_render_says_connecting() {
    let server = TestServer::start(config(5_000)).await;
    let html = client()
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"data-testid="connection-banner""#));
    assert!(html.contains(r#"data-state="connecting""#));
    assert!(html.contains(r#"role="status""#));
}

/// The dashboard's render for an anonymous reader is shared for one second, per language and
/// query; a reader with any other cookie gets a render of their own. (Leptos writes a fresh
/// script nonce into every render: equal pages mean one render.)
#[cfg(feature = "app-server")]
#[tokio::test]
async fn anonymous_renders_are_shared_for_a_second_and_private_ones_never() {
    let server = TestServer::start(config(5_000)).await;
    let c = client();
    let page = |headers: &'static [(&'static str, &'static str)], path: &'static str| {
        let c = c.clone();
        let url = server.url(path);
        async move {
            let mut req = c.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert!(res.headers().get("set-cookie").is_none());
            res.text().await.unwrap()
        }
    };
    let first = page(&[], "/").await;
    assert!(first.contains(r#"data-state="connecting""#));
    assert_eq!(page(&[], "/").await, first, "shared within the second");
    // Each language and query is its own render, in its own language.
    let zh = page(&[("accept-language", "zh-CN")], "/").await;
    assert!(zh.contains(r#"lang="zh-CN""#), "{zh}");
    assert!(first.contains(r#"lang="en""#));
    assert_eq!(page(&[("accept-language", "zh-CN")], "/").await, zh);
    assert!(page(&[("cookie", "lang=zh-CN")], "/")
        .await
        .contains(r#"lang="zh-CN""#));
    assert_ne!(page(&[], "/?share=0").await, first);
    // Any other cookie: never shared, never stored.
    let private = page(&[("cookie", "sse_access=x")], "/").await;
    assert_ne!(private, first);
    assert_ne!(page(&[("cookie", "sse_access=x")], "/").await, private);
    // A second later the page is rendered again. The cache reads tokio's clock: move it on a
    // second instead of waiting one (paused only for the jump; the sockets need it running).
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(1_001)).await;
    tokio::time::resume();
    assert_ne!(page(&[], "/").await, first, "an entry lives one second");
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns_within_the_timeout() {
    let mut cfg = config(5_000);
    cfg.shutdown_timeout_ms = 3_000;
    let mut server = TestServer::start(cfg).await;
    let c = client();
    let mut streams = Vec::new();
    for _ in 0..5 {
        let (_, _, mut events) = open(&c, &server.url("/events"), &[]).await;
        next_event(&mut events, Duration::from_secs(2)).await;
        streams.push(events);
    }
    let started = std::time::Instant::now();
    server.signal_shutdown();
    let handle = server.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(3), handle)
        .await
        .expect("server stopped within the shutdown timeout")
        .unwrap()
        .unwrap();
    for mut s in streams {
        let last = next_event(&mut s, Duration::from_secs(1)).await;
        assert_eq!(last.event, "draining", "told to reconnect elsewhere");
        let end = tokio::time::timeout(Duration::from_secs(1), s.next()).await;
        assert!(matches!(end, Ok(None)), "then the stream ended");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Read from `s` until `needle` shows up (or fail after 3 s); returns everything read.
async fn read_to(s: &mut tokio::net::TcpStream, needle: &str) -> String {
    let (all, end) = read_until(s, Duration::from_secs(3), |all| {
        String::from_utf8_lossy(all).contains(needle)
    })
    .await;
    let all = String::from_utf8_lossy(&all).into_owned();
    assert_eq!(end, ReadEnd::Done, "{needle:?} not read: {all}");
    all
}

#[tokio::test]
async fn events_on_a_reused_keep_alive_connection_work_the_same() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(config(5_000)).await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = read_to(&mut s, "\"status\":\"ok\"").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // the same connection now asks for the stream (what a browser does with a pooled connection)
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: nonsense\r\n\r\n")
        .await
        .unwrap();
    let text = read_to(&mut s, "\n\n").await;
    let text = read_until_more(&mut s, text, "event: connected").await;
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("cache-control: no-cache"), "{text}");
    assert!(text.contains("x-accel-buffering: no"), "{text}");
    assert!(text.contains("retry: 1000"), "{text}");
}

async fn read_until_more(s: &mut tokio::net::TcpStream, mut have: String, needle: &str) -> String {
    if !have.contains(needle) {
        have.push_str(&read_to(s, needle).await);
    }
    have
}

#[tokio::test]
async fn a_new_connection_gets_the_direct_stream_with_the_contract_headers() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(config(5_000)).await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        .await
        .unwrap();
    let text = read_to(&mut s, "event: connected").await;
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("content-type: text/event-stream"));
    assert!(head.contains("cache-control: no-cache"));
    assert!(head.contains("x-accel-buffering: no"));
    assert!(!head.contains("content-encoding"));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_is_not_served() {
    use tokio::io::AsyncWriteExt;
    let mut cfg = config(100);
    cfg.header_timeout_ms = 300;
    let server = TestServer::start(cfg).await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost:").await.unwrap();
    // The server's verdict on the half head (its header timeout) is the event to wait for: the
    // stream was never opened up to then.
    let (answer, end) = read_until(&mut s, Duration::from_secs(5), |_| false).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(end, ReadEnd::Closed, "the server hung up: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(
        server.hub.open_streams(),
        0,
        "no stream before the head is complete"
    );
    let metrics = text(&client(), server.url("/metrics")).await;
    assert_eq!(
        metric_value(&metrics, "sse_connections_total"),
        Some(0.0),
        "no stream was ever opened"
    );
}

// This app's whole router (dashboard, compression, 404 page).
#[cfg(feature = "app-server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_renders_under_concurrent_load() {
    // Server renders hop between worker threads; anything thread-bound in the render panics.
    let server = TestServer::start(config(5_000)).await;
    let c = client();
    let renders: Vec<_> = (0..64)
        .map(|_| {
            let (c, url) = (c.clone(), server.url("/"));
            tokio::spawn(async move { c.get(url).send().await?.text().await })
        })
        .collect();
    for r in renders {
        let html = r.await.unwrap().expect("a complete response");
        assert!(html.contains(r#"data-testid="connection-banner""#));
    }
}

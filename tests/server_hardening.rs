//! Server tests on real sockets: slow and malformed clients cannot pin memory, hold requests
//! open or change what `/events` means (issue 8). Timeouts are shortened per test so the slow
//! clients are real but the suite stays quick.

#![cfg(feature = "ssr")]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw HTTP response read off a socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// Read one response (head, then `content-length` bytes), failing the test after `within`.
async fn response(sock: &mut TcpStream, within: Duration) -> Raw {
    tokio::time::timeout(within, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = res.parse(&buf) {
                let status = res.code.expect("status");
                let length = res
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| {
                        std::str::from_utf8(h.value)
                            .unwrap()
                            .parse::<usize>()
                            .unwrap()
                    });
                let head = String::from_utf8_lossy(&buf[..len]).to_lowercase();
                if let Some(length) = length {
                    while buf.len() < len + length {
                        let n = sock.read(&mut chunk).await.expect("read body");
                        assert!(n > 0, "closed inside the body");
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = String::from_utf8_lossy(&buf[len..len + length]).into_owned();
                    return Raw { status, head, body };
                }
                let body = String::from_utf8_lossy(&buf[len..]).into_owned();
                return Raw { status, head, body };
            }
            let n = sock.read(&mut chunk).await.expect("read head");
            assert!(
                n > 0,
                "closed before a response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("a response in time")
}

/// Whether the server closes the connection within `within` (reading and discarding).
async fn closed_within(sock: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn quick(heartbeat_ms: u64) -> sse_status::server::HubConfig {
    let mut c = publishing(heartbeat_ms);
    c.header_timeout_ms = 500;
    c.idle_timeout_ms = 800;
    c.body_timeout_ms = 500;
    c
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.addr).await.expect("connect")
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// Read one metric's value from `/metrics` (0 if the series is absent would hide a bug: fail).
async fn metric(server: &TestServer, series: &str) -> f64 {
    let text = text(&client(), server.url("/metrics")).await;
    metric_value(&text, series).unwrap_or_else(|| panic!("{series} not in /metrics:\n{text}"))
}

/// Send a request head one byte every 50 ms (never finishing within 3 s) on the write half
/// while the read half waits for the answer; returns the answer and how long it took.
async fn trickled(sock: TcpStream) -> (Raw, Duration, bool) {
    let (mut rd, mut wr) = sock.into_split();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let raw = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = rd.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf
    })
    .await
    .expect("the server closes a trickling connection");
    let took = start.elapsed();
    writer.abort();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let closed = true;
    (
        Raw {
            status,
            head: text.to_lowercase(),
            body: String::new(),
        },
        took,
        closed,
    )
}

#[tokio::test]
async fn a_trickled_head_gets_408_and_is_closed_on_a_new_connection() {
    let server = TestServer::start(quick(5_000)).await;
    let (raw, took, _) = trickled(connect(&server).await).await;
    assert_eq!(raw.status, 408, "{}", raw.head);
    assert!(raw.head.contains("request_timeout"), "{}", raw.head);
    // 500 ms header timeout, counted from the first byte.
    assert!(took < Duration::from_millis(1_500), "took {took:?}");
    assert_eq!(
        metric(
            &server,
            "sse_requests_refused_total{reason=\"header_timeout\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_trickled_head_on_a_reused_keep_alive_connection_gets_408_too() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(HEALTHZ).await.unwrap();
    let first = response(&mut sock, Duration::from_secs(2)).await;
    assert_eq!(first.status, 200);
    assert!(!first.head.contains("connection: close"), "{}", first.head);
    let (raw, took, _) = trickled(sock).await;
    assert_eq!(raw.status, 408, "{}", raw.head);
    assert!(took < Duration::from_millis(1_500), "took {took:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_idle_timeout_and_not_before() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(HEALTHZ).await.unwrap();
    assert_eq!(
        response(&mut sock, Duration::from_secs(2)).await.status,
        200
    );
    // Idle for less than the 800 ms timeout: still usable.
    tokio::time::sleep(Duration::from_millis(400)).await;
    sock.write_all(HEALTHZ).await.unwrap();
    assert_eq!(
        response(&mut sock, Duration::from_secs(2)).await.status,
        200
    );
    let start = Instant::now();
    assert!(closed_within(&mut sock, Duration::from_secs(3)).await);
    let idle = start.elapsed();
    assert!(
        idle >= Duration::from_millis(700) && idle < Duration::from_millis(2_000),
        "closed after {idle:?}"
    );
    // A new connection that never sends a byte is idle too.
    let mut silent = connect(&server).await;
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_hundred_unfinished_big_heads_are_all_closed_by_the_header_timeout() {
    let server = TestServer::start(quick(5_000)).await;
    let mut socks = Vec::new();
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(9 * 1024));
    for _ in 0..100 {
        let mut s = connect(&server).await;
        s.write_all(big.as_bytes()).await.unwrap();
        socks.push(s);
    }
    let start = Instant::now();
    let closed = futures::future::join_all(
        socks
            .iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(4))),
    )
    .await;
    assert_eq!(closed.iter().filter(|c| **c).count(), 100);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.hub.open_sockets(), 0);
}

#[tokio::test]
async fn a_head_over_the_limit_gets_431() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(17 * 1024));
    let _ = sock.write_all(big.as_bytes()).await;
    let raw = response(&mut sock, Duration::from_secs(2)).await;
    assert_eq!(raw.status, 431);
    assert!(raw.body.contains("headers_too_large"), "{}", raw.body);
}

#[tokio::test]
async fn beyond_the_socket_cap_new_connections_get_a_prompt_503() {
    let mut cfg = quick(5_000);
    cfg.max_sockets = Some(10);
    cfg.idle_timeout_ms = 30_000;
    let server = TestServer::start(cfg).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect(&server).await);
    }
    // Let the accept loop take them all.
    eventually("10 sockets accepted", Duration::from_secs(2), || async {
        when(server.hub.open_sockets(), |n| *n >= 10)
    })
    .await;
    let mut extra = connect(&server).await;
    extra.write_all(HEALTHZ).await.unwrap();
    let start = Instant::now();
    let raw = response(&mut extra, Duration::from_secs(2)).await;
    assert_eq!(raw.status, 503);
    assert!(raw.head.contains("retry-after: 1"), "{}", raw.head);
    assert!(raw.body.contains("too_many_sockets"), "{}", raw.body);
    assert!(start.elapsed() < Duration::from_millis(500));
    drop(held);
    // Room again: served.
    eventually("every socket closed", Duration::from_secs(2), || async {
        when(server.hub.open_sockets(), |n| *n == 0)
    })
    .await;
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let raw = response(&mut sock, Duration::from_secs(2)).await;
    assert_eq!(raw.status, 200);
    assert!(
        raw.body.contains("sse_sockets_refused_total 1"),
        "{}",
        raw.body
    );
}

/// An authorised publish whose head declares `length` body bytes, followed by only 9 of them.
fn publish_declaring(length: u64) -> String {
    format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"event\":"
    )
}

#[tokio::test]
async fn publish_with_a_huge_declared_body_gets_413_at_once() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(publish_declaring(100_000_000).as_bytes())
        .await
        .unwrap();
    let start = Instant::now();
    let raw = response(&mut sock, Duration::from_secs(2)).await;
    assert_eq!(raw.status, 413, "{raw:?}");
    assert!(start.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn publish_with_a_withheld_body_gets_408_within_the_body_timeout() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(publish_declaring(100).as_bytes())
        .await
        .unwrap();
    let start = Instant::now();
    let raw = response(&mut sock, Duration::from_secs(3)).await;
    assert_eq!(raw.status, 408, "{raw:?}");
    assert!(raw.body.contains("request_timeout"), "{}", raw.body);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1_500), "took {took:?}");
    // Nothing was published.
    assert_eq!(metric(&server, "sse_events_published_total").await, 0.0);
}

#[tokio::test]
async fn bytes_sent_after_a_stream_request_close_the_stream() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let raw = response(&mut sock, Duration::from_secs(2)).await;
    assert_eq!(raw.status, 200);
    let junk = vec![b'x'; 1 << 20];
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&junk).await;
    });
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    writer.abort();
    assert!(
        closed.is_ok(),
        "the stream stayed open while the client flooded it"
    );
    assert_eq!(
        metric(
            &server,
            "sse_requests_refused_total{reason=\"unexpected_input\"}"
        )
        .await,
        1.0
    );
    assert_eq!(server.hub.open_streams(), 0);
}

#[tokio::test]
async fn targets_without_a_path_get_400_and_nothing_panics() {
    let server = TestServer::start(quick(5_000)).await;
    for line in [
        "GET 127.0.0.1:80 HTTP/1.1",
        "CONNECT example.com:443 HTTP/1.1",
        "POST x:1 HTTP/1.1",
        "GET http://example.com/ HTTP/1.1",
        "GET ?x HTTP/1.1",
    ] {
        let mut sock = connect(&server).await;
        sock.write_all(format!("{line}\r\nHost: t\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let raw = response(&mut sock, Duration::from_secs(2)).await;
        assert_eq!(raw.status, 400, "{line}: {raw:?}");
        assert!(raw.body.contains("bad_request"), "{line}: {}", raw.body);
    }
    // The server still serves.
    assert!(text(&client(), server.url("/healthz")).await.contains("ok"));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), sock.read_to_end(&mut all))
        .await
        .expect("both answers, then close")
        .unwrap();
    let all = String::from_utf8_lossy(&all);
    let ok = all.find("\"ok\"").expect("healthz answered");
    let ready = all.find("\"ready\"").expect("readyz answered");
    assert!(ok < ready, "{all}");
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
}

#[tokio::test]
async fn a_stream_on_a_reused_keep_alive_connection_takes_the_direct_path() {
    let server = TestServer::start(quick(5_000)).await;
    let mut sock = connect(&server).await;
    sock.write_all(HEALTHZ).await.unwrap();
    assert_eq!(
        response(&mut sock, Duration::from_secs(2)).await.status,
        200
    );
    sock.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let raw = response(&mut sock, Duration::from_secs(2)).await;
    assert_eq!(raw.status, 200);
    assert!(raw.head.contains("content-type: text/event-stream"));
    // The direct writer's head: no chunked encoding (hyper would frame the body in chunks).
    assert!(!raw.head.contains("transfer-encoding"), "{}", raw.head);
    let mut rest = raw.body;
    let mut chunk = [0u8; 1024];
    while !rest.contains("event: connected") {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        rest.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert_eq!(server.hub.open_streams(), 1);
}

/// Both transports — the direct writer and hyper/axum (`--no-fast-path`) — must answer the
/// same request the same way.
async fn resume_answers(no_fast_path: bool) {
    let mut cfg = quick(5_000);
    cfg.no_fast_path = no_fast_path;
    let server = TestServer::start(cfg).await;
    let c = client();
    let a = publish(&c, &server, "update", serde_json::json!(1)).await;
    let b = publish(&c, &server, "update", serde_json::json!(2)).await;
    let path = format!("/events?last_event_id={a}&last_event_id={a}");
    let resp = c.get(server.url(&path)).send().await.unwrap();
    assert_eq!(
        resp.status(),
        400,
        "duplicated parameter (no_fast_path={no_fast_path})"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");

    // A malformed header does not hide a good query value: replay from `a`.
    let (status, _, mut events) = open(
        &c,
        &server.url(&format!("/events?last_event_id={a}")),
        &[("Last-Event-ID", "garbage")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(2)).await.event,
        "connected"
    );
    let next = next_app(&mut events).await;
    assert_eq!(
        (next.event.as_str(), next.id.as_str()),
        ("update", b.as_str())
    );

    // Only a malformed id: resync, reason unknown-id, then everything buffered.
    let (_, _, mut events) =
        open(&c, &server.url("/events"), &[("Last-Event-ID", "garbage")]).await;
    assert_eq!(
        next_event(&mut events, Duration::from_secs(2)).await.event,
        "connected"
    );
    let resync = next_event(&mut events, Duration::from_secs(2)).await;
    assert_eq!(resync.event, "resync", "no_fast_path={no_fast_path}");
    let data: serde_json::Value = serde_json::from_str(&resync.data).unwrap();
    assert_eq!(data["reason"], "unknown-id");
    assert_eq!(data["requested_id"], "garbage");
    assert_eq!(next_app(&mut events).await.id, a);
}

#[tokio::test]
async fn resume_points_mean_the_same_on_the_direct_path() {
    resume_answers(false).await;
}

#[tokio::test]
async fn resume_points_mean_the_same_through_hyper() {
    resume_answers(true).await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::start(quick(5_000)).await;
    let c = client();
    for (auth, want) in [
        (format!("bearer {TOKEN}"), 202),
        (format!("BEARER   {TOKEN}"), 202),
        (format!("Bearer {TOKEN}x"), 401),
        (format!("Basic {TOKEN}"), 401),
        (format!("Bearer {} {}", TOKEN, TOKEN), 401),
    ] {
        let resp = c
            .post(server.url("/api/publish"))
            .header("authorization", &auth)
            .json(&serde_json::json!({"event": "update", "data": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{auth:?}");
    }
}

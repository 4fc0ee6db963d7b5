//! Server tests on real sockets: publishing, replay by `Last-Event-ID`, resync, slow clients,
//! drain and metrics.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use sse_status::protocol::{Connected, Draining, Resync};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn error_body(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn publish_requires_a_configured_token_and_the_right_one() {
    let c = client();
    let off = TestServer::start(config(5_000)).await;
    let (status, body) = error_body(
        c.post(off.url("/api/publish"))
            .bearer_auth("anything")
            .json(&serde_json::json!({"event": "x", "data": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "publish_disabled");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("SSE_PUBLISH_TOKEN"));

    let on = TestServer::start(publishing(5_000)).await;
    let body = serde_json::json!({"event": "update", "data": {"n": 1}});
    let missing = c
        .post(on.url("/api/publish"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(error_body(missing).await.0, 401);
    let wrong = c
        .post(on.url("/api/publish"))
        .bearer_auth("s3cret-tokeN")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, err) = error_body(wrong).await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    let id = publish(&c, &on, "update", serde_json::json!({"n": 1})).await;
    assert_eq!(id, format!("{}-1", on.hub.server_id()));
}

#[tokio::test]
async fn bad_publish_requests_get_clear_json_errors_and_publish_nothing() {
    let c = client();
    let server = TestServer::start(publishing(5_000)).await;
    let post = |body: Vec<u8>| {
        c.post(server.url("/api/publish"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, u16, &str, &str)> = vec![
        (
            b"{\"event\": \"x\", \"data\": ".to_vec(),
            400,
            "bad_json",
            "EOF",
        ),
        (b"not json".to_vec(), 400, "bad_json", "expected"),
        (
            b"{\"data\": 1}".to_vec(),
            400,
            "bad_json",
            "missing field `event`",
        ),
        (
            br#"{"event": "ping", "data": 1}"#.to_vec(),
            400,
            "bad_event_name",
            "reserved",
        ),
        (
            br#"{"event": "has space", "data": 1}"#.to_vec(),
            400,
            "bad_event_name",
            "letters",
        ),
        (
            br#"{"event": "", "data": 1}"#.to_vec(),
            400,
            "bad_event_name",
            "empty",
        ),
    ];
    for (body, status, code, says) in cases {
        let (got, err) = error_body(post(body.clone()).await.unwrap()).await;
        assert_eq!(
            (got, err["error"].as_str().unwrap()),
            (status, code),
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
    }
    let big = format!(r#"{{"event":"x","data":"{}"}}"#, "a".repeat(64 * 1024));
    let (status, err) = error_body(post(big.into_bytes()).await.unwrap()).await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (413, "payload_too_large")
    );
    // This app's router answers unknown API routes with JSON (the library's routers leave
    // `/api/*` to the embedding app, whose server functions live there).
    #[cfg(feature = "app-server")]
    {
        let (status, err) = error_body(c.get(server.url("/api/nope")).send().await.unwrap()).await;
        assert_eq!((status, err["error"].as_str().unwrap()), (404, "not_found"));
    }
    // nothing was published by any of these
    let ok = publish(&c, &server, "update", serde_json::json!(1)).await;
    assert!(
        ok.ends_with("-1"),
        "first accepted event is number 1, got {ok}"
    );
    let metrics = text(&c, server.url("/metrics")).await;
    assert!(
        metrics.contains("sse_publish_errors_total{status=\"400\"} 6"),
        "{metrics}"
    );
    assert!(metrics.contains("sse_publish_errors_total{status=\"413\"} 1"));
}

#[tokio::test]
async fn published_events_reach_every_stream_with_ids_in_order() {
    let c = client();
    let server = TestServer::start(publishing(5_000)).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let (_, _, mut s) = open(&c, &server.url("/events"), &[]).await;
        next_event(&mut s, Duration::from_secs(2)).await;
        streams.push(s);
    }
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(publish(&c, &server, "update", serde_json::json!({"i": i})).await);
    }
    for s in &mut streams {
        for (i, id) in ids.iter().enumerate() {
            let e = next_app(s).await;
            assert_eq!((e.event.as_str(), &e.id), ("update", id));
            assert_eq!(e.data, format!("{{\"i\":{i}}}"));
        }
    }
}

#[tokio::test]
async fn reconnecting_with_last_event_id_replays_exactly_what_was_missed() {
    let c = client();
    let server = TestServer::start(publishing(5_000)).await;
    let (_, _, mut s) = open(&c, &server.url("/events"), &[]).await;
    next_event(&mut s, Duration::from_secs(2)).await;
    let seen = publish(&c, &server, "update", serde_json::json!(0)).await;
    assert_eq!(next_app(&mut s).await.id, seen);
    drop(s);

    let mut missed = Vec::new();
    for i in 1..=100 {
        let id = publish(&c, &server, "update", serde_json::json!(i)).await;
        missed.push((id, i.to_string()));
    }
    for (how, headers, url) in [
        (
            "header",
            vec![("last-event-id", seen.as_str())],
            server.url("/events"),
        ),
        (
            "query",
            vec![],
            server.url(&format!("/events?last_event_id={seen}")),
        ),
    ] {
        let (_, _, mut s) = open(&c, &url, &headers).await;
        let hello = next_event(&mut s, Duration::from_secs(2)).await;
        assert_eq!(hello.event, "connected");
        assert_eq!(
            hello.id, seen,
            "{how}: the resume point is where the client was"
        );
        let info: Connected = serde_json::from_str(&hello.data).unwrap();
        assert_eq!(info.replayed, missed.len() as u64, "{how}");
        for (i, (id, data)) in missed.iter().enumerate() {
            let e = next_app(&mut s).await;
            assert_eq!(
                &e.id, id,
                "{how}: event {i} in order, no gaps, no duplicates"
            );
            assert_eq!(&e.data, data);
        }
        let live = publish(&c, &server, "update", serde_json::json!("live")).await;
        assert_eq!(
            next_app(&mut s).await.id,
            live,
            "{how}: then the live stream"
        );
        missed.push((live, "\"live\"".to_owned()));
    }
}

#[tokio::test]
async fn an_unknown_or_too_old_id_gets_a_resync_first() {
    let c = client();
    let mut cfg = publishing(5_000);
    cfg.replay_capacity = 10;
    let server = TestServer::start(cfg).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(publish(&c, &server, "update", serde_json::json!(i)).await);
    }
    let sid = server.hub.server_id().to_owned();
    for (last, reason) in [
        ("0badbeef-12".to_owned(), "other-server"),
        (format!("{sid}-5"), "too-old"),
        (format!("{sid}-999"), "unknown-id"),
    ] {
        let (_, _, mut s) = open(&c, &server.url("/events"), &[("last-event-id", &last)]).await;
        assert_eq!(
            next_event(&mut s, Duration::from_secs(2)).await.event,
            "connected"
        );
        let resync = next_event(&mut s, Duration::from_secs(2)).await;
        assert_eq!(resync.event, "resync", "{last}");
        let data: Resync = serde_json::from_str(&resync.data).unwrap();
        assert_eq!(data.reason.as_str(), reason);
        assert_eq!(data.requested_id, last);
        assert_eq!(data.first_id.as_deref(), Some(ids[20].as_str()));
        for id in &ids[20..] {
            assert_eq!(&next_app(&mut s).await.id, id);
        }
    }
    let metrics = text(&c, server.url("/metrics")).await;
    assert!(metrics.contains("sse_resyncs_total 3"), "{metrics}");
}

#[tokio::test]
async fn drain_with_1000_open_streams_tells_each_and_exits_in_time() {
    let mut cfg = config(5_000);
    cfg.shutdown_timeout_ms = 5_000;
    cfg.drain_window_ms = 2_000;
    cfg.retry_ms = 100;
    let mut server = TestServer::start(cfg).await;
    let mut sockets = Vec::new();
    for _ in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        sockets.push(s);
    }
    eventually("1000 streams open", Duration::from_secs(20), || async {
        when(server.hub.open_streams(), |n| *n >= 1000)
    })
    .await;
    let c = client();
    assert_eq!(
        c.get(server.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let started = std::time::Instant::now();
    server.signal_shutdown();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut all = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut all)).await;
                String::from_utf8_lossy(&all).into_owned()
            })
        })
        .collect();
    let handle = server.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("exited within the shutdown timeout")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut hints = Vec::new();
    for r in readers {
        let text = r.await.unwrap();
        let at = text
            .find("event: draining\ndata: ")
            .expect("every stream saw draining");
        let line = text[at + 22..].lines().next().unwrap();
        hints.push(
            serde_json::from_str::<Draining>(line)
                .unwrap()
                .reconnect_after_ms,
        );
    }
    assert!(hints.iter().all(|h| (100..2_100).contains(h)));
    let (lo, hi) = (hints.iter().min().unwrap(), hints.iter().max().unwrap());
    assert!(
        hi - lo > 1_000,
        "hints are spread over the drain window ({lo}..{hi})"
    );
}

#[tokio::test]
async fn draining_server_is_not_ready_and_refuses_new_streams() {
    let server = TestServer::start(config(5_000)).await;
    server.hub.start_draining();
    let c = client();
    assert_eq!(
        c.get(server.url("/readyz")).send().await.unwrap().status(),
        503
    );
    let refused = c.get(server.url("/events")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let (_, body) = error_body(refused).await;
    assert_eq!(body["error"], "draining");
    assert_eq!(
        c.get(server.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn metrics_count_connections_events_and_replays() {
    let c = client();
    let server = TestServer::start(publishing(5_000)).await;
    let (_, _, mut s) = open(&c, &server.url("/events"), &[]).await;
    next_event(&mut s, Duration::from_secs(2)).await;
    let first = publish(&c, &server, "update", serde_json::json!(1)).await;
    next_app(&mut s).await;
    publish(&c, &server, "update", serde_json::json!(2)).await;
    let (_, _, mut again) = open(&c, &server.url("/events"), &[("last-event-id", &first)]).await;
    next_event(&mut again, Duration::from_secs(2)).await;
    next_app(&mut again).await;
    let text = text(&c, server.url("/metrics")).await;
    for line in [
        "sse_connections_open 2",
        "sse_connections_total 2",
        "sse_events_published_total 2",
        "sse_events_replayed_total 1",
        "# TYPE sse_slow_clients_dropped_total counter",
        "# TYPE sse_connections_rejected_total counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

//! The lean serving loop (`serve`) as HTTP clients other than browsers see it, on real sockets:
//! HTTP/1.0 keep-alive only with a length, a handler's `Connection: close`, `HEAD /events`,
//! upgrades, axum's standard `ConnectInfo<SocketAddr>`, `Expect: 100-continue`, and a chunked
//! request followed by a pipelined one.

#![cfg(feature = "ssr")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sse_status::server::{bind, serve, HubConfig, LiveHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use support::{eventually, when, ReadEnd};

const TOKEN: &str = "transport-test-token";

struct Server {
    addr: SocketAddr,
    hub: LiveHub,
    _stop: oneshot::Sender<()>,
}

/// An unframed body: one chunk from a stream, so its length is unknown until it ends.
async fn unframed() -> Body {
    Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(
        bytes::Bytes::from_static(b"streamed"),
    )]))
}

/// A protocol switch to a byte echo (what a WebSocket route does, without the framing).
async fn upgrade(mut req: Request) -> Response {
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 64];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::UPGRADE, "echo"), (header::CONNECTION, "upgrade")],
    )
        .into_response()
}

async fn start() -> Server {
    start_with(HubConfig::default()).await
}

async fn start_with(config: HubConfig) -> Server {
    let listener = bind("127.0.0.1:0".parse().unwrap(), false).expect("bind");
    let addr = listener.local_addr().unwrap();
    let hub = LiveHub::new(config.publish_token(TOKEN)).expect("a valid config");
    let app = hub
        .router()
        .route("/text", get(|| async { "hello" }))
        .route("/unframed", get(unframed))
        .route(
            "/close",
            get(|| async { ([(header::CONNECTION, "close")], "bye") }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route("/upgrade", get(upgrade));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        hub.clone(),
        Router::new().merge(app),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        hub,
        _stop: stop,
    }
}

/// Read until `done(everything read)` holds, failing naming `what` if the server closes the
/// connection first or 3 s pass.
async fn read_to(sock: &mut TcpStream, what: &str, mut done: impl FnMut(&str) -> bool) -> String {
    let (got, end) = support::read_until(sock, Duration::from_secs(3), |got| {
        done(&String::from_utf8_lossy(got))
    })
    .await;
    let got = String::from_utf8_lossy(&got).into_owned();
    assert_eq!(end, ReadEnd::Done, "{what}: {got}");
    got
}

/// Read until the server closes the connection (failing after `within`); everything read.
async fn read_to_close(sock: &mut TcpStream, within: Duration) -> String {
    let (got, end) = support::read_until(sock, within, |_| false).await;
    let got = String::from_utf8_lossy(&got).into_owned();
    assert_eq!(
        end,
        ReadEnd::Closed,
        "the server closes the connection: {got}"
    );
    got
}

/// The connection is still open and serving: a request on it is answered (what "not closed"
/// means to a client, seen rather than waited for).
async fn still_serves(sock: &mut TcpStream) {
    sock.write_all(b"GET /text HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_to(sock, "a later request is answered", |got| {
        got.ends_with("hello")
    })
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

/// A broadcast reaches the stream on `sock` (it is still open and delivering).
async fn still_streams(server: &Server, sock: &mut TcpStream) {
    server.hub.publish("still", &1).await.expect("published");
    read_to(sock, "a later event arrives", |got| {
        got.contains("event: still\n") && got.ends_with("\n\n")
    })
    .await;
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.addr).await.expect("connect")
}

#[tokio::test]
async fn http_1_0_keep_alive_is_kept_only_after_a_body_with_a_length() {
    let server = start().await;
    // A length: the client knows where the body ends, so the connection carries a second one.
    // (The second answer on the same socket is the proof.)
    let mut sock = connect(&server).await;
    for round in 0..2 {
        sock.write_all(b"GET /text HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let got = read_to(
            &mut sock,
            &format!("answer {round}: a framed response keeps the connection"),
            |got| got.ends_with("hello"),
        )
        .await;
        assert!(got.starts_with("HTTP/1.0 200"), "{got}");
    }
    // No length (a streamed body): only the end of the connection can end the body. It must
    // come at once, not after the idle timeout.
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /unframed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    // An unframed HTTP/1.0 body must end with the connection.
    let got = read_to_close(&mut sock, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.0 200"), "{got}");
    assert!(got.ends_with("streamed"), "{got}");
}

#[tokio::test]
async fn a_handlers_connection_close_ends_the_connection() {
    let server = start().await;
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // The server must close after `Connection: close`.
    let got = read_to_close(&mut sock, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
}

#[tokio::test]
async fn head_events_gets_the_streams_head_and_holds_nothing() {
    let server = start().await;
    let mut sock = connect(&server).await;
    sock.write_all(
        b"HEAD /events HTTP/1.1\r\nHost: t\r\n\r\nGET /text HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await
    .unwrap();
    let got = read_to(&mut sock, "the next request is served", |got| {
        got.matches("HTTP/1.1 200").count() == 2 && got.ends_with("hello")
    })
    .await;
    let lower = got.to_ascii_lowercase();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(lower.contains("content-type: text/event-stream"), "{got}");
    assert!(
        !lower.contains("event: connected"),
        "a HEAD has no body: {got}"
    );
    assert_eq!(
        got.matches("HTTP/1.1 200").count(),
        2,
        "the next request is served: {got}"
    );
    assert_eq!(server.hub.open_streams(), 0, "a HEAD holds no stream");
    // ...and never opened one: no stream was admitted, counted or logged.
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let metrics = read_to(&mut sock, "the metrics", |got| {
        got.split_once("\nsse_connections_total ")
            .is_some_and(|(_, rest)| rest.contains('\n'))
    })
    .await;
    assert!(
        metrics.lines().any(|l| l == "sse_connections_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_upgrade_request_switches_protocols_as_under_axum_serve() {
    let server = start().await;
    let mut sock = connect(&server).await;
    sock.write_all(
        b"GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let got = read_to(&mut sock, "the switch", |got| got.contains("\r\n\r\n")).await;
    assert!(got.starts_with("HTTP/1.1 101"), "{got}");
    assert!(
        got.ends_with("\r\n\r\n"),
        "nothing after the head yet: {got}"
    );
    // Past the switch the bytes are the upgraded protocol's, for as long as it likes (each
    // echo shows the connection still open).
    for word in ["ping", "pong"] {
        sock.write_all(word.as_bytes()).await.unwrap();
        let echo = read_to(&mut sock, "the echo", |got| got.len() >= word.len()).await;
        assert_eq!(echo, word);
    }
}

#[tokio::test]
async fn handlers_get_axums_standard_connect_info() {
    let server = start().await;
    let mut sock = connect(&server).await;
    let local = sock.local_addr().unwrap();
    sock.write_all(b"GET /peer HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_to(&mut sock, "the peer's address", |got| {
        got.ends_with(&local.to_string())
    })
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn expect_100_continue_gets_its_interim_answer_then_the_result() {
    let server = start().await;
    let mut sock = connect(&server).await;
    let body = br#"{"event":"update","data":1}"#;
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let interim = read_to(&mut sock, "the interim answer", |got| {
        got.contains("\r\n\r\n")
    })
    .await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    assert!(
        interim.ends_with("\r\n\r\n"),
        "only the interim answer: {interim}"
    );
    sock.write_all(body).await.unwrap();
    let got = read_to(&mut sock, "the result", |got| got.ends_with('}')).await;
    assert!(got.starts_with("HTTP/1.1 202"), "{got}");
    still_serves(&mut sock).await;
}

#[tokio::test]
async fn a_chunked_request_then_a_pipelined_one_both_get_answers() {
    let server = start().await;
    let mut sock = connect(&server).await;
    let body = br#"{"event":"update","data":2}"#;
    let request = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{}\r\n0\r\n\r\nGET /text HTTP/1.1\r\nHost: t\r\n\r\n",
        body.len(),
        std::str::from_utf8(body).unwrap()
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let got = read_to(&mut sock, "the pipelined request is answered", |got| {
        got.ends_with("hello")
    })
    .await;
    assert!(got.starts_with("HTTP/1.1 202"), "{got}");
    assert!(
        got.contains("HTTP/1.1 200"),
        "the pipelined request is answered: {got}"
    );
}

/// `answer` (a response after its `HTTP/1.1 `) is a stream from the direct writer: a 200 event
/// stream without hyper's chunked framing (the connection is the body), `connected` first.
fn assert_direct_stream(answer: &str, all: &str) {
    let lower = answer.to_ascii_lowercase();
    assert!(lower.starts_with("200"), "{all}");
    assert!(lower.contains("content-type: text/event-stream"), "{all}");
    assert!(
        !lower.contains("transfer-encoding"),
        "the direct writer: {all}"
    );
    assert!(lower.contains("event: connected"), "{all}");
}

/// `got` holds a whole `connected` event.
fn connected(got: &str) -> bool {
    got.split_once("event: connected\n")
        .is_some_and(|(_, rest)| rest.contains("\n\n"))
}

/// A stream mounted under `/live`, a root `/events` of the app's own, and two layers around
/// everything: one adds a request id to every answer, one refuses requests that ask for it.
async fn start_mounted() -> Server {
    use axum::middleware::{from_fn, Next};
    let listener = bind("127.0.0.1:0".parse().unwrap(), false).expect("bind");
    let addr = listener.local_addr().unwrap();
    let hub = LiveHub::builder(HubConfig::default())
        .mounted_at("/live")
        .build()
        .expect("a valid config");
    assert_eq!(hub.stream_path(), "/live/events");
    let app = Router::new()
        .nest("/live", hub.stream_router())
        .route("/events", get(|| async { "the app's own /events" }))
        .layer(from_fn(|req: Request, next: Next| async move {
            if req.uri().query() == Some("deny") {
                return (StatusCode::UNAUTHORIZED, "denied by a layer").into_response();
            }
            next.run(req).await
        }))
        .layer(axum::middleware::map_response(
            |mut res: Response| async move {
                res.headers_mut()
                    .insert("x-request-id", header::HeaderValue::from_static("r-1"));
                res
            },
        ));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, hub.clone(), app, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        hub,
        _stop: stop,
    }
}

#[tokio::test]
async fn the_direct_path_serves_only_where_the_hub_is_mounted_and_through_the_apps_layers() {
    let server = start_mounted().await;
    // The mounted stream: written directly (no chunked framing, the connection is the body),
    // with the layer's header on its head.
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /live/events HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_to(&mut stream, "connected", connected).await;
    assert_direct_stream(got.strip_prefix("HTTP/1.1 ").unwrap_or(&got), &got);
    let lower = got.to_ascii_lowercase();
    assert!(lower.contains("x-request-id: r-1"), "the layer ran: {got}");
    assert!(lower.contains("connection: close"), "{got}");
    assert_eq!(server.hub.open_streams(), 1);

    // The root `/events` is the app's: its own answer, on a connection that stays usable.
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_to(&mut sock, "the app's own answer", |got| {
        got.ends_with("the app's own /events")
    })
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("x-request-id: r-1"),
        "{got}"
    );
    // (The next request on `sock` being answered shows the connection stayed usable.)

    // A layer's refusal on the stream path is what the client gets, and no stream opens; a
    // refused stream request ends its connection (its socket is free at once).
    sock.write_all(b"GET /live/events?deny HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut sock, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.1 401"), "{got}");
    assert!(got.ends_with("denied by a layer"), "{got}");
    let lower = got.to_ascii_lowercase();
    assert!(lower.contains("x-request-id: r-1"), "{got}");
    assert!(lower.contains("connection: close"), "{got}");
    assert_eq!(
        server.hub.open_streams(),
        1,
        "only the first stream is open"
    );

    // A hub error (a topic nobody is granted) comes back as its JSON body with a length.
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /live/events?topic=users/42 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut sock, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.1 403"), "{got}");
    assert!(got.contains("content-length:"), "{got}");
    assert!(got.contains(r#""error":"forbidden_topic""#), "{got}");
    // The first stream was open all along.
    still_streams(&server, &mut stream).await;
}

#[test]
fn a_mount_prefix_that_is_not_a_path_is_refused_by_name() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let err = LiveHub::builder(HubConfig::default())
            .mounted_at("live?x")
            .build()
            .expect_err("not a path");
        assert_eq!(err.setting(), "mounted_at");
    });
}

#[tokio::test]
async fn ordinary_requests_then_a_stream_pipelined_on_one_connection() {
    let server = start().await;
    let mut sock = connect(&server).await;
    let body = br#"{"event":"update","data":3}"#;
    // A framed publish, a page, a HEAD, then the stream: all in one write.
    let request = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}\
         GET /text HTTP/1.1\r\nHost: t\r\n\r\n\
         HEAD /text HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /events HTTP/1.1\r\nHost: t\r\n\r\n",
        body.len(),
        std::str::from_utf8(body).unwrap()
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let got = read_to(&mut sock, "four answers, the stream's connected", |got| {
        got.matches("HTTP/1.1 ").count() == 4 && connected(got)
    })
    .await;
    let answers: Vec<&str> = got.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 4, "{got}");
    assert!(answers[0].starts_with("202"), "{got}");
    assert!(
        answers[1].starts_with("200") && answers[1].contains("hello"),
        "{got}"
    );
    assert!(
        answers[2].starts_with("200") && !answers[2].contains("hello"),
        "{got}"
    );
    assert_direct_stream(answers[3], &got);
    assert_eq!(server.hub.open_streams(), 1);
    still_streams(&server, &mut sock).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_when_the_server_stops() {
    let server = start().await;
    let mut sock = connect(&server).await;
    sock.write_all(b"GET /text HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_to(&mut sock, "the answer", |got| got.ends_with("hello")).await;
    let Server { _stop: stop, .. } = server;
    drop(stop);
    // Closed at shutdown, not after the idle timeout.
    let rest = read_to_close(&mut sock, Duration::from_secs(5)).await;
    assert!(rest.is_empty(), "{rest}");
}

/// Open a stream on a raw socket (with `rcvbuf`, a small receive buffer, if given) and read
/// until its `connected` event.
async fn open_raw_stream(server: &Server, rcvbuf: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut sock = socket.connect(server.addr).await.expect("connect");
    sock.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_to(&mut sock, "connected", |got| {
        got.contains("event: connected")
    })
    .await;
    // Whatever followed `connected` in the same read is not looked at by the callers.
    sock
}

/// Read SSE until `count` events named `name` arrived (or `wait` passed); their `data:` lines.
/// Frames are parsed once each, as they complete (a test reads megabytes through it).
async fn read_events(
    sock: &mut TcpStream,
    name: &str,
    count: usize,
    wait: Duration,
) -> Vec<String> {
    let marker = format!("event: {name}\n");
    let mut complete = Vec::new();
    // Where the next frame starts in what was read.
    let mut parsed = 0;
    support::read_until(sock, wait, |got| {
        // Only whole frames (ended by a blank line): the last piece may be cut mid-frame.
        while let Some(end) = find(&got[parsed..], b"\n\n") {
            let frame = std::str::from_utf8(&got[parsed..parsed + end + 2]).expect("utf-8");
            parsed += end + 2;
            if frame.contains(&marker) {
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    complete.push(data.to_owned());
                }
            }
        }
        complete.len() >= count
    })
    .await;
    complete
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// A stream with nothing to send waits in a shard of the sharded writers, with no task and no
// write to come (the heartbeat is far off): it must still notice its client leaving.
#[tokio::test]
async fn a_waiting_stream_notices_its_client_leaving_without_writing() {
    let server = start().await;
    let sock = open_raw_stream(&server, None).await;
    assert_eq!(server.hub.open_streams(), 1);
    eventually(
        "the stream parked in a shard",
        Duration::from_secs(2),
        || async { when(server.hub.parked_streams(), |n| *n == 1) },
    )
    .await;
    drop(sock);
    eventually(
        "the stream ends with its client (within 1 s)",
        Duration::from_secs(1),
        || async { when(server.hub.open_streams(), |n| *n == 0) },
    )
    .await;
    assert_eq!(server.hub.parked_streams(), 0, "and left its shard");
}

// The sharded writers write with non-blocking writes; a client that reads slowly makes one
// block part-way through a frame, and that stream goes back to a task of its own with the rest
// of the frame. Every reader must get every event whole and in order, the slow one included,
// and the fast ones must not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_slow_reader_every_stream_gets_every_frame_whole_and_in_order() {
    let server = start().await;
    let mut fast = Vec::new();
    for _ in 0..40 {
        fast.push(open_raw_stream(&server, None).await);
    }
    let mut slow = open_raw_stream(&server, Some(4096)).await;
    let events = 60;
    let filler = "x".repeat(48 * 1024);
    // Far more than the slow socket's buffers hold (~3 MB): its writes block.
    for i in 0..events {
        server
            .hub
            .publish("bulk", &serde_json::json!({ "i": i, "filler": filler }))
            .await
            .expect("published");
    }
    let check = |datas: Vec<String>, who: &str| {
        assert_eq!(datas.len(), events, "{who}: every event arrives");
        for (i, data) in datas.iter().enumerate() {
            let value: serde_json::Value = serde_json::from_str(data).expect("whole JSON");
            assert_eq!(value["i"], i, "{who}: in order");
            assert_eq!(
                value["filler"].as_str().map(str::len),
                Some(filler.len()),
                "{who}"
            );
        }
    };
    // The fast readers, while the slow one has read nothing.
    for (n, sock) in fast.iter_mut().enumerate() {
        let datas = read_events(sock, "bulk", events, Duration::from_secs(10)).await;
        check(datas, &format!("fast reader {n}"));
    }
    let datas = read_events(&mut slow, "bulk", events, Duration::from_secs(10)).await;
    check(datas, "the slow reader");
    // All of them are still streaming: a broadcast after the burst reaches each one.
    server.hub.publish("after", &1).await.expect("published");
    for sock in fast.iter_mut().chain(std::iter::once(&mut slow)) {
        let after = read_events(sock, "after", 1, Duration::from_secs(3)).await;
        assert_eq!(after, vec!["1".to_owned()]);
    }
    assert_eq!(server.hub.open_streams(), fast.len() + 1);
}

/// Read SSE until an event named `last` arrived (or `wait` passed): every frame, in order, as
/// `(event name, data)`.
async fn read_frames_until(
    sock: &mut TcpStream,
    last: &str,
    wait: Duration,
) -> Vec<(String, String)> {
    let marker = format!("event: {last}\n");
    // Where the marker may start in what has not been searched yet (each byte is searched once).
    let mut searched = 0;
    let (got, _) = support::read_until(sock, wait, |got| {
        if let Some(at) = find(&got[searched..], marker.as_bytes()).map(|at| at + searched) {
            return find(&got[at..], b"\n\n").is_some();
        }
        searched = got.len().saturating_sub(marker.len());
        false
    })
    .await;
    std::str::from_utf8(&got)
        .expect("utf-8")
        .split("\n\n")
        .filter_map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), data.to_owned()))
        })
        .collect()
}

/// Publish `count` events named `bulk` of ~`size` bytes each, numbered from 0.
async fn publish_bulk(server: &Server, count: usize, size: usize) {
    let filler = "x".repeat(size);
    for i in 0..count {
        server
            .hub
            .publish("bulk", &serde_json::json!({ "i": i, "filler": filler }))
            .await
            .expect("published");
    }
}

fn bulk_numbers(frames: &[(String, String)]) -> Vec<u64> {
    frames
        .iter()
        .filter(|(name, _)| name == "bulk")
        .map(|(_, data)| {
            let value: serde_json::Value = serde_json::from_str(data).expect("whole JSON");
            value["i"].as_u64().expect("numbered")
        })
        .collect()
}

// One log, many cursors (issue 25): a reader far behind — much further than the old per-stream
// send queue (here 16 frames) — keeps its stream while the ring still holds its frames, and gets
// every one, in order, on both stream paths (the direct writers and axum's body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_far_behind_keeps_its_stream_while_the_ring_holds_its_frames() {
    for no_fast_path in [false, true] {
        let server = start_with(
            HubConfig::default()
                .send_queue(16)
                .replay_capacity(1024)
                .no_fast_path(no_fast_path),
        )
        .await;
        let mut slow = open_raw_stream(&server, Some(4096)).await;
        // ~9.6 MB: far more than the socket's buffers, so the reader falls hundreds behind.
        let events = 600;
        publish_bulk(&server, events, 16 * 1024).await;
        server.hub.publish("after", &1).await.expect("published");
        let frames = read_frames_until(&mut slow, "after", Duration::from_secs(20)).await;
        let path = if no_fast_path {
            "axum's body"
        } else {
            "direct"
        };
        assert_eq!(
            bulk_numbers(&frames),
            (0..events as u64).collect::<Vec<_>>(),
            "{path}: every frame, in order"
        );
        assert!(
            frames.iter().all(|(name, _)| name != "resync"),
            "{path}: nothing was lost"
        );
        assert!(
            frames.iter().any(|f| f.0 == "after"),
            "{path}: and the event after them"
        );
        assert_eq!(
            server.hub.open_streams(),
            1,
            "{path}: the same stream, still open"
        );
    }
}

// A reader that falls behind the ring itself is not ended either: like a `Last-Event-ID`
// reconnect, it is told `resync` (events were lost) and goes on with what the ring holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_behind_the_ring_gets_a_resync_and_goes_on() {
    for no_fast_path in [false, true] {
        let server = start_with(
            HubConfig::default()
                .send_queue(32)
                .replay_capacity(32)
                .no_fast_path(no_fast_path),
        )
        .await;
        let mut slow = open_raw_stream(&server, Some(4096)).await;
        // ~19 MB through a ring of 32 frames.
        let events = 300;
        publish_bulk(&server, events, 60 * 1024).await;
        server.hub.publish("after", &1).await.expect("published");
        let frames = read_frames_until(&mut slow, "after", Duration::from_secs(20)).await;
        let path = if no_fast_path {
            "axum's body"
        } else {
            "direct"
        };
        let resync = frames
            .iter()
            .position(|(name, _)| name == "resync")
            .unwrap_or_else(|| panic!("{path}: a resync says events were lost"));
        let reason: serde_json::Value = serde_json::from_str(&frames[resync].1).unwrap();
        assert_eq!(reason["reason"], "too-old", "{path}");
        let numbers = bulk_numbers(&frames);
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{path}: in order, none twice"
        );
        assert_eq!(
            numbers.last(),
            Some(&(events as u64 - 1)),
            "{path}: up to the newest"
        );
        assert!(
            numbers.len() < events,
            "{path}: some were lost (and said so)"
        );
        assert!(
            frames.iter().any(|f| f.0 == "after"),
            "{path}: and the event after them"
        );
        assert_eq!(
            server.hub.open_streams(),
            1,
            "{path}: the same stream, still open"
        );
    }
}

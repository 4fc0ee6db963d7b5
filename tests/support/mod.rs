//! Server tests' harness: a real server on `127.0.0.1:0` and an SSE reader.

#![allow(dead_code)]

#[cfg(feature = "redis")]
pub mod nginx;
#[cfg(feature = "redis")]
pub mod redis_ha;
#[cfg(feature = "redis")]
pub mod redis_server;

use std::net::SocketAddr;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use sse_status::server::{serve, HubConfig, LiveHub};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process on an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: LiveHub,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: HubConfig) -> TestServer {
        let listener =
            sse_status::server::bind("127.0.0.1:0".parse().expect("addr"), false).expect("bind");
        TestServer::start_on(listener, config).await
    }

    /// Serve on a listener the test bound itself (e.g. with `SO_REUSEPORT`).
    pub async fn start_on(listener: tokio::net::TcpListener, config: HubConfig) -> TestServer {
        let hub = LiveHub::new(config).expect("a valid config");
        TestServer::serve_hub(listener, hub)
    }

    /// Serve a hub the test built (e.g. with an authorizer) on `127.0.0.1:0`.
    pub async fn start_hub(hub: LiveHub) -> TestServer {
        let listener =
            sse_status::server::bind("127.0.0.1:0".parse().expect("addr"), false).expect("bind");
        TestServer::serve_hub(listener, hub)
    }

    fn serve_hub(listener: tokio::net::TcpListener, hub: LiveHub) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, hub.clone(), app(&hub, addr), async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            hub,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Send the shutdown signal (like SIGTERM).
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

/// The whole site (dashboard, static files, 404 page) with the `app` feature; the hub's routes
/// alone without it (the server library as an embedding app gets it).
#[cfg(feature = "app-server")]
fn app(hub: &LiveHub, addr: SocketAddr) -> axum::Router {
    let leptos = leptos::config::LeptosOptions::builder()
        .output_name("sse-status")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    sse_status::app::site_router(hub, leptos)
}

#[cfg(not(feature = "app-server"))]
fn app(hub: &LiveHub, _addr: SocketAddr) -> axum::Router {
    hub.router()
}

/// The built `sse-status` binary, run from the repository root with the site's `LEPTOS_*`
/// settings and piped output (tests of the real process: flags, signals, limits).
#[cfg(feature = "app-server")]
pub fn server_binary() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-status"));
    cmd.env("LEPTOS_OUTPUT_NAME", "sse-status")
        .env("LEPTOS_SITE_ROOT", "target/site")
        .env("LEPTOS_SITE_PKG_DIR", "pkg")
        .env("RUST_LOG", "info")
        .env_remove("SSE_PUBLISH_TOKEN")
        .env_remove("SSE_AUTH_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The value of one series (`name{labels}`) in a `/metrics` text; `None` when it is absent, so
/// a missing metric fails an assertion instead of passing it.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn config(heartbeat_ms: u64) -> HubConfig {
    HubConfig::default().heartbeat_ms(heartbeat_ms)
}

/// What a probe of [`eventually`] observed: done with a value, or not yet (with what it saw,
/// for the failure message).
pub trait Observation {
    type Value;
    fn done(self) -> Result<Self::Value, String>;
}

impl Observation for bool {
    type Value = ();
    fn done(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".into())
        }
    }
}

impl<T> Observation for Option<T> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T, E: std::fmt::Debug> Observation for Result<T, E> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Probe until `probe` says done (`true`, `Some(v)`, `Ok(v)`) and return its value, probing
/// every 10 ms; after `within` (a probe that hangs counts against it too), fail naming `what`
/// and the last observation. The one deadline helper of the tests.
pub async fn eventually<F, Fut>(
    what: &str,
    within: Duration,
    mut probe: F,
) -> <Fut::Output as Observation>::Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
    Fut::Output: Observation,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut last = "no observation (the first probe did not return)".to_owned();
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(seen) => match seen.done() {
                Ok(value) => return value,
                Err(seen) => last = seen,
            },
            Err(_) => break,
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within {within:?}; last seen: {last}");
}

/// `Ok(value)` when `wanted(&value)`, else `Err(value)`: a probe for [`eventually`] that
/// reports what it saw.
pub fn when<T>(value: T, wanted: impl FnOnce(&T) -> bool) -> Result<T, T> {
    if wanted(&value) {
        Ok(value)
    } else {
        Err(value)
    }
}

/// How a [`read_until`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// `done` held.
    Done,
    /// The peer closed the connection (or it failed) first.
    Closed,
    /// `within` passed first.
    TimedOut,
}

/// Read from `sock` until `done(everything read so far)` holds, the peer closes, or `within`
/// passes; everything read and how it ended. `done` sees the whole buffer after each read (it
/// may keep its own position to look at each byte once).
pub async fn read_until(
    sock: &mut tokio::net::TcpStream,
    within: Duration,
    mut done: impl FnMut(&[u8]) -> bool,
) -> (Vec<u8>, ReadEnd) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if done(&all) {
            return (all, ReadEnd::Done);
        }
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (all, ReadEnd::Closed),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return (all, ReadEnd::TimedOut),
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Open `/events` and return the response (for headers) and its parsed events.
pub async fn open(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    impl Stream<Item = Event> + Unpin,
) {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let events = resp
        .bytes_stream()
        .eventsource()
        .map(|e| e.expect("well-formed SSE"))
        .boxed();
    (status, headers, events)
}

/// The next event, failing the test after `within`.
pub async fn next_event(
    events: &mut (impl Stream<Item = Event> + Unpin),
    within: Duration,
) -> Event {
    tokio::time::timeout(within, events.next())
        .await
        .expect("an event in time")
        .expect("stream still open")
}

/// Read events until `wanted` picks one (`Some`), failing naming `what` and the last event
/// after `within` or if the stream ends: the event-stream side of [`eventually`].
pub async fn next_where<T>(
    events: &mut (impl Stream<Item = Event> + Unpin),
    what: &str,
    within: Duration,
    mut wanted: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(e)) => {
                if let Some(value) = wanted(&e) {
                    return value;
                }
                last = Some(e);
            }
            Ok(None) => panic!("{what}: the stream ended; last event: {last:?}"),
            Err(_) => panic!("{what}: not within {within:?}; last event: {last:?}"),
        }
    }
}

/// The publish token test servers use.
pub const TOKEN: &str = "s3cret-token";

/// Defaults plus a publish token.
pub fn publishing(heartbeat_ms: u64) -> HubConfig {
    let mut c = config(heartbeat_ms);
    c.publish_token = Some(TOKEN.into());
    c
}

/// Publish through the API (must be accepted); returns the event's id.
pub async fn publish(
    c: &reqwest::Client,
    server: &TestServer,
    event: &str,
    data: serde_json::Value,
) -> String {
    publish_to(c, server, &[], event, data).await
}

/// Publish through the API to `topics` (none: a broadcast; must be accepted); the event's id.
pub async fn publish_to(
    c: &reqwest::Client,
    server: &TestServer,
    topics: &[&str],
    event: &str,
    data: serde_json::Value,
) -> String {
    let mut body = serde_json::json!({ "event": event, "data": data });
    if !topics.is_empty() {
        body["topics"] = serde_json::json!(topics);
    }
    let resp = c
        .post(server.url("/api/publish"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("publish request");
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.expect("JSON answer");
    body["id"].as_str().expect("an id").to_owned()
}

/// The application events' data up to (not including) the broadcast `end`.
pub async fn until_end(events: &mut (impl futures::Stream<Item = Event> + Unpin)) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let e = next_app(events).await;
        if e.event == "end" {
            return seen;
        }
        seen.push(e.data);
    }
}

/// The next application event (skipping pings).
pub async fn next_app(events: &mut (impl Stream<Item = Event> + Unpin)) -> Event {
    loop {
        let e = next_event(events, Duration::from_secs(5)).await;
        if e.event != "ping" {
            return e;
        }
    }
}

/// GET a text body.
pub async fn text(c: &reqwest::Client, url: String) -> String {
    c.get(url)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body")
}

/// A server of a fleet on the Redis log at `url`, started and ready (its follower reached Redis).
pub async fn fleet_member(url: &str, capacity: u64) -> TestServer {
    let mut c = publishing(500);
    c.redis_url = Some(url.to_owned());
    c.replay_capacity = capacity;
    let server = TestServer::start(c).await;
    wait_ready(&server).await;
    server
}

/// Wait until `/readyz` says 200.
pub async fn wait_ready(server: &TestServer) {
    let c = client();
    let url = server.url("/readyz");
    eventually("the server ready", Duration::from_secs(10), || async {
        c.get(&url)
            .send()
            .await
            .map(|r| r.status())
            .map_err(|e| e.to_string())
            .and_then(|status| {
                if status == 200 {
                    Ok(())
                } else {
                    Err(status.to_string())
                }
            })
    })
    .await;
}

/// Stop a server and wait until it has shut down.
pub async fn stop(mut server: TestServer) {
    server.signal_shutdown();
    if let Some(handle) = server.handle.take() {
        let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
    }
}

//! The server library as an embedding app uses it: a `LiveHub` nested under `/live` in the app's
//! own axum router, served by plain `axum::serve` (no connection info, no fast path), published
//! to from Rust, and shut down with open streams.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sse_status::protocol::Connected;
use sse_status::server::{HubConfig, LiveHub, PublishError};
use support::{client, next_app, next_event, open};
use tokio::sync::oneshot;

const WITHIN: Duration = Duration::from_secs(5);

/// The host app: its own route at `/`, the hub's stream and ops routes under `/live`, served by
/// `axum::serve` whose graceful shutdown (on `stop`) first shuts the hub down, as the docs say.
async fn host_app(
    hub: &LiveHub,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let app: Router = Router::new()
        .route("/", get(|| async { "the host app" }))
        .nest("/live", hub.stream_router().merge(hub.ops_router()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stopping = hub.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                stopping.shutdown().await;
            })
            .await
    });
    (base, stop, server)
}

#[tokio::test]
async fn a_hub_nested_in_the_host_router_streams_what_rust_code_publishes() {
    let hub = LiveHub::new(HubConfig::default().heartbeat_ms(1_000)).expect("a valid config");
    let (base, stop, server) = host_app(&hub).await;
    let c = client();

    assert_eq!(support::text(&c, format!("{base}/")).await, "the host app");
    let health = c.get(format!("{base}/live/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Nothing of ours at the root: the host owns it.
    let root_events = c.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(root_events.status(), 404);

    let (status, headers, mut events) = open(&c, &format!("{base}/live/events"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let hello = next_event(&mut events, WITHIN).await;
    assert_eq!(hello.event, "connected");
    let hello: Connected = serde_json::from_str(&hello.data).unwrap();
    assert_eq!(hello.heartbeat_ms, 1_000);

    #[derive(serde::Serialize)]
    struct Update {
        n: u64,
        text: &'static str,
    }
    let id = hub
        .publish("update", &Update { n: 7, text: "hi" })
        .await
        .expect("published");
    let got = next_app(&mut events).await;
    assert_eq!(got.event, "update");
    assert_eq!(got.id, id);
    assert_eq!(got.data, r#"{"n":7,"text":"hi"}"#);

    // Same validation as POST /api/publish.
    for bad in ["", "ping", "with space", &"x".repeat(65)] {
        let err = hub.publish(bad, &1).await.unwrap_err();
        assert!(
            matches!(err, PublishError::BadEventName(_)),
            "{bad:?}: {err}"
        );
    }
    let big = "x".repeat(64 * 1024);
    let err = hub.publish("big", &big).await.unwrap_err();
    assert!(matches!(err, PublishError::TooLarge { .. }), "{err}");

    // Shutdown with a stream open: it gets `draining`, then ends, and axum's graceful shutdown
    // is not held up by it.
    stop.send(()).expect("server running");
    let draining = next_event(&mut events, WITHIN).await;
    assert_eq!(draining.event, "draining");
    tokio::time::timeout(WITHIN, server)
        .await
        .expect("axum stopped within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(hub.open_streams(), 0);
}

#[tokio::test]
async fn a_bad_config_is_an_error_naming_the_setting_and_starts_nothing() {
    let err = LiveHub::new(HubConfig::default().heartbeat_ms(0)).unwrap_err();
    assert_eq!(err.setting(), "heartbeat_ms");
    assert!(err.to_string().contains("heartbeat_ms = 0"), "{err}");
    let err = LiveHub::new(HubConfig::default().publish_token(" ")).unwrap_err();
    assert_eq!(err.setting(), "publish_token");
    let hub =
        LiveHub::new(HubConfig::default().publish_token("tok-SECRET")).expect("a valid config");
    assert!(!format!("{:?}", hub.config()).contains("SECRET"));
}

//! Benchmark tool smoke test: the `loadgen` binary against a real sse-status server (served in
//! this test process through the library, the same site and serving loop as the `sse-status`
//! binary) — 500 held streams, a few broadcasts, every client gets every one. Correctness only,
//! never timing.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use sse_status::server::{self, HubConfig, JwtAuthorizer, LiveHub};
use tokio::process::Command;
use tokio::sync::oneshot;

const TOKEN: &str = "smoke-token";
/// The subscribers' authorizer secret of the topic tests.
const ACCESS_SECRET: &str = "smoke-access-secret-0123456789";

/// A server on an ephemeral port; stopped (gracefully) when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start_server() -> Server {
    start_server_with(None).await
}

/// With `access_secret`, the app's ready authorizer checks the streams' access tokens.
async fn start_server_with(access_secret: Option<&str>) -> Server {
    let listener = server::bind("127.0.0.1:0".parse().expect("addr"), false).expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let mut builder = LiveHub::builder(HubConfig {
        publish_token: Some(TOKEN.into()),
        heartbeat_ms: 500,
        max_connections: 1000,
        ..HubConfig::default()
    });
    if let Some(secret) = access_secret {
        builder = builder.authorizer(JwtAuthorizer::new(secret));
    }
    let hub = builder.build().expect("a valid config");
    let site = leptos::config::LeptosOptions::builder()
        .output_name("sse-status")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let app = sse_status::app::site_router(&hub, site);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, hub, app, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
    }
}

/// 500 streams, each either a fresh connection's first request (`reuse` empty) or the third
/// request on a keep-alive connection that first fetched `reuse` (what a browser does).
async fn smoke(reuse: &str) {
    let server = start_server().await;
    let addr = server.addr;
    // The server runs in this process: loadgen reads its memory and CPU from /proc.
    let pid = std::process::id().to_string();

    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .args(["--url", &format!("http://{addr}"), "--connections", "500"])
        .args(["--server-pid", &pid, "--publish-token", TOKEN])
        .args([
            "--broadcasts",
            "3",
            "--idle-secs",
            "1",
            "--settle-ms",
            "200",
        ])
        .args(["--timeout-secs", "60", "--json"])
        .args(if reuse.is_empty() {
            vec![]
        } else {
            vec!["--reuse", reuse]
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("loadgen finished within 90 s")
        .expect("loadgen ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line on stdout ({e}): {stdout}"));
    assert_eq!(report["held"], 500, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    assert_eq!(report["deliveries"], 1500, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["heartbeat_ms"], 500, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["rss_after_kib"].as_u64().is_some(),
        "server memory was read: {report}"
    );
    let want: Vec<&str> = reuse.split(',').filter(|p| !p.is_empty()).collect();
    assert_eq!(report["reuse"], serde_json::json!(want), "{report}");

    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_holds_500_fresh_streams_and_every_client_gets_every_broadcast() {
    smoke("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_holds_500_streams_on_reused_keep_alive_connections() {
    smoke("/,/healthz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_fails_when_the_publish_token_is_wrong() {
    let server = start_server().await;
    let addr = server.addr;

    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .env("RUST_LOG", "warn")
        .args(["--url", &format!("http://{addr}"), "--connections", "20"])
        .args(["--publish-token", "wrong", "--broadcasts", "1"])
        .args([
            "--idle-secs",
            "0",
            "--settle-ms",
            "0",
            "--timeout-secs",
            "30",
        ])
        .args(["--broadcast-timeout-ms", "2000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("loadgen finished within 60 s")
        .expect("loadgen ran");
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1");
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("JSON report");
    assert_eq!(report["held"], 20, "{report}");
    assert_eq!(report["publish_errors"], 1, "{report}");
    assert!(
        report["publish_error"]
            .as_str()
            .is_some_and(|e| e.contains("401")),
        "{report}"
    );

    drop(server);
}

/// `--topics` with signed access tokens against a server whose authorizer checks them: every
/// stream is admitted to its topic, gets every broadcast, and gets exactly the topic events of
/// its own topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_streams_private_topics_with_signed_access_tokens() {
    let server = start_server_with(Some(ACCESS_SECRET)).await;
    let addr = server.addr;
    let pid = std::process::id().to_string();

    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .env("RUST_LOG", "warn")
        .env("LOADGEN_ACCESS_SECRET", ACCESS_SECRET)
        .args(["--url", &format!("http://{addr}"), "--connections", "300"])
        .args(["--server-pid", &pid, "--publish-token", TOKEN])
        .args([
            "--topics",
            "10",
            "--broadcasts",
            "2",
            "--topic-publishes",
            "20",
            "--empty-publishes",
            "5",
        ])
        .args([
            "--idle-secs",
            "0",
            "--settle-ms",
            "100",
            "--broadcast-gap-ms",
            "0",
        ])
        .args(["--timeout-secs", "60", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("loadgen finished within 90 s")
        .expect("loadgen ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line on stdout ({e}): {stdout}"));
    assert_eq!(report["held"], 300, "{report}");
    assert_eq!(report["topics"], 10, "{report}");
    assert_eq!(report["access_tokens"], true, "{report}");
    assert_eq!(report["deliveries"], 600, "{report}");
    let topic = &report["topic_phase"];
    assert_eq!(topic["accepted"], 20, "{report}");
    assert_eq!(topic["subscribers_per_topic"], 30, "{report}");
    assert_eq!(topic["deliveries"], 600, "{report}");
    assert_eq!(topic["deliveries_expected"], 600, "{report}");
    assert_eq!(topic["misdelivered"], 0, "{report}");
    assert_eq!(topic["duplicates"], 0, "{report}");
    assert!(
        topic["server_us_per_publish"].as_f64().is_some(),
        "{report}"
    );
    assert_eq!(topic["empty_accepted"], 5, "{report}");
    assert_eq!(topic["empty_received"], 0, "{report}");
    assert_eq!(report["ok"], true, "{report}");

    drop(server);
}

/// Tokens signed with another secret: every topic stream is refused (401), and the run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_topic_streams_are_refused_with_a_wrong_secret() {
    let server = start_server_with(Some(ACCESS_SECRET)).await;
    let addr = server.addr;

    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .env("RUST_LOG", "warn")
        .env("LOADGEN_ACCESS_SECRET", "not-the-servers-secret-0123456789")
        .args(["--url", &format!("http://{addr}"), "--connections", "20"])
        .args(["--topics", "4", "--broadcasts", "0"])
        .args([
            "--idle-secs",
            "0",
            "--settle-ms",
            "0",
            "--timeout-secs",
            "30",
        ])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("loadgen finished within 60 s")
        .expect("loadgen ran");
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1");
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("JSON report");
    assert_eq!(report["held"], 0, "{report}");
    assert_eq!(report["failures"]["HTTP 401"], 20, "{report}");

    drop(server);
}

/// `--topic-rounds`: each round publishes one event to every topic with several requests in
/// flight; every stream gets exactly its topic's event once per round, in order, and nothing
/// reaches a stream of another topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_topic_rounds_reach_every_stream_once_per_round() {
    let server = start_server_with(Some(ACCESS_SECRET)).await;
    let addr = server.addr;
    let pid = std::process::id().to_string();

    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .env("RUST_LOG", "warn")
        .env("LOADGEN_ACCESS_SECRET", ACCESS_SECRET)
        .args(["--url", &format!("http://{addr}"), "--connections", "300"])
        .args(["--server-pid", &pid, "--publish-token", TOKEN])
        .args([
            "--topics",
            "10",
            "--broadcasts",
            "2",
            "--topic-rounds",
            "3",
            "--round-concurrency",
            "4",
        ])
        .args([
            "--idle-secs",
            "0",
            "--settle-ms",
            "100",
            "--broadcast-gap-ms",
            "0",
        ])
        .args(["--timeout-secs", "60", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("loadgen finished within 90 s")
        .expect("loadgen ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line on stdout ({e}): {stdout}"));
    assert_eq!(report["held"], 300, "{report}");
    assert_eq!(report["deliveries"], 600, "{report}");
    let rounds = &report["round_phase"];
    assert_eq!(rounds["rounds"], 3, "{report}");
    assert_eq!(rounds["publishes_per_round"], 10, "{report}");
    assert_eq!(rounds["concurrency"], 4, "{report}");
    assert_eq!(rounds["accepted"], 30, "{report}");
    assert_eq!(rounds["complete_rounds"], 3, "{report}");
    assert_eq!(rounds["deliveries"], 900, "{report}");
    assert_eq!(rounds["deliveries_expected"], 900, "{report}");
    assert_eq!(rounds["missing"], 0, "{report}");
    assert_eq!(rounds["misdelivered"], 0, "{report}");
    assert_eq!(rounds["duplicates"], 0, "{report}");
    assert_eq!(rounds["out_of_order"], 0, "{report}");
    assert_eq!(rounds["round_latency_us"]["samples"], 3, "{report}");
    assert!(rounds["server_us_per_event"].as_f64().is_some(), "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        stderr.contains("topic rounds: 3 × one publish to each of 10 topics"),
        "{stderr}"
    );

    drop(server);
}

//! Benchmark tool smoke test: the `loadgen` binary against a real `sse-status` process — 500 held
//! streams, a few broadcasts, every client gets every one. Correctness only, never timing.

#![cfg(feature = "ssr")]

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

const TOKEN: &str = "smoke-token";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

fn start_server(addr: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sse-status"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LEPTOS_OUTPUT_NAME", "sse-status")
        .env("LEPTOS_SITE_ROOT", "target/site")
        .env("LEPTOS_SITE_PKG_DIR", "pkg")
        .env("RUST_LOG", "warn")
        .args(["--addr", addr, "--publish-token", TOKEN])
        .args(["--heartbeat-ms", "500", "--max-connections", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start sse-status")
}

async fn wait_listening(addr: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sse-status did not listen on {addr} within 10 s");
}

/// 500 streams, each either a fresh connection's first request (`reuse` empty) or the third
/// request on a keep-alive connection that first fetched `reuse` (what a browser does).
async fn smoke(reuse: &str) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&addr);
    wait_listening(&addr).await;
    let pid = server.id().expect("server pid").to_string();

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

    server.start_kill().expect("stop the server");
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
}

#[tokio::test]
async fn loadgen_holds_500_fresh_streams_and_every_client_gets_every_broadcast() {
    smoke("").await;
}

#[tokio::test]
async fn loadgen_holds_500_streams_on_reused_keep_alive_connections() {
    smoke("/,/healthz").await;
}

#[tokio::test]
async fn loadgen_fails_when_the_publish_token_is_wrong() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(&addr);
    wait_listening(&addr).await;

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

    server.start_kill().expect("stop the server");
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
}

//! Server tests of the real binary: flags and SIGTERM with open streams.

#![cfg(feature = "app-server")]

mod support;

use std::time::{Duration, Instant};

use support::*;

#[tokio::test]
async fn help_lists_every_flag_with_its_default_and_env() {
    let out = server_binary().arg("--help").output().await.unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env, default) in [
        ("--addr", "LEPTOS_SITE_ADDR", "127.0.0.1:3000"),
        ("--heartbeat-ms", "SSE_HEARTBEAT_MS", "5000"),
        ("--retry-ms", "SSE_RETRY_MS", "1000"),
        ("--max-connections", "SSE_MAX_CONNECTIONS", "19500"),
        ("--shutdown-timeout-ms", "SSE_SHUTDOWN_TIMEOUT_MS", "10000"),
        ("--replay-capacity", "SSE_REPLAY_CAPACITY", "1024"),
        ("--send-queue", "SSE_SEND_QUEUE", "256"),
        ("--write-timeout-ms", "SSE_WRITE_TIMEOUT_MS", "10000"),
        ("--drain-window-ms", "SSE_DRAIN_WINDOW_MS", "5000"),
    ] {
        assert!(help.contains(flag), "{flag} in --help");
        assert!(help.contains(env), "{env} in --help");
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{flag} default in --help"
        );
    }
}

#[tokio::test]
async fn a_bad_flag_value_is_a_clear_error() {
    let out = server_binary()
        .args(["--heartbeat-ms", "soon"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--heartbeat-ms"));
}

#[tokio::test]
async fn sigterm_with_open_streams_exits_in_time() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = server_binary()
        .args(["--addr", &addr, "--shutdown-timeout-ms", "2000"])
        .spawn()
        .unwrap();
    let c = client();
    let url = format!("http://{addr}");
    eventually("the server up", Duration::from_secs(5), || {
        c.get(format!("{url}/healthz")).send()
    })
    .await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let (_, _, mut events) = open(&c, &format!("{url}/events"), &[]).await;
        next_event(&mut events, Duration::from_secs(2)).await;
        streams.push(events);
    }
    let pid = child.id().expect("pid");
    let started = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(4), child.wait())
        .await
        .expect("exited within the shutdown timeout")
        .unwrap();
    assert!(status.success(), "clean exit, got {status}");
    assert!(started.elapsed() < Duration::from_millis(2_500));
    let mut stderr = String::new();
    if let Some(mut e) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        e.read_to_string(&mut stderr).await.unwrap();
    }
    assert!(stderr.contains("SIGTERM received"), "logged: {stderr}");
    assert!(stderr.contains("stream disconnected"), "disconnects logged");
}

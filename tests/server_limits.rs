//! Server tests of the real binary under hostile conditions (issue 8): a low open-file limit, a
//! battery of malformed requests, refusal floods, and start-up refusals of unsafe settings.

#![cfg(feature = "app-server")]

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn wait_up(addr: &str) {
    eventually(
        &format!("the server at {addr} up"),
        Duration::from_secs(10),
        || TcpStream::connect(addr),
    )
    .await;
}

/// Stop by PID (SIGTERM) and return everything it logged.
async fn stop(mut child: Child) -> String {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    let _ = child.start_kill();
    let mut log = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut log).await;
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut log).await;
    }
    log
}

/// One request on a fresh connection; the status line's code (0: no answer within `within`).
async fn status_of(addr: &str, request: &[u8], within: Duration) -> (u16, String) {
    let attempt = async {
        let mut sock = TcpStream::connect(addr).await.ok()?;
        sock.write_all(request).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text.split(' ').nth(1)?.parse().ok()?;
        Some((code, text))
    };
    tokio::time::timeout(within, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or((0, String::new()))
}

#[tokio::test]
async fn an_empty_or_unsendable_publish_token_is_refused_at_start() {
    for token in ["", "has space"] {
        let out = server_binary()
            .args(["--publish-token", token, "--addr", &free_addr()])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{token:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--publish-token"), "{token:?}: {err}");
    }
    let out = server_binary()
        .args(["--shutdown-timeout-ms", "99999999999999999999"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shutdown-timeout-ms"));
}

#[tokio::test]
async fn under_a_low_open_file_limit_streams_are_capped_and_nothing_hangs() {
    let addr = free_addr();
    let mut cmd = server_binary();
    cmd.args(["--addr", &addr]);
    // SAFETY: setrlimit is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 128,
                rlim_max: 128,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    wait_up(&addr).await;

    // 160 stream requests at once: every one is answered — a stream or a 503 — none hangs.
    let mut tasks = Vec::new();
    for _ in 0..160 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(&addr).await.ok()?;
            sock.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
                .await
                .ok()?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 2048];
            let answer = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if text.contains("event: connected") {
                        return Some(200u16);
                    }
                    if text.starts_with("HTTP/1.1 503") && text.contains("\r\n\r\n") {
                        assert!(text.to_lowercase().contains("retry-after:"), "{text}");
                        return Some(503);
                    }
                    let n = sock.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        // Refused at the socket cap before the request was read: the answer
                        // may be lost to the reset; the client sees a closed connection.
                        return Some(if text.starts_with("HTTP/1.1 503") {
                            503
                        } else {
                            1
                        });
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            })
            .await
            .ok()
            .flatten();
            Some((answer.unwrap_or(0), sock))
        }));
    }
    let mut held = Vec::new();
    let (mut streams, mut refused, mut closed, mut hung) = (0, 0, 0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Some((200, sock)) => {
                streams += 1;
                held.push(sock);
            }
            Some((503, _)) => refused += 1,
            Some((1, _)) => closed += 1,
            _ => hung += 1,
        }
    }
    assert_eq!(
        hung, 0,
        "{streams} streams, {refused} refused, {closed} closed"
    );
    assert!((40..=48).contains(&streams), "{streams} streams (cap 48)");
    assert!(
        refused > 0,
        "{streams} streams, {refused} refused, {closed} closed"
    );
    // With every stream slot taken, health checks still get through.
    let (code, _) = status_of(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(code, 200);
    let (code, text) = status_of(
        &addr,
        b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(code, 503, "{text}");
    drop(held);
    let log = stop(child).await;
    assert!(
        log.contains("max_streams lowered from 19500 to 48"),
        "the clamp is logged: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_battery_of_bad_requests_gets_answers_and_no_panics_or_log_floods() {
    let addr = free_addr();
    let child = server_binary()
        .args([
            "--addr",
            &addr,
            "--max-connections",
            "2",
            "--header-timeout-ms",
            "300",
        ])
        .spawn()
        .unwrap();
    wait_up(&addr).await;
    let battery: Vec<(&[u8], u16)> = vec![
        (b"GET 127.0.0.1:80 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400),
        (b"POST x:1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),
        (b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET /\x01 HTTP/1.1\r\n\r\n", 400),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400),
        (
            b"GET /events?last_event_id=a-1&last_event_id=a-2 HTTP/1.1\r\n\r\n",
            400,
        ),
        (b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404),
        (b"GET /api/nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: never-ends", 408),
    ];
    for round in 0..10 {
        for (request, want) in &battery {
            let (code, text) = status_of(&addr, request, Duration::from_secs(3)).await;
            assert_eq!(
                code,
                *want,
                "round {round}: {:?} → {text}",
                String::from_utf8_lossy(request)
            );
        }
    }
    // A refusal flood: 2 streams held, 200 refused.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /events HTTP/1.1\r\n\r\n").await.unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await;
        held.push(s);
    }
    for _ in 0..200 {
        let (code, _) = status_of(
            &addr,
            b"GET /events HTTP/1.1\r\n\r\n",
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(code, 503);
    }
    let metrics = text(&client(), format!("http://{addr}/metrics")).await;
    let rejected = metric_value(&metrics, "sse_connections_rejected_total{reason=\"limit\"}");
    assert_eq!(rejected, Some(200.0), "{metrics}");
    drop(held);
    let log = stop(child).await;
    assert!(!log.contains("panicked"), "{log}");
    let warn_lines = log.lines().filter(|l| l.contains("WARN")).count();
    let error_lines = log.lines().filter(|l| l.contains("ERROR")).count();
    assert!(
        warn_lines <= 4,
        "{warn_lines} WARN lines for 320 refusals:\n{log}"
    );
    assert_eq!(error_lines, 0, "{log}");
}

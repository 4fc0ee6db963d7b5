//! Server test on real sockets, alone in its process so its memory reading is its own: a client
//! that stops reading is dropped and the server's memory stays bounded.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_memory_stays_bounded() {
    let c = client();
    let mut cfg = config(5_000);
    cfg.publish_token = Some(TOKEN.into());
    cfg.replay_capacity = 8;
    cfg.send_queue = 8;
    cfg.write_timeout_ms = 300;
    let server = TestServer::start(cfg).await;

    // A raw socket that asks for the stream and then never reads.
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let (_, _, mut reader) = open(&c, &server.url("/events"), &[]).await;
    next_event(&mut reader, Duration::from_secs(2)).await;
    eventually("both streams open", Duration::from_secs(5), || async {
        when(server.hub.open_streams(), |n| *n >= 2)
    })
    .await;

    let before = rss_kib();
    let payload = "x".repeat(60 * 1024);
    // ~30 MB through the server, far more than any socket buffer.
    for i in 0..500 {
        let id = publish(
            &c,
            &server,
            "update",
            serde_json::json!({"i": i, "pad": payload}),
        )
        .await;
        let got = next_app(&mut reader).await;
        assert_eq!(got.id, id, "the reading client keeps receiving everything");
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eventually(
        "the stalled client dropped",
        Duration::from_secs(5),
        || async { when(server.hub.open_streams(), |n| *n <= 1) },
    )
    .await;
    assert!(
        grown_mib < 24,
        "server memory grew by {grown_mib} MiB for a stalled client"
    );
    let metrics = text(&c, server.url("/metrics")).await;
    // Read the counters' values: a missing series must fail, not pass.
    let dropped = |reason: &str| -> u64 {
        let series = format!("sse_slow_clients_dropped_total{{reason=\"{reason}\"}}");
        metric_value(&metrics, &series)
            .unwrap_or_else(|| panic!("{series} missing from:\n{metrics}")) as u64
    };
    assert_eq!(
        dropped("lagged") + dropped("write_stall"),
        1,
        "the stalled client was dropped once:\n{metrics}"
    );
    drop(stalled);
}

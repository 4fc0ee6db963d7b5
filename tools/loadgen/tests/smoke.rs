//! Benchmark tool smoke test: the `loadgen` binary against a real sse-status server (served in
//! this test process through the library, the same site and serving loop as the `sse-status`
//! binary) — 500 held streams, a few broadcasts, every client gets every one. Correctness only,
//! never timing.

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use sse_status::server::{self, HubConfig, JwtAuthorizer, LiveHub};
use tokio::process::Command;
use tokio::sync::oneshot;

const TOKEN: &str = "smoke-token";
/// The subscribers' authorizer secret of the topic tests.
const ACCESS_SECRET: &str = "smoke-access-secret-0123456789";

/// No idle window, no settling, 30 s in all: the runs that are meant to fail.
const QUICK: [&str; 6] = [
    "--idle-secs",
    "0",
    "--settle-ms",
    "0",
    "--timeout-secs",
    "30",
];

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
    let mut builder = LiveHub::builder(
        HubConfig::default()
            .publish_token(TOKEN)
            .heartbeat_ms(500)
            .max_streams(1000),
    );
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

/// Runs the `loadgen` binary against `server` (`--url` is given) with `args`, `--json` and the
/// environment `env`; gives it `limit_secs` to finish.
async fn loadgen(server: &Server, env: &[(&str, &str)], args: &[&str], limit_secs: u64) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .args(["--url", &format!("http://{}", server.addr)])
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(limit_secs), run)
        .await
        .unwrap_or_else(|_| panic!("loadgen finished within {limit_secs} s"))
        .expect("loadgen ran")
}

/// The server's PID (it runs in this process): loadgen reads its memory and CPU from /proc.
fn server_pid() -> String {
    std::process::id().to_string()
}

/// A run that succeeded: its report (the one JSON line on stdout) and its stderr.
fn succeeded(out: &Output) -> (serde_json::Value, String) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line on stdout ({e}): {stdout}"));
    (report, stderr.into_owned())
}

/// A run that failed (exit 1): its JSON report.
fn failed(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1");
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("JSON report")
}

/// 500 streams, each either a fresh connection's first request (`reuse` empty) or the third
/// request on a keep-alive connection that first fetched `reuse` (what a browser does).
async fn smoke(reuse: &str) {
    let server = start_server().await;
    let pid = server_pid();
    let mut args = vec!["--connections", "500", "--server-pid", &pid];
    args.extend(["--publish-token", TOKEN, "--broadcasts", "3"]);
    args.extend([
        "--idle-secs",
        "1",
        "--settle-ms",
        "200",
        "--timeout-secs",
        "60",
    ]);
    if !reuse.is_empty() {
        args.extend(["--reuse", reuse]);
    }
    let (report, _) = succeeded(&loadgen(&server, &[], &args, 90).await);
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
    let mut args = vec!["--connections", "20", "--publish-token", "wrong"];
    args.extend(["--broadcasts", "1", "--broadcast-timeout-ms", "2000"]);
    args.extend(QUICK);
    let report = failed(&loadgen(&server, &[], &args, 60).await);
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

/// A successful run of 300 streams over 10 topics with signed access tokens, against a server
/// whose authorizer checks them: 2 broadcasts, then the topic phase `phase_args` set up. Returns
/// the report and stderr.
async fn topic_run(phase_args: &[&str]) -> (serde_json::Value, String) {
    let server = start_server_with(Some(ACCESS_SECRET)).await;
    let pid = server_pid();
    let mut args = vec!["--connections", "300", "--server-pid", &pid];
    args.extend([
        "--publish-token",
        TOKEN,
        "--topics",
        "10",
        "--broadcasts",
        "2",
    ]);
    args.extend(phase_args);
    args.extend(["--idle-secs", "0", "--settle-ms", "100"]);
    args.extend(["--broadcast-gap-ms", "0", "--timeout-secs", "60"]);
    let env = [("LOADGEN_ACCESS_SECRET", ACCESS_SECRET)];
    succeeded(&loadgen(&server, &env, &args, 90).await)
}

/// What a [`topic_run`] reports alike for both topic phases: all 300 streams held and got both
/// broadcasts; the phase `phase` accepted `accepted` publishes and delivered exactly `deliveries`,
/// each once and to subscribers only. Returns the phase's object.
fn topic_phase<'r>(
    report: &'r serde_json::Value,
    phase: &str,
    accepted: u64,
    deliveries: u64,
) -> &'r serde_json::Value {
    assert_eq!(report["held"], 300, "{report}");
    assert_eq!(report["deliveries"], 600, "{report}");
    let p = &report[phase];
    assert_eq!(p["accepted"], accepted, "{report}");
    assert_eq!(p["deliveries"], deliveries, "{report}");
    assert_eq!(p["deliveries_expected"], deliveries, "{report}");
    assert_eq!(p["misdelivered"], 0, "{report}");
    assert_eq!(p["duplicates"], 0, "{report}");
    p
}

/// `--topics` with signed access tokens against a server whose authorizer checks them: every
/// stream is admitted to its topic, gets every broadcast, and gets exactly the topic events of
/// its own topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_streams_private_topics_with_signed_access_tokens() {
    let (report, _) = topic_run(&["--topic-publishes", "20", "--empty-publishes", "5"]).await;
    assert_eq!(report["topics"], 10, "{report}");
    assert_eq!(report["access_tokens"], true, "{report}");
    let topic = topic_phase(&report, "topic_phase", 20, 600);
    assert_eq!(topic["subscribers_per_topic"], 30, "{report}");
    assert!(
        topic["server_us_per_publish"].as_f64().is_some(),
        "{report}"
    );
    assert_eq!(topic["empty_accepted"], 5, "{report}");
    assert_eq!(topic["empty_received"], 0, "{report}");
    assert_eq!(report["ok"], true, "{report}");
}

/// Tokens signed with another secret: every topic stream is refused (401), and the run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_topic_streams_are_refused_with_a_wrong_secret() {
    let server = start_server_with(Some(ACCESS_SECRET)).await;
    let mut args = vec!["--connections", "20", "--topics", "4", "--broadcasts", "0"];
    args.extend(QUICK);
    let env = [("LOADGEN_ACCESS_SECRET", "not-the-servers-secret-0123456789")];
    let report = failed(&loadgen(&server, &env, &args, 60).await);
    assert_eq!(report["held"], 0, "{report}");
    assert_eq!(report["failures"]["HTTP 401"], 20, "{report}");

    drop(server);
}

/// `--topic-rounds`: each round publishes one event to every topic with several requests in
/// flight; every stream gets exactly its topic's event once per round, in order, and nothing
/// reaches a stream of another topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_topic_rounds_reach_every_stream_once_per_round() {
    let (report, stderr) = topic_run(&["--topic-rounds", "3", "--round-concurrency", "4"]).await;
    let rounds = topic_phase(&report, "round_phase", 30, 900);
    assert_eq!(rounds["rounds"], 3, "{report}");
    assert_eq!(rounds["publishes_per_round"], 10, "{report}");
    assert_eq!(rounds["concurrency"], 4, "{report}");
    assert_eq!(rounds["complete_rounds"], 3, "{report}");
    assert_eq!(rounds["missing"], 0, "{report}");
    assert_eq!(rounds["out_of_order"], 0, "{report}");
    assert_eq!(rounds["round_latency_us"]["samples"], 3, "{report}");
    assert!(rounds["server_us_per_event"].as_f64().is_some(), "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        stderr.contains("topic rounds: 3 × one publish to each of 10 topics"),
        "{stderr}"
    );
}

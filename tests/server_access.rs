//! Server tests on a real socket: private streams. Topic-targeted events reach only streams
//! granted and subscribed to them (live and in replay), credentials are checked on both paths
//! (the direct writer and axum), a grant's expiry ends the stream with `reauth`, a revocation
//! with `revoked`, and presence counts what a topic reaches.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use eventsource_stream::Event;
use futures::{Stream, StreamExt};
use serde_json::json;
use sse_status::protocol::{Connected, Reauth, ReauthReason, Revoked, TopicPattern};
use sse_status::server::{HubConfig, JwtAuthorizer, LiveHub};
use support::*;

const SECRET: &str = "a-test-secret-for-access-tokens";

fn jwt() -> JwtAuthorizer {
    JwtAuthorizer::new(SECRET)
}

fn token(sub: &str, topics: &[&str], ttl: Duration) -> String {
    jwt().issue(sub, topics, ttl).expect("a token")
}

fn alice() -> String {
    token(
        "alice",
        &["users/alice", "public"],
        Duration::from_secs(600),
    )
}

fn bob() -> String {
    token("bob", &["users/bob", "public"], Duration::from_secs(600))
}

async fn server_with(config: HubConfig) -> TestServer {
    let hub = LiveHub::builder(config)
        .authorizer(jwt())
        .build()
        .expect("a valid config");
    TestServer::start_hub(hub).await
}

async fn server() -> TestServer {
    server_with(publishing(60_000)).await
}

fn cookie(token: &str) -> String {
    format!("lang=en; sse_access={token}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn connected(events: &mut (impl Stream<Item = Event> + Unpin)) -> (Event, Connected) {
    let e = next_event(events, Duration::from_secs(5)).await;
    assert_eq!(e.event, "connected");
    let hello = serde_json::from_str(&e.data).expect("connected data");
    (e, hello)
}

#[tokio::test]
async fn topic_events_reach_only_streams_granted_and_subscribed_to_them() {
    for no_fast_path in [false, true] {
        let mut config = publishing(60_000);
        config.no_fast_path = no_fast_path;
        let server = server_with(config).await;
        let c = client();
        let (status, _, mut a) = open(
            &c,
            &server.url("/events?topic=users/alice&topic=public"),
            &[("cookie", &cookie(&alice()))],
        )
        .await;
        assert_eq!(status, 200);
        let (_, _, mut b) = open(
            &c,
            &server.url("/events?topic=users/bob"),
            &[("authorization", &bearer(&bob()))],
        )
        .await;
        // An anonymous stream without topics: broadcasts only.
        let (status, _, mut anon) = open(&c, &server.url("/events"), &[]).await;
        assert_eq!(status, 200);
        for s in [&mut a, &mut b, &mut anon] {
            connected(s).await;
        }
        publish_to(&c, &server, &["users/alice"], "update", json!("a1")).await;
        publish_to(&c, &server, &["users/bob"], "update", json!("b1")).await;
        publish(&c, &server, "update", json!("all")).await;
        publish_to(&c, &server, &["public"], "update", json!("p")).await;
        publish_to(&c, &server, &["docs/7", "users/bob"], "update", json!("b2")).await;
        server
            .hub
            .publish_to(&["users/alice"], "update", &"a2")
            .await
            .unwrap();
        publish(&c, &server, "end", json!(null)).await;
        let q = |v: &[&str]| v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>();
        assert_eq!(
            until_end(&mut a).await,
            q(&["a1", "all", "p", "a2"]),
            "alice"
        );
        assert_eq!(until_end(&mut b).await, q(&["b1", "all", "b2"]), "bob");
        assert_eq!(until_end(&mut anon).await, q(&["all"]), "anonymous");
    }
}

#[tokio::test]
async fn prefix_grants_and_subscriptions() {
    let server = server().await;
    let c = client();
    let admin = token("admin", &["users/*"], Duration::from_secs(600));
    let (status, _, mut s) = open(
        &c,
        &server.url("/events?topic=users/*"),
        &[("cookie", &cookie(&admin))],
    )
    .await;
    assert_eq!(status, 200);
    connected(&mut s).await;
    publish_to(&c, &server, &["users/alice"], "update", json!(1)).await;
    publish_to(&c, &server, &["users/bob/inbox"], "update", json!(2)).await;
    publish_to(&c, &server, &["users"], "update", json!(3)).await;
    publish_to(&c, &server, &["docs/1"], "update", json!(4)).await;
    publish(&c, &server, "end", json!(null)).await;
    assert_eq!(until_end(&mut s).await, vec!["1", "2"]);
}

#[tokio::test]
async fn replay_filters_by_grant_and_guessed_ids_get_nothing_private() {
    let server = server().await;
    let c = client();
    let first = publish(&c, &server, "update", json!("before")).await;
    let a1 = publish_to(&c, &server, &["users/alice"], "update", json!("a1")).await;
    publish_to(&c, &server, &["users/bob"], "update", json!("b1")).await;
    publish(&c, &server, "update", json!("all")).await;
    publish_to(&c, &server, &["users/alice"], "update", json!("a2")).await;
    // Bob resumes from before alice's events (as if he guessed her ids): only his own and
    // the broadcasts come back.
    // (The second resume also replays the first one's `end`.)
    for (resume, replayed) in [(first.clone(), 2), (a1.clone(), 3)] {
        let (status, _, mut b) = open(
            &c,
            &server.url("/events?topic=users/bob"),
            &[("cookie", &cookie(&bob())), ("last-event-id", &resume)],
        )
        .await;
        assert_eq!(status, 200);
        let (_, hello) = connected(&mut b).await;
        publish(&c, &server, "end", json!(null)).await;
        let seen = until_end(&mut b).await;
        assert_eq!(seen, vec!["\"b1\"", "\"all\""], "resume after {resume}");
        assert_eq!(
            hello.replayed, replayed,
            "the replay count says what is replayed"
        );
    }
    // Alice, resuming at the same point, gets hers.
    let (_, _, mut a) = open(
        &c,
        &server.url("/events?topic=users/alice"),
        &[("cookie", &cookie(&alice())), ("last-event-id", &first)],
    )
    .await;
    connected(&mut a).await;
    publish(&c, &server, "end", json!(null)).await;
    let seen = until_end(&mut a).await;
    assert_eq!(seen[..3], ["\"a1\"", "\"all\"", "\"a2\""]);
}

/// Open a stream that must be refused; its status and JSON body (no event ever arrives).
async fn refused(
    c: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = c.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json",
        "{url}: an error, not a stream"
    );
    let body = tokio::time::timeout(Duration::from_secs(5), resp.text())
        .await
        .expect("the answer ends")
        .expect("body");
    assert!(!body.contains("event:"), "{body}");
    (status, serde_json::from_str(&body).expect("a JSON body"))
}

/// The token with one character of its signature changed.
fn forge(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = chars.len() - 10;
    chars[at] = if chars[at] == 'x' { 'y' } else { 'x' };
    chars.into_iter().collect()
}

/// Base64url without padding (what a JWT's parts are).
fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn unsigned(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

#[tokio::test]
async fn bad_credentials_and_bad_topics_get_clear_errors_and_no_events() {
    for no_fast_path in [false, true] {
        let mut config = publishing(60_000);
        config.no_fast_path = no_fast_path;
        let server = server_with(config).await;
        let c = client();
        let in_a_minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let none = unsigned(&json!({"sub": "alice", "exp": in_a_minute, "topics": ["users/bob"]}));
        let wrong_secret = JwtAuthorizer::new("another-secret-entirely")
            .issue("alice", &["users/bob"], Duration::from_secs(60))
            .unwrap();
        // Expired a minute ago (`exp` has whole seconds and no leeway: a token minted to expire
        // now is still good within its second, hence a signed one from the past, not a wait).
        let expired = signed_as(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &json!({"sub": "alice", "exp": in_a_minute - 120, "topics": ["users/alice"]}),
        );
        let forged = forge(&alice());
        let topic = server.url("/events?topic=users/alice");
        let plain = server.url("/events");
        for (what, url, token) in [
            ("alg none", &topic, &none),
            ("wrong secret", &topic, &wrong_secret),
            ("expired", &topic, &expired),
            ("forged", &topic, &forged),
            ("forged, no topic", &plain, &forged),
            ("expired, no topic", &plain, &expired),
        ] {
            for header in [("cookie", cookie(token)), ("authorization", bearer(token))] {
                let (status, body) = refused(&c, url, &[(header.0, &header.1)]).await;
                assert_eq!(status, 401, "{what} ({}): {body}", header.0);
                assert_eq!(body["error"], "unauthorized", "{what}");
            }
        }
        // No token at all, asking for a topic.
        let (status, body) = refused(&c, &topic, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized"))
        );
        // Never from the query string.
        let url = server.url(&format!(
            "/events?topic=users/alice&access_token={}",
            alice()
        ));
        assert_eq!(refused(&c, &url, &[]).await.0, 401);
        // A topic outside the grant.
        let url = server.url("/events?topic=users/alice&topic=users/bob");
        let (status, body) = refused(&c, &url, &[("cookie", &cookie(&alice()))]).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "forbidden_topic");
        assert_eq!(body["topic"], "users/bob");
        let url = server.url("/events?topic=users/*");
        let (status, body) = refused(&c, &url, &[("cookie", &cookie(&alice()))]).await;
        assert_eq!((status, body["topic"].as_str()), (403, Some("users/*")));
        // Too many topics, bad characters: 400 before anything else.
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("topic=t{i}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        for (what, query) in [
            ("65 topics", many(65)),
            // (10,000 do not fit in a URI at all; the protocol's table test has them.)
            ("3,000 topics", many(3_000)),
            ("newline", "topic=users%2Falice%0A".to_owned()),
            ("NUL", "topic=users%2Falice%00".to_owned()),
            ("space", "topic=a%20b".to_owned()),
            ("empty", "topic=".to_owned()),
            ("too long", format!("topic={}", "x".repeat(201))),
        ] {
            let (status, body) = refused(
                &c,
                &server.url(&format!("/events?{query}")),
                &[("cookie", &cookie(&alice()))],
            )
            .await;
            let want = if what == "3,000 topics" {
                // Over the request head's size limit before its topics are read.
                431
            } else {
                400
            };
            assert_eq!(status, want, "{what}: {body}");
        }
        assert_eq!(server.hub.open_streams(), 0, "none of them holds a stream");
        let metrics = text(&c, server.url("/metrics")).await;
        for (reason, at_least) in [
            ("unauthorized", 14.0),
            ("forbidden_topic", 2.0),
            ("bad_topic", 6.0),
        ] {
            let series = format!("sse_streams_denied_total{{reason=\"{reason}\"}}");
            let n = metric_value(&metrics, &series).unwrap_or(0.0);
            assert!(n >= at_least, "{series} = {n}");
        }
    }
}

#[tokio::test]
async fn without_an_authorizer_nobody_is_granted_a_topic_and_public_topics_are_an_opt_in() {
    let server = TestServer::start(publishing(60_000)).await;
    let c = client();
    let (status, body) = refused(
        &c,
        &server.url("/events?topic=public"),
        &[("cookie", &cookie(&alice()))],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden_topic"))
    );
    let (status, _, mut s) = open(&c, &server.url("/events"), &[]).await;
    assert_eq!(status, 200);
    connected(&mut s).await;
    publish_to(&c, &server, &["public"], "update", json!("private")).await;
    publish(&c, &server, "end", json!(null)).await;
    assert!(
        until_end(&mut s).await.is_empty(),
        "a targeted event is private"
    );

    let hub = LiveHub::builder(publishing(60_000))
        .public_topics(vec![TopicPattern::parse("public").unwrap()])
        .build()
        .unwrap();
    let server = TestServer::start_hub(hub).await;
    let (status, _, mut s) = open(&c, &server.url("/events?topic=public"), &[]).await;
    assert_eq!(status, 200);
    connected(&mut s).await;
    publish_to(&c, &server, &["public"], "update", json!("news")).await;
    publish(&c, &server, "end", json!(null)).await;
    assert_eq!(until_end(&mut s).await, vec!["\"news\""]);
    let (status, _) = refused(&c, &server.url("/events?topic=users/alice"), &[]).await;
    assert_eq!(status, 403, "only the public topics are granted");
}

#[tokio::test]
async fn an_expiring_grant_ends_the_stream_with_reauth_and_resuming_misses_nothing() {
    for no_fast_path in [false, true] {
        let mut config = publishing(200);
        config.no_fast_path = no_fast_path;
        let server = server_with(config).await;
        let c = client();
        // `exp` is in whole seconds: this grant ends 1–2 s from now.
        let short = token("alice", &["users/alice"], Duration::from_secs(2));
        let (_, _, mut s) = open(
            &c,
            &server.url("/events?topic=users/alice"),
            &[("cookie", &cookie(&short))],
        )
        .await;
        connected(&mut s).await;
        let a1 = publish_to(&c, &server, &["users/alice"], "update", json!(1)).await;
        assert_eq!(next_app(&mut s).await.id, a1);
        let reauth = loop {
            let e = next_event(&mut s, Duration::from_secs(4)).await;
            match e.event.as_str() {
                "ping" => continue,
                "reauth" => break e,
                other => panic!("unexpected {other}"),
            }
        };
        let data: Reauth = serde_json::from_str(&reauth.data).unwrap();
        assert_eq!(data.reason, ReauthReason::Expired);
        assert_eq!(data.last_event_id.as_deref(), Some(a1.as_str()));
        // Then the stream ends cleanly (the body completes; no TCP reset).
        let end = tokio::time::timeout(Duration::from_secs(2), s.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ends after reauth");
        eventually("the stream is gone", Duration::from_secs(2), || async {
            when(server.hub.open_streams(), |n| *n == 0)
        })
        .await;
        // Published while the client refreshes: the resumed stream replays it.
        let a2 = publish_to(&c, &server, &["users/alice"], "update", json!(2)).await;
        let (status, _, mut s) = open(
            &c,
            &server.url("/events?topic=users/alice"),
            &[
                ("cookie", &cookie(&alice())),
                ("last-event-id", data.last_event_id.as_deref().unwrap()),
            ],
        )
        .await;
        assert_eq!(status, 200);
        connected(&mut s).await;
        assert_eq!(next_app(&mut s).await.id, a2);
    }
}

#[tokio::test]
async fn revoking_a_subject_ends_its_streams_with_revoked_and_no_others() {
    let server = server().await;
    let c = client();
    let mut alices = Vec::new();
    for topics in [
        "/events?topic=users/alice",
        "/events",
        "/events?topic=public",
    ] {
        let (status, _, mut s) =
            open(&c, &server.url(topics), &[("cookie", &cookie(&alice()))]).await;
        assert_eq!(status, 200);
        connected(&mut s).await;
        alices.push(s);
    }
    let (_, _, mut b) = open(
        &c,
        &server.url("/events?topic=users/bob"),
        &[("cookie", &cookie(&bob()))],
    )
    .await;
    connected(&mut b).await;
    // The publish token is required.
    let resp = c
        .post(server.url("/api/revoke"))
        .json(&json!({"subject": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .post(server.url("/api/revoke"))
        .bearer_auth(TOKEN)
        .json(&json!({"subject": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let started = std::time::Instant::now();
    let resp = c
        .post(server.url("/api/revoke"))
        .bearer_auth(TOKEN)
        .json(&json!({"subject": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    for s in &mut alices {
        let e = next_app(s).await;
        assert_eq!(e.event, "revoked");
        let data: Revoked = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data.reason, "revoked");
        let end = tokio::time::timeout(Duration::from_secs(2), s.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ends after revoked");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    eventually(
        "only bob's stream is open",
        Duration::from_secs(2),
        || async { when(server.hub.open_streams(), |n| *n == 1) },
    )
    .await;
    publish(&c, &server, "update", json!("still here")).await;
    assert_eq!(next_app(&mut b).await.data, "\"still here\"");
    server.hub.revoke("bob").await.unwrap();
    assert_eq!(next_app(&mut b).await.event, "revoked");
    let metrics = text(&c, server.url("/metrics")).await;
    assert_eq!(
        metric_value(&metrics, "sse_streams_ended_total{reason=\"revoked\"}"),
        Some(4.0)
    );
}

async fn presence(c: &reqwest::Client, server: &TestServer, topic: &str) -> serde_json::Value {
    let resp = c
        .get(server.url(&format!("/api/presence?topic={topic}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn presence_counts_the_streams_a_topic_reaches() {
    let server = server().await;
    let c = client();
    let admin = token("admin", &["users/*"], Duration::from_secs(600));
    let (_, _, mut a) = open(
        &c,
        &server.url("/events?topic=users/alice"),
        &[("cookie", &cookie(&alice()))],
    )
    .await;
    connected(&mut a).await;
    let (_, _, mut all) = open(
        &c,
        &server.url("/events?topic=users/*"),
        &[("cookie", &cookie(&admin))],
    )
    .await;
    connected(&mut all).await;
    let p = presence(&c, &server, "users/alice").await;
    assert_eq!(
        p,
        json!({"topic": "users/alice", "subscribers": 2, "instances": 1})
    );
    assert_eq!(presence(&c, &server, "users/bob").await["subscribers"], 1);
    assert_eq!(presence(&c, &server, "docs/1").await["subscribers"], 0);
    assert_eq!(
        server
            .hub
            .presence("users/alice")
            .await
            .unwrap()
            .subscribers,
        2
    );
    drop(a);
    eventually(
        "a closed stream leaves the count",
        Duration::from_secs(2),
        || async {
            let left = presence(&c, &server, "users/alice").await["subscribers"].as_u64();
            when(left, |n| *n == Some(1))
        },
    )
    .await;
    // Publisher-only, one valid topic.
    let resp = c
        .get(server.url("/api/presence?topic=users/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    for bad in ["", "?topic=a%0Ab", "?topic=a&topic=b", "?topic=users/*"] {
        let resp = c
            .get(server.url(&format!("/api/presence{bad}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    // The metrics carry no per-topic labels.
    let metrics = text(&c, server.url("/metrics")).await;
    assert!(!metrics.contains("users/"), "{metrics}");
}

#[tokio::test]
async fn publishing_checks_topics() {
    let server = server().await;
    let c = client();
    let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    for topics in [
        json!([]),
        json!(["a b"]),
        json!(["a\nb"]),
        json!(many),
        json!("users/1"),
    ] {
        let resp = c
            .post(server.url("/api/publish"))
            .bearer_auth(TOKEN)
            .json(&json!({"event": "update", "data": 1, "topics": topics}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{topics}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["message"].is_string());
    }
    assert!(server
        .hub
        .publish_to(&["a\nb"], "update", &1)
        .await
        .is_err());
    assert!(server.hub.publish("reauth", &1).await.is_err());
    assert!(server.hub.publish("revoked", &1).await.is_err());
}

#[tokio::test]
async fn a_grant_expires_on_time_during_a_steady_publish_and_names_the_last_event() {
    let server = server().await;
    let c = client();
    let short = token("alice", &["users/alice"], Duration::from_secs(2));
    let (_, _, mut s) = open(
        &c,
        &server.url("/events?topic=users/alice"),
        &[("authorization", &bearer(&short))],
    )
    .await;
    connected(&mut s).await;
    let hub = server.hub.clone();
    let publisher = tokio::spawn(async move {
        for i in 0.. {
            hub.publish_to(&["users/alice"], "update", &i)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let started = std::time::Instant::now();
    let mut last = None;
    let reauth = loop {
        let e = next_event(&mut s, Duration::from_secs(4)).await;
        match e.event.as_str() {
            "update" => last = Some(e.id),
            "reauth" => break e,
            other => panic!("unexpected {other}"),
        }
    };
    publisher.abort();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let data: Reauth = serde_json::from_str(&reauth.data).unwrap();
    assert!(last.is_some(), "events flowed before the expiry");
    assert_eq!(data.last_event_id, last, "resuming from it loses nothing");
}

/// `header.claims`, signed HS256 with the server's own secret whatever `header` claims.
fn signed_as(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .unwrap();
    format!("{message}.{signature}")
}

fn in_a_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60
}

/// Tokens that know the secret but break a rule (another algorithm, a missing claim, a bad or
/// huge grant) are refused on the wire like forged ones: 401 (or 431 when the request head
/// is too big to read) with a JSON body, never a stream, on both transports.
#[tokio::test]
async fn tokens_that_bend_the_rules_are_refused_on_the_wire() {
    for no_fast_path in [false, true] {
        let mut config = publishing(60_000);
        config.no_fast_path = no_fast_path;
        let server = server_with(config).await;
        let c = client();
        // Alice, legitimately subscribed, watches: nothing below may reach her either.
        let (_, _, mut watcher) = open(
            &c,
            &server.url("/events?topic=users/alice"),
            &[("cookie", &cookie(&alice()))],
        )
        .await;
        connected(&mut watcher).await;
        let wants_bob = json!({"sub": "mallory", "exp": in_a_minute(), "topics": ["users/bob"]});
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let with_alg =
            |alg| jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &wants_bob, &key).unwrap();
        let many: Vec<String> = (0..10_000).map(|i| format!("users/u{i}")).collect();
        let hs256 = json!({"alg": "HS256", "typ": "JWT"});
        let cases = [
            (
                "HS512 with the right secret",
                with_alg(jsonwebtoken::Algorithm::HS512),
            ),
            (
                "HS384 with the right secret",
                with_alg(jsonwebtoken::Algorithm::HS384),
            ),
            (
                "RS256 header over an HMAC signature",
                signed_as(&json!({"alg": "RS256", "typ": "JWT"}), &wants_bob),
            ),
            (
                "alg none, signed anyway",
                signed_as(&json!({"alg": "none"}), &wants_bob),
            ),
            ("alg None", signed_as(&json!({"alg": "None"}), &wants_bob)),
            (
                "no exp",
                signed_as(&hs256, &json!({"sub": "mallory", "topics": ["users/bob"]})),
            ),
            (
                "no sub",
                signed_as(
                    &hs256,
                    &json!({"exp": in_a_minute(), "topics": ["users/bob"]}),
                ),
            ),
            (
                "empty sub",
                signed_as(
                    &hs256,
                    &json!({"sub": "", "exp": in_a_minute(), "topics": ["users/bob"]}),
                ),
            ),
            (
                "a newline in a granted topic",
                signed_as(
                    &hs256,
                    &json!({"sub": "mallory", "exp": in_a_minute(), "topics": ["users/bob\n"]}),
                ),
            ),
            (
                "a NUL in a granted topic",
                signed_as(
                    &hs256,
                    &json!({"sub": "mallory", "exp": in_a_minute(), "topics": ["users/bob\u{0}"]}),
                ),
            ),
            (
                "10,000 granted topics",
                signed_as(
                    &hs256,
                    &json!({"sub": "mallory", "exp": in_a_minute(), "topics": many}),
                ),
            ),
        ];
        for (what, token) in &cases {
            for header in [("cookie", cookie(token)), ("authorization", bearer(token))] {
                for url in ["/events?topic=users/bob", "/events"] {
                    let (status, body) =
                        refused(&c, &server.url(url), &[(header.0, &header.1)]).await;
                    let want = if what.starts_with("10,000") { 431 } else { 401 };
                    assert_eq!(status, want, "{what} ({}, {url}): {body}", header.0);
                    assert!(body["message"].is_string(), "{what}: {body}");
                }
            }
        }
        // The same claims signed properly are granted: the refusals above are about the rule
        // each case breaks, not about the claims.
        let fine = with_alg(jsonwebtoken::Algorithm::HS256);
        let (status, _, mut s) = open(
            &c,
            &server.url("/events?topic=users/bob"),
            &[("cookie", &cookie(&fine))],
        )
        .await;
        assert_eq!(status, 200);
        connected(&mut s).await;
        drop(s);
        publish_to(&c, &server, &["users/bob"], "update", json!("for bob")).await;
        publish(&c, &server, "end", json!(null)).await;
        assert!(until_end(&mut watcher).await.is_empty());
    }
}

/// Publishing with adversarial topic lists is refused with a clear JSON error, and no stream
/// gets any of those events; a reader's token is no publish token (revoke, presence).
#[tokio::test]
async fn adversarial_publishes_and_a_reader_token_on_the_publisher_routes_are_refused() {
    let server = server().await;
    let c = client();
    let (_, _, mut a) = open(
        &c,
        &server.url("/events?topic=users/alice&topic=public"),
        &[("cookie", &cookie(&alice()))],
    )
    .await;
    let (_, _, mut b) = open(
        &c,
        &server.url("/events?topic=users/bob"),
        &[("cookie", &cookie(&bob()))],
    )
    .await;
    connected(&mut a).await;
    connected(&mut b).await;
    let distinct: Vec<String> = (0..10_000).map(|i| format!("users/u{i}")).collect();
    for (what, topics, want) in [
        ("10,000 distinct topics", json!(distinct), 413),
        ("NUL", json!(["users/alice\u{0}"]), 400),
        ("newline", json!(["users/alice\n"]), 400),
        (
            "a frame smuggled in a topic",
            json!(["users/alice\r\n\r\nevent: revoked\r\ndata: {}"]),
            400,
        ),
        (
            "one good, one bad",
            json!(["users/alice", "users/bob\u{0}"]),
            400,
        ),
        ("a prefix pattern", json!(["users/*"]), 400),
        ("201 characters", json!(["x".repeat(201)]), 400),
        ("not a string", json!([42]), 400),
    ] {
        let resp = c
            .post(server.url("/api/publish"))
            .bearer_auth(TOKEN)
            .json(&json!({"event": "update", "data": what, "topics": topics}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.expect("a JSON error");
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}: {body}"
        );
    }
    // A reader's access token does not open the publisher's routes.
    for token in [alice(), bob()] {
        let resp = c
            .post(server.url("/api/revoke"))
            .bearer_auth(&token)
            .json(&json!({"subject": "bob"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let resp = c
            .get(server.url("/api/presence?topic=users/bob"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let resp = c
            .post(server.url("/api/publish"))
            .bearer_auth(&token)
            .json(&json!({"event": "update", "data": "from a reader", "topics": ["users/bob"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    // 10,000 copies of one (short) topic are that one topic (duplicates are dropped, as
    // documented): delivered once, to its reader only.
    let carol = token("carol", &["c"], Duration::from_secs(600));
    let (_, _, mut carol) = open(
        &c,
        &server.url("/events?topic=c"),
        &[("cookie", &cookie(&carol))],
    )
    .await;
    connected(&mut carol).await;
    let resp = c
        .post(server.url("/api/publish"))
        .bearer_auth(TOKEN)
        .json(&json!({"event": "update", "data": "once", "topics": vec!["c"; 10_000]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    publish(&c, &server, "end", json!(null)).await;
    assert_eq!(until_end(&mut carol).await, ["\"once\""]);
    assert!(until_end(&mut a).await.is_empty(), "alice got none of them");
    assert!(
        until_end(&mut b).await.is_empty(),
        "bob got none of them, and is still here"
    );
}

/// The application events' data up to (not including) the first event named `name`.
async fn until_named(events: &mut (impl Stream<Item = Event> + Unpin), name: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let e = next_app(events).await;
        if e.event == name {
            return seen;
        }
        assert_ne!(e.event, "resync", "no resync expected here");
        seen.push(e.data);
    }
}

/// Bob tries every id of the log as his resume point (ids are `<server id>-<seq>`: easy to
/// guess), by header and by the query parameter the browser uses, plus ids past the head and
/// from another log. Each time he gets exactly his own and the broadcast events after it, or a
/// `resync`, and never one of alice's.
#[tokio::test]
async fn every_guessable_resume_point_replays_only_the_readers_own_events() {
    let server = server().await;
    let c = client();
    let mut log: Vec<(String, &str)> = Vec::new();
    for (topic, data) in [
        (Some("users/alice"), "a1"),
        (Some("users/bob"), "b1"),
        (None, "all"),
        (Some("users/alice"), "a2"),
        (Some("public"), "p"),
        (Some("users/bob"), "b2"),
        (Some("users/alice"), "a3"),
    ] {
        let topics: Vec<&str> = topic.into_iter().collect();
        log.push((
            publish_to(&c, &server, &topics, "update", json!(data)).await,
            data,
        ));
    }
    let end = publish(&c, &server, "end", json!(null)).await;
    let (epoch, last) = end.rsplit_once('-').unwrap();
    let last: u64 = last.parse().unwrap();
    let seq = |id: &str| id.rsplit_once('-').unwrap().1.parse::<u64>().unwrap();
    let bobs = ["b1", "all", "b2"];
    let first = seq(&log[0].0);
    for guess in first.saturating_sub(1)..last {
        let id = format!("{epoch}-{guess}");
        let by_header = guess % 2 == 0;
        let url = if by_header {
            server.url("/events?topic=users/bob")
        } else {
            server.url(&format!("/events?topic=users/bob&last_event_id={id}"))
        };
        let mut headers = vec![("cookie", cookie(&bob()))];
        if by_header {
            headers.push(("last-event-id", id.clone()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, mut s) = open(&c, &url, &headers).await;
        assert_eq!(status, 200);
        let (_, hello) = connected(&mut s).await;
        let want: Vec<String> = log
            .iter()
            .filter(|(id, data)| seq(id) > guess && bobs.contains(data))
            .map(|(_, data)| format!("\"{data}\""))
            .collect();
        assert_eq!(until_named(&mut s, "end").await, want, "resume after {id}");
        assert_eq!(
            hello.replayed as usize,
            want.len() + 1,
            "the count says it (and `end`)"
        );
    }
    // Past the head, or from another log: a resync (never silence), and still only his own.
    for id in [format!("{epoch}-{}", last + 1000), "zzzzzzzz-3".to_owned()] {
        let (status, _, mut s) = open(
            &c,
            &server.url("/events?topic=users/bob"),
            &[("cookie", &cookie(&bob())), ("last-event-id", &id)],
        )
        .await;
        assert_eq!(status, 200);
        connected(&mut s).await;
        let e = next_app(&mut s).await;
        assert_eq!(e.event, "resync", "{id}");
        publish_to(&c, &server, &["users/alice"], "update", json!("a-late")).await;
        publish_to(&c, &server, &["users/bob"], "update", json!("b-late")).await;
        publish(&c, &server, "stop", json!(null)).await;
        let seen = until_named(&mut s, "stop").await;
        for private in ["a1", "a2", "a3", "a-late", "p"] {
            let private = format!("\"{private}\"");
            assert!(!seen.contains(&private), "after {id}: {seen:?}");
        }
        assert!(
            seen.contains(&"\"b-late\"".to_owned()),
            "after {id}: {seen:?}"
        );
    }
}

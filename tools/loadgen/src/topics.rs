//! Benchmark tool only (ssr feature): the `--topics` mode — which topic a stream reads, its
//! `GET /events` request, and the access token per topic (JWT HS256 with `sub`, `exp` and
//! `topics`, what the server's `--auth-secret` authorizer checks), sent as the `sse_access`
//! cookie the way a browser's `EventSource` carries it.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The event the topic phase publishes (one topic per event).
pub const TOPIC_EVENT: &str = "bench-topic";

/// The event the topic-rounds phase publishes (one to every topic per round).
pub const ROUND_EVENT: &str = "bench-round";

/// The topic of stream `i` (and of topic publish `i`) among `topics`.
pub fn topic_of(i: usize, topics: usize) -> String {
    format!("bench/{}", i % topics.max(1))
}

/// How many of `connections` streams read topic `k` (stream i reads `i % topics`).
pub fn subscribers(k: usize, connections: usize, topics: usize) -> usize {
    let topics = topics.max(1);
    connections / topics + usize::from(k % topics < connections % topics)
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: String,
    exp: u64,
    topics: [&'a str; 1],
}

/// An access token granting `topic` to the subject `bench-<k>` until `ttl` from now.
fn access_token(key: &EncodingKey, k: usize, topic: &str, ttl: Duration) -> anyhow::Result<String> {
    let exp = (SystemTime::now() + ttl)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: format!("bench-{k}"),
        exp,
        topics: [topic],
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
        .context("signing an access token")
}

/// The stream request of every topic (index `k` for `bench/<k>`), or the one plain request when
/// `topics` is 0. With `secret`, each carries its topic's access token (valid for `ttl`).
pub fn stream_requests(
    target: SocketAddr,
    topics: usize,
    secret: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<Vec<Vec<u8>>> {
    if topics == 0 {
        return Ok(vec![request(target, "/events", None)]);
    }
    let key = secret.map(|s| EncodingKey::from_secret(s.as_bytes()));
    (0..topics)
        .map(|k| {
            let topic = topic_of(k, topics);
            let cookie = match &key {
                Some(key) => Some(access_token(key, k, &topic, ttl)?),
                None => None,
            };
            Ok(request(
                target,
                &format!("/events?topic={topic}"),
                cookie.as_deref(),
            ))
        })
        .collect()
}

fn request(target: SocketAddr, path: &str, token: Option<&str>) -> Vec<u8> {
    let cookie = token.map_or_else(String::new, |t| format!("Cookie: sse_access={t}\r\n"));
    format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\nUser-Agent: sse-status-loadgen\r\n{cookie}\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_spread_evenly_over_topics() {
        assert_eq!(topic_of(205, 100), "bench/5");
        let counts: Vec<usize> = (0..100).map(|k| subscribers(k, 19_500, 100)).collect();
        assert!(counts.iter().all(|&c| c == 195));
        assert_eq!(subscribers(0, 7, 3), 3);
        assert_eq!(subscribers(1, 7, 3), 2);
        assert_eq!(subscribers(2, 7, 3), 2);
    }

    #[test]
    fn requests_carry_the_topic_and_a_signed_token() {
        let target: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let plain = stream_requests(target, 0, None, Duration::from_secs(60)).unwrap();
        assert_eq!(plain.len(), 1);
        assert!(plain[0].starts_with(b"GET /events HTTP/1.1\r\n"));
        let secret = "0123456789abcdef-secret";
        let reqs = stream_requests(target, 3, Some(secret), Duration::from_secs(60)).unwrap();
        assert_eq!(reqs.len(), 3);
        let text = String::from_utf8(reqs[2].clone()).unwrap();
        assert!(
            text.starts_with("GET /events?topic=bench/2 HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        let token = text
            .split("Cookie: sse_access=")
            .nth(1)
            .and_then(|t| t.split("\r\n").next())
            .unwrap();
        #[derive(serde::Deserialize)]
        struct Back {
            sub: String,
            topics: Vec<String>,
        }
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp", "sub"]);
        let back = jsonwebtoken::decode::<Back>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!(back.sub, "bench-2");
        assert_eq!(back.topics, vec!["bench/2".to_owned()]);
    }
}

//! Server only (feature `app-server`): a one-second cache of the dashboard's server render for
//! anonymous readers. Rendering the page was most of `GET /`'s cost (BENCHMARKS.md, "`GET /`
//! throughput"), and for a reader without a session it depends only on the language (the `lang`
//! cookie, `Accept-Language`) and the query — it says `connecting` (`closed` with `?immediate=0`);
//! the live state comes with hydration and the stream. A request carrying any other cookie (the demo sign-in's
//! session, an access token) is rendered for itself and never stored. Entries live one second and
//! the map holds at most [`MAX_ENTRIES`]; only complete `200` answers without `Set-Cookie` are
//! kept. The page sends no `Content-Security-Policy`, so the script nonce Leptos writes into it
//! protects nothing and may be shared by the answers of one second; with a CSP this cache would
//! have to go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::language;

// tokio's clock (the real one outside tests): a test moves it on instead of waiting out `TTL`.
use tokio::time::Instant;

/// How long a render is served again.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Most renders kept at once (languages × distinct queries); a full map starts over.
pub(crate) const MAX_ENTRIES: usize = 64;
/// Largest render kept.
const MAX_BODY: usize = 256 * 1024;

/// What a render depends on for an anonymous reader.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    query: String,
    lang_cookie: Option<String>,
    accept_language: Option<String>,
}

/// The cache key of a request, or `None` when its render must not be shared: not a `GET`, or
/// a cookie other than the language choice (a session, a token), or headers that are not text.
pub(crate) fn key(method: &Method, headers: &HeaderMap, query: Option<&str>) -> Option<Key> {
    if method != Method::GET {
        return None;
    }
    let mut lang_cookie = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=')?;
            if name.trim() != language::COOKIE || lang_cookie.is_some() {
                return None;
            }
            lang_cookie = Some(value.trim().to_owned());
        }
    }
    let accept_language = match headers.get(header::ACCEPT_LANGUAGE) {
        Some(v) => Some(v.to_str().ok()?.to_owned()),
        None => None,
    };
    Some(Key {
        query: query.unwrap_or("").to_owned(),
        lang_cookie,
        accept_language,
    })
}

struct Entry {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

/// The renders of the last second.
#[derive(Clone, Default)]
pub(crate) struct PageCache {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
    off: bool,
}

impl PageCache {
    /// A cache, or with `on` false one that renders every request.
    pub(crate) fn new(on: bool) -> Self {
        PageCache {
            off: !on,
            ..PageCache::default()
        }
    }

    fn get(&self, key: &Key, now: Instant) -> Option<(HeaderMap, Bytes)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (now.duration_since(entry.at) < TTL).then(|| (entry.headers.clone(), entry.body.clone()))
    }

    fn put(&self, key: Key, headers: HeaderMap, body: Bytes, now: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
                entries.retain(|_, e| now.duration_since(e.at) < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(
                key,
                Entry {
                    at: now,
                    headers,
                    body,
                },
            );
        }
    }
}

fn answer(headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response
}

/// Middleware for the dashboard's route: serve a render of the last second when the request's
/// render may be shared, else render (and keep it when it may be shared).
pub(crate) async fn serve_cached(
    State(cache): State<PageCache>,
    request: Request,
    next: Next,
) -> Response {
    let shared = if cache.off {
        None
    } else {
        key(request.method(), request.headers(), request.uri().query())
    };
    let Some(key) = shared else {
        return next.run(request).await;
    };
    if let Some((headers, body)) = cache.get(&key, Instant::now()) {
        return answer(headers, body);
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => {
            // The body is whole now: its length is known, the stream's framing is gone.
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
            cache.put(key, parts.headers.clone(), body.clone(), Instant::now());
            Response::from_parts(parts, Body::from(body))
        }
        Err(err) => {
            // Too big, or the render failed midway: the reader gets an error, nothing is kept.
            tracing::warn!(%err, "the dashboard's render could not be read whole");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from("the page could not be rendered"))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_anonymous_gets_share_a_render() {
        let get = Method::GET;
        assert!(key(&get, &headers(&[]), None).is_some());
        assert!(key(&get, &headers(&[("cookie", "lang=zh-CN")]), None).is_some());
        assert!(key(&Method::HEAD, &headers(&[]), None).is_none());
        assert!(key(&Method::POST, &headers(&[]), None).is_none());
        for private in [
            "sse_access=eyJ",
            "lang=en; sse_session=abc",
            "sse_session=abc; lang=en",
            "lang=en; lang=zh-CN",
            "garbage",
        ] {
            assert!(
                key(&get, &headers(&[("cookie", private)]), None).is_none(),
                "{private}"
            );
        }
        // Two Cookie headers: the same rule over both.
        assert!(key(
            &get,
            &headers(&[("cookie", "lang=en"), ("cookie", "sse_access=t")]),
            None
        )
        .is_none());
    }

    #[test]
    fn the_key_holds_everything_the_render_depends_on() {
        let get = Method::GET;
        let base = key(&get, &headers(&[]), None).unwrap();
        let variants = [
            key(&get, &headers(&[]), Some("topics=a")).unwrap(),
            key(&get, &headers(&[("cookie", "lang=zh-CN")]), None).unwrap(),
            key(&get, &headers(&[("accept-language", "zh-CN")]), None).unwrap(),
        ];
        for v in &variants {
            assert_ne!(&base, v);
        }
        assert_eq!(base, key(&get, &headers(&[]), Some("")).unwrap());
    }

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let cache = PageCache::default();
        let now = Instant::now();
        let k = |q: usize| Key {
            query: q.to_string(),
            lang_cookie: None,
            accept_language: None,
        };
        cache.put(k(0), HeaderMap::new(), Bytes::from_static(b"page"), now);
        assert_eq!(cache.get(&k(0), now + TTL / 2).unwrap().1, "page");
        assert!(cache.get(&k(0), now + TTL).is_none(), "a second old");
        for q in 1..=MAX_ENTRIES * 3 {
            cache.put(k(q), HeaderMap::new(), Bytes::new(), now);
            assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        }
    }
}

//! Server only: reading one HTTP/1.1 request head off a connection and deciding what it is —
//! a request for the hub's stream path (answered by the router without hyper, so a stream can
//! be written directly), or a request for hyper with a known body length — before any HTTP
//! stack sees it. Pure parsing here (table-tested); the timeouts live in `conn.rs`.

use crate::server::auth::RequestParts;
use crate::server::error::ApiError;

/// Largest request head accepted (request line and headers); beyond it: 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in one request; beyond it: 431.
pub const MAX_HEADERS: usize = 64;

/// How the request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    /// `Content-Length` bytes (0 when there is no body).
    Fixed(u64),
    /// `Transfer-Encoding: chunked`: only hyper can find its end.
    Chunked,
}

/// A complete, acceptable request head.
#[derive(Debug)]
pub struct Head {
    /// Its length in bytes (the body starts right after).
    pub len: usize,
    /// `Some` for a `GET` or `HEAD` of the hub's stream path (not an upgrade): the request's
    /// parts for the router, or why the request is refused.
    pub stream: Option<Result<Box<RequestParts>, ApiError>>,
    /// The body's framing.
    pub body: BodyLen,
    /// Whether the connection may carry another request after this one (as the client asks).
    pub keep_alive: bool,
    /// An HTTP/1.0 request: its connection may be reused only after a response with a length.
    pub http10: bool,
    /// An `Upgrade` request (e.g. a WebSocket): hyper gets the connection for good.
    pub upgrade: bool,
    /// A `HEAD` request (its response has no body, whatever its headers say).
    pub is_head: bool,
}

/// The request parts of a stream request head, as axum would give them.
fn request_parts(
    method: axum::http::Method,
    http10: bool,
    target: &str,
    headers: &[httparse::Header<'_>],
) -> Result<RequestParts, ApiError> {
    let bad = |what: &str| ApiError::BadRequest {
        reason: format!("the request's {what} cannot be read"),
    };
    let version = if http10 {
        axum::http::Version::HTTP_10
    } else {
        axum::http::Version::HTTP_11
    };
    let mut request = axum::http::Request::builder()
        .method(method)
        .version(version)
        .uri(target);
    for h in headers {
        let name = axum::http::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| bad("header names"))?;
        let value =
            axum::http::HeaderValue::from_bytes(h.value).map_err(|_| bad("header values"))?;
        request = request.header(name, value);
    }
    let (parts, ()) = request.body(()).map_err(|_| bad("target"))?.into_parts();
    Ok(parts)
}

/// What the bytes read so far amount to.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A whole head.
    Complete(Head),
    /// Refused: answer this and close.
    Refused(ApiError),
}

fn header_values<'a>(
    headers: &'a [httparse::Header<'a>],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    header_values(headers, name).any(|v| {
        String::from_utf8_lossy(v)
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

fn bad(reason: impl Into<String>) -> Parsed {
    Parsed::Refused(ApiError::BadRequest {
        reason: reason.into(),
    })
}

/// Parse the start of `buf` as a request head; `stream_path` is where the hub's stream route is
/// mounted (e.g. `/events`).
pub fn parse(buf: &[u8], stream_path: &str) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => {
            return Parsed::Refused(ApiError::HeadersTooLarge { limit: MAX_HEAD })
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Parsed::Refused(ApiError::HeadersTooLarge { limit: MAX_HEAD })
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Refused(ApiError::HeadersTooLarge { limit: MAX_HEAD })
        }
        Err(err) => return bad(format!("malformed request head ({err})")),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return bad("malformed request line");
    };
    // Only origin-form targets ("/path?query"), and "*" for OPTIONS: an authority-form or
    // absolute-form target names no path this server has.
    if !(target.starts_with('/') || (method == "OPTIONS" && target == "*")) {
        return bad("the request target must be a path such as /events");
    }
    let headers = req.headers;

    let chunked = header_values(headers, "transfer-encoding").next().is_some();
    let mut lengths = header_values(headers, "content-length");
    let body = match (chunked, lengths.next()) {
        (true, Some(_)) => return bad("both Content-Length and Transfer-Encoding are given"),
        (true, None) => {
            // The last coding must be chunked, or the body has no end we can find.
            let last = header_values(headers, "transfer-encoding")
                .last()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            let last = last
                .rsplit(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if last != "chunked" {
                return bad("Transfer-Encoding must end with chunked");
            }
            BodyLen::Chunked
        }
        (false, None) => BodyLen::Fixed(0),
        (false, Some(first)) => {
            let parse = |v: &[u8]| -> Option<u64> {
                let s = std::str::from_utf8(v).ok()?.trim();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                s.parse().ok()
            };
            let Some(n) = parse(first) else {
                return bad("Content-Length is not a number");
            };
            if lengths.any(|v| parse(v) != Some(n)) {
                return bad("conflicting Content-Length headers");
            }
            BodyLen::Fixed(n)
        }
    };

    let keep_alive = if version == 1 {
        !has_token(headers, "connection", "close")
    } else {
        has_token(headers, "connection", "keep-alive")
    };

    let upgrade = header_values(headers, "upgrade").next().is_some()
        && has_token(headers, "connection", "upgrade");

    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let stream_method = match method {
        "GET" => Some(axum::http::Method::GET),
        "HEAD" => Some(axum::http::Method::HEAD),
        _ => None,
    };
    let stream = match stream_method {
        Some(m) if path == stream_path && !upgrade => Some(if body != BodyLen::Fixed(0) {
            Err(ApiError::BadRequest {
                reason: "an event stream request has no body".into(),
            })
        } else {
            request_parts(m, version == 0, target, headers).map(Box::new)
        }),
        _ => None,
    };

    Parsed::Complete(Head {
        len,
        stream,
        body,
        keep_alive,
        http10: version == 0,
        upgrade,
        is_head: method == "HEAD",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        match parse(raw.as_bytes(), "/events") {
            Parsed::Complete(head) => head,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn refused(raw: &[u8]) -> ApiError {
        match parse(raw, "/events") {
            Parsed::Refused(err) => err,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn requests_for_the_stream_path_are_recognised_with_their_parts() {
        let h = head("GET /events?last_event_id=ab-3 HTTP/1.1\r\nLast-Event-ID: cd-4\r\n\r\n");
        let Some(Ok(parts)) = h.stream else {
            panic!("a stream request")
        };
        assert_eq!(parts.method, axum::http::Method::GET);
        assert_eq!(parts.uri.query(), Some("last_event_id=ab-3"));
        assert_eq!(parts.headers["last-event-id"], "cd-4");
        assert!(h.keep_alive);
        let h = head("GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(h.len, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n".len());
        assert!(matches!(h.stream, Some(Ok(_))));
        let h = head(
            "GET /events?topic=users/42 HTTP/1.1\r\nCookie: sse_access=t\r\nAuthorization: Bearer b\r\n\r\n",
        );
        let Some(Ok(parts)) = h.stream else {
            panic!("a stream request")
        };
        assert_eq!(parts.uri.query(), Some("topic=users/42"));
        assert_eq!(parts.headers["cookie"], "sse_access=t");
        assert_eq!(parts.headers["authorization"], "Bearer b");
        let h = head("HEAD /events HTTP/1.0\r\n\r\n");
        let Some(Ok(parts)) = h.stream else {
            panic!("a HEAD of the stream path")
        };
        assert_eq!(parts.method, axum::http::Method::HEAD);
        assert_eq!(parts.version, axum::http::Version::HTTP_10);
        let h = head("GET /events HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(h.stream, Some(Err(ApiError::BadRequest { .. }))));
        for other in [
            "GET / HTTP/1.1\r\n\r\n",
            "POST /events HTTP/1.1\r\n\r\n",
            "GET /events/x HTTP/1.1\r\n\r\n",
            "GET /eventsx HTTP/1.1\r\n\r\n",
            "GET /live/events HTTP/1.1\r\n\r\n",
            "GET /events HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
        ] {
            assert!(head(other).stream.is_none(), "{other:?}");
        }
    }

    #[test]
    fn the_stream_path_is_where_the_hub_is_mounted() {
        let at = |raw: &str, path: &str| match parse(raw.as_bytes(), path) {
            Parsed::Complete(head) => head.stream.is_some(),
            other => panic!("{raw:?}: {other:?}"),
        };
        assert!(at(
            "GET /live/events?topic=a HTTP/1.1\r\n\r\n",
            "/live/events"
        ));
        assert!(!at("GET /events HTTP/1.1\r\n\r\n", "/live/events"));
        assert!(!at("GET /live/events/ HTTP/1.1\r\n\r\n", "/live/events"));
    }

    #[test]
    fn body_framing_and_keep_alive() {
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n", BodyLen::Fixed(0), true),
            ("GET / HTTP/1.0\r\n\r\n", BodyLen::Fixed(0), false),
            (
                "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                BodyLen::Fixed(0),
                true,
            ),
            (
                "POST /api/publish HTTP/1.1\r\nContent-Length: 12\r\nConnection: foo, close\r\n\r\n",
                BodyLen::Fixed(12),
                false,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
                BodyLen::Fixed(7),
                true,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                BodyLen::Chunked,
                true,
            ),
        ];
        for (raw, body, keep_alive) in cases {
            let h = head(raw);
            assert_eq!((h.body, h.keep_alive), (body, keep_alive), "{raw:?}");
        }
    }

    #[test]
    fn bad_heads_are_refused_with_the_right_status() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            // Authority- and absolute-form targets (leptos_axum once panicked on them).
            (b"GET 127.0.0.1:80 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"POST x:1 HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET http://h/ HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"OPTIONS * HTTP/1.1\r\n\r\n".to_vec(), 0),
            // Smuggling-shaped framing.
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .to_vec(),
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(),
                400,
            ),
            (b"BREW /pot HTCPCP/1.0\r\n\r\n".to_vec(), 400),
            (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
                400,
            ),
            // Too big: one huge header, or too many.
            (
                format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD)).into_bytes(),
                431,
            ),
            (
                format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD)).into_bytes(),
                431,
            ),
            (
                format!(
                    "GET / HTTP/1.1\r\n{}\r\n",
                    "X: y\r\n".repeat(MAX_HEADERS + 1)
                )
                .into_bytes(),
                431,
            ),
        ];
        for (raw, status) in cases {
            if status == 0 {
                assert!(matches!(parse(&raw, "/events"), Parsed::Complete(_)));
                continue;
            }
            let err = refused(&raw);
            assert_eq!(
                err.status().as_u16(),
                status,
                "{:?}: {err}",
                String::from_utf8_lossy(&raw)
            );
        }
        assert!(matches!(
            parse(b"GET /events HTTP/1.1\r\nHost:", "/events"),
            Parsed::Partial
        ));
    }
}

//! Server only: the lean path for `/events`. Every new TCP connection is routed by its first
//! request: `GET /events` is served right here — the response head, then the feed's pre-encoded
//! frames written straight to the socket, with no HTTP stack and no buffers kept per connection
//! — and anything else is handed to axum (with the bytes already read). hyper keeps ≥ 8 KiB of
//! buffers per connection for its whole life; held streams are this server's scaling number.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::feed::{self, Feed, StreamQuery};
use super::listener::{HttpListener, Rewind, StallIo};
use super::state::AppState;

/// Longest request head read while routing; longer ones go to hyper (which answers 431).
const MAX_HEAD: usize = 8 * 1024;
/// A client must send its request head within this (slow-loris guard).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The response head of a directly served stream. The body runs until the connection closes.
pub const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
connection: close\r\n\r\n";

/// Start routing connections from `listener`; what is not `/events` comes out of the returned
/// listener for axum. Routing stops when the state's shutdown token is cancelled.
pub fn route(listener: TcpListener, state: AppState) -> std::io::Result<HttpListener> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(accept_loop(listener, state, tx));
    Ok(HttpListener::new(rx, local))
}

async fn accept_loop(
    listener: TcpListener,
    state: AppState,
    tx: mpsc::Sender<(Rewind, SocketAddr)>,
) {
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(route_one(stream, peer, state.clone(), tx.clone()));
                }
                Err(err) => {
                    // e.g. EMFILE: back off briefly instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// What the first request asks for.
enum Route {
    /// `GET /events`, with the resume point it carries.
    Events {
        header_id: Option<String>,
        query_id: Option<String>,
    },
    /// Anything else (or something we do not parse): hyper decides.
    Http,
}

fn classify(head: &[u8]) -> Option<Route> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Route::Http),
    }
    let (Some("GET"), Some(target)) = (req.method, req.path) else {
        return Some(Route::Http);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/events" {
        return Some(Route::Http);
    }
    let query_id = serde_urlencoded::from_str::<StreamQuery>(query)
        .ok()
        .and_then(|q| q.last_event_id);
    let header_id = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("last-event-id"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned);
    Some(Route::Events {
        header_id,
        query_id,
    })
}

async fn route_one(
    stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    tx: mpsc::Sender<(Rewind, SocketAddr)>,
) {
    let mut io = StallIo::new(
        stream,
        peer,
        state.config.write_timeout(),
        state.metrics.slow_clients_dropped.clone(),
    );
    let mut buf = BytesMut::with_capacity(1024);
    let route = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            if let Some(route) = classify(&buf) {
                return Some(route);
            }
            if buf.len() >= MAX_HEAD {
                return Some(Route::Http);
            }
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await;
    let route = match route {
        Ok(Some(route)) => route,
        // Closed, failed or too slow before a full request head: nothing to answer.
        Ok(None) | Err(_) => return,
    };
    if let Route::Events {
        header_id,
        query_id,
    } = &route
    {
        let resume = feed::resume_point(header_id.as_deref(), query_id.as_deref());
        // Refusals (draining, full) go to axum, which answers them with the JSON error.
        if let Ok(feed) = feed::try_open(&state, peer, resume) {
            drop(buf);
            serve_stream(io, feed).await;
            return;
        }
    }
    let _ = tx.send((Rewind::new(buf.freeze(), io), peer)).await;
}

/// Write the stream until it ends, the client goes away, or its writes stall.
async fn serve_stream(mut io: StallIo, mut feed: Feed) {
    if io.write_all(RESPONSE_HEAD).await.is_err() {
        return;
    }
    // Reading notices a client that closed even between frames; it must not send more.
    let mut scratch = [0u8; 16];
    loop {
        tokio::select! {
            biased;
            frame = feed.next() => match frame {
                Some(bytes) => {
                    if io.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            read = io.read(&mut scratch) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(head: &str) -> Option<(Option<String>, Option<String>)> {
        match classify(head.as_bytes()) {
            Some(Route::Events {
                header_id,
                query_id,
            }) => Some((header_id, query_id)),
            _ => None,
        }
    }

    #[test]
    fn routes_by_the_first_request() {
        assert_eq!(
            events("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some((None, None))
        );
        assert_eq!(
            events("GET /events?last_event_id=ab-3 HTTP/1.1\r\nLast-Event-ID: cd-4\r\n\r\n"),
            Some((Some("cd-4".into()), Some("ab-3".into())))
        );
        assert_eq!(
            events("GET /events?last_event_id=ab%2D3&x=1 HTTP/1.1\r\n\r\n"),
            Some((None, Some("ab-3".into())))
        );
        for other in [
            "GET / HTTP/1.1\r\n\r\n",
            "POST /events HTTP/1.1\r\n\r\n",
            "GET /events/x HTTP/1.1\r\n\r\n",
            "GET /eventsx HTTP/1.1\r\n\r\n",
            "BREW /pot HTCPCP/1.0\r\n\r\n",
        ] {
            assert!(
                matches!(classify(other.as_bytes()), Some(Route::Http)),
                "{other:?}"
            );
        }
        assert!(
            classify(b"GET /events HTTP/1.1\r\nHost:").is_none(),
            "waits for the whole head"
        );
    }
}

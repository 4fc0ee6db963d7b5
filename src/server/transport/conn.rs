//! Server only: every TCP connection's life. The accept loop admits sockets under the socket cap
//! (beyond it: a canned 503, no task, no buffers). Each connection then runs our own small
//! HTTP/1.1 keep-alive loop: it reads every request head itself — the idle timeout until its
//! first byte, the header timeout for the rest, a size limit. A `GET` or `HEAD` of the hub's
//! stream path (where the embedder mounted it) goes to the app's router without hyper; if the
//! hub's handler opened a stream, the loop writes it straight to the socket (`writers.rs`),
//! otherwise it writes the router's answer. Any other request goes to hyper as a one-request
//! connection, and the socket comes back afterwards. So every request on every connection is
//! under the same timeouts and the same router and layers, and a stream on a reused keep-alive
//! connection is as lean as on a new one.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::server::api::events::DirectSlot;
use crate::server::auth::RequestParts;
use crate::server::error::ApiError;
use crate::server::stream::limits::SocketPermit;
use crate::server::stream::state::AppState;
use crate::server::transport::gate::{Gate, GateRules, Handoff, Prefixed, StallIo};
use crate::server::transport::head::{self, Head, Parsed};
use crate::server::transport::writers::{self, Writers};

/// Suggested wait in the canned answer at the socket cap.
const SOCKET_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Accept connections until the state's shutdown token is cancelled; every connection task is
/// spawned on `tracker` so shutdown can wait for them.
pub async fn accept_loop(
    listener: TcpListener,
    state: AppState,
    app: Router,
    tracker: TaskTracker,
    writers: Writers,
) {
    let full = ApiError::TooManySockets {
        max: state.budget.max_sockets,
        retry_after: SOCKET_RETRY_AFTER,
    }
    .to_http1_bytes();
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match state.sockets.try_enter() {
                    Some(permit) => {
                        let _ = stream.set_nodelay(true);
                        tracker.spawn(serve_connection(
                            stream,
                            peer,
                            state.clone(),
                            app.clone(),
                            permit,
                            tracker.clone(),
                            writers.clone(),
                        ));
                    }
                    None => refuse_socket(stream, peer, &full, &state),
                },
                // One connection's trouble (reset or aborted before we took it): skip it, as
                // axum's `serve` does.
                Err(err) if is_connection_error(&err) => {
                    tracing::debug!(%err, "accept: connection gone before it was taken");
                }
                Err(err) => {
                    // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): back off
                    // briefly instead of spinning; say so at most once per window.
                    if let Some(failed) = state.refusal_log.accepts.tick() {
                        tracing::warn!(%err, failed, "accept failed: backing off 50 ms");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// An accept error that concerns one connection only (not the listener or the process).
fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) || err.raw_os_error() == Some(libc::EPROTO)
}

/// At the socket cap: answer without a task or a buffer (a non-blocking write into the fresh
/// socket's empty send buffer) and close.
fn refuse_socket(stream: TcpStream, peer: SocketAddr, answer: &[u8], state: &AppState) {
    state.metrics.sockets_refused.inc();
    let _ = stream.try_write(answer);
    tracing::debug!(%peer, "connection refused: socket cap reached");
    if let Some(refused) = state.refusal_log.sockets.tick() {
        tracing::warn!(
            refused,
            max = state.budget.max_sockets,
            "connections refused: the socket cap is reached"
        );
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    app: Router,
    permit: SocketPermit,
    tracker: TaskTracker,
    writers: Writers,
) {
    let mut io = StallIo::new(
        stream,
        peer,
        state.config.write_timeout(),
        state.metrics.write_stalls.clone(),
    );
    let mut buf = BytesMut::new();
    // A head the hyper connection's gate read and handed back.
    let mut handed: Option<Head> = None;
    loop {
        // Boxed: the head reader's and hyper's state live on the heap only while they run, so
        // this task stays small while it waits (idle keep-alive).
        let head = match handed.take() {
            Some(head) => head,
            None => match Box::pin(read_head(&mut io, &mut buf, &state)).await {
                Handoff::Next(head) => head,
                Handoff::Closed => return,
                Handoff::Refuse(err, reason) => {
                    return refuse(io, peer, &err, reason, &state).await
                }
            },
        };
        match head.stream {
            Some(request) if !state.config.no_fast_path => {
                let _ = buf.split_to(head.len);
                let parts = match request {
                    Ok(parts) => parts,
                    Err(err) => return answer_and_close(io, &err).await,
                };
                // The app's router answers (its layers, the hub's checks and access policy, or
                // whatever the embedder routes there); a stream it opens comes back in the slot.
                let slot = DirectSlot::default();
                let answer = Box::pin(route_stream_request(&app, *parts, peer, slot.clone())).await;
                match (answer.status(), slot.take()) {
                    (axum::http::StatusCode::OK, Some(feed)) if !head.is_head => {
                        if !buf.is_empty() {
                            // A stream holds the connection: a request pipelined behind it
                            // would never be answered.
                            drop(feed);
                            let err = ApiError::BadRequest {
                                reason: "nothing may follow an event stream request".into(),
                            };
                            return refuse(io, peer, &err, "unexpected_input", &state).await;
                        }
                        drop(buf);
                        let stream_head = stream_head(&answer, head.http10);
                        drop(answer);
                        if io.write_all(&stream_head).await.is_err() {
                            return;
                        }
                        drop(stream_head);
                        let stream = writers::StreamParts {
                            unexpected: state.metrics.unexpected_input.clone(),
                            permit,
                            writers: Some(writers),
                        };
                        // The held stream gets a task of its own with only what it needs (the
                        // socket, its feed, its place under the socket cap): this one ends and
                        // frees the router, the state and the request machinery. Held streams
                        // are this server's scaling number. The feed is boxed: an async fn's
                        // state keeps its arguments and their moved-to locals apart, so an
                        // inline feed would be paid for twice in every held task.
                        tracker.spawn(writers::serve_stream(io, feed, stream, None));
                        return;
                    }
                    // Anything else (an error, a HEAD, a layer's own answer, another route):
                    // written as it is. A feed opened meanwhile closes with the slot. After an
                    // error the connection closes, as it always did on this path: a refused
                    // stream (503 at the stream cap, 401, 403) frees its socket at once.
                    _ => {
                        let framing = (head.http10, head.is_head);
                        let keep = head.keep_alive && answer.status().as_u16() < 400;
                        match Box::pin(write_response(&mut io, answer, framing, keep)).await {
                            Ok(true) if !state.shutdown.is_cancelled() => continue,
                            _ => {
                                let _ = io.shutdown().await;
                                return;
                            }
                        }
                    }
                }
            }
            _ if head.upgrade => {
                return Box::pin(upgrade(io, std::mem::take(&mut buf), peer, &state, &app)).await
            }
            _ => {
                let served = Box::pin(hyper_requests(
                    io,
                    std::mem::take(&mut buf),
                    &head,
                    peer,
                    &state,
                    &app,
                ))
                .await;
                match served {
                    Served::Next(next_io, rest, next) => {
                        io = next_io;
                        buf = rest;
                        handed = Some(next);
                    }
                    Served::Refuse(io, err, reason) => {
                        return refuse(io, peer, &err, reason, &state).await
                    }
                    Served::Close => return,
                }
            }
        }
    }
}

/// Read until `buf` starts with a whole request head: the idle timeout until its first byte,
/// then the header timeout for all of it. (The [`Gate`] reads later heads the same way while
/// hyper has the connection.)
async fn read_head(io: &mut StallIo, buf: &mut BytesMut, state: &AppState) -> Handoff {
    let config = &state.config;
    if buf.is_empty() {
        // Between requests the connection holds no buffer at all.
        *buf = BytesMut::new();
        let mut first = [0u8; 1];
        tokio::select! {
            read = tokio::time::timeout(config.idle_timeout(), io.read(&mut first)) => match read {
                Ok(Ok(1)) => buf.extend_from_slice(&first),
                // Closed, failed, or idle too long: a quiet close (RFC 9112 §9.6).
                _ => return Handoff::Closed,
            },
            () = state.shutdown.cancelled() => return Handoff::Closed,
        }
    }
    let deadline = tokio::time::Instant::now() + config.header_timeout();
    loop {
        match head::parse(buf, &state.stream_path) {
            Parsed::Complete(head) => return Handoff::Next(head),
            Parsed::Refused(err) => return Handoff::refused(err),
            Parsed::Partial => {}
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096.min(head::MAX_HEAD + 1 - buf.len()).max(1024));
        }
        match tokio::time::timeout_at(deadline, io.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Handoff::Closed,
            Ok(Ok(_)) => {}
            Err(_) => return Handoff::header_timeout(config.header_timeout()),
        }
    }
}

/// A request for the stream path, through the app's router (no hyper: the head is parsed, the
/// body is empty). The router's answer is always a response (axum's routers are infallible).
async fn route_stream_request(
    app: &Router,
    parts: RequestParts,
    peer: SocketAddr,
    slot: DirectSlot,
) -> axum::response::Response {
    let mut request = Request::from_parts(parts, axum::body::Body::empty());
    request.extensions_mut().insert(ConnectInfo(peer));
    request.extensions_mut().insert(slot);
    match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Header fields this loop decides itself when it writes a response.
fn framing_header(name: &axum::http::HeaderName) -> bool {
    use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == CONTENT_LENGTH
        || name == "keep-alive"
}

/// The status line (in the request's HTTP version, as hyper answers) and the header fields
/// `skip` lets through.
fn push_status_and_headers(
    out: &mut Vec<u8>,
    http10: bool,
    res: &axum::response::Response,
    skip: impl Fn(&axum::http::HeaderName) -> bool,
) {
    let status = res.status();
    out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in res.headers() {
        if skip(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The head of a directly written stream: the router's status and headers (with the layers'
/// additions), minus framing and content coding (the body is the feed's plain frames, until
/// the connection closes).
fn stream_head(res: &axum::response::Response, http10: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    push_status_and_headers(&mut out, http10, res, |name| {
        framing_header(name) || name == axum::http::header::CONTENT_ENCODING
    });
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// Write a router's response to a request for the stream path (an error, a HEAD, another
/// route's answer). `keep`: the connection may carry another request if the body's end is known.
/// Returns whether it may.
async fn write_response(
    io: &mut StallIo,
    res: axum::response::Response,
    (http10, is_head): (bool, bool),
    keep: bool,
) -> std::io::Result<bool> {
    use axum::body::HttpBody;
    use axum::http::StatusCode;
    let status = res.status();
    let bodyless = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let declared = res
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .cloned();
    let exact = res.body().size_hint().exact();
    let mut out = Vec::with_capacity(512);
    push_status_and_headers(&mut out, http10, &res, framing_header);
    // A HEAD keeps the length its GET would have; a body says its own.
    let length = if is_head {
        declared.map(|v| v.as_bytes().to_vec())
    } else if bodyless {
        None
    } else {
        exact.map(|n| n.to_string().into_bytes())
    };
    if let Some(length) = &length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(length);
        out.extend_from_slice(b"\r\n");
    }
    // Another request may follow only when this body's end is known (a length, or no body) and
    // the handler did not say `Connection: close`.
    let says_close = res
        .headers()
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .any(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
        });
    let keep = keep && !says_close && (bodyless || exact.is_some());
    out.extend_from_slice(match (keep, http10) {
        (true, true) => b"connection: keep-alive\r\n\r\n".as_slice(),
        (true, false) => b"\r\n".as_slice(),
        (false, _) => b"connection: close\r\n\r\n".as_slice(),
    });
    io.write_all(&out).await?;
    if !bodyless {
        let mut body = res.into_body().into_data_stream();
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            match chunk {
                Ok(bytes) => io.write_all(&bytes).await?,
                Err(err) => {
                    tracing::debug!(%err, "response body failed; closing");
                    return Ok(false);
                }
            }
        }
    }
    io.flush().await?;
    Ok(keep)
}

/// Answer a slow or bad request, count it, and close.
async fn refuse(io: StallIo, peer: SocketAddr, err: &ApiError, reason: &str, state: &AppState) {
    state
        .metrics
        .requests_refused
        .with_label_values(&[reason])
        .inc();
    tracing::debug!(%peer, reason, "request refused: {err}");
    if let Some(refused) = state.refusal_log.requests.tick() {
        tracing::warn!(
            refused,
            last_reason = reason,
            "slow or malformed requests refused (see sse_requests_refused_total)"
        );
    }
    answer_and_close(io, err).await;
}

async fn answer_and_close(mut io: StallIo, err: &ApiError) {
    let _ = io.write_all(&err.to_http1_bytes()).await;
    let _ = io.shutdown().await;
}

/// How a run of hyper requests ended.
enum Served {
    /// The gate read a head that is ours (the stream path, an upgrade): serve it next.
    Next(StallIo, BytesMut, Head),
    /// The gate refused a head: answer it and close.
    Refuse(StallIo, ApiError, &'static str),
    /// The connection is over.
    Close,
}

/// The app as a hyper service, with axum's standard client address on every request.
fn hyper_service(
    app: &Router,
    peer: SocketAddr,
) -> TowerToHyperService<
    tower::util::MapRequest<Router, impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone>,
> {
    TowerToHyperService::new(app.clone().map_request(move |mut req: Request<Incoming>| {
        // axum's standard client address, as `axum::serve` with connect info gives it.
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    }))
}

/// Serve ordinary requests through one hyper connection (hyper's own keep-alive rules:
/// HTTP/1.0, `Connection: close`, framing) for as long as they come: the first is `head`, at
/// the start of `buf`. The [`Gate`] reads each later head and hands the connection back when
/// one is ours, so a stream after a page load still takes the direct path.
async fn hyper_requests(
    io: StallIo,
    buf: BytesMut,
    head: &Head,
    peer: SocketAddr,
    state: &AppState,
    app: &Router,
) -> Served {
    let config = &state.config;
    let rules = GateRules {
        idle: config.idle_timeout(),
        header: config.header_timeout(),
        body: config.body_timeout(),
        stream_path: std::sync::Arc::clone(&state.stream_path),
        hyper_streams: config.no_fast_path,
        shutdown: state.shutdown.clone(),
    };
    let gate = Gate::new(io, buf, head, rules);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(head::MAX_HEAD.max(8192))
        // The gate times heads itself (hyper's timer would also count the idle time between
        // requests as header time).
        .header_read_timeout(None)
        // hyper must not read ahead to notice a close while it answers: the gate shows it
        // nothing between requests until the next head is judged.
        .half_close(true);
    let served = builder
        .serve_connection(TokioIo::new(gate), hyper_service(app, peer))
        .without_shutdown()
        .await;
    let parts = match served {
        Ok(parts) => parts,
        Err(err) => {
            tracing::debug!(%peer, %err, "connection ended during a request");
            return Served::Close;
        }
    };
    let gate = parts.io.into_inner();
    if gate.timed_out() {
        state
            .metrics
            .requests_refused
            .with_label_values(&["body_timeout"])
            .inc();
    }
    let (mut io, rest, handoff) = gate.into_parts();
    match handoff {
        // hyper flushed its answers before it ended.
        Some(Handoff::Next(next)) if parts.read_buf.is_empty() => {
            return Served::Next(io, rest, next)
        }
        Some(Handoff::Refuse(err, reason)) => return Served::Refuse(io, err, reason),
        // hyper ended the connection itself (a close it owed the client), or the client did.
        _ => {}
    }
    let _ = io.shutdown().await;
    Served::Close
}

/// An upgrade (a WebSocket route, a Leptos websocket server function): the connection goes to
/// hyper and the upgraded protocol for good, exactly as under `axum::serve`.
async fn upgrade(io: StallIo, buf: BytesMut, peer: SocketAddr, state: &AppState, app: &Router) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(head::MAX_HEAD.max(8192))
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout())
        .keep_alive(false);
    let conn = builder
        .serve_connection(
            TokioIo::new(Prefixed::new(io, buf.freeze())),
            hyper_service(app, peer),
        )
        .with_upgrades();
    if let Err(err) = conn.await {
        tracing::debug!(%peer, %err, "upgraded connection ended");
    }
}

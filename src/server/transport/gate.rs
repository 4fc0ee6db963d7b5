//! Server only: connection plumbing. [`StallIo`] fails a write that made no progress for the
//! write timeout (a client that stopped reading is dropped instead of held forever, with its
//! buffers); [`Gate`] shows one hyper connection a connection's ordinary requests one at a time
//! — each head read and judged by us first — and hands the connection back when a request is
//! ours (the stream path, an upgrade); [`Prefixed`] gives an upgraded connection to hyper.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::server::error::ApiError;
use crate::server::stream::metrics::IntCounter;
use crate::server::transport::head::{self, BodyLen, Head, Parsed};

/// Pending connections the kernel queues before `accept`. tokio's `TcpListener::bind` uses 128:
/// after a restart thousands of clients reconnect at once, and SYNs beyond the queue wait for
/// the 1 s SYN retransmit (the kernel caps this at `net.core.somaxconn`).
pub(crate) const LISTEN_BACKLOG: u32 = 4096;

/// Bind a listening socket for [`serve`](crate::server::serve) with a deep accept queue (4,096:
/// after a restart thousands of clients reconnect at once). With `reuse_port`, other processes
/// may listen on the same address too (`SO_REUSEPORT`: the kernel spreads new connections over
/// them). Must run inside the Tokio runtime.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A TCP stream whose writes fail after `timeout` without progress.
pub struct StallIo {
    inner: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    dropped: IntCounter,
}

impl StallIo {
    /// Wrap `inner`; `dropped` counts connections given up on.
    pub fn new(inner: TcpStream, peer: SocketAddr, timeout: Duration, dropped: IntCounter) -> Self {
        StallIo {
            inner,
            peer,
            timeout,
            timer: None,
            dropped,
        }
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket itself (a parked stream's leaves the runtime's reactor).
    pub fn into_tcp(self) -> TcpStream {
        self.inner
    }

    fn track<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                // The timer exists only while a write is blocked: no cost on the happy path.
                let timeout = self.timeout;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.timer = None;
                    self.dropped.inc();
                    tracing::warn!(
                        peer = %self.peer,
                        timeout_ms = timeout.as_millis() as u64,
                        "client stopped reading; dropping its connection"
                    );
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for StallIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `AsyncWrite` for a reader wrapper: every write goes straight to its `inner` [`StallIo`].
macro_rules! forward_write {
    ($wrapper:ty) => {
        impl AsyncWrite for $wrapper {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.inner).poll_shutdown(cx)
            }
        }
    };
}

/// The rest of a connection after an upgrade request, for hyper: first the bytes already read
/// (the head, maybe more), then the socket, with no read deadline (hyper hands it to the upgraded
/// protocol: a WebSocket may be quiet for as long as it likes).
pub struct Prefixed {
    inner: StallIo,
    prefix: Bytes,
}

impl Prefixed {
    /// `prefix`, then `inner`.
    pub fn new(inner: StallIo, prefix: Bytes) -> Self {
        Prefixed { inner, prefix }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

forward_write!(Prefixed);

/// What a [`Gate`] found when it stopped giving hyper requests (it then shows hyper end-of-file,
/// and hyper's connection ends without touching the socket).
#[derive(Debug)]
pub enum Handoff {
    /// A request that is not hyper's to serve on this connection: one for the stream path (our
    /// loop answers it through the router) or an upgrade (hyper gets it with upgrades on).
    Next(Head),
    /// A head that is refused: answer this, then close.
    Refuse(ApiError, &'static str),
    /// The client closed or went idle past the idle timeout, or the server is stopping.
    Closed,
}

impl Handoff {
    /// A head the parser refused, with its reason for `sse_requests_refused_total`.
    pub fn refused(err: ApiError) -> Self {
        let reason = match err {
            ApiError::HeadersTooLarge { .. } => "head_too_large",
            _ => "bad_request",
        };
        Handoff::Refuse(err, reason)
    }

    /// A head that did not arrive within the header timeout (408).
    pub fn header_timeout(timeout: Duration) -> Self {
        Handoff::Refuse(
            ApiError::RequestTimeout {
                timeout_ms: timeout.as_millis() as u64,
            },
            "header_timeout",
        )
    }
}

/// Where a [`Gate`] is in the connection.
enum Phase {
    /// Giving hyper the current request: `give` bytes of `buf`, then `remaining` body bytes
    /// straight from the socket (`None`: a chunked body, the rest of the connection is hyper's).
    Request { give: usize, remaining: Option<u64> },
    /// Reading the next request head into `buf` (ours, not hyper's).
    Between { first_byte: bool },
    /// End-of-file for hyper; see [`Gate::handoff`].
    Done,
}

/// Timeouts and routing rules a [`Gate`] reads heads with.
#[derive(Clone)]
pub struct GateRules {
    pub idle: Duration,
    pub header: Duration,
    pub body: Duration,
    pub stream_path: std::sync::Arc<str>,
    /// `true`: requests for the stream path are hyper's too (`--no-fast-path`).
    pub hyper_streams: bool,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// One hyper connection for consecutive ordinary requests of a connection. The gate reads every
/// request head itself — the idle timeout until its first byte, the header timeout for the
/// rest, the size limit — and shows hyper one request at a time: the head, then at most the
/// body's length, so hyper never reads ahead. A head for the stream path, an upgrade, a bad or
/// slow head, a close or the server stopping: hyper sees end-of-file between two requests, ends
/// its connection without touching the socket, and [`Gate::handoff`] says what came.
pub struct Gate {
    inner: StallIo,
    buf: BytesMut,
    phase: Phase,
    rules: GateRules,
    /// One timer for the connection's life, re-armed (`reset`) for each wait.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Registered once, while the first idle wait runs, and kept.
    stopping: Option<Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
    handoff: Option<Handoff>,
    timed_out: bool,
}

impl Gate {
    /// A gate whose first request (`head`, already parsed, at the start of `buf`) goes to hyper.
    pub fn new(inner: StallIo, buf: BytesMut, head: &Head, rules: GateRules) -> Self {
        let mut gate = Gate {
            inner,
            buf,
            phase: Phase::Done,
            rules,
            timer: None,
            armed: false,
            stopping: None,
            handoff: None,
            timed_out: false,
        };
        gate.admit(head);
        gate
    }

    /// Let hyper have the request whose head starts `buf`.
    fn admit(&mut self, head: &Head) {
        self.phase = match head.body {
            BodyLen::Fixed(len) => {
                let have = (self.buf.len() - head.len) as u64;
                let take = have.min(len);
                Phase::Request {
                    give: head.len + take as usize,
                    remaining: Some(len - take),
                }
            }
            BodyLen::Chunked => Phase::Request {
                give: self.buf.len(),
                remaining: None,
            },
        };
    }

    /// Why hyper saw end-of-file (`None`: hyper ended the connection on its own — a close it
    /// asked for — or failed), the unread bytes, and the socket.
    pub fn into_parts(self) -> (StallIo, BytesMut, Option<Handoff>) {
        (self.inner, self.buf, self.handoff)
    }

    /// Whether a body read failed for lack of progress.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    fn stop(&mut self, handoff: Handoff) -> Poll<io::Result<()>> {
        self.handoff = Some(handoff);
        self.phase = Phase::Done;
        self.timer = None;
        self.stopping = None;
        Poll::Ready(Ok(()))
    }

    /// Read more of the next head into `buf`.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        let spare = self.buf.spare_capacity_mut();
        let mut read = ReadBuf::uninit(spare);
        match Pin::new(&mut self.inner).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                // SAFETY: the read initialised `n` bytes of the spare capacity.
                unsafe { self.buf.set_len(self.buf.len() + n) };
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `Pending` until `timeout` (from the first call after [`disarm`](Self::disarm)) has
    /// passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>, timeout: Duration) -> Poll<()> {
        let timer = match &mut self.timer {
            Some(timer) => {
                if !self.armed {
                    timer.as_mut().reset(tokio::time::Instant::now() + timeout);
                }
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        self.armed = true;
        timer.as_mut().poll(cx)
    }

    /// The next wait starts its own timeout.
    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Between requests: read and judge the next head.
    fn poll_between(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.buf.is_empty() {
                match head::parse(&self.buf, &self.rules.stream_path) {
                    Parsed::Complete(head) => {
                        self.disarm();
                        let ours =
                            (head.stream.is_some() && !self.rules.hyper_streams) || head.upgrade;
                        if ours {
                            return self.stop(Handoff::Next(head));
                        }
                        self.admit(&head);
                        return Poll::Ready(Ok(()));
                    }
                    Parsed::Refused(err) => return self.stop(Handoff::refused(err)),
                    Parsed::Partial => {}
                }
            }
            let Phase::Between { first_byte } = self.phase else {
                return Poll::Ready(Ok(()));
            };
            if !first_byte {
                // Idle: the server stopping ends the connection (a quiet close).
                let token = self.rules.shutdown.clone();
                let stopping = self
                    .stopping
                    .get_or_insert_with(|| Box::pin(token.cancelled_owned()));
                if stopping.as_mut().poll(cx).is_ready() {
                    return self.stop(Handoff::Closed);
                }
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return self.stop(Handoff::Closed),
                Poll::Ready(Ok(_)) => {
                    if !first_byte {
                        // The header timeout runs from the head's first byte.
                        self.phase = Phase::Between { first_byte: true };
                        self.disarm();
                    }
                }
                Poll::Pending => {
                    let timeout = if first_byte {
                        self.rules.header
                    } else {
                        self.rules.idle
                    };
                    if self.poll_timer(cx, timeout).is_ready() {
                        // Idle too long: a quiet close (RFC 9112 §9.6); a head too slow: 408.
                        return self.stop(if first_byte {
                            Handoff::header_timeout(self.rules.header)
                        } else {
                            Handoff::Closed
                        });
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncRead for Gate {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.phase {
                Phase::Done => return Poll::Ready(Ok(())),
                Phase::Between { .. } => match this.poll_between(cx) {
                    Poll::Ready(Ok(())) if matches!(this.phase, Phase::Request { .. }) => continue,
                    other => return other,
                },
                Phase::Request { .. } => {}
            }
            {
                let Phase::Request { give, remaining } = &mut this.phase else {
                    continue;
                };
                {
                    if *give > 0 {
                        let n = (*give).min(out.remaining());
                        out.put_slice(&this.buf[..n]);
                        this.buf.advance(n);
                        *give -= n;
                        return Poll::Ready(Ok(()));
                    }
                    let limit = match *remaining {
                        Some(0) => {
                            // This request is hyper's in full: the next head is ours to read.
                            this.phase = Phase::Between { first_byte: false };
                            this.disarm();
                            continue;
                        }
                        Some(n) => usize::try_from(n)
                            .unwrap_or(usize::MAX)
                            .min(out.remaining()),
                        None => out.remaining(),
                    };
                    let timeout = match remaining {
                        Some(_) => this.rules.body,
                        None => this.rules.idle.max(this.rules.body),
                    };
                    let poll = {
                        let mut sub = out.take(limit);
                        match Pin::new(&mut this.inner).poll_read(cx, &mut sub) {
                            Poll::Ready(Ok(())) => Poll::Ready(Ok(sub.filled().len())),
                            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                            Poll::Pending => Poll::Pending,
                        }
                    };
                    return match poll {
                        Poll::Ready(Ok(n)) => {
                            // SAFETY: `sub` was a view of `out`'s unfilled part and the read
                            // filled `n`.
                            unsafe { out.assume_init(n) };
                            out.advance(n);
                            if let Some(rest) = remaining.as_mut() {
                                *rest -= n as u64;
                            }
                            this.disarm();
                            Poll::Ready(Ok(()))
                        }
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => {
                            if this.poll_timer(cx, timeout).is_ready() {
                                this.disarm();
                                this.timed_out = true;
                                return Poll::Ready(Err(io::Error::new(
                                    io::ErrorKind::TimedOut,
                                    "request body stalled",
                                )));
                            }
                            Poll::Pending
                        }
                    };
                }
            }
        }
    }
}

forward_write!(Gate);

//! Server only: connection plumbing. [`StallIo`] fails a write that made no progress for the
//! write timeout (a client that stopped reading is dropped instead of held forever, with its
//! buffers); [`OneRequest`] shows hyper exactly one request of a connection — the head already
//! read, then at most the body's length — so the connection can be taken back afterwards.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::server::stream::metrics::IntCounter;

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

/// One request of a connection, for hyper: first the bytes already read (the head and maybe
/// part of the body), then at most the rest of the body from the socket, then end-of-file — so
/// hyper never reads into the next request, and after its response (seeing EOF on an idle
/// connection) it hands the socket back. A body must keep arriving: a read that makes no progress
/// for the body timeout fails.
pub struct OneRequest {
    inner: StallIo,
    prefix: Bytes,
    /// Body bytes still to come from the socket; `None`: no known end (chunked), pass through.
    remaining: Option<u64>,
    /// Most time a body read may make no progress; `None` after an upgrade (the connection is
    /// the application's then: a WebSocket may be quiet for as long as it likes).
    body_timeout: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl OneRequest {
    /// `prefix` (head and the body bytes already read), then `remaining` more body bytes.
    pub fn new(
        inner: StallIo,
        prefix: Bytes,
        remaining: Option<u64>,
        body_timeout: Duration,
    ) -> Self {
        OneRequest {
            inner,
            prefix,
            remaining,
            body_timeout: Some(body_timeout),
            timer: None,
            timed_out: false,
        }
    }

    /// The whole rest of the connection for an upgrade request: `prefix`, then the socket,
    /// with no read deadline (hyper hands it to the upgraded protocol).
    pub fn upgrade(inner: StallIo, prefix: Bytes) -> Self {
        OneRequest {
            inner,
            prefix,
            remaining: None,
            body_timeout: None,
            timer: None,
            timed_out: false,
        }
    }

    /// Whether hyper read the whole request (so the connection's next bytes are a new request).
    pub fn consumed(&self) -> bool {
        self.prefix.is_empty() && self.remaining == Some(0)
    }

    /// Whether a body read failed for lack of progress.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The connection back.
    pub fn into_inner(self) -> StallIo {
        self.inner
    }
}

impl AsyncRead for OneRequest {
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
        let limit = match this.remaining {
            // The request is complete: end-of-file for hyper, the rest stays in the socket.
            Some(0) => return Poll::Ready(Ok(())),
            Some(n) => usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(buf.remaining()),
            None => buf.remaining(),
        };
        let poll = {
            let mut sub = buf.take(limit);
            match Pin::new(&mut this.inner).poll_read(cx, &mut sub) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(sub.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        };
        match poll {
            Poll::Ready(Ok(n)) => {
                // SAFETY: `sub` was a view of `buf`'s unfilled part and the read filled `n`.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                if let Some(rest) = this.remaining.as_mut() {
                    *rest -= n as u64;
                }
                this.timer = None;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(timeout) = this.body_timeout else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.timer = None;
                    this.timed_out = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request body stalled",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for OneRequest {
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

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

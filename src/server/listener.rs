//! Server only: connection plumbing. [`StallIo`] fails a write that made no progress for the
//! write timeout (a client that stopped reading is dropped instead of held forever, with its
//! buffers); [`Rewind`] replays the bytes already read while routing a connection; and
//! [`HttpListener`] hands axum the connections the `/events` fast path did not take.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use bytes::{Buf, Bytes};
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Sleep;

/// Pending connections the kernel queues before `accept`. tokio's `TcpListener::bind` uses 128:
/// after a restart thousands of clients reconnect at once, and SYNs beyond the queue wait for
/// the 1 s SYN retransmit (the kernel caps this at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Bind a listening socket with [`LISTEN_BACKLOG`] (must run inside the tokio runtime).
pub fn bind(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    bind_with(addr, false)
}

/// [`bind`]; with `reuse_port`, other processes may listen on the same address too
/// (`SO_REUSEPORT`: the kernel spreads new connections over them).
pub fn bind_with(addr: SocketAddr, reuse_port: bool) -> io::Result<tokio::net::TcpListener> {
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

/// The peer address, for handlers (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, HttpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, HttpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Connections for axum, fed by the router task (see `fastpath.rs`).
pub struct HttpListener {
    rx: mpsc::Receiver<(Rewind, SocketAddr)>,
    local: SocketAddr,
}

impl HttpListener {
    /// A listener that yields what arrives on `rx`.
    pub fn new(rx: mpsc::Receiver<(Rewind, SocketAddr)>, local: SocketAddr) -> Self {
        HttpListener { rx, local }
    }
}

impl Listener for HttpListener {
    type Io = Rewind;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The router stopped (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
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

/// A connection that first yields bytes already read from it.
pub struct Rewind {
    prefix: Bytes,
    inner: StallIo,
}

impl Rewind {
    /// `prefix` is read back before anything else from `inner`.
    pub fn new(prefix: Bytes, inner: StallIo) -> Self {
        Rewind { prefix, inner }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
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

//! Server only: a TCP listener whose connections give up on a client that stopped reading. A
//! write that makes no progress for `write_timeout` fails, so hyper drops the connection (and
//! its stream) instead of holding it — and its buffers — forever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Accepts TCP connections wrapped in [`StallIo`].
pub struct StallListener {
    inner: TcpListener,
    write_timeout: Duration,
    dropped: IntCounter,
}

impl StallListener {
    /// Wrap `inner`; `dropped` counts connections given up on.
    pub fn new(inner: TcpListener, write_timeout: Duration, dropped: IntCounter) -> Self {
        StallListener {
            inner,
            write_timeout,
            dropped,
        }
    }
}

impl Listener for StallListener {
    type Io = StallIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let io = StallIo {
                        inner: stream,
                        peer,
                        timeout: self.write_timeout,
                        timer: None,
                        dropped: self.dropped.clone(),
                    };
                    return (io, peer);
                }
                Err(err) => {
                    // e.g. EMFILE: back off briefly instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The peer address, for handlers (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, StallListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, StallListener>) -> Self {
        Peer(*stream.remote_addr())
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
    fn track<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
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

//! Server only: the lean path for `/events`. A stream is written straight to the socket — the
//! response head, then the feed's pre-encoded shared frames — with no HTTP stack and no buffers
//! kept per connection: hyper keeps ≥ 8 KiB of buffers per connection for its whole life, and
//! held streams are this server's scaling number. `conn.rs` sends every `GET /events` here,
//! whether it is a connection's first request or a later one on a reused keep-alive connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::stream::feed::Feed;
use crate::server::stream::metrics::IntCounter;
use crate::server::transport::listener::StallIo;

/// The response head of a directly served stream. The body runs until the connection closes.
pub const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
connection: close\r\n\r\n";

/// Write the stream until it ends, the client goes away, its writes stall, or it sends bytes
/// (an `EventSource` never does: anything it sends is unexpected, and reading it forever would
/// let one client burn server CPU). `unexpected` counts that last case.
pub async fn serve_stream(mut io: StallIo, mut feed: Feed, unexpected: IntCounter) {
    if io.write_all(RESPONSE_HEAD).await.is_err() {
        return;
    }
    // Reading notices a client that closed, even between frames.
    let mut scratch = [0u8; 1];
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
            read = io.read(&mut scratch) => {
                if let Ok(n) = read {
                    if n > 0 {
                        unexpected.inc();
                        tracing::debug!(peer = %io.peer(), "client sent bytes on its event stream; closing it");
                    }
                }
                break;
            }
        }
    }
    let _ = io.shutdown().await;
}

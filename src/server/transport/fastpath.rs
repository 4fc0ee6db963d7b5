//! Server only: the lean path for `/events`. A stream is written straight to the socket — the
//! response head, then the feed's pre-encoded shared frames — with no HTTP stack and no buffers
//! kept per connection: hyper keeps ≥ 8 KiB of buffers per connection for its whole life, and
//! held streams are this server's scaling number. `conn.rs` sends every stream the hub's handler
//! opened here, whether on a connection's first request or a later one on a reused connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::stream::feed::Feed;
use crate::server::stream::limits::SocketPermit;
use crate::server::stream::metrics::IntCounter;
use crate::server::transport::listener::StallIo;

/// Write the stream (its head is already written) until it ends, the client goes away, its writes stall, or it sends bytes
/// (an `EventSource` never does: anything it sends is unexpected, and reading it forever would
/// let one client burn server CPU). `unexpected` counts that last case. `permit` (the socket's
/// place under the cap) is held until the stream ends.
pub async fn serve_stream(
    mut io: StallIo,
    mut feed: Box<Feed>,
    unexpected: IntCounter,
    permit: SocketPermit,
) {
    let _permit = permit;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Size of the future an async fn with four arguments returns.
    fn future_size<A, B, C, D, F>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_held_stream_task_stays_small() {
        // Every held stream is one such task: its state is per-stream memory. With the feed
        // inline it was ~2.5 KiB (the feed twice: as argument and as local).
        let size = future_size(serve_stream);
        assert!(size <= 768, "serve_stream's state is {size} bytes");
    }
}

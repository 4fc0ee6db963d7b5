//! Server only: the optional lean serving loop — listener sockets, the request-head parser, the
//! HTTP/1.1 keep-alive loop with its timeouts and socket cap, the direct `/events` writer, and
//! serving with a bounded graceful shutdown.

pub(crate) mod conn;
pub(crate) mod fastpath;
pub(crate) mod head;
pub(crate) mod listener;
pub(crate) mod serve;

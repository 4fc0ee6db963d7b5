//! Server only: the optional lean serving loop — the listener socket and the gate between hyper
//! and it, the request-head parser, the HTTP/1.1 keep-alive loop with its timeouts and socket
//! cap, the writers that hold event streams on their sockets, and serving with a bounded
//! graceful shutdown.

pub(crate) mod conn;
pub(crate) mod gate;
pub(crate) mod head;
pub(crate) mod serve;
pub(crate) mod writers;

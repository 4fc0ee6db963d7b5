//! Server only: how many sockets and streams this process can hold. At start the soft open-file
//! limit is raised to the hard one; every socket costs one descriptor, so the socket cap is that
//! limit minus a reserve for the process itself (listener, epoll, static files, logs), and the
//! stream cap leaves room under the socket cap so health checks and refusals still get through.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept for the process itself (stdio, epoll, listener, files it serves).
pub const PROCESS_RESERVE: u64 = 64;
/// Most sockets kept free of streams for page loads, health checks and 503 answers.
pub const NON_STREAM_RESERVE: u64 = 256;

/// The caps one process runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft open-file limit the caps were derived from.
    pub fd_limit: u64,
    /// Most open sockets of any kind.
    pub max_sockets: usize,
    /// Most open streams.
    pub max_streams: usize,
}

/// Why a requested cap was lowered (logged as a warning at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamped {
    /// The setting that was lowered (a `HubConfig` field).
    pub setting: &'static str,
    /// What was asked for.
    pub requested: u64,
    /// What the process will use.
    pub granted: u64,
}

/// Derive the caps from the open-file limit and the flags. Pure, so every rule is a table test.
pub fn plan(
    fd_limit: u64,
    requested_sockets: Option<u64>,
    requested_streams: u64,
) -> (Budget, Vec<Clamped>) {
    let mut clamped = Vec::new();
    // At least a handful of sockets, even under an absurdly low limit.
    let socket_room = fd_limit.saturating_sub(PROCESS_RESERVE).max(4);
    let sockets = match requested_sockets {
        Some(asked) if asked > socket_room => {
            clamped.push(Clamped {
                setting: "max_sockets",
                requested: asked,
                granted: socket_room,
            });
            socket_room
        }
        Some(asked) => asked,
        None => socket_room,
    };
    let stream_room = sockets
        .saturating_sub(NON_STREAM_RESERVE.min(sockets / 4))
        .max(1);
    let streams = if requested_streams > stream_room {
        clamped.push(Clamped {
            setting: "max_streams",
            requested: requested_streams,
            granted: stream_room,
        });
        stream_room
    } else {
        requested_streams
    };
    let budget = Budget {
        fd_limit,
        max_sockets: usize::try_from(sockets).unwrap_or(usize::MAX),
        max_streams: usize::try_from(streams).unwrap_or(usize::MAX),
    };
    (budget, clamped)
}

/// The soft open-file limit now (`u64::MAX` when unlimited or unknown).
pub fn fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return u64::MAX;
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur
    }
}

/// Raise the soft open-file limit to the hard limit; returns `(before, after)`.
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok((before, lim.rlim_cur))
    }
}

/// The socket cap: a semaphore with a permit per open socket (the shape of axum's
/// `limit_connections`).
#[derive(Clone, Debug)]
pub struct SocketGate {
    permits: Arc<Semaphore>,
    max: usize,
}

impl SocketGate {
    /// A gate that lets at most `max` sockets in at once.
    pub fn new(max: usize) -> Self {
        let max = max.min(Semaphore::MAX_PERMITS);
        SocketGate {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Claim a place for a new socket, or `None` when the cap is reached.
    pub fn try_enter(&self) -> Option<SocketPermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

/// One socket's place under the cap; freed when dropped.
pub type SocketPermit = OwnedSemaphorePermit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_follow_the_open_file_limit() {
        type Case = (u64, Option<u64>, u64, usize, usize, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            // This machine's limit: the default stream cap fits.
            (20_000, None, 19_500, 19_936, 19_500, vec![]),
            // A common default limit: streams are lowered, with a warning.
            (1024, None, 19_500, 960, 720, vec!["max_streams"]),
            // `ulimit -n 128`: room for 48 streams and 16 other sockets.
            (128, None, 19_500, 64, 48, vec!["max_streams"]),
            // Explicit caps below the limit are kept.
            (20_000, Some(500), 100, 500, 100, vec![]),
            // An explicit socket cap above the limit is lowered too.
            (1024, Some(5000), 10, 960, 10, vec!["max_sockets"]),
            // Unlimited: the flags rule.
            (u64::MAX, None, 19_500, usize::MAX, 19_500, vec![]),
            // Absurdly low: still a few sockets and one stream.
            (10, None, 5, 4, 3, vec!["max_streams"]),
        ];
        for (limit, sockets, streams, want_sockets, want_streams, warned) in cases {
            let (budget, clamped) = plan(limit, sockets, streams);
            let ctx = format!("limit {limit}, sockets {sockets:?}, streams {streams}");
            if want_sockets == usize::MAX {
                assert!(budget.max_sockets > 1 << 40, "{ctx}");
            } else {
                assert_eq!(budget.max_sockets, want_sockets, "{ctx}");
            }
            assert_eq!(budget.max_streams, want_streams, "{ctx}");
            assert!(budget.max_streams < budget.max_sockets, "{ctx}");
            let flags: Vec<_> = clamped.iter().map(|c| c.setting).collect();
            assert_eq!(flags, warned, "{ctx}");
        }
    }

    #[test]
    fn the_gate_admits_up_to_its_cap_and_frees_on_drop() {
        let gate = SocketGate::new(2);
        let a = gate.try_enter().expect("first");
        let _b = gate.try_enter().expect("second");
        assert!(gate.try_enter().is_none());
        assert_eq!(gate.open(), 2);
        drop(a);
        assert!(gate.try_enter().is_some());
    }
}

//! Server only: the state every handler shares (the inside of a [`LiveHub`](crate::server::live::LiveHub)).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::server::auth::AuthPolicy;
use crate::server::config::HubConfig;
use crate::server::stream::hub::Hub;
use crate::server::stream::limits::{self, Budget, SocketGate};
use crate::server::stream::log::EventLog;
use crate::server::stream::metrics::Metrics;
use crate::server::stream::ratelog::RefusalLog;

/// Cheap to clone: everything is behind `Arc`s.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Flags and env.
    pub config: Arc<HubConfig>,
    /// Who may read which topics.
    pub auth: Arc<AuthPolicy>,
    /// Fan-out to streams.
    pub hub: Arc<Hub>,
    /// The event log (embedded, or Redis Streams shared by a fleet) that feeds the hub.
    pub log: Arc<EventLog>,
    /// Prometheus metrics (shared: every stream holds a pointer, not a copy of every handle).
    pub metrics: Arc<Metrics>,
    /// Socket and stream caps, derived from the open-file limit.
    pub budget: Budget,
    /// Open sockets against `budget.max_sockets`.
    pub sockets: SocketGate,
    /// Rate-limited logs of refusals.
    pub refusal_log: Arc<RefusalLog>,
    /// Cancelled when the server stops (after the drain): the accept loop, the heartbeat and
    /// axum's graceful shutdown follow it.
    pub shutdown: CancellationToken,
    /// Where the embedder's router serves the stream (`/events`, or e.g. `/live/events`): the
    /// only path [`serve`](crate::server::serve) answers without hyper.
    pub stream_path: Arc<str>,
    draining: Arc<AtomicBool>,
}

impl AppState {
    /// State for `config` and the access policy `auth`. The socket and stream caps are fitted to the process's open-file
    /// limit now (lowered with a warning). Nothing runs yet: [`LiveHub::new`](crate::server::live::LiveHub::new)
    /// starts the heartbeat and the log.
    pub fn new(config: HubConfig, auth: AuthPolicy) -> Self {
        let (budget, clamped) =
            limits::plan(limits::fd_limit(), config.max_sockets, config.max_streams);
        for c in clamped {
            tracing::warn!(
                setting = c.setting,
                requested = c.requested,
                granted = c.granted,
                fd_limit = budget.fd_limit,
                "{} lowered from {} to {}: the open-file limit ({}) leaves no room for more \
                 (raise it with `ulimit -n`)",
                c.setting,
                c.requested,
                c.granted,
                budget.fd_limit
            );
        }
        let metrics = Metrics::new();
        let log = EventLog::new(&config, budget.max_streams, &metrics);
        if log.is_shared() {
            // Unreachable until the follower's first answer.
            metrics.store_up.set(0);
        }
        AppState {
            hub: Arc::clone(log.hub()),
            log: Arc::new(log),
            config: Arc::new(config),
            auth: Arc::new(auth),
            metrics: Arc::new(metrics),
            budget,
            sockets: SocketGate::new(budget.max_sockets),
            refusal_log: Arc::new(RefusalLog::default()),
            shutdown: CancellationToken::new(),
            stream_path: Arc::from("/events"),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Start the event log's background work (with Redis: the follower and the fleet lease);
    /// it ends with [`AppState::shutdown`].
    pub fn start_log(&self) {
        self.log.spawn(self.shutdown.clone());
    }

    /// Whether shutdown has begun (`/readyz` says 503, new streams are refused).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Begin shutdown: refuse new streams and tell open ones to go. The flag is set before the
    /// drain frame goes out, so a stream admitted concurrently either sees the frame or the flag.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.hub.start_draining();
    }

    /// End every stream still open.
    pub fn close_streams(&self) {
        self.hub.close();
    }
}

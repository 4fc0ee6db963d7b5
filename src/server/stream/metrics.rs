//! Server only: Prometheus metrics (one registry per server state, so tests can run servers side
//! by side) and `GET /metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The `reason` labels of `sse_requests_refused_total`.
pub const REQUEST_REFUSALS: [&str; 5] = [
    "header_timeout",
    "head_too_large",
    "bad_request",
    "body_timeout",
    "unexpected_input",
];

/// Every metric the server exports.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// `sse_connections_open`
    pub connections_open: IntGauge,
    /// `sse_connections_total`
    pub connections_total: IntCounter,
    /// `sse_connections_rejected_total{reason}`: `limit` or `draining`.
    pub connections_rejected: IntCounterVec,
    /// `sse_events_published_total`
    pub events_published: IntCounter,
    /// `sse_events_delivered_total`: application events written to streams (live or replayed).
    pub events_delivered: IntCounter,
    /// `sse_events_replayed_total`
    pub events_replayed: IntCounter,
    /// `sse_resyncs_total`
    pub resyncs: IntCounter,
    /// `sse_slow_clients_dropped_total{reason}`: `lagged` (fell behind the send queue) or
    /// `write_stall` (stopped reading for the write timeout).
    pub slow_clients_dropped: IntCounterVec,
    /// `sse_sockets_open`: open sockets of any kind (streams included).
    pub sockets_open: IntGauge,
    /// `sse_sockets_refused_total`: connections refused at the socket cap.
    pub sockets_refused: IntCounter,
    /// `sse_requests_refused_total{reason}`: connections ended over a slow or bad request:
    /// `header_timeout`, `head_too_large`, `bad_request`, `body_timeout`, `unexpected_input`.
    pub requests_refused: IntCounterVec,
    /// `sse_slow_clients_dropped_total{reason="write_stall"}`, resolved once: every connection
    /// carries it.
    pub write_stalls: IntCounter,
    /// `sse_requests_refused_total{reason="unexpected_input"}`, resolved once: every stream
    /// carries it.
    pub unexpected_input: IntCounter,
    /// `sse_publish_errors_total{status}`
    pub publish_errors: IntCounterVec,
    /// `sse_fleet_connections_open`: open streams on every instance of the fleet (Redis log;
    /// from the instances' leases, at most a second old). With the embedded log it equals
    /// `sse_connections_open`.
    pub fleet_connections_open: IntGauge,
    /// `sse_fleet_instances`: instances with a live lease (1 with the embedded log).
    pub fleet_instances: IntGauge,
    /// `sse_store_up`: 1 while the event log answers, 0 while Redis is unreachable.
    pub store_up: IntGauge,
    /// `sse_store_errors_total{op}`: failed Redis operations, `read` (the follower) or `write`
    /// (publish, replay reads, lease).
    pub store_errors: IntCounterVec,
    /// `sse_events_followed_total`: events this instance read from the shared log.
    pub events_followed: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric name");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let slow_clients_dropped = counter_vec(
            &registry,
            "sse_slow_clients_dropped_total",
            "Streams dropped because the client did not keep up",
            "reason",
        );
        let requests_refused = counter_vec(
            &registry,
            "sse_requests_refused_total",
            "Connections ended over a slow or malformed request",
            "reason",
        );
        Metrics {
            write_stalls: slow_clients_dropped.with_label_values(&["write_stall"]),
            unexpected_input: requests_refused.with_label_values(&["unexpected_input"]),
            slow_clients_dropped,
            requests_refused,
            connections_open: gauge(&registry, "sse_connections_open", "SSE streams open now"),
            connections_total: counter(&registry, "sse_connections_total", "SSE streams opened"),
            connections_rejected: counter_vec(
                &registry,
                "sse_connections_rejected_total",
                "SSE streams refused with 503",
                "reason",
            ),
            events_published: counter(&registry, "sse_events_published_total", "Events published"),
            events_delivered: counter(
                &registry,
                "sse_events_delivered_total",
                "Application events written to streams (live and replayed)",
            ),
            events_replayed: counter(
                &registry,
                "sse_events_replayed_total",
                "Events replayed to reconnecting clients by Last-Event-ID",
            ),
            resyncs: counter(
                &registry,
                "sse_resyncs_total",
                "Resume points that could not be honoured (resync sent)",
            ),
            sockets_open: gauge(&registry, "sse_sockets_open", "Open sockets of any kind"),
            sockets_refused: counter(
                &registry,
                "sse_sockets_refused_total",
                "Connections refused because the socket cap was reached",
            ),
            publish_errors: counter_vec(
                &registry,
                "sse_publish_errors_total",
                "Refused publish requests by HTTP status",
                "status",
            ),
            fleet_connections_open: gauge(
                &registry,
                "sse_fleet_connections_open",
                "SSE streams open on every instance of the fleet",
            ),
            fleet_instances: gauge(
                &registry,
                "sse_fleet_instances",
                "Instances of the fleet with a live lease",
            ),
            store_up: gauge(
                &registry,
                "sse_store_up",
                "1 while the event log answers, 0 while it is unreachable",
            ),
            store_errors: counter_vec(
                &registry,
                "sse_store_errors_total",
                "Failed event log (Redis) operations",
                "op",
            ),
            events_followed: counter(
                &registry,
                "sse_events_followed_total",
                "Events read from the shared log by this instance",
            ),
            registry,
        }
        .with_known_labels()
    }

    /// Pre-create the labelled series so they show (at 0) before anything happens.
    fn with_known_labels(self) -> Self {
        for reason in ["limit", "draining", "store"] {
            self.connections_rejected.with_label_values(&[reason]);
        }
        for status in ["400", "401", "403", "408", "413", "503"] {
            self.publish_errors.with_label_values(&[status]);
        }
        for reason in ["lagged", "write_stall"] {
            self.slow_clients_dropped.with_label_values(&[reason]);
        }
        for reason in REQUEST_REFUSALS {
            self.requests_refused.with_label_values(&[reason]);
        }
        for op in ["read", "write"] {
            self.store_errors.with_label_values(&[op]);
        }
        self.store_up.set(1);
        self.fleet_instances.set(1);
        self
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%err, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

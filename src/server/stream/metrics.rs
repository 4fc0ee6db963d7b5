//! Server only: Prometheus metrics (one registry per server state, so tests can run servers side
//! by side) and `GET /metrics`. The few metric types we use (counter, gauge, counter with one
//! label) and the text exposition format (0.0.4) are written here, without the prometheus crate.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// A counter: only goes up. Clones share the value.
#[derive(Clone, Debug, Default)]
pub struct IntCounter(Arc<AtomicU64>);

impl IntCounter {
    /// Add one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Add `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge: set to the current value. Clones share the value.
#[derive(Clone, Debug, Default)]
pub struct IntGauge(Arc<AtomicI64>);

impl IntGauge {
    /// Set the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Add `d` (negative: subtract).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A counter with one label: one [`IntCounter`] per label value, created on first use and
/// rendered in label-value order. Clones share the series.
#[derive(Clone, Debug)]
pub struct IntCounterVec {
    label: &'static str,
    series: Arc<RwLock<BTreeMap<String, IntCounter>>>,
}

impl IntCounterVec {
    fn new(label: &'static str) -> Self {
        IntCounterVec {
            label,
            series: Arc::default(),
        }
    }

    /// The series for this label value (created at 0 if new): a handle to keep and count on.
    pub fn with_label_values(&self, values: &[&str; 1]) -> IntCounter {
        let value = values[0];
        if let Some(c) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(value)
        {
            return c.clone();
        }
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(value.to_owned())
            .or_default()
            .clone()
    }
}

/// One metric of a [`Registry`].
#[derive(Clone, Debug)]
enum Collector {
    Counter(IntCounter),
    Gauge(IntGauge),
    CounterVec(IntCounterVec),
}

#[derive(Clone, Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    metric: Collector,
}

/// The metrics to render, kept in name order (as the prometheus crate rendered them).
#[derive(Debug, Default)]
struct Registry {
    families: Vec<Family>,
}

impl Registry {
    fn register(&mut self, name: &'static str, help: &'static str, metric: Collector) {
        assert!(valid_name(name), "invalid metric name {name:?}");
        match self.families.binary_search_by_key(&name, |f| f.name) {
            Ok(_) => panic!("duplicate metric {name:?}"),
            Err(at) => self.families.insert(at, Family { name, help, metric }),
        }
    }

    /// The text exposition format 0.0.4: per metric `# HELP`, `# TYPE`, then its samples.
    fn render(&self) -> String {
        let mut out = String::with_capacity(128 * self.families.len());
        self.write(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    fn write(&self, out: &mut String) -> fmt::Result {
        for Family { name, help, metric } in &self.families {
            let kind = match metric {
                Collector::Gauge(_) => "gauge",
                Collector::Counter(_) | Collector::CounterVec(_) => "counter",
            };
            write!(out, "# HELP {name} ")?;
            write_escaped(out, help, false)?;
            writeln!(out, "\n# TYPE {name} {kind}")?;
            match metric {
                Collector::Counter(c) => writeln!(out, "{name} {}", c.get())?,
                Collector::Gauge(g) => writeln!(out, "{name} {}", g.get())?,
                Collector::CounterVec(v) => {
                    let series = v.series.read().unwrap_or_else(PoisonError::into_inner);
                    for (value, c) in series.iter() {
                        write!(out, "{name}{{{}=\"", v.label)?;
                        write_escaped(out, value, true)?;
                        writeln!(out, "\"}} {}", c.get())?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn counter(registry: &mut Registry, name: &'static str, help: &'static str) -> IntCounter {
    let c = IntCounter::default();
    registry.register(name, help, Collector::Counter(c.clone()));
    c
}

fn gauge(registry: &mut Registry, name: &'static str, help: &'static str) -> IntGauge {
    let g = IntGauge::default();
    registry.register(name, help, Collector::Gauge(g.clone()));
    g
}

fn counter_vec(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    label: &'static str,
) -> IntCounterVec {
    assert!(
        valid_name(label) && !label.contains(':'),
        "invalid label name {label:?}"
    );
    let c = IntCounterVec::new(label);
    registry.register(name, help, Collector::CounterVec(c.clone()));
    c
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (a label name: the same without `:`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Escape `\` and newline (HELP text), and `"` too in label values.
fn write_escaped(out: &mut String, text: &str, quote: bool) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '"' if quote => out.write_str("\\\"")?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

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
    registry: Arc<Registry>,
    /// Streams held by the sharded writers right now. Not exported (an implementation detail
    /// of the direct writers): tests wait on it to know a stream is parked.
    pub streams_parked: IntGauge,
    /// `sse_connections_open`
    pub connections_open: IntGauge,
    /// `sse_connections_total`
    pub connections_total: IntCounter,
    /// `sse_connections_rejected_total{reason}`: `limit` or `draining`.
    pub connections_rejected: IntCounterVec,
    /// `sse_streams_denied_total{reason}`: stream requests the access policy refused
    /// (`bad_topic`, `unauthorized`, `forbidden_topic`).
    pub streams_denied: IntCounterVec,
    /// `sse_streams_ended_total{reason}`: streams the server ended over access (`expired`: a
    /// `reauth`; `revoked`).
    pub streams_ended: IntCounterVec,
    /// `sse_events_published_total`
    pub events_published: IntCounter,
    /// `sse_events_delivered_total`: application events written to streams (live or replayed).
    pub events_delivered: IntCounter,
    /// `sse_events_replayed_total`
    pub events_replayed: IntCounter,
    /// `sse_resyncs_total`
    pub resyncs: IntCounter,
    /// `sse_slow_clients_dropped_total{reason}`: `write_stall` (stopped reading for the write
    /// timeout); `lagged` is still exported for existing dashboards but no longer counts: a
    /// stream that is behind catches up from the log instead of being dropped.
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
    /// `sse_store_errors_total{op}`: failed Redis operations, `read` (the follower), `write`
    /// (publish, replay reads, lease) or `replicate` (a publish's `WAIT` saw too few replicas).
    pub store_errors: IntCounterVec,
    /// `sse_events_followed_total`: events this instance read from the shared log.
    pub events_followed: IntCounter,
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let slow_clients_dropped = counter_vec(
            &mut registry,
            "sse_slow_clients_dropped_total",
            "Streams dropped because the client did not keep up",
            "reason",
        );
        let requests_refused = counter_vec(
            &mut registry,
            "sse_requests_refused_total",
            "Connections ended over a slow or malformed request",
            "reason",
        );
        Metrics {
            write_stalls: slow_clients_dropped.with_label_values(&["write_stall"]),
            unexpected_input: requests_refused.with_label_values(&["unexpected_input"]),
            streams_parked: IntGauge::default(),
            slow_clients_dropped,
            requests_refused,
            connections_open: gauge(
                &mut registry,
                "sse_connections_open",
                "SSE streams open now",
            ),
            connections_total: counter(
                &mut registry,
                "sse_connections_total",
                "SSE streams opened",
            ),
            connections_rejected: counter_vec(
                &mut registry,
                "sse_connections_rejected_total",
                "SSE streams refused with 503",
                "reason",
            ),
            streams_denied: counter_vec(
                &mut registry,
                "sse_streams_denied_total",
                "SSE stream requests refused by the access policy",
                "reason",
            ),
            streams_ended: counter_vec(
                &mut registry,
                "sse_streams_ended_total",
                "SSE streams ended over access (grant expired, subject revoked)",
                "reason",
            ),
            events_published: counter(
                &mut registry,
                "sse_events_published_total",
                "Events published",
            ),
            events_delivered: counter(
                &mut registry,
                "sse_events_delivered_total",
                "Application events written to streams (live and replayed)",
            ),
            events_replayed: counter(
                &mut registry,
                "sse_events_replayed_total",
                "Events replayed to reconnecting clients by Last-Event-ID",
            ),
            resyncs: counter(
                &mut registry,
                "sse_resyncs_total",
                "Resume points that could not be honoured (resync sent)",
            ),
            sockets_open: gauge(
                &mut registry,
                "sse_sockets_open",
                "Open sockets of any kind",
            ),
            sockets_refused: counter(
                &mut registry,
                "sse_sockets_refused_total",
                "Connections refused because the socket cap was reached",
            ),
            publish_errors: counter_vec(
                &mut registry,
                "sse_publish_errors_total",
                "Refused publish requests by HTTP status",
                "status",
            ),
            fleet_connections_open: gauge(
                &mut registry,
                "sse_fleet_connections_open",
                "SSE streams open on every instance of the fleet",
            ),
            fleet_instances: gauge(
                &mut registry,
                "sse_fleet_instances",
                "Instances of the fleet with a live lease",
            ),
            store_up: gauge(
                &mut registry,
                "sse_store_up",
                "1 while the event log answers, 0 while it is unreachable",
            ),
            store_errors: counter_vec(
                &mut registry,
                "sse_store_errors_total",
                "Failed event log (Redis) operations",
                "op",
            ),
            events_followed: counter(
                &mut registry,
                "sse_events_followed_total",
                "Events read from the shared log by this instance",
            ),
            registry: Arc::new(registry),
        }
        .with_known_labels()
    }

    /// Pre-create the labelled series so they show (at 0) before anything happens.
    fn with_known_labels(self) -> Self {
        for reason in ["limit", "draining", "store"] {
            self.connections_rejected.with_label_values(&[reason]);
        }
        for reason in ["bad_topic", "unauthorized", "forbidden_topic"] {
            self.streams_denied.with_label_values(&[reason]);
        }
        for reason in ["expired", "revoked"] {
            self.streams_ended.with_label_values(&[reason]);
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
        for op in ["read", "replicate", "write"] {
            self.store_errors.with_label_values(&[op]);
        }
        self.store_up.set(1);
        self.fleet_instances.set(1);
        self
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_renders_help_type_and_value() {
        let mut registry = Registry::default();
        let c = counter(&mut registry, "x_total", "Things counted");
        c.inc();
        c.inc_by(41);
        let clone = c.clone();
        clone.inc();
        assert_eq!(c.get(), 43);
        assert_eq!(
            registry.render(),
            "# HELP x_total Things counted\n# TYPE x_total counter\nx_total 43\n"
        );
    }

    #[test]
    fn gauge_renders_negative_and_positive_values() {
        let mut registry = Registry::default();
        let g = gauge(&mut registry, "x_open", "Open now");
        g.set(-3);
        assert_eq!(
            registry.render(),
            "# HELP x_open Open now\n# TYPE x_open gauge\nx_open -3\n"
        );
        g.set(7);
        assert_eq!(g.get(), 7);
        assert!(registry.render().ends_with("\nx_open 7\n"));
    }

    #[test]
    fn labelled_counter_renders_series_in_label_order() {
        let mut registry = Registry::default();
        let v = counter_vec(&mut registry, "x_refused_total", "Refused", "reason");
        assert_eq!(
            registry.render(),
            "# HELP x_refused_total Refused\n# TYPE x_refused_total counter\n",
            "no series until one is used"
        );
        v.with_label_values(&["limit"]).inc_by(2);
        v.with_label_values(&["draining"]);
        let handle = v.with_label_values(&["limit"]);
        handle.inc();
        assert_eq!(handle.get(), 3, "the same series behind every handle");
        assert_eq!(
            registry.render(),
            "# HELP x_refused_total Refused\n\
             # TYPE x_refused_total counter\n\
             x_refused_total{reason=\"draining\"} 0\n\
             x_refused_total{reason=\"limit\"} 3\n"
        );
    }

    #[test]
    fn families_render_in_name_order() {
        let mut registry = Registry::default();
        gauge(&mut registry, "b", "B");
        counter(&mut registry, "a_total", "A");
        assert_eq!(
            registry.render(),
            "# HELP a_total A\n# TYPE a_total counter\na_total 0\n\
             # HELP b B\n# TYPE b gauge\nb 0\n"
        );
    }

    #[test]
    fn help_and_label_values_are_escaped() {
        let mut registry = Registry::default();
        let v = counter_vec(&mut registry, "x_total", "a \\ b\nc \"d\"", "path");
        v.with_label_values(&["C:\\dir \"q\"\nnext"]).inc();
        assert_eq!(
            registry.render(),
            "# HELP x_total a \\\\ b\\nc \"d\"\n\
             # TYPE x_total counter\n\
             x_total{path=\"C:\\\\dir \\\"q\\\"\\nnext\"} 1\n"
        );
    }

    #[test]
    #[should_panic(expected = "duplicate metric")]
    fn duplicate_names_are_refused() {
        let mut registry = Registry::default();
        counter(&mut registry, "x_total", "X");
        gauge(&mut registry, "x_total", "X");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("sse_connections_open"));
        assert!(valid_name("_a:b1"));
        assert!(!valid_name(""));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name("a b"));
    }

    /// Every metric name the server exported with the prometheus crate; dashboards and tests
    /// depend on them.
    const NAMES: [&str; 19] = [
        "sse_connections_open",
        "sse_connections_rejected_total",
        "sse_connections_total",
        "sse_events_delivered_total",
        "sse_events_followed_total",
        "sse_events_published_total",
        "sse_events_replayed_total",
        "sse_fleet_connections_open",
        "sse_fleet_instances",
        "sse_publish_errors_total",
        "sse_requests_refused_total",
        "sse_resyncs_total",
        "sse_slow_clients_dropped_total",
        "sse_sockets_open",
        "sse_sockets_refused_total",
        "sse_store_errors_total",
        "sse_store_up",
        "sse_streams_denied_total",
        "sse_streams_ended_total",
    ];

    #[test]
    fn every_metric_name_is_exported() {
        let text = Metrics::new().render();
        for name in NAMES {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} missing:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(families, NAMES.len(), "{text}");
    }

    /// A fresh `Metrics` renders byte for byte what the prometheus crate's `TextEncoder` rendered
    /// (captured before the crate was dropped): names, HELP texts, types, label order, the
    /// pre-created series at 0 and the gauges that start at 1 (plus the two access families
    /// added since, in the same format).
    #[test]
    fn fresh_metrics_render_as_before() {
        assert_eq!(Metrics::new().render(), FRESH);
    }

    #[test]
    fn counting_shows_in_the_output() {
        let m = Metrics::new();
        m.connections_open.set(5);
        m.write_stalls.inc();
        m.slow_clients_dropped
            .with_label_values(&["write_stall"])
            .inc();
        m.publish_errors.with_label_values(&["400"]).inc_by(6);
        m.publish_errors.with_label_values(&["429"]).inc();
        let clone = m.clone();
        clone.resyncs.inc();
        let text = m.render();
        for line in [
            "sse_connections_open 5",
            "sse_slow_clients_dropped_total{reason=\"write_stall\"} 2",
            "sse_publish_errors_total{status=\"400\"} 6",
            "sse_publish_errors_total{status=\"429\"} 1",
            "sse_resyncs_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }

    const FRESH: &str = "\
# HELP sse_connections_open SSE streams open now
# TYPE sse_connections_open gauge
sse_connections_open 0
# HELP sse_connections_rejected_total SSE streams refused with 503
# TYPE sse_connections_rejected_total counter
sse_connections_rejected_total{reason=\"draining\"} 0
sse_connections_rejected_total{reason=\"limit\"} 0
sse_connections_rejected_total{reason=\"store\"} 0
# HELP sse_connections_total SSE streams opened
# TYPE sse_connections_total counter
sse_connections_total 0
# HELP sse_events_delivered_total Application events written to streams (live and replayed)
# TYPE sse_events_delivered_total counter
sse_events_delivered_total 0
# HELP sse_events_followed_total Events read from the shared log by this instance
# TYPE sse_events_followed_total counter
sse_events_followed_total 0
# HELP sse_events_published_total Events published
# TYPE sse_events_published_total counter
sse_events_published_total 0
# HELP sse_events_replayed_total Events replayed to reconnecting clients by Last-Event-ID
# TYPE sse_events_replayed_total counter
sse_events_replayed_total 0
# HELP sse_fleet_connections_open SSE streams open on every instance of the fleet
# TYPE sse_fleet_connections_open gauge
sse_fleet_connections_open 0
# HELP sse_fleet_instances Instances of the fleet with a live lease
# TYPE sse_fleet_instances gauge
sse_fleet_instances 1
# HELP sse_publish_errors_total Refused publish requests by HTTP status
# TYPE sse_publish_errors_total counter
sse_publish_errors_total{status=\"400\"} 0
sse_publish_errors_total{status=\"401\"} 0
sse_publish_errors_total{status=\"403\"} 0
sse_publish_errors_total{status=\"408\"} 0
sse_publish_errors_total{status=\"413\"} 0
sse_publish_errors_total{status=\"503\"} 0
# HELP sse_requests_refused_total Connections ended over a slow or malformed request
# TYPE sse_requests_refused_total counter
sse_requests_refused_total{reason=\"bad_request\"} 0
sse_requests_refused_total{reason=\"body_timeout\"} 0
sse_requests_refused_total{reason=\"head_too_large\"} 0
sse_requests_refused_total{reason=\"header_timeout\"} 0
sse_requests_refused_total{reason=\"unexpected_input\"} 0
# HELP sse_resyncs_total Resume points that could not be honoured (resync sent)
# TYPE sse_resyncs_total counter
sse_resyncs_total 0
# HELP sse_slow_clients_dropped_total Streams dropped because the client did not keep up
# TYPE sse_slow_clients_dropped_total counter
sse_slow_clients_dropped_total{reason=\"lagged\"} 0
sse_slow_clients_dropped_total{reason=\"write_stall\"} 0
# HELP sse_sockets_open Open sockets of any kind
# TYPE sse_sockets_open gauge
sse_sockets_open 0
# HELP sse_sockets_refused_total Connections refused because the socket cap was reached
# TYPE sse_sockets_refused_total counter
sse_sockets_refused_total 0
# HELP sse_store_errors_total Failed event log (Redis) operations
# TYPE sse_store_errors_total counter
sse_store_errors_total{op=\"read\"} 0
sse_store_errors_total{op=\"replicate\"} 0
sse_store_errors_total{op=\"write\"} 0
# HELP sse_store_up 1 while the event log answers, 0 while it is unreachable
# TYPE sse_store_up gauge
sse_store_up 1
# HELP sse_streams_denied_total SSE stream requests refused by the access policy
# TYPE sse_streams_denied_total counter
sse_streams_denied_total{reason=\"bad_topic\"} 0
sse_streams_denied_total{reason=\"forbidden_topic\"} 0
sse_streams_denied_total{reason=\"unauthorized\"} 0
# HELP sse_streams_ended_total SSE streams ended over access (grant expired, subject revoked)
# TYPE sse_streams_ended_total counter
sse_streams_ended_total{reason=\"expired\"} 0
sse_streams_ended_total{reason=\"revoked\"} 0
";
}

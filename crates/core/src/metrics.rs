//! The controller's and the REST API's Prometheus metrics.
//!
//! The pool renders its own gauges and its activations by start kind
//! ([`PoolMetrics`](crate::pool::introspect::PoolMetrics)); this registry
//! holds what the controller side sees: activations by status, their
//! duration and wait time, and the API's requests and latency. `/metrics`
//! serves both, one after the other.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use wasmwhisk_protocol::WhiskActivation;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubjectLabels {
    subject: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// Seconds, from 50 µs to about 100 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 22)
}

/// The registry and its metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    activations: Family<StatusLabels, Counter>,
    duration: Family<StatusLabels, Histogram>,
    wait: Histogram,
    requests: Family<HttpLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    malformed: Family<SubjectLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wasmwhisk");
        let activations = Family::<StatusLabels, Counter>::default();
        registry.register(
            "activations",
            "Completed activations by status (success, application_error, action_developer_error, whisk_internal_error)",
            activations.clone(),
        );
        let duration = Family::<StatusLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "activation_duration_seconds",
            "Activation duration (init included after a cold start) by status",
            duration.clone(),
        );
        let wait = Histogram::new(latency_buckets());
        registry.register(
            "activation_wait_seconds",
            "Time from accepting an activation to its run (or init) starting",
            wait.clone(),
        );
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "REST API requests by route and status code",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "http_request_duration_seconds",
            "REST API latency by route",
            latency.clone(),
        );
        let malformed = Family::<SubjectLabels, Counter>::default();
        registry.register(
            "malformed_messages",
            "Messages skipped because they were not the message their subject carries, by subject",
            malformed.clone(),
        );
        Metrics {
            registry,
            activations,
            duration,
            wait,
            requests,
            latency,
            malformed,
        }
    }

    /// Counts a completed activation.
    pub fn activation_completed(&self, activation: &WhiskActivation) {
        let status = activation.response.status_code.status_id();
        let labels = StatusLabels { status };
        self.activations.get_or_create(&labels).inc();
        if let Some(ms) = activation.duration {
            self.duration
                .get_or_create(&labels)
                .observe(ms as f64 / 1000.0);
        }
        if let Some(ms) = activation
            .annotation("waitTime")
            .and_then(serde_json::Value::as_u64)
        {
            self.wait.observe(ms as f64 / 1000.0);
        }
    }

    /// Counts an API request on `route` (its pattern) answered `code`.
    pub fn http_request(&self, route: &'static str, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&HttpLabels { route, code })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    /// The counter of messages skipped on `subject` (a consumer of the
    /// cluster's NATS subjects counts into it).
    pub fn malformed_messages(&self, subject: &str) -> Counter {
        self.malformed
            .get_or_create(&SubjectLabels {
                subject: subject.to_string(),
            })
            .clone()
    }

    /// The registry in Prometheus' text format (without the final `# EOF`,
    /// so that more text can follow).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut text, &self.registry).is_err() {
            return String::new();
        }
        text
    }
}

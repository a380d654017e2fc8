//! The metrics every policy-push role exports on `GET /metrics` (Prometheus text format),
//! defined in one place so names and labels stay consistent across roles.
//!
//! # Layout
//! - [`Metrics`]: the metric families, registered once in a process-wide registry
//!   ([`metrics`] returns it).
//! - [`render`]: the text exposition of everything registered.
//!
//! Labels never carry personal data: channels, statuses, topics, HTTP routes (the route
//! pattern such as `/api/v1/campaigns/{id}`, not the path) and methods only.

use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;

/// Every metric family of the product.
pub struct Metrics {
    pub registry: Registry,
    /// `policy_push_pushes_total{channel,status}`: push outcomes recorded by connectors
    /// (`sent`, `failed`, `retry`, `deferred`, `skipped`, ...).
    pub pushes: IntCounterVec,
    /// `policy_push_provider_latency_seconds{channel}`: one provider API call.
    pub provider_latency: HistogramVec,
    /// `policy_push_retries_total{channel}`: sends scheduled again after a transient error.
    pub retries: IntCounterVec,
    /// `policy_push_dead_letters_total{channel}`: pushes that ended failed after their
    /// retry schedule (listed by `GET /api/v1/dead-letters`).
    pub dead_letters: IntCounterVec,
    /// `policy_push_outbox_depth{state}`: push rows waiting in the outbox (`queued`: not
    /// yet on the bus; `due_retry`), sampled by the relay.
    pub outbox_depth: IntGaugeVec,
    /// `policy_push_consumer_lag{topic}`: messages not yet consumed by this process's
    /// consumer groups (Kafka statistics; 0 on the in-process bus).
    pub consumer_lag: IntGaugeVec,
    /// `policy_push_bus_messages_total{topic,direction}`: published / consumed messages.
    pub bus_messages: IntCounterVec,
    /// `policy_push_audience_seconds`: computing one audience over the population index.
    pub audience_seconds: Histogram,
    /// `policy_push_receipts_total{stage}`: delivery receipts through the callbacks'
    /// queue (`queued`, `refused` when full, `applied`, `late` when no push matched yet,
    /// `expired`) and the settling job (`settled`: final status asked of the provider,
    /// `given_up`: failed without a receipt).
    pub receipts: IntCounterVec,
    /// `policy_push_receipt_queue_depth{queue}`: receipts waiting to be written
    /// (`incoming`) or for their send to be recorded (`late`).
    pub receipt_queue_depth: IntGaugeVec,
    /// `policy_push_backend_errors_total{role,backend}`: operations a role could not do
    /// because a backend (`store`, `bus`, `redis`) failed or did not answer; the role
    /// paused and tried again.
    pub backend_errors: IntCounterVec,
    /// `policy_push_paused_seconds_total{role}`: time a role spent waiting for a backend
    /// to come back (backing off after [`Metrics::backend_errors`]).
    pub paused_seconds: CounterVec,
    /// `policy_push_backend_up{backend}`: 1 when the backend answered this process's
    /// last check (`/readyz`, the API's store watch), 0 when it did not.
    pub backend_up: IntGaugeVec,
    /// `policy_push_http_requests_total{method,route,status}`.
    pub http_requests: IntCounterVec,
    /// `policy_push_http_request_seconds{method,route}`.
    pub http_seconds: HistogramVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let fast = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        Self {
            pushes: register(
                &r,
                IntCounterVec::new(
                    Opts::new("policy_push_pushes_total", "Push outcomes by channel"),
                    &["channel", "status"],
                )
                .expect("valid metric"),
            ),
            provider_latency: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "policy_push_provider_latency_seconds",
                        "Provider API call latency",
                    )
                    .buckets(fast.clone()),
                    &["channel"],
                )
                .expect("valid metric"),
            ),
            retries: register(
                &r,
                IntCounterVec::new(
                    Opts::new("policy_push_retries_total", "Sends scheduled again"),
                    &["channel"],
                )
                .expect("valid metric"),
            ),
            dead_letters: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "policy_push_dead_letters_total",
                        "Pushes failed after their retry schedule",
                    ),
                    &["channel"],
                )
                .expect("valid metric"),
            ),
            outbox_depth: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "policy_push_outbox_depth",
                        "Push rows waiting in the outbox",
                    ),
                    &["state"],
                )
                .expect("valid metric"),
            ),
            consumer_lag: register(
                &r,
                IntGaugeVec::new(
                    Opts::new("policy_push_consumer_lag", "Messages not yet consumed"),
                    &["topic"],
                )
                .expect("valid metric"),
            ),
            bus_messages: register(
                &r,
                IntCounterVec::new(
                    Opts::new("policy_push_bus_messages_total", "Bus messages"),
                    &["topic", "direction"],
                )
                .expect("valid metric"),
            ),
            audience_seconds: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "policy_push_audience_seconds",
                        "Audience computation over the population index",
                    )
                    .buckets(fast.clone()),
                )
                .expect("valid metric"),
            ),
            receipts: register(
                &r,
                IntCounterVec::new(
                    Opts::new("policy_push_receipts_total", "Delivery receipts by stage"),
                    &["stage"],
                )
                .expect("valid metric"),
            ),
            receipt_queue_depth: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "policy_push_receipt_queue_depth",
                        "Receipts waiting in the callbacks' queue",
                    ),
                    &["queue"],
                )
                .expect("valid metric"),
            ),
            backend_errors: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "policy_push_backend_errors_total",
                        "Operations that failed because a backend did not answer",
                    ),
                    &["role", "backend"],
                )
                .expect("valid metric"),
            ),
            paused_seconds: register(
                &r,
                CounterVec::new(
                    Opts::new(
                        "policy_push_paused_seconds_total",
                        "Time roles spent waiting for a backend to come back",
                    ),
                    &["role"],
                )
                .expect("valid metric"),
            ),
            backend_up: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "policy_push_backend_up",
                        "Whether the backend answered the last check",
                    ),
                    &["backend"],
                )
                .expect("valid metric"),
            ),
            http_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new("policy_push_http_requests_total", "HTTP requests"),
                    &["method", "route", "status"],
                )
                .expect("valid metric"),
            ),
            http_seconds: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("policy_push_http_request_seconds", "HTTP latency")
                        .buckets(fast),
                    &["method", "route"],
                )
                .expect("valid metric"),
            ),
            registry: r,
        }
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let families = metrics().registry.gather();
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("text encoding of gathered metrics");
    String::from_utf8(out).expect("the text format is UTF-8")
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_exposition() {
        let m = metrics();
        m.pushes.with_label_values(&["sms", "sent"]).inc_by(3);
        m.outbox_depth.with_label_values(&["queued"]).set(7);
        m.audience_seconds.observe(0.002);
        m.provider_latency
            .with_label_values(&["wechat"])
            .observe(0.04);
        m.backend_errors
            .with_label_values(&["relay", "store"])
            .inc();
        m.paused_seconds.with_label_values(&["relay"]).inc_by(0.5);
        let text = render();
        assert!(
            text.contains(r#"policy_push_backend_errors_total{backend="store",role="relay"} 1"#)
        );
        assert!(text.contains(r#"policy_push_paused_seconds_total{role="relay"} 0.5"#));
        assert!(text.contains(r#"policy_push_pushes_total{channel="sms",status="sent"} 3"#));
        assert!(text.contains(r#"policy_push_outbox_depth{state="queued"} 7"#));
        assert!(text.contains("policy_push_audience_seconds_count 1"));
        assert!(text.contains("# TYPE policy_push_provider_latency_seconds histogram"));
        assert!(text.contains(
            r#"policy_push_provider_latency_seconds_bucket{channel="wechat",le="0.05"} 1"#
        ));
    }
}

//! The projector's Prometheus metrics and the small HTTP server that exposes them (`/metrics`,
//! `/healthz`).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A partition, as a label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// Everything the projector counts. Cheap to clone (the metrics are shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub events_applied: Counter,
    pub duplicates: Counter,
    pub redelivered: Counter,
    pub batches: Counter,
    /// Transactions that failed: retried, or split to isolate a record PostgreSQL refuses.
    pub batch_errors: Counter,
    /// Records this instance refused and published to the dead-letter topic.
    pub dead_letters: Counter,
    /// Of those, the events PostgreSQL refused to store (alone, for their content).
    pub records_refused: Counter,
    /// Records on the dead-letter topic (its high watermark), whoever refused them.
    pub dead_letter_topic_records: Gauge,
    /// High watermark minus the next offset stored in PostgreSQL, per partition this instance reads.
    pub lag: Family<PartitionLabels, Gauge>,
    pub assigned_partitions: Gauge,
    pub batch_seconds: Histogram,
    /// Seconds since the epoch of the consumer loop's last turn (health: it is not stuck).
    last_tick: Arc<AtomicI64>,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hoctap_projector");
        let m = Metrics {
            events_applied: Counter::default(),
            duplicates: Counter::default(),
            redelivered: Counter::default(),
            batches: Counter::default(),
            batch_errors: Counter::default(),
            dead_letters: Counter::default(),
            records_refused: Counter::default(),
            dead_letter_topic_records: Gauge::default(),
            lag: Family::default(),
            assigned_partitions: Gauge::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            last_tick: Arc::new(AtomicI64::new(now_secs())),
            registry: Arc::new(Registry::default()),
        };
        registry.register("events_applied", "Events folded into the read models", m.events_applied.clone());
        registry.register("duplicates", "Records whose event id was applied before (rule 3)", m.duplicates.clone());
        registry.register(
            "redelivered",
            "Records below the stored next offset (delivered again after a crash or rebalance)",
            m.redelivered.clone(),
        );
        registry.register("batches", "Batches committed to PostgreSQL", m.batches.clone());
        registry.register(
            "batch_errors",
            "Transactions that failed: retried, or split to isolate a record PostgreSQL refuses",
            m.batch_errors.clone(),
        );
        registry.register(
            "dead_letters",
            "Records this instance refused and published to the dead-letter topic",
            m.dead_letters.clone(),
        );
        registry.register(
            "records_refused",
            "Events PostgreSQL refused to store, published to the dead-letter topic (counted in dead_letters too)",
            m.records_refused.clone(),
        );
        registry.register(
            "dead_letter_topic_records",
            "Records on the dead-letter topic (its high watermark)",
            m.dead_letter_topic_records.clone(),
        );
        registry.register("lag", "High watermark minus the next offset stored in PostgreSQL", m.lag.clone());
        registry.register(
            "assigned_partitions",
            "Partitions of the events topic assigned to this instance",
            m.assigned_partitions.clone(),
        );
        registry.register("batch_seconds", "Time to apply one batch in PostgreSQL", m.batch_seconds.clone());
        Metrics { registry: Arc::new(registry), ..m }
    }

    /// Drops the lag series of `partitions` of `topic`, which this instance no longer reads.
    pub fn forget_lag(&self, topic: &str, partitions: impl IntoIterator<Item = i32>) {
        for partition in partitions {
            self.lag.remove(&PartitionLabels { topic: topic.to_owned(), partition });
        }
    }

    /// Notes that the consumer loop turned.
    pub fn tick(&self) {
        self.last_tick.store(now_secs(), Ordering::Relaxed);
    }

    /// Seconds since the consumer loop last turned.
    pub fn since_tick(&self) -> Duration {
        Duration::from_secs((now_secs() - self.last_tick.load(Ordering::Relaxed)).max(0) as u64)
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// `/metrics` and `/healthz` (200 while the consumer loop turned in the last `stale` seconds).
    pub fn router(&self, stale: Duration) -> Router {
        Router::new().route("/metrics", get(metrics)).route("/healthz", get(healthz)).with_state((self.clone(), stale))
    }
}

async fn metrics(State((m, _)): State<(Metrics, Duration)>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode())
}

async fn healthz(State((m, stale)): State<(Metrics, Duration)>) -> impl IntoResponse {
    let since = m.since_tick();
    if since <= stale {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("the consumer loop has not turned for {} s\n", since.as_secs()))
    }
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

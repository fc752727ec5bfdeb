//! Prometheus metrics of the API: every answer counted by route, method and status, its duration,
//! and the PostgreSQL connection pool as it stands at scrape time.
//!
//! Names: `hoctap_api_requests_answered_total{method,route,status}`,
//! `hoctap_api_request_duration_seconds{method,route}` (histogram),
//! `hoctap_api_postgres_connections{state="open"|"idle"}`, `hoctap_api_postgres_connections_max`,
//! `hoctap_api_postgres_waiting`. `route` is the route's template (`/v1/units/{code}/series`), never
//! the requested path, so that unit codes do not multiply the series; `unmatched` for unknown paths.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

/// The media type of the exposition (OpenMetrics text, which Prometheus negotiates).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Timed {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionState {
    state: &'static str,
}

type Durations = Family<Timed, Histogram, fn() -> Histogram>;

pub(crate) struct Metrics {
    registry: Registry,
    answered: Family<Answered, Counter>,
    durations: Durations,
    connections: Family<ConnectionState, Gauge>,
    connections_max: Gauge,
    waiting: Gauge,
}

fn durations() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hoctap_api");
        let answered = Family::<Answered, Counter>::default();
        registry.register("requests_answered", "HTTP requests answered, by route, method and status", answered.clone());
        let durations: Durations = Family::new_with_constructor(durations);
        registry.register("request_duration_seconds", "Time to answer an HTTP request", durations.clone());
        let connections = Family::<ConnectionState, Gauge>::default();
        registry.register(
            "postgres_connections",
            "PostgreSQL connections of the pool: open, and idle among them",
            connections.clone(),
        );
        let connections_max = Gauge::default();
        registry.register("postgres_connections_max", "The most connections the pool opens", connections_max.clone());
        let waiting = Gauge::default();
        registry.register("postgres_waiting", "Requests waiting for a PostgreSQL connection", waiting.clone());
        Metrics { registry, answered, durations, connections, connections_max, waiting }
    }

    /// The exposition, with the pool's gauges read now.
    pub(crate) fn encode(&self, pool: deadpool_postgres::Status) -> Result<String, std::fmt::Error> {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.connections.get_or_create(&ConnectionState { state: "open" }).set(gauge(pool.size));
        self.connections.get_or_create(&ConnectionState { state: "idle" }).set(gauge(pool.available));
        self.connections_max.set(gauge(pool.max_size));
        self.waiting.set(gauge(pool.waiting));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Middleware: counts and times every answer (layered on the router, so the matched route is known).
pub(crate) async fn track(State(api): State<crate::Api>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    tracing::debug!(%method, %route, status, seconds, "request answered");
    let metrics = &api.inner.metrics;
    metrics.durations.get_or_create(&Timed { method: method.clone(), route: route.clone() }).observe(seconds);
    metrics.answered.get_or_create(&Answered { method, route, status }).inc();
    response
}

//! `hoctap gateway`: the HTTP front door for source systems.
//!
//! `POST /v1/events` takes one CloudEvent (`application/cloudevents+json`) or a batch
//! (`application/cloudevents-batch+json`, a JSON array), authenticates the source by its bearer token,
//! validates the events as one batch with the domain's rules, refuses events of another province,
//! stamps `recordedtime`, publishes the accepted events to Kafka and the refused ones to the
//! dead-letter topic, and answers 202 only once Kafka acknowledged them:
//!
//! ```json
//! {"accepted": ["<id>", ...], "duplicates": ["<id>", ...],
//!  "refused": [{"index": 3, "id": "<id>", "status": 403, "field": "data.commune", "rule": "province", "detail": "..."}]}
//! ```
//!
//! Whole-request answers: 401 (no or unknown token), 415 (another content type), 400 (a batch that is
//! not a JSON array), 413 (body or number of events over the limit), 429 (the source's rate exceeded;
//! `Retry-After`), 503 with `Retry-After` (too many requests at once, or not answered within the
//! request timeout), 422 (a raw citizen-ID number anywhere: nothing is
//! published, not even to the dead-letter topic, and the number is never echoed), 503 (Kafka did not
//! acknowledge: nothing is claimed accepted; what Kafka did take comes back as a duplicate on retry).
//! A single event is answered with its own status (202 when accepted or already known, else its
//! refusal's: 400, 403, 413 (an event over the broker's message size: refused alone) or 422) and the same
//! body. The limits are [`Limits`].
//!
//! One request is judged and published at a time (a `tokio::sync::Mutex` around the state, held
//! across the publish): `recordedtime` is stamped in the order records are handed to Kafka, so within
//! each partition the log is ordered by `recordedtime` and "known at K" is a prefix of it; and the
//! next request is judged against everything the previous one accepted (its ids are duplicates, its
//! units are known), never against a state that a publish in flight may still change. Throughput comes
//! from batches, not from concurrent requests.
//!
//! What the gateway remembers is bounded by the city, not by the history: the reference topic
//! (geography, baselines, targets, approvals) in memory, read whole at start; the events topic's ids,
//! content digests, subjects and placements in PostgreSQL (`hoctap_store::GatewayState`), looked up
//! per request and written after Kafka acknowledged them, with the offsets they reach, so that a start
//! reads only the topic's tail. Several gateways may run: one holds the writer lease and serves, the
//! others answer 503 with `Retry-After` until it is released or expires (`lease.rs`).
//! Design: docs/design/2026-11-30-bounded-gateway.md.

mod http;
mod lease;
mod places;
mod state;

pub use hoctap_tokens::{Holders, Scope, Tokens, TokensError, hash_token};
pub use http::BATCH;
pub use places::placement;

/// A source system, as authenticated (a holder of a `[[source]]` token).
pub type Source = hoctap_tokens::Holder;

use hoctap_kafka::{Producer, Topics};
use hoctap_store::{Deployment, GatewayState};
use lease::{LeaseView, Writer};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Everything the gateway needs. The CLI layers it from its settings file and the environment.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    pub topics: Topics,
    /// Partitions of the events topic when the gateway creates it.
    pub event_partitions: i32,
    /// Replication factor of topics the gateway creates; `None`: the broker's default.
    pub replication: Option<i32>,
    /// librdkafka producer properties on top of the defaults (idempotence and `acks=all` are fixed).
    pub producer: BTreeMap<String, String>,
    pub tokens: Tokens,
    /// PostgreSQL holding what the gateway remembers of the events topic (a URL or libpq settings).
    pub postgres: String,
    /// The deployment: the gateway's tables live in the schema `<deployment>_gateway`.
    pub deployment: Deployment,
    /// How long the writer lease lasts without renewal: a gateway that dies is replaced after this.
    /// Must leave room for two publishes ([`Limits::publish_timeout`]) after a renewal (every tenth).
    pub lease: Duration,
    /// The largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// How long reading a topic at start waits for the next record before giving up.
    pub read_idle: Duration,
    /// Limits that keep one source, or a flood, from taking the gateway down.
    pub limits: Limits,
}

/// The gateway's limits; each one exceeded is answered with a JSON `{"error": ...}` that names it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Events in one batch: a larger batch is refused whole with 413, before any event is judged.
    pub batch_events: usize,
    /// Bytes of one event as sent: a larger event is refused alone with 413 (rule `size`), the rest of
    /// its batch goes on. Kept below the broker's message limit (`message.max.bytes`, 1 MB by default)
    /// with room for `recordedtime` and the record's headers: an event Kafka would refuse would be
    /// refused on every retry and block its whole batch.
    pub event_bytes: usize,
    /// Requests served at once (waiting for the state, judged or publishing); more are answered 503
    /// with `Retry-After` at once, before their body is read, so memory stays bounded by
    /// `concurrent_requests × max_body_bytes` whatever the number of clients.
    pub concurrent_requests: usize,
    /// A request not answered by then is answered 503 with `Retry-After`. Events already judged are
    /// still published; on retry they come back as duplicates.
    pub request_timeout: Duration,
    /// How long Kafka may take to acknowledge a record (librdkafka `message.timeout.ms`, unless set
    /// in [`GatewayConfig::producer`]); then the request is answered 503.
    pub publish_timeout: Duration,
    /// Requests per second each source may send, on average ...
    pub source_requests_per_second: u32,
    /// ... and at once (the burst). Above the rate: 429 with `Retry-After`.
    pub source_burst: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            batch_events: 10_000,
            event_bytes: 512 << 10,
            concurrent_requests: 8,
            request_timeout: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(10),
            source_requests_per_second: 50,
            source_burst: 100,
        }
    }
}

impl GatewayConfig {
    pub fn new(
        brokers: impl Into<String>,
        tokens: Tokens,
        postgres: impl Into<String>,
        deployment: Deployment,
    ) -> GatewayConfig {
        GatewayConfig {
            brokers: brokers.into(),
            topics: Topics::default(),
            event_partitions: hoctap_kafka::DEFAULT_EVENT_PARTITIONS,
            replication: None,
            producer: BTreeMap::new(),
            tokens,
            postgres: postgres.into(),
            deployment,
            lease: Duration::from_secs(30),
            max_body_bytes: 16 << 20,
            read_idle: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// The gateway could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Kafka is unreachable or refused a setting at start: fix the settings or retry later.
    #[error(transparent)]
    Kafka(#[from] hoctap_kafka::Error),
    /// Rebuilding the state at start failed unexpectedly (a panic while reading): a bug.
    #[error("rebuilding the state from Kafka: {0}")]
    Replay(String),
    /// PostgreSQL is unreachable or refused the gateway's schema at start: fix the settings or retry.
    #[error(transparent)]
    Store(#[from] hoctap_store::StoreError),
    /// The settings contradict each other (a lease too short for the publish timeout): fix them.
    #[error("{0}")]
    Settings(String),
    /// The HTTP server failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// A started gateway: the state, the producer and the tokens. Cheap to clone (shared).
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    /// The writer: its PostgreSQL connection and, while it holds the lease, the reference state.
    state: Mutex<Writer>,
    /// The lease as this gateway holds it (renewed by its own task and connection).
    lease: LeaseView,
    producer: Producer,
    brokers: String,
    topics: Topics,
    read_idle: Duration,
    postgres: String,
    deployment: Deployment,
    tokens: Tokens,
    max_body_bytes: usize,
    limits: Limits,
    /// Requests per source (by name), for the per-source rate.
    rate: governor::DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("sources", &self.inner.tokens.len()).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Creates the topics when missing, connects to PostgreSQL (creating the gateway's schema), and
    /// tries to take the writer lease: when it does, reads the reference topic whole and folds the
    /// events topic's tail into PostgreSQL before returning; when another gateway holds it, returns a
    /// standby that takes over once the lease is free.
    pub async fn start(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let publish_bound = publish_bound(&config);
        if config.lease.mul_f64(0.9) <= publish_bound * 2 + lease::MARGIN {
            return Err(GatewayError::Settings(format!(
                "the writer lease ({} s) must exceed 10/9 of two publish timeouts ({} s each) plus {} s",
                config.lease.as_secs_f64(),
                publish_bound.as_secs_f64(),
                lease::MARGIN.as_secs()
            )));
        }
        hoctap_kafka::ensure_topics_with(&config.brokers, &config.topics, config.event_partitions, config.replication)
            .await?;
        let mut settings = config.producer.clone();
        settings
            .entry("message.timeout.ms".to_owned())
            .or_insert_with(|| config.limits.publish_timeout.as_millis().max(1).to_string());
        let producer = Producer::new(&config.brokers, config.topics.clone(), &settings)?;
        let schema = config.deployment.gateway_schema();
        let db = GatewayState::connect(&config.postgres, schema.clone()).await?;
        let lease_db = GatewayState::connect(&config.postgres, schema).await?;
        let gateway = Gateway {
            inner: Arc::new(Inner {
                state: Mutex::new(Writer::new(db)),
                lease: LeaseView::new(config.lease, publish_bound),
                producer,
                brokers: config.brokers,
                topics: config.topics,
                read_idle: config.read_idle,
                postgres: config.postgres,
                deployment: config.deployment,
                tokens: config.tokens,
                max_body_bytes: config.max_body_bytes,
                rate: governor::RateLimiter::keyed(quota(&config.limits)),
                limits: config.limits,
            }),
        };
        if lease::try_take(&gateway.inner, &lease_db).await? {
            // Ready before serving: the first request is judged against the whole log.
            let mut writer = gateway.inner.state.lock().await;
            if let Err(e) = lease::ready(&gateway.inner, &mut writer).await {
                // A standby need not wait for the lease to expire.
                lease::release(&gateway.inner, &lease_db).await;
                return Err(e.into());
            }
        } else {
            tracing::info!("another gateway holds the writer lease: standing by");
        }
        tokio::spawn(lease::keep(Arc::downgrade(&gateway.inner), lease_db));
        Ok(gateway)
    }

    /// Whether this gateway holds the writer lease now (with room left to publish).
    pub fn is_writer(&self) -> bool {
        self.inner.lease.may_publish()
    }

    /// Waits until no request is being judged or published, flushes the producer and gives the lease
    /// up, so that a standby takes over at once.
    pub async fn drain(&self) {
        let writer = self.inner.state.lock().await;
        if let Err(e) = self.inner.producer.flush(Duration::from_secs(30)) {
            tracing::warn!(error = %e, "flushing the producer at shutdown");
        }
        lease::release(&self.inner, &writer.db).await;
    }
}

/// How long one publish may take: librdkafka's `message.timeout.ms` as configured.
fn publish_bound(config: &GatewayConfig) -> Duration {
    config
        .producer
        .get("message.timeout.ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(config.limits.publish_timeout, Duration::from_millis)
}

/// The per-source quota: `source_requests_per_second` on average, `source_burst` at once (at least 1).
fn quota(limits: &Limits) -> governor::Quota {
    let one = std::num::NonZeroU32::MIN;
    let rate = std::num::NonZeroU32::new(limits.source_requests_per_second).unwrap_or(one);
    let burst = std::num::NonZeroU32::new(limits.source_burst).unwrap_or(one);
    governor::Quota::per_second(rate).allow_burst(burst)
}

/// The HTTP routes: `POST /v1/events`, `GET /healthz`.
pub fn router(gateway: Gateway) -> axum::Router {
    http::router(gateway)
}

/// Starts the gateway and serves on `listener` until `shutdown` completes; then stops taking requests,
/// lets every request in flight finish (each one's batch is published and acknowledged or answered
/// 503) and flushes the producer.
pub async fn serve(
    config: GatewayConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let gateway = Gateway::start(config).await?;
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway listening");
    axum::serve(listener, router(gateway.clone())).with_graceful_shutdown(shutdown).await?;
    gateway.drain().await;
    Ok(())
}

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

mod http;
mod places;
mod state;

pub use hoctap_tokens::{Holders, Scope, Tokens, TokensError, hash_token};

/// A source system, as authenticated (a holder of a `[[source]]` token).
pub type Source = hoctap_tokens::Holder;

use hoctap_domain::Event;
use hoctap_kafka::{Producer, Route, Topics};
use state::State;
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
    /// Also read the events topic at start, so that ids accepted before a restart are duplicates and
    /// subjects keep their province. Off: only the reference topic is read (a faster start, and a
    /// resent event is published again; the fold downstream ignores the second copy).
    pub replay_events: bool,
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
    pub fn new(brokers: impl Into<String>, tokens: Tokens) -> GatewayConfig {
        GatewayConfig {
            brokers: brokers.into(),
            topics: Topics::default(),
            event_partitions: hoctap_kafka::DEFAULT_EVENT_PARTITIONS,
            replication: None,
            producer: BTreeMap::new(),
            tokens,
            replay_events: true,
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
    state: Mutex<State>,
    producer: Producer,
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
    /// Creates the topics when missing, then rebuilds the state from the reference topic (and the
    /// events topic, see [`GatewayConfig::replay_events`]), each read whole from its beginning.
    pub async fn start(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        hoctap_kafka::ensure_topics_with(&config.brokers, &config.topics, config.event_partitions, config.replication)
            .await?;
        let mut settings = config.producer.clone();
        settings
            .entry("message.timeout.ms".to_owned())
            .or_insert_with(|| config.limits.publish_timeout.as_millis().max(1).to_string());
        let producer = Producer::new(&config.brokers, config.topics.clone(), &settings)?;
        let (brokers, topics, replay_events, idle) =
            (config.brokers.clone(), config.topics.clone(), config.replay_events, config.read_idle);
        let state = tokio::task::spawn_blocking(move || -> Result<State, GatewayError> {
            let mut state = State::default();
            let mut read = |topic: &str, route: Route| -> Result<u64, GatewayError> {
                Ok(hoctap_kafka::read_to_end(&brokers, topic, idle, |record| {
                    match Event::from_json_recorded(&record.payload) {
                        Ok(event) => state.fold(&event, route),
                        // Only the gateway writes these topics: an unreadable record is a broken invariant.
                        Err(refusal) => tracing::error!(
                            topic = %record.topic, partition = record.partition, offset = record.offset,
                            error = %refusal, "unreadable record in the log; skipped"
                        ),
                    }
                })?)
            };
            let reference = read(&topics.reference, Route::Reference)?;
            let events = if replay_events { read(&topics.events, Route::Events)? } else { 0 };
            tracing::info!(reference, events, "gateway state rebuilt from Kafka");
            Ok(state)
        })
        .await
        .map_err(|e| GatewayError::Replay(e.to_string()))??;
        Ok(Gateway {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                producer,
                tokens: config.tokens,
                max_body_bytes: config.max_body_bytes,
                rate: governor::RateLimiter::keyed(quota(&config.limits)),
                limits: config.limits,
            }),
        })
    }

    /// Events the gateway knows (read at start or accepted since).
    pub async fn known_events(&self) -> usize {
        self.inner.state.lock().await.events()
    }

    /// Waits until no request is being judged or published, then flushes the producer.
    pub async fn drain(&self) {
        let _idle = self.inner.state.lock().await;
        if let Err(e) = self.inner.producer.flush(Duration::from_secs(30)) {
            tracing::warn!(error = %e, "flushing the producer at shutdown");
        }
    }
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

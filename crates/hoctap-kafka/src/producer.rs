//! The idempotent producer: publishes events and dead letters, and returns only once Kafka
//! acknowledged every record (or reports which were not).

use crate::Error;
use crate::dead_letter::DeadLetter;
use crate::topics::{CLOUDEVENTS_JSON, CONTENT_TYPE, Route, Topics};
use hoctap_domain::Event;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use uuid::Uuid;

/// Settings this crate sets and no override may change: without them an acknowledged event could be
/// lost (acks) or written twice by a retry (idempotence).
const FIXED: &[(&str, &str, &str)] = &[
    ("enable.idempotence", "true", "an acknowledged event must be written exactly once per send"),
    ("acks", "all", "an event is acknowledged only once every in-sync replica has it"),
];

/// The producer's settings: the fixed ones, sensible defaults, then `overrides` (any librdkafka
/// producer property, e.g. `batch.num.messages=1` for tests against tansu, `linger.ms`, TLS/SASL).
pub fn producer_config(brokers: &str, overrides: &BTreeMap<String, String>) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "hoctap")
        // An HTTP request waits for its acknowledgement: fail it within half a minute rather than the
        // librdkafka default of five, so the source gets a 503 and retries.
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5");
    for (key, value) in overrides {
        if let Some((_, fixed, reason)) = FIXED.iter().find(|(k, _, _)| k == key)
            && !value.eq_ignore_ascii_case(fixed)
            && !(key == "acks" && value == "-1")
        {
            return Err(Error::Setting { key: key.clone(), reason });
        }
        config.set(key, value);
    }
    for (key, value, _) in FIXED {
        config.set(*key, *value);
    }
    Ok(config)
}

/// Publishing failed: some records were not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// An event without `recordedtime`: a bug in the caller (only stamped events are published).
    /// Nothing was sent.
    #[error("event {0} has no recordedtime; only events the tracker stamped are published")]
    Unstamped(Uuid),
    /// Kafka did not acknowledge some records (broker down, timeout, authorization). The records at
    /// the indexes in `delivered` are in the log; the others are not. An HTTP caller answers 503; the
    /// source retries, and the delivered ones come back as duplicates.
    #[error("{} of {total} records were not acknowledged by Kafka: {first}", total - delivered.len())]
    Delivery {
        total: usize,
        delivered: Vec<usize>,
        #[source]
        first: KafkaError,
    },
}

/// Where Kafka wrote an acknowledged record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub partition: i32,
    pub offset: i64,
}

/// The idempotent producer (`enable.idempotence=true`, `acks=all`).
///
/// Records of one key are written in the order they were handed over: the idempotent producer keeps
/// the order within a partition across retries, so a subject's events stay in order.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    topics: Topics,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("topics", &self.topics).finish_non_exhaustive()
    }
}

/// One record to send.
struct Outgoing<'a> {
    topic: &'a str,
    key: Option<&'a str>,
    value: String,
}

impl Producer {
    /// Creates the producer; `overrides` as in [`producer_config`]. Does not contact the cluster.
    pub fn new(brokers: &str, topics: Topics, overrides: &BTreeMap<String, String>) -> Result<Producer, Error> {
        let inner = producer_config(brokers, overrides)?.create().map_err(Error::Client)?;
        Ok(Producer { inner, topics })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Publishes `events`, each to the topic of its type ([`Route::of`] without knowledge of earlier
    /// events: a retraction goes to the events topic), and returns once every one was acknowledged.
    pub async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let routed: Vec<(Route, &Event)> = events.iter().map(|e| (Route::of(e, |_| false), e)).collect();
        self.publish_routed(&routed).await.map(drop)
    }

    /// Publishes each event to the topic of its route, key = `subject`, value = the canonical JSON,
    /// header `content-type: application/cloudevents+json`, in the order given; returns once every one
    /// was acknowledged, with where each one was written (in the order given).
    pub async fn publish_routed(&self, events: &[(Route, &Event)]) -> Result<Vec<Written>, PublishError> {
        if let Some((_, e)) = events.iter().find(|(_, e)| e.recordedtime.is_none()) {
            return Err(PublishError::Unstamped(e.id));
        }
        let records = events
            .iter()
            .map(|(route, e)| Outgoing { topic: self.topics.name(*route), key: Some(&e.subject), value: e.to_json() })
            .collect();
        self.send_all(records).await
    }

    /// Publishes one refused event with its reason to the dead-letter topic.
    pub async fn publish_dead_letter(&self, raw: &[u8], reason: impl Into<crate::Reason>) -> Result<(), PublishError> {
        self.publish_dead_letters(&[DeadLetter::new(raw, reason)]).await
    }

    /// Publishes dead letters, keyed by the refused event's id when it could be read.
    pub async fn publish_dead_letters(&self, letters: &[DeadLetter]) -> Result<(), PublishError> {
        let records = letters
            .iter()
            .map(|l| Outgoing {
                topic: &self.topics.dead_letter,
                key: l.reason.event_id.as_deref(),
                value: l.to_json(),
            })
            .collect();
        self.send_all(records).await.map(drop)
    }

    /// Waits until every record handed over so far was acknowledged or failed.
    /// Whether a broker answers a metadata request for the events topic within `timeout` (blocking):
    /// what a health check asks before saying events can be accepted.
    pub fn reachable(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.client().fetch_metadata(Some(&self.topics.events), timeout).map(|_| ())
    }

    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout)
    }

    /// Hands every record to librdkafka (in order), then awaits every delivery report.
    async fn send_all(&self, records: Vec<Outgoing<'_>>) -> Result<Vec<Written>, PublishError> {
        let total = records.len();
        let headers = || OwnedHeaders::new().insert(Header { key: CONTENT_TYPE, value: Some(CLOUDEVENTS_JSON) });
        let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::with_capacity(total);
        let mut delivered = Vec::with_capacity(total);
        let mut written = vec![Written { partition: -1, offset: -1 }; total];
        let mut first_error: Option<KafkaError> = None;
        for (i, out) in records.iter().enumerate() {
            let mut record = FutureRecord::to(out.topic).payload(out.value.as_str()).headers(headers());
            if let Some(key) = out.key {
                record = record.key(key);
            }
            loop {
                match self.inner.send_result(record) {
                    Ok(future) => {
                        pending.push_back((i, future));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for the oldest record in flight to make room.
                        record = back;
                        match pending.pop_front() {
                            Some((j, future)) => {
                                settle(j, future.await, &mut delivered, &mut written, &mut first_error)
                            }
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((e, _)) => {
                        // Not enqueued (e.g. message too large): record the failure, keep sending the rest
                        // so the caller learns exactly which ones are in the log.
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        while let Some((i, future)) = pending.pop_front() {
            settle(i, future.await, &mut delivered, &mut written, &mut first_error);
        }
        match first_error {
            None => Ok(written),
            Some(first) => {
                delivered.sort_unstable();
                tracing::warn!(total, delivered = delivered.len(), error = %first, "Kafka did not acknowledge every record");
                Err(PublishError::Delivery { total, delivered, first })
            }
        }
    }
}

fn settle<E>(
    index: usize,
    result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
    delivered: &mut Vec<usize>,
    written: &mut [Written],
    first_error: &mut Option<KafkaError>,
) {
    match result {
        Ok(Ok(delivery)) => {
            delivered.push(index);
            written[index] = Written { partition: delivery.partition, offset: delivery.offset };
        }
        Ok(Err((e, _))) => {
            first_error.get_or_insert(e);
        }
        Err(_) => {
            first_error.get_or_insert(KafkaError::Canceled);
        }
    }
}

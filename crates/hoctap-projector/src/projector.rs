//! The consumer loop of `hoctap project`.
//!
//! One thread owns the Kafka consumers and the projection: it polls a batch, applies it in one
//! PostgreSQL transaction (with the offsets), then polls again. Rebalance callbacks run inside
//! `poll`, on that same thread, between batches: on assignment they read the stored next offsets from
//! PostgreSQL and assign the partitions at exactly those offsets, so Kafka's own committed offsets are
//! never used (nothing is committed to Kafka).
//!
//! Failures: a failure of the system (PostgreSQL unreachable or restarting, a deadlock) keeps the
//! batch and retries it after a pause (nothing was stored); a batch PostgreSQL refuses for what it
//! holds is split until the records it refuses stand alone (`isolate`), so that no record stalls a
//! partition; a switch of generations (a rebuild) reloads the new generation and retries the batch
//! there; a gap (records skipped) seeks back to the stored offsets. A record that is not an event, or
//! that PostgreSQL refuses alone, is published to the dead-letter topic with its reason before its
//! offset is committed.

use crate::isolate::{Sink, apply_isolating};
use crate::metrics::{Metrics, PartitionLabels};
use crate::record::{Record, decode};
use crate::{ProjectorError, pg_pool};
use deadpool_postgres::Pool;
use hoctap_kafka::{DeadLetter, Producer, Reason, Topics};
use hoctap_store::{Applied, Consumed, Deployment, Position, Projection, Schema, StoreError};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Settings of one projector instance.
#[derive(Clone, Debug)]
pub struct ProjectorConfig {
    /// Kafka `bootstrap.servers`.
    pub brokers: String,
    /// PostgreSQL connection string (`postgresql://user@host:port/db` or `host=… user=…`).
    pub postgres: String,
    pub deployment: Deployment,
    /// The consumer group: instances of one group split the partitions of the events topic.
    pub group: String,
    pub topics: Topics,
    /// Partitions of the events topic when the projector creates it.
    pub event_partitions: i32,
    /// The most records in one batch (one transaction).
    pub batch_max: usize,
    /// How long a batch waits for more records after its first one.
    pub batch_wait: Duration,
    /// Refresh the dashboard figures when idle and at least this long after the last refresh;
    /// `None`: never.
    pub dashboard_every: Option<Duration>,
    /// librdkafka settings for the consumers (e.g. `session.timeout.ms`).
    pub consumer_overrides: BTreeMap<String, String>,
    /// The bound of the cache of subject histories, in bytes (the projector's memory beyond it is small
    /// and does not grow with the history).
    pub cache_bytes: usize,
}

/// The most records in one batch, by default: a batch costs a fixed part (its statements and their
/// round trips, the count rows its days touch) and a part per event, so larger batches catch up
/// faster; a live batch closes when no more records come within `batch_wait`, whatever its size.
pub const DEFAULT_BATCH_MAX: usize = 20_000;

impl ProjectorConfig {
    pub fn new(brokers: impl Into<String>, postgres: impl Into<String>, deployment: Deployment) -> ProjectorConfig {
        ProjectorConfig {
            brokers: brokers.into(),
            postgres: postgres.into(),
            deployment,
            group: "hoctap-projector".to_owned(),
            topics: Topics::default(),
            event_partitions: hoctap_kafka::DEFAULT_EVENT_PARTITIONS,
            batch_max: DEFAULT_BATCH_MAX,
            batch_wait: Duration::from_millis(200),
            dashboard_every: Some(Duration::from_secs(60)),
            consumer_overrides: BTreeMap::new(),
            cache_bytes: hoctap_store::DEFAULT_CACHE_BYTES,
        }
    }

    /// The projection as this configuration wants it: the reference topic named, the cache bounded.
    fn prepare(&self, projection: Projection) -> Projection {
        projection.with_reference_topic(&self.topics.reference).with_cache_bytes(self.cache_bytes)
    }
}

/// Runs the projector until `stop` is set (then it finishes the batch in hand and leaves the group).
/// Blocking: call it on a thread of its own, with `handle` a Tokio runtime that is not driving this
/// thread.
pub fn run(
    config: &ProjectorConfig,
    metrics: &Metrics,
    stop: &AtomicBool,
    handle: &Handle,
) -> Result<(), ProjectorError> {
    handle.block_on(hoctap_kafka::ensure_topics_with(
        &config.brokers,
        &config.topics,
        config.event_partitions,
        None,
    ))?;
    let pool = pg_pool(&config.postgres)?;
    let producer = Producer::new(&config.brokers, config.topics.clone(), &BTreeMap::new())?;
    let mut projection = retry(stop, "loading the read models", || {
        handle.block_on(async {
            let mut client = pool.get().await?;
            Ok(config.prepare(Projection::load_serving(&mut client, &config.deployment).await?))
        })
    })?;
    let shared = Arc::new(Shared {
        handle: handle.clone(),
        pool: pool.clone(),
        schema: Mutex::new(projection.schema().clone()),
        assigned: Assignment::new(&config.topics.events, metrics),
        metrics: metrics.clone(),
    });

    let mut settings = hoctap_kafka::consumer_config(&config.brokers, &config.group);
    let mut reference_settings = hoctap_kafka::reader_config(&config.brokers);
    for (k, v) in &config.consumer_overrides {
        settings.set(k, v);
        reference_settings.set(k, v);
    }
    let consumer: BaseConsumer<Rebalancer> =
        settings.create_with_context(Rebalancer { shared: shared.clone() }).map_err(hoctap_kafka::Error::Client)?;
    consumer.subscribe(&[&config.topics.events]).map_err(hoctap_kafka::Error::Client)?;
    let reference: BaseConsumer = reference_settings.create().map_err(hoctap_kafka::Error::Client)?;
    assign_reference(&reference, &config.topics.reference, &projection)?;
    tracing::info!(group = %config.group, schema = %projection.schema(), "projector started");

    let mut last_refresh: Option<Instant> = None;
    let mut applied_since_refresh = false;
    let mut last_gauges = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        metrics.tick();
        let records = collect(&consumer, &reference, config);
        // Records of partitions revoked while the batch was collected belong to another member now.
        let assigned = shared.assigned.get();
        let records: Vec<Record> = records
            .into_iter()
            .filter(|r| r.topic != config.topics.events || assigned.contains(&r.partition))
            .collect();
        if records.is_empty() {
            if last_gauges.elapsed() >= Duration::from_secs(5) {
                update_gauges(&consumer, config, &projection, &assigned, metrics);
                last_gauges = Instant::now();
            }
            let due = config.dashboard_every.is_some_and(|every| last_refresh.is_none_or(|t| t.elapsed() >= every));
            if applied_since_refresh && due {
                refresh(&pool, &projection, handle);
                last_refresh = Some(Instant::now());
                applied_since_refresh = false;
            }
            continue;
        }
        let (batch, refused) = decode(records);
        if !refused.is_empty() {
            let letters: Vec<DeadLetter> =
                refused.iter().map(|r| dead_letter(&r.position, &r.payload, &r.refusal)).collect();
            publish(&producer, &letters, handle, stop)?;
            metrics.dead_letters.inc_by(letters.len() as u64);
        }
        let positions: Vec<Position> = refused.into_iter().map(|r| r.position).collect();
        let mut sink = Live {
            projection: &mut projection,
            pool: &pool,
            producer: &producer,
            config,
            shared: &shared,
            handle,
            stop,
        };
        let settled = apply_isolating(&mut sink, batch, positions)?;
        let applied = settled.applied;
        metrics.events_applied.inc_by(applied.events as u64);
        metrics.duplicates.inc_by(applied.duplicates as u64);
        metrics.redelivered.inc_by(applied.redelivered as u64);
        metrics.batches.inc();
        applied_since_refresh |= applied.events > 0;
        if settled.gap {
            // Records were skipped: consume again from the stored offsets.
            seek_to_stored(&consumer, &reference, config, &projection, &shared)?;
        }
        if projection.schema().as_str() != shared.schema.lock().expect("not poisoned").as_str() {
            *shared.schema.lock().expect("not poisoned") = projection.schema().clone();
        }
    }
    tracing::info!("projector stopping: leaving the group");
    consumer.unsubscribe();
    Ok(())
}

/// State the rebalance callback shares with the loop.
struct Shared {
    handle: Handle,
    pool: Pool,
    /// The generation the loop writes to: assignments seek to its stored offsets.
    schema: Mutex<Schema>,
    assigned: Assignment,
    metrics: Metrics,
}

/// The partitions of the events topic assigned now, and the metrics that follow them.
struct Assignment {
    topic: String,
    partitions: Mutex<HashSet<i32>>,
    metrics: Metrics,
}

impl Assignment {
    fn new(topic: &str, metrics: &Metrics) -> Assignment {
        Assignment { topic: topic.to_owned(), partitions: Mutex::new(HashSet::new()), metrics: metrics.clone() }
    }

    fn get(&self) -> HashSet<i32> {
        self.partitions.lock().expect("not poisoned").clone()
    }

    /// Replaces the assigned partitions. The lag of a partition lost goes: another member reports
    /// it now, and a value frozen at the revocation would be read as this member's for minutes.
    fn set(&self, now: HashSet<i32>) {
        let mut partitions = self.partitions.lock().expect("not poisoned");
        self.metrics.forget_lag(&self.topic, partitions.difference(&now).copied());
        self.metrics.assigned_partitions.set(now.len() as i64);
        *partitions = now;
    }
}

impl Shared {
    /// The stored next offsets, read again until PostgreSQL answers (for a minute).
    fn stored_offsets(&self) -> Option<HashMap<(String, i32), i64>> {
        let schema = self.schema.lock().expect("not poisoned").clone();
        for attempt in 0..60 {
            let result: Result<_, ProjectorError> = self.handle.block_on(async {
                let client = self.pool.get().await?;
                Ok(hoctap_store::offsets(&**client, &schema).await?)
            });
            match result {
                Ok(offsets) => return Some(offsets),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "reading the stored offsets for an assignment");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        None
    }
}

/// Assigns partitions at the offsets stored in PostgreSQL, never at Kafka's committed ones.
struct Rebalancer {
    shared: Arc<Shared>,
}

impl ClientContext for Rebalancer {}

impl ConsumerContext for Rebalancer {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<(String, i32)> =
                    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
                // Without an answer from PostgreSQL, start at the beginning: slow but exact (every
                // record below the stored offsets is skipped when the batch is applied).
                let stored = self.shared.stored_offsets().unwrap_or_default();
                for (topic, partition) in &partitions {
                    let offset =
                        stored.get(&(topic.clone(), *partition)).map_or(Offset::Beginning, |&o| Offset::Offset(o));
                    if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                        tracing::error!(error = %e, topic, partition, "setting an assigned partition's offset");
                    }
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assigning partitions");
                }
                let assigned: HashSet<i32> = partitions.iter().map(|(_, p)| *p).collect();
                tracing::info!(partitions = ?assigned, "partitions assigned at their stored offsets");
                self.shared.assigned.set(assigned);
            }
            other => {
                if other != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::error!(error = ?other, "rebalance failed: giving up the partitions");
                }
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassigning partitions");
                }
                self.shared.assigned.set(HashSet::new());
                tracing::info!("partitions revoked");
            }
        }
    }
}

/// Polls until the batch is full, `batch_wait` passed since its first record, or nothing came.
fn collect(consumer: &BaseConsumer<Rebalancer>, reference: &BaseConsumer, config: &ProjectorConfig) -> Vec<Record> {
    let mut records = Vec::new();
    let mut first: Option<Instant> = None;
    while records.len() < config.batch_max {
        let mut got = false;
        let mut take = |m: Option<KafkaResult<BorrowedMessage<'_>>>| match m {
            Some(Ok(m)) => {
                records.push(Record::of(&m));
                got = true;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "polling Kafka"),
            None => {}
        };
        take(reference.poll(Duration::ZERO));
        take(consumer.poll(Duration::from_millis(if first.is_some() { 10 } else { 100 })));
        if !got && (first.is_none() || first.is_some_and(|t| t.elapsed() >= config.batch_wait)) {
            break;
        }
        if got && first.is_none() {
            first = Some(Instant::now());
        }
        if first.is_some_and(|t| t.elapsed() >= config.batch_wait) {
            break;
        }
    }
    records
}

/// The rule of a dead letter whose record PostgreSQL refused to store.
const STORE_RULE: &str = "store";

/// The dead letter of a refused record: its text (a raw citizen-ID masked) and why.
fn dead_letter(position: &Position, payload: &[u8], reason: impl Into<Reason>) -> DeadLetter {
    let reason = reason.into();
    tracing::warn!(topic = %position.topic, partition = position.partition, offset = position.offset, rule = %reason.rule, detail = %reason.detail, "record refused");
    let text = hoctap_domain::validate::mask_citizen_ids(&String::from_utf8_lossy(payload));
    DeadLetter::new(text.as_bytes(), reason).with_source("projector")
}

/// Why PostgreSQL refused `event` alone: the error with its causes (PostgreSQL's own message), which
/// may quote the value, so a raw citizen-ID in it is masked too.
fn store_refusal(event: &Consumed, why: &ProjectorError) -> Reason {
    let mut detail = format!("PostgreSQL refused to store it (SQLSTATE {})", store_sqlstate(why).unwrap_or("?"));
    let mut cause: Option<&dyn std::error::Error> = Some(why);
    while let Some(e) = cause {
        detail.push_str(&format!(": {e}"));
        cause = e.source();
    }
    Reason {
        event_id: Some(event.event.id.to_string()),
        field: "(event)".to_owned(),
        rule: STORE_RULE.to_owned(),
        detail: hoctap_domain::validate::mask_citizen_ids(&detail),
    }
}

fn store_sqlstate(e: &ProjectorError) -> Option<&str> {
    match e {
        ProjectorError::Store(e) => e.sqlstate(),
        _ => None,
    }
}

/// Publishes dead letters, retrying while Kafka is away.
fn publish(
    producer: &Producer,
    letters: &[DeadLetter],
    handle: &Handle,
    stop: &AtomicBool,
) -> Result<(), ProjectorError> {
    retry(stop, "publishing dead letters", || Ok(handle.block_on(producer.publish_dead_letters(letters))?))
}

/// The serving read models as the consumer loop writes to them.
struct Live<'a> {
    projection: &'a mut Projection,
    pool: &'a Pool,
    producer: &'a Producer,
    config: &'a ProjectorConfig,
    shared: &'a Shared,
    handle: &'a Handle,
    stop: &'a AtomicBool,
}

impl Sink for Live<'_> {
    type Error = ProjectorError;

    /// Retries after failures of the system and moves to a new generation after a switch.
    fn apply(&mut self, events: &[Consumed], refused: &[Position]) -> Result<Option<Applied>, ProjectorError> {
        let metrics = &self.shared.metrics;
        let mut pause = Duration::from_millis(200);
        loop {
            let started = Instant::now();
            let result: Result<Applied, ProjectorError> = self.handle.block_on(async {
                let mut client = self.pool.get().await?;
                Ok(self.projection.apply_batch_with_refused(&mut client, events, refused).await?)
            });
            match result {
                Ok(applied) => {
                    metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
                    return Ok(Some(applied));
                }
                Err(ProjectorError::Store(StoreError::Retired { active, .. })) => {
                    tracing::info!(%active, "a rebuild switched generations: moving to the new one");
                    *self.projection = self.handle.block_on(async {
                        let mut client = self.pool.get().await?;
                        Ok::<_, ProjectorError>(
                            self.config.prepare(Projection::load_serving(&mut client, &self.config.deployment).await?),
                        )
                    })?;
                    *self.shared.schema.lock().expect("not poisoned") = self.projection.schema().clone();
                }
                Err(ProjectorError::Store(StoreError::Gap { topic, partition, expected, got })) => {
                    tracing::warn!(topic, partition, expected, got, "records were skipped: seeking back");
                    metrics.batch_errors.inc();
                    return Ok(None);
                }
                Err(e) if e.is_transient() && !self.stop.load(Ordering::Relaxed) => {
                    metrics.batch_errors.inc();
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "batch not applied: retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    metrics.batch_errors.inc();
                    if e.is_content_fault() {
                        tracing::warn!(error = %e, events = events.len(), "PostgreSQL refused what these records hold: isolating the one at fault");
                    }
                    return Err(e);
                }
            }
        }
    }

    fn is_content_fault(error: &ProjectorError) -> bool {
        error.is_content_fault()
    }

    fn refuse(&mut self, event: &Consumed, why: &ProjectorError) -> Result<(), ProjectorError> {
        let position = Position { topic: event.topic.clone(), partition: event.partition, offset: event.offset };
        // Its canonical form: the bytes as consumed are not kept past decoding.
        let letter = dead_letter(&position, event.event.to_json().as_bytes(), store_refusal(event, why));
        publish(self.producer, std::slice::from_ref(&letter), self.handle, self.stop)?;
        let metrics = &self.shared.metrics;
        metrics.dead_letters.inc();
        metrics.records_refused.inc();
        Ok(())
    }
}

/// Seeks every assigned partition and the reference topic back to the offsets stored in PostgreSQL.
fn seek_to_stored(
    consumer: &BaseConsumer<Rebalancer>,
    reference: &BaseConsumer,
    config: &ProjectorConfig,
    projection: &Projection,
    shared: &Shared,
) -> Result<(), ProjectorError> {
    let stored = shared.stored_offsets().unwrap_or_default();
    for p in shared.assigned.get() {
        let offset = stored.get(&(config.topics.events.clone(), p)).map_or(Offset::Beginning, |&o| Offset::Offset(o));
        if let Err(e) = consumer.seek(&config.topics.events, p, offset, Duration::from_secs(10)) {
            tracing::warn!(error = %e, partition = p, "seeking back");
        }
    }
    assign_reference(reference, &config.topics.reference, projection)
}

/// Reads the whole reference topic from the offset stored for it.
fn assign_reference(reference: &BaseConsumer, topic: &str, projection: &Projection) -> Result<(), ProjectorError> {
    let next = projection.next_offsets().and_then(|n| n.get(&(topic.to_owned(), 0)).copied());
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, next.map_or(Offset::Beginning, Offset::Offset))
        .map_err(hoctap_kafka::Error::Client)?;
    reference.assign(&tpl).map_err(hoctap_kafka::Error::Client)?;
    Ok(())
}

/// Lag per partition this instance reads, and the size of the dead-letter topic.
fn update_gauges(
    consumer: &BaseConsumer<Rebalancer>,
    config: &ProjectorConfig,
    projection: &Projection,
    assigned: &HashSet<i32>,
    metrics: &Metrics,
) {
    let Some(next) = projection.next_offsets() else { return };
    let timeout = Duration::from_secs(2);
    let partitions =
        assigned.iter().map(|&p| (config.topics.events.as_str(), p)).chain([(config.topics.reference.as_str(), 0)]);
    for (topic, partition) in partitions {
        if let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, timeout) {
            let stored = next.get(&(topic.to_owned(), partition)).copied().unwrap_or(0);
            metrics
                .lag
                .get_or_create(&PartitionLabels { topic: topic.to_owned(), partition })
                .set((high - stored).max(0));
        }
    }
    if let Ok((_, high)) = consumer.fetch_watermarks(&config.topics.dead_letter, 0, timeout) {
        metrics.dead_letter_topic_records.set(high);
    }
}

fn refresh(pool: &Pool, projection: &Projection, handle: &Handle) {
    let result: Result<_, ProjectorError> = handle.block_on(async {
        let mut client = pool.get().await?;
        Ok(hoctap_store::refresh_dashboard(&mut client, projection.schema()).await?)
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "refreshing the dashboard figures failed; the next idle turn tries again");
    }
}

/// Runs `f` until it succeeds or fails for good, pausing after transient failures; gives up when
/// `stop` is set.
fn retry<T>(
    stop: &AtomicBool,
    what: &str,
    mut f: impl FnMut() -> Result<T, ProjectorError>,
) -> Result<T, ProjectorError> {
    let mut pause = Duration::from_millis(200);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && !stop.load(Ordering::Relaxed) => {
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "{what}: retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lag series exported, as (topic, partition).
    fn lag_series(metrics: &Metrics) -> Vec<String> {
        let mut series: Vec<String> = metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("hoctap_projector_lag{"))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect();
        series.sort();
        series
    }

    #[test]
    fn the_lag_of_a_partition_no_longer_assigned_is_no_longer_exported() {
        let topics = Topics::default();
        let metrics = Metrics::new();
        let assignment = Assignment::new(&topics.events, &metrics);
        assignment.set(HashSet::from([0, 1, 2]));
        let partitions =
            [0, 1, 2].map(|p| (topics.events.as_str(), p)).into_iter().chain([(topics.reference.as_str(), 0)]);
        for (topic, partition) in partitions {
            metrics.lag.get_or_create(&PartitionLabels { topic: topic.to_owned(), partition }).set(7);
        }
        let series = |topic: &str, partitions: &[i32]| -> Vec<String> {
            partitions.iter().map(|p| format!("hoctap_projector_lag{{topic=\"{topic}\",partition=\"{p}\"}}")).collect()
        };
        let reference = series(&topics.reference, &[0]);

        // A rebalance: 0 and 2 go to another member, 3 comes.
        assignment.set(HashSet::from([1, 3]));
        let mut expected = [series(&topics.events, &[1]), reference.clone()].concat();
        expected.sort();
        assert_eq!(lag_series(&metrics), expected);
        assert_eq!(metrics.assigned_partitions.get(), 2);

        // Revoked: only the reference topic, which every instance reads whole, is left.
        assignment.set(HashSet::new());
        assert_eq!(lag_series(&metrics), reference);
        assert_eq!(metrics.assigned_partitions.get(), 0);
    }
}

//! `hoctap rebuild`: the read models built again from offset 0 into a new generation while the old
//! one serves, compared with it, and switched to atomically.
//!
//! 1. Create generation N+1 (migrated, empty) and read every partition of the events and reference
//!    topics from the beginning up to the offsets the serving generation had stored at the start.
//! 2. Lock the control row (`Deployment::lock_for_switch`): live projectors finish their batch in
//!    flight and then wait. Catch up to the offsets the serving generation holds now (a few batches).
//! 3. Compare the two generations table by table; refuse to switch when they differ.
//! 4. Give the new generation its dashboard figures: the old one's, copied while step 1 ran, when
//!    they are still the old generation's figures and were computed from everything it holds (equal
//!    generations have equal figures); otherwise computed afresh. Point the control row and the
//!    dashboard views at it, commit. The waiting projectors find their generation retired, load the
//!    new one and go on from its offsets, which equal the old ones.

use crate::isolate::{Sink, apply_isolating};
use crate::record::{Record, decode};
use crate::{ProjectorError, pg_pool};
use hoctap_kafka::Topics;
use hoctap_store::{Applied, Consumed, Deployment, Position, Projection, Schema};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Settings of a rebuild.
#[derive(Clone, Debug)]
pub struct RebuildConfig {
    pub brokers: String,
    pub postgres: String,
    pub deployment: Deployment,
    pub topics: Topics,
    pub batch_max: usize,
    /// Drop the old generation after the switch (default: keep it, to compare or switch back).
    pub drop_old: bool,
    /// librdkafka settings for the reader.
    pub consumer_overrides: BTreeMap<String, String>,
    /// How long to wait for the next record before giving up.
    pub idle: Duration,
}

impl RebuildConfig {
    pub fn new(brokers: impl Into<String>, postgres: impl Into<String>, deployment: Deployment) -> RebuildConfig {
        RebuildConfig {
            brokers: brokers.into(),
            postgres: postgres.into(),
            deployment,
            topics: Topics::default(),
            batch_max: crate::DEFAULT_BATCH_MAX,
            drop_old: false,
            consumer_overrides: BTreeMap::new(),
            idle: Duration::from_secs(60),
        }
    }
}

/// Progress of a rebuild, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Records read so far.
    pub read: u64,
    /// Records to read in the current phase (it grows in the catch-up under the lock).
    pub total: u64,
}

/// What a rebuild did.
#[derive(Clone, Debug)]
pub struct RebuildReport {
    pub old: Schema,
    pub new: Schema,
    /// Records read from Kafka (events, duplicates and refused records).
    pub records: u64,
    /// Events stored in the new generation.
    pub events: u64,
    /// Records read while the projectors waited, and how long they waited.
    pub caught_up_under_lock: u64,
    pub locked_for: Duration,
    /// The dashboard figures were the old generation's, copied (else computed afresh).
    pub dashboard_copied: bool,
    pub elapsed: Duration,
    pub dropped_old: bool,
}

/// Runs a rebuild (see the module docs). Blocking: call it on a thread that no Tokio runtime drives,
/// with `handle` a runtime's handle.
pub fn rebuild(
    config: &RebuildConfig,
    handle: &Handle,
    mut progress: impl FnMut(RebuildProgress),
) -> Result<RebuildReport, ProjectorError> {
    let started = Instant::now();
    let pool = pg_pool(&config.postgres)?;
    let mut client = handle.block_on(pool.get())?;
    let old = handle.block_on(config.deployment.ensure(&mut client))?;
    let new = handle.block_on(config.deployment.create_next_generation(&mut client))?;
    tracing::info!(%old, %new, "rebuilding");
    let mut projection =
        handle.block_on(Projection::load(&mut client, &new))?.with_reference_topic(&config.topics.reference);

    // The old generation's dashboard figures, when current, are copied meanwhile on a connection of
    // their own; they are kept only if, once the generations compare equal, they still are (below).
    let copy = {
        let (pool, old, new) = (pool.clone(), old.clone(), new.clone());
        handle.spawn(async move {
            let mut client = pool.get().await?;
            Ok::<_, ProjectorError>(hoctap_store::copy_dashboard(&mut client, &old, &new).await?)
        })
    };
    let mut reader = Reader::new(config)?;
    let targets = handle.block_on(hoctap_store::offsets(&**client, &old))?;
    let mut read = 0u64;
    let mut catch_up = |reader: &mut Reader, targets: &HashMap<(String, i32), i64>, read: &mut u64| {
        let total: u64 = targets.values().map(|&o| o.max(0) as u64).sum();
        reader.read_up_to(targets, config, |records| {
            *read += records.len() as u64;
            let (batch, refused) = decode(records);
            // Refused when first consumed (their dead letters exist): only their offsets count.
            let refused: Vec<Position> = refused.into_iter().map(|r| r.position).collect();
            apply_isolating(
                &mut Rebuilding { projection: &mut projection, client: &mut client, handle },
                batch,
                refused,
            )?;
            progress(RebuildProgress { read: *read, total });
            Ok(())
        })
    };
    catch_up(&mut reader, &targets, &mut read)?;

    // Under the lock: the serving generation's offsets no longer move.
    let mut lock_client = handle.block_on(pool.get())?;
    let lock_client: &mut tokio_postgres::Client = &mut lock_client;
    let tx = handle.block_on(lock_client.transaction()).map_err(|e| {
        ProjectorError::Store(hoctap_store::StoreError::Db { context: "beginning the switch", source: e })
    })?;
    let locked_at = Instant::now();
    let serving = handle.block_on(config.deployment.lock_for_switch(&tx))?;
    if serving != old {
        return Err(ProjectorError::Rebuild(format!(
            "generation {serving} started serving during the rebuild (another rebuild?); {new} was left unswitched"
        )));
    }
    let targets = handle.block_on(hoctap_store::offsets(&tx, &old))?;
    let before_lock = read;
    catch_up(&mut reader, &targets, &mut read)?;

    let applied_for = started.elapsed();
    let compare_started = Instant::now();
    let differences = handle.block_on(hoctap_store::differences(&**client, &old, &new))?;
    let compared_for = compare_started.elapsed();
    if !differences.is_empty() {
        let list: Vec<String> = differences.iter().map(|(t, n)| format!("{t}: {n} rows")).collect();
        return Err(ProjectorError::Rebuild(format!(
            "{new} differs from {old} ({}); not switched — {new} is kept for inspection",
            list.join(", ")
        )));
    }
    let refresh_started = Instant::now();
    let copied = match handle.block_on(copy) {
        Ok(Ok(copied)) => copied,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "copying the dashboard figures failed: they are computed");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "copying the dashboard figures stopped: they are computed");
            None
        }
    };
    // Equal generations have equal figures: the copy stands when the old ones were current and are
    // the ones copied (no refresh ran since). Otherwise the new generation's are computed.
    let copied = copied.is_some() && copied == handle.block_on(hoctap_store::current_figures(&tx, &old))?;
    if !copied {
        handle.block_on(hoctap_store::refresh_dashboard(&mut client, &new))?;
    }
    let refreshed_for = refresh_started.elapsed();
    handle.block_on(config.deployment.switch(&tx, &new))?;
    handle.block_on(tx.commit()).map_err(|e| {
        ProjectorError::Store(hoctap_store::StoreError::Db { context: "committing the switch", source: e })
    })?;
    let locked_for = locked_at.elapsed();
    let events = handle.block_on(hoctap_store::events_applied(&**client, &new)).unwrap_or(-1);
    if config.drop_old {
        handle.block_on(hoctap_store::drop_generation(&**client, &old))?;
    }
    tracing::info!(
        %old,
        %new,
        read_and_applied_ms = applied_for.as_millis() as u64,
        compared_ms = compared_for.as_millis() as u64,
        dashboard = if copied { "copied" } else { "computed" },
        dashboard_ms = refreshed_for.as_millis() as u64,
        locked_ms = locked_for.as_millis() as u64,
        "switched"
    );
    Ok(RebuildReport {
        old,
        new,
        records: read,
        events: events.max(0) as u64,
        caught_up_under_lock: read - before_lock,
        locked_for,
        dashboard_copied: copied,
        elapsed: started.elapsed(),
        dropped_old: config.drop_old,
    })
}

/// The new generation as the rebuild fills it: no retries (a rebuild that fails is run again).
struct Rebuilding<'a> {
    projection: &'a mut Projection,
    client: &'a mut tokio_postgres::Client,
    handle: &'a Handle,
}

impl Sink for Rebuilding<'_> {
    type Error = ProjectorError;

    fn apply(&mut self, events: &[Consumed], refused: &[Position]) -> Result<Option<Applied>, ProjectorError> {
        Ok(Some(self.handle.block_on(self.projection.apply_batch_with_refused(self.client, events, refused))?))
    }

    fn is_content_fault(error: &ProjectorError) -> bool {
        error.is_content_fault()
    }

    /// The serving generation refused it too (the rebuild only reads what it consumed), and its
    /// dead letter was published then; were it stored there, the comparison refuses the switch.
    fn refuse(&mut self, event: &Consumed, why: &ProjectorError) -> Result<(), ProjectorError> {
        tracing::warn!(topic = %event.topic, partition = event.partition, offset = event.offset, error = %why, "PostgreSQL refused a record again");
        Ok(())
    }
}

/// Reads every partition from its beginning, up to moving targets; records read past a target are
/// kept for the next call (their partition is paused meanwhile).
struct Reader {
    consumer: BaseConsumer,
    /// The next offset to hand out per partition.
    next: HashMap<(String, i32), i64>,
    held: HashMap<(String, i32), VecDeque<Record>>,
}

impl Reader {
    fn new(config: &RebuildConfig) -> Result<Reader, ProjectorError> {
        let mut settings = hoctap_kafka::reader_config(&config.brokers);
        for (k, v) in &config.consumer_overrides {
            settings.set(k, v);
        }
        let consumer: BaseConsumer = settings.create().map_err(hoctap_kafka::Error::Client)?;
        let mut tpl = TopicPartitionList::new();
        let mut next = HashMap::new();
        for topic in [&config.topics.events, &config.topics.reference] {
            let err = |source| hoctap_kafka::Error::Read { topic: topic.clone(), source };
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30)).map_err(err)?;
            for t in metadata.topics().iter().filter(|t| t.name() == topic.as_str()) {
                for p in t.partitions() {
                    tpl.add_partition_offset(topic, p.id(), Offset::Beginning).map_err(err)?;
                    next.insert((topic.clone(), p.id()), 0);
                }
            }
        }
        consumer.assign(&tpl).map_err(hoctap_kafka::Error::Client)?;
        // Each partition fetches only while `read_up_to` wants its records.
        consumer.pause(&tpl).map_err(hoctap_kafka::Error::Client)?;
        Ok(Reader { consumer, next, held: HashMap::new() })
    }

    /// Hands out, in batches, every record below `targets` (per partition; absent = 0) not handed
    /// out before.
    fn read_up_to(
        &mut self,
        targets: &HashMap<(String, i32), i64>,
        config: &RebuildConfig,
        mut each: impl FnMut(Vec<Record>) -> Result<(), ProjectorError>,
    ) -> Result<(), ProjectorError> {
        let target = |key: &(String, i32)| targets.get(key).copied().unwrap_or(0);
        let mut pending: Vec<(String, i32)> = self.next.keys().filter(|k| self.next[*k] < target(k)).cloned().collect();
        self.set_paused(&pending, false)?;
        let mut batch = Vec::new();
        // Records held from before come first.
        for key in &pending {
            if let Some(held) = self.held.get_mut(key) {
                while held.front().is_some_and(|r| r.offset < target(key)) {
                    let r = held.pop_front().expect("checked");
                    self.next.insert(key.clone(), r.offset + 1);
                    batch.push(r);
                }
            }
        }
        pending.retain(|k| self.next[k] < target(k));
        let mut last = Instant::now();
        while !pending.is_empty() {
            if batch.len() >= config.batch_max {
                each(std::mem::take(&mut batch))?;
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {
                    if !batch.is_empty() {
                        each(std::mem::take(&mut batch))?;
                    }
                    if last.elapsed() > config.idle {
                        return Err(ProjectorError::Rebuild(format!(
                            "nothing arrived for {} s while {} partitions were still short of their offsets: {pending:?}",
                            config.idle.as_secs(),
                            pending.len()
                        )));
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "reading for the rebuild"),
                Some(Ok(m)) => {
                    last = Instant::now();
                    let record = Record::of(&m);
                    let key = (record.topic.clone(), record.partition);
                    if record.offset < target(&key) {
                        self.next.insert(key.clone(), record.offset + 1);
                        batch.push(record);
                    } else {
                        self.held.entry(key.clone()).or_default().push_back(record);
                    }
                    if self.next.get(&key).copied().unwrap_or(0) >= target(&key) {
                        pending.retain(|k| *k != key);
                        self.set_paused(std::slice::from_ref(&key), true)?;
                    }
                }
            }
        }
        if !batch.is_empty() {
            each(batch)?;
        }
        Ok(())
    }

    fn set_paused(&self, keys: &[(String, i32)], paused: bool) -> Result<(), ProjectorError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p) in keys {
            tpl.add_partition(t, *p);
        }
        let result = if paused { self.consumer.pause(&tpl) } else { self.consumer.resume(&tpl) };
        result.map_err(hoctap_kafka::Error::Client)?;
        Ok(())
    }
}

//! The projector's transactional core: a batch of consumed events becomes, in one PostgreSQL
//! transaction, the new histories of the subjects it touches, the changes of their counts (deltas),
//! the reference events it carries and the next offset of every partition. A crash at any instant
//! therefore loses nothing and counts nothing twice: either the whole batch and its offsets are
//! stored, or none of it.
//!
//! The counting is the domain's ([`hoctap_domain::Ledger`]): this module only fetches the histories of
//! the subjects a batch touches (from a bounded cache, else from `subjects`), and writes what the
//! ledger computed. Nothing is read at start but the offsets and the count keys, so starting and
//! memory do not grow with the history.

use crate::counts::{self, DAYS, MONTHS};
use crate::delta_log::{self, Change};
use crate::error::db;
use crate::keys::{KeyOf, Keys};
use crate::query::instant;
use crate::{Deployment, Schema, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use hoctap_domain::codes::{CYCLE_YEARS, may_be_unit_code};
use hoctap_domain::{Deltas, Event, EventData, Ledger};
use std::collections::{HashMap, HashSet};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, Transaction};
use uuid::Uuid;

/// One event as the consumer received it, with where it came from.
#[derive(Clone, Debug)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Carries `recordedtime` (the log stamped it before producing).
    pub event: Event,
}

/// Where a record sat in the log: a refused record's position, whose offset advances with the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What one [`Projection::apply_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// New events folded and stored.
    pub events: usize,
    /// Events below a partition's stored next offset: delivered again after a crash or a rebalance.
    pub redelivered: usize,
    /// Events whose id was applied before (rule 3): their offsets advance, nothing else changes.
    pub duplicates: usize,
    /// (place, measure, day) changes written.
    pub deltas: usize,
}

/// The first and last year with a `counts_year` row: the campaign's years and the one after.
pub(crate) const FIRST_YEAR: i32 = *CYCLE_YEARS.start();
pub(crate) const LAST_YEAR: i32 = *CYCLE_YEARS.end() + 1;

/// The default bound of the subject cache (encoded histories, about 50 bytes per event).
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// The read models of one schema as this projector writes them: the count keys, the offsets it has
/// applied up to, and a bounded cache of subject histories.
///
/// Nothing here is ahead of PostgreSQL: the cache and the keys take a batch's changes only after its
/// `COMMIT` succeeded; after any failure everything is read again (keys and offsets) and the cache
/// starts empty, which is also right when the connection broke during `COMMIT` (then only PostgreSQL
/// knows whether the batch was stored).
#[derive(Debug)]
pub struct Projection {
    schema: Schema,
    /// Set when the projection feeds the serving generation of a deployment: every batch then checks
    /// that `schema` still serves ([`StoreError::Retired`] after a rebuild switched).
    serving: Option<Deployment>,
    /// Records of this topic are reference data only (its retractions name reference events): they
    /// never touch a subject's history, which only the owner of the subject's partition writes.
    reference_topic: Option<String>,
    cache_bytes: usize,
    state: Option<State>,
    /// Small blocks this member appended to the log since it last merged them.
    small_blocks: usize,
}

#[derive(Debug)]
struct State {
    keys: Keys,
    /// The next offset per (topic, partition) that PostgreSQL held when this state last wrote or read
    /// it: when the stored offset differs, another member applied that partition meanwhile.
    next: HashMap<(String, i32), i64>,
    cache: Cache,
}

/// Subject histories as stored, the least recently used dropped beyond a bound in bytes.
#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, Cached>,
    bytes: usize,
    clock: u64,
}

#[derive(Debug)]
struct Cached {
    history: Vec<u8>,
    /// The partition whose records wrote it: dropped when another member applied that partition.
    partition: (String, i32),
    used: u64,
}

impl Cache {
    fn get(&mut self, subject: &str) -> Option<&[u8]> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(subject).map(|c| {
            c.used = clock;
            &c.history[..]
        })
    }

    fn put(&mut self, subject: String, history: Vec<u8>, partition: (String, i32)) {
        self.clock += 1;
        self.bytes += history.len() + subject.len();
        let old = self.entries.insert(subject, Cached { history, partition, used: self.clock });
        if let Some(old) = old {
            self.bytes -= old.history.len();
        }
    }

    fn forget_partition(&mut self, partition: &(String, i32)) {
        self.entries.retain(|subject, c| {
            let keep = c.partition != *partition;
            if !keep {
                self.bytes -= c.history.len() + subject.len();
            }
            keep
        });
    }

    /// Drops the least recently used entries until at most `limit` bytes are held (to 3/4 of it, so
    /// that this runs rarely).
    fn bound(&mut self, limit: usize) {
        if self.bytes <= limit {
            return;
        }
        let mut by_use: Vec<(u64, String)> = self.entries.iter().map(|(s, c)| (c.used, s.clone())).collect();
        by_use.sort_unstable();
        for (_, subject) in by_use {
            if self.bytes <= limit / 4 * 3 {
                break;
            }
            if let Some(c) = self.entries.remove(&subject) {
                self.bytes -= c.history.len() + subject.len();
            }
        }
    }
}

impl Projection {
    /// Reads the stored offsets and count keys of `schema` (nothing else: the rest is fetched per batch).
    pub async fn load(client: &mut Client, schema: &Schema) -> Result<Projection, StoreError> {
        let state = State::load(client, schema).await?;
        Ok(Projection {
            schema: schema.clone(),
            serving: None,
            reference_topic: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
            state: Some(state),
            small_blocks: 0,
        })
    }

    /// Sets `deployment` up if needed ([`Deployment::ensure`]) and loads its serving generation; every
    /// batch checks that this generation still serves.
    pub async fn load_serving(client: &mut Client, deployment: &Deployment) -> Result<Projection, StoreError> {
        let schema = deployment.ensure(client).await?;
        let mut projection = Projection::load(client, &schema).await?;
        projection.serving = Some(deployment.clone());
        Ok(projection)
    }

    /// Names the topic of reference data (see [`Projection`]'s field); without it every retraction is
    /// also folded into its subject's history.
    pub fn with_reference_topic(mut self, topic: &str) -> Projection {
        self.reference_topic = Some(topic.to_owned());
        self
    }

    /// Bounds the cache of subject histories (bytes of encoded histories held between batches).
    pub fn with_cache_bytes(mut self, bytes: usize) -> Projection {
        self.cache_bytes = bytes;
        self
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The next offset per (topic, partition) as last read from or written to PostgreSQL; `None` while
    /// it must be read again after a failure.
    pub fn next_offsets(&self) -> Option<&HashMap<(String, i32), i64>> {
        self.state.as_ref().map(|s| &s.next)
    }

    /// Subjects and bytes held in the cache of histories (`None` while the state must be read again).
    pub fn cached(&self) -> Option<(usize, usize)> {
        self.state.as_ref().map(|s| (s.cache.entries.len(), s.cache.bytes))
    }

    /// Applies one batch in one transaction (see the module docs). Events below a partition's stored
    /// next offset and ids applied before are skipped; the offsets of the batch's partitions become
    /// their last offset + 1.
    ///
    /// Another consumer-group member may have applied events of these partitions since this member
    /// last did (a rebalance): the stored offsets are locked and compared, and the cached histories of
    /// such a partition are dropped (they are read again from PostgreSQL, under the lock).
    pub async fn apply_batch(&mut self, client: &mut Client, batch: &[Consumed]) -> Result<Applied, StoreError> {
        self.apply_batch_with_refused(client, batch, &[]).await
    }

    /// [`Projection::apply_batch`], where the records at `refused` (dead-lettered by the caller: not
    /// events) are consumed too: their offsets advance in the same transaction.
    ///
    /// Fails with [`StoreError::Gap`] when a partition's records in the batch start after its stored
    /// next offset: the consumer skipped records, and applying would lose them (seek back and retry).
    pub async fn apply_batch_with_refused(
        &mut self,
        client: &mut Client,
        batch: &[Consumed],
        refused: &[Position],
    ) -> Result<Applied, StoreError> {
        if self.state.is_none() {
            self.state = Some(State::load(client, &self.schema).await?);
        }
        let result = self.try_apply(client, batch, refused).await;
        if result.is_ok() && self.small_blocks >= delta_log::COMPACT_EVERY {
            // Outside the batch's transaction; a failure leaves small blocks, which is only slower.
            match delta_log::compact_log(client, &self.schema).await {
                Ok(merged) => tracing::debug!(schema = %self.schema, merged, "small log blocks merged"),
                Err(e) => tracing::warn!(schema = %self.schema, error = %e, "small log blocks not merged"),
            }
            self.small_blocks = 0;
        }
        if let Err(e) = &result {
            tracing::warn!(schema = %self.schema, error = %e, events = batch.len(), "batch not applied");
            self.state = State::load(client, &self.schema)
                .await
                .inspect_err(|e| {
                    tracing::warn!(schema = %self.schema, error = %e, "projection will be read again before the next batch")
                })
                .ok();
        }
        result
    }

    async fn try_apply(
        &mut self,
        client: &mut Client,
        batch: &[Consumed],
        refused: &[Position],
    ) -> Result<Applied, StoreError> {
        if let Some(c) = batch.iter().find(|c| c.event.recordedtime.is_none()) {
            return Err(StoreError::NotRecorded {
                id: c.event.id,
                topic: c.topic.clone(),
                partition: c.partition,
                offset: c.offset,
            });
        }
        let schema = &self.schema;
        let tx = client.transaction().await.map_err(db("beginning a batch"))?;
        // The count rows of a batch are merged in key order (the order every member locks them in);
        // sorting them under the default 4 MB spilled to temporary files on every batch.
        tx.batch_execute(BATCH_SETTINGS).await.map_err(db("beginning a batch"))?;
        if let Some(deployment) = &self.serving {
            deployment.check_serving(&tx, schema).await?;
        }
        let positions = batch
            .iter()
            .map(|c| (&c.topic, c.partition, c.offset))
            .chain(refused.iter().map(|p| (&p.topic, p.partition, p.offset)));
        let mut first: HashMap<(String, i32), i64> = HashMap::new();
        for (topic, partition, offset) in positions.clone() {
            let o = first.entry((topic.clone(), partition)).or_insert(offset);
            *o = (*o).min(offset);
        }
        let mut partitions: Vec<(String, i32)> = first.keys().cloned().collect();
        partitions.sort();
        let stored = lock_offsets(&tx, schema, &partitions).await?;
        for (key, &offset) in &first {
            let expected = stored.get(key).copied().unwrap_or(0);
            if offset > expected {
                return Err(StoreError::Gap { topic: key.0.clone(), partition: key.1, expected, got: offset });
            }
        }
        // From here on `self.state` is only read; it takes the batch after COMMIT.
        let state = self.state.as_mut().expect("apply_batch loads the state first");
        for key in &partitions {
            let now = stored.get(key).copied().unwrap_or(0);
            if state.next.get(key).copied().unwrap_or(0) != now {
                tracing::info!(schema = %schema, topic = key.0, partition = key.1, "another member applied this partition: its cached histories are read again");
                state.cache.forget_partition(key);
                state.next.insert(key.clone(), now);
            }
        }

        let mut applied = Applied::default();
        let mut in_batch = HashSet::new();
        let mut subject_events: Vec<&Consumed> = Vec::new();
        let mut reference: Vec<&Consumed> = Vec::new();
        for c in batch {
            if c.offset < stored.get(&(c.topic.clone(), c.partition)).copied().unwrap_or(0) {
                applied.redelivered += 1;
                continue;
            }
            if !in_batch.insert(c.event.id) {
                applied.duplicates += 1;
                continue;
            }
            let retraction = matches!(c.event.data, EventData::EventRetracted(_));
            if c.event.event_type().is_reference() || self.reference_topic.as_deref() == Some(c.topic.as_str()) {
                reference.push(c);
            } else {
                subject_events.push(c);
                if retraction && may_be_unit_code(&c.event.subject) {
                    reference.push(c);
                }
            }
        }

        // The histories of the touched subjects: cached, else stored, else empty.
        let started = std::time::Instant::now();
        let mut ledger = Ledger::new();
        let subjects: Vec<&str> = {
            let mut s: Vec<&str> = subject_events.iter().map(|c| c.event.subject.as_str()).collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        let mut missing = Vec::new();
        for &subject in &subjects {
            match state.cache.get(subject) {
                Some(history) => ledger.load(subject, history).map_err(|e| corrupt(schema, e))?,
                None => missing.push(subject),
            }
        }
        for (subject, history) in fetch_histories(&tx, schema, &missing).await? {
            ledger.load(&subject, &history).map_err(|e| corrupt(schema, e))?;
        }
        let fresh: Vec<&Consumed> = subject_events.into_iter().filter(|c| !ledger.knows(&c.event.id)).collect();
        let fresh_events: Vec<&Event> = fresh.iter().map(|c| &c.event).collect();
        let fetched = started.elapsed();
        let deltas = ledger.fold(&fresh_events);
        let folded = started.elapsed();

        // The log may change a key on a day whose net change as known now is 0: both need keys.
        let wanted =
            deltas.by_day.keys().map(|(p, m, _)| (p, m)).chain(deltas.by_recorded.keys().map(|(p, m, ..)| (p, m)));
        let added = state.keys.assign(&tx, schema, wanted).await?;
        let key = |of: &KeyOf| state.keys.id(of).or_else(|| added.id(of)).expect("every key was assigned");
        let (changed, changes) = write_counts(&tx, schema, key, &deltas).await?;
        applied.deltas = changed;
        let counted = started.elapsed();
        let touched: Vec<Touched> = {
            let mut last: HashMap<&str, &Consumed> = HashMap::new();
            for c in &fresh {
                last.insert(&c.event.subject, c);
            }
            let mut touched: Vec<Touched> = last
                .into_values()
                .map(|c| Touched { consumed: c, history: ledger.history(&c.event.subject) })
                .collect();
            touched.sort_by(|a, b| a.consumed.event.subject.cmp(&b.consumed.event.subject));
            touched
        };
        store_histories(&tx, schema, &touched).await?;
        // The batch's newest event: a subject recorded after a time is named by the row of the batch
        // that wrote that event.
        let newest = fresh.iter().filter_map(|c| c.event.recordedtime).max();
        record_subjects(&tx, schema, newest, &touched).await?;
        let histories_stored = started.elapsed();
        let reference_new = insert_reference(&tx, schema, &reference).await?;
        let subject_new: HashSet<Uuid> = fresh.iter().map(|c| c.event.id).collect();
        applied.events = subject_new.len() + reference_new.iter().filter(|id| !subject_new.contains(id)).count();
        applied.duplicates += batch.len() - applied.redelivered - applied.duplicates - applied.events;

        let mut next: HashMap<(String, i32), Progress> = HashMap::new();
        for (topic, partition, offset) in positions {
            let key = (topic.clone(), partition);
            if offset >= stored.get(&key).copied().unwrap_or(0) {
                let p = next.entry(key).or_insert(Progress { next: offset + 1, ..Progress::default() });
                p.next = p.next.max(offset + 1);
            }
        }
        // Each new event counts once, in the partition of its first copy in the batch.
        let mut uncounted: HashSet<Uuid> = subject_new.iter().chain(&reference_new).copied().collect();
        // Their transaction times, for "how many events by K" (a later copy of one has another).
        let mut recorded = Vec::new();
        for c in batch.iter().filter(|c| uncounted.remove(&c.event.id)) {
            if let Some(p) = next.get_mut(&(c.topic.clone(), c.partition)) {
                let at = c.event.recordedtime.expect("checked above");
                p.count(at);
                recorded.push(at);
            }
        }
        store_offsets(&tx, schema, &next).await?;
        let small = delta_log::append(&tx, schema, changes, delta_log::events_at(recorded), false).await?;
        tx.commit().await.map_err(db("committing a batch"))?;
        self.small_blocks += small;

        state.keys.extend(added);
        for Touched { consumed: c, history, .. } in touched {
            state.cache.put(c.event.subject.clone(), history, (c.topic.clone(), c.partition));
        }
        state.cache.bound(self.cache_bytes);
        state.next.extend(next.into_iter().map(|(k, p)| (k, p.next)));
        tracing::debug!(
            schema = %self.schema,
            events = applied.events,
            redelivered = applied.redelivered,
            duplicates = applied.duplicates,
            deltas = applied.deltas,
            subjects = subjects.len(),
            fetched_from_postgres = missing.len(),
            fetch_ms = fetched.as_millis() as u64,
            fold_ms = (folded - fetched).as_millis() as u64,
            counts_ms = (counted - folded).as_millis() as u64,
            histories_ms = (histories_stored - counted).as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "batch applied"
        );
        Ok(applied)
    }
}

fn corrupt(schema: &Schema, e: hoctap_domain::HistoryError) -> StoreError {
    StoreError::Corrupt { schema: schema.to_string(), detail: e.to_string() }
}

/// What a batch adds to one partition's offset row.
#[derive(Debug, Default)]
struct Progress {
    next: i64,
    events: i64,
    first_recorded: Option<i64>,
    last_recorded: Option<i64>,
}

impl Progress {
    fn count(&mut self, recorded: i64) {
        self.events += 1;
        self.first_recorded = Some(self.first_recorded.map_or(recorded, |r| r.min(recorded)));
        self.last_recorded = Some(self.last_recorded.map_or(recorded, |r| r.max(recorded)));
    }
}

impl State {
    /// Reads the offsets and keys in one snapshot.
    async fn load(client: &mut Client, schema: &Schema) -> Result<State, StoreError> {
        let tx = crate::error::snapshot(client, "beginning to load the projection").await?;
        let next = offsets(&tx, schema).await?;
        let keys = Keys::load(&tx, schema).await?;
        tx.commit().await.map_err(db("ending the load of the projection"))?;
        tracing::info!(schema = %schema, partitions = next.len(), "projection loaded");
        Ok(State { keys, next, cache: Cache::default() })
    }
}

/// The next offset to consume per (topic, partition), where a consumer seeks on assignment. A
/// partition that is absent starts at its beginning.
pub async fn offsets(client: &impl GenericClient, schema: &Schema) -> Result<HashMap<(String, i32), i64>, StoreError> {
    let rows = client
        .query(&format!("SELECT topic, partition, next_offset FROM {}.consumer_offsets", schema.ident()), &[])
        .await
        .map_err(db("reading the consumer offsets"))?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

/// Locks the offset rows of the batch's partitions (creating them at 0 if new) in one order, so that
/// two members never apply the same partition at once, and returns them.
async fn lock_offsets(
    tx: &Transaction<'_>,
    schema: &Schema,
    keys: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, StoreError> {
    let s = schema.ident();
    let topics: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let partitions: Vec<i32> = keys.iter().map(|k| k.1).collect();
    tx.execute(
        &format!(
            "INSERT INTO {s}.consumer_offsets (topic, partition, next_offset)
             SELECT topic, partition, 0 FROM UNNEST($1::text[], $2::int4[]) AS k(topic, partition)
             ON CONFLICT DO NOTHING"
        ),
        &[&topics, &partitions],
    )
    .await
    .map_err(db("creating offset rows"))?;
    let rows = tx
        .query(
            &format!(
                "SELECT o.topic, o.partition, o.next_offset FROM {s}.consumer_offsets o
                 JOIN UNNEST($1::text[], $2::int4[]) AS k(topic, partition) USING (topic, partition)
                 ORDER BY o.topic, o.partition FOR UPDATE OF o"
            ),
            &[&topics, &partitions],
        )
        .await
        .map_err(db("locking the offsets"))?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

async fn fetch_histories(
    tx: &Transaction<'_>,
    schema: &Schema,
    subjects: &[&str],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            &format!("SELECT subject, history FROM {}.subjects WHERE subject = ANY($1)", schema.ident()),
            &[&subjects],
        )
        .await
        .map_err(db("reading subject histories"))?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Streams `rows` with binary COPY (`statement` is a `COPY … FROM STDIN BINARY`).
async fn copy_rows<'a>(
    tx: &Transaction<'_>,
    statement: &str,
    types: &[Type],
    rows: impl Iterator<Item = Vec<&'a (dyn ToSql + Sync)>>,
    context: &'static str,
) -> Result<(), StoreError> {
    let sink = tx.copy_in(statement).await.map_err(db(context))?;
    let writer = BinaryCopyInWriter::new(sink, types);
    let mut writer = std::pin::pin!(writer);
    for row in rows {
        writer.as_mut().write(&row).await.map_err(db(context))?;
    }
    writer.finish().await.map_err(db(context))?;
    Ok(())
}

/// Streams rows into a temporary table (created for the session on first use, emptied at every
/// commit), so that one statement can then merge them.
async fn stage<'a>(
    tx: &Transaction<'_>,
    table: &str,
    columns: &str,
    types: &[Type],
    rows: impl Iterator<Item = Vec<&'a (dyn ToSql + Sync)>>,
) -> Result<(), StoreError> {
    tx.batch_execute(&format!("CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"))
        .await
        .map_err(db("creating a staging table"))?;
    copy_rows(tx, &format!("COPY {table} FROM STDIN BINARY"), types, rows, "staging rows").await
}

/// Adds the batch's deltas to the counts as known now (`counts_year`, `counts_month`). Returns the
/// number of (key, day) changes, and the changes with their recorded times for the log.
async fn write_counts(
    tx: &Transaction<'_>,
    schema: &Schema,
    key: impl Fn(&KeyOf) -> i32,
    deltas: &Deltas,
) -> Result<(usize, Vec<Change>), StoreError> {
    let s = schema.ident();
    let mut months: HashMap<(NaiveDate, i32), [i32; DAYS]> = HashMap::new();
    let mut years: HashMap<(i16, i32), (i64, [i32; MONTHS])> = HashMap::new();
    for ((place, measure, day), &n) in &deltas.by_day {
        let k = key(&(place.clone(), *measure));
        let date = day.date();
        let first = date.with_day(1).expect("the first of a month exists");
        let n32 = i32::try_from(n).expect("a batch changes a count by less than 2^31");
        months.entry((first, k)).or_insert([0; DAYS])[date.day0() as usize] += n32;
        for year in FIRST_YEAR..=LAST_YEAR {
            if year == date.year() {
                years.entry((year as i16, k)).or_default().1[date.month0() as usize] += n32;
            } else if year > date.year() {
                years.entry((year as i16, k)).or_default().0 += n;
            }
        }
    }
    let mut month_rows: Vec<_> = months.into_iter().collect();
    month_rows.sort_unstable_by_key(|(k, _)| *k);
    let mut types = vec![Type::DATE, Type::INT4];
    types.extend([Type::INT4; DAYS]);
    stage(
        tx,
        "hoctap_stage_month",
        &counts::month_stage_columns(),
        &types,
        month_rows.iter().map(|((month, key), days)| {
            let mut row: Vec<&(dyn ToSql + Sync)> = vec![month, key];
            row.extend(days.iter().map(|d| d as &(dyn ToSql + Sync)));
            row
        }),
    )
    .await?;
    let days = counts::day_columns();
    tx.execute(
        &format!(
            "INSERT INTO {s}.counts_month AS x (month, key, {days})
             SELECT month, key, {days} FROM hoctap_stage_month ORDER BY month, key
             ON CONFLICT (month, key) DO UPDATE SET {}",
            counts::add_excluded(&days)
        ),
        &[],
    )
    .await
    .map_err(db("adding to the month counts"))?;
    let mut year_rows: Vec<_> = years.into_iter().collect();
    year_rows.sort_unstable_by_key(|(k, _)| *k);
    let mut types = vec![Type::INT2, Type::INT4, Type::INT8];
    types.extend([Type::INT4; MONTHS]);
    stage(
        tx,
        "hoctap_stage_year",
        &counts::year_stage_columns(),
        &types,
        year_rows.iter().map(|((year, key), (before, months))| {
            let mut row: Vec<&(dyn ToSql + Sync)> = vec![year, key, before];
            row.extend(months.iter().map(|m| m as &(dyn ToSql + Sync)));
            row
        }),
    )
    .await?;
    let months = counts::month_columns();
    tx.execute(
        &format!(
            "INSERT INTO {s}.counts_year AS x (year, key, before, {months})
             SELECT year, key, before, {months} FROM hoctap_stage_year ORDER BY year, key
             ON CONFLICT (year, key) DO UPDATE SET {}",
            counts::add_excluded(&format!("before, {months}"))
        ),
        &[],
    )
    .await
    .map_err(db("adding to the year counts"))?;

    // The log is insert-only: one block for the batch (appended with its events' times).
    let changes = deltas
        .by_recorded
        .iter()
        .map(|((place, measure, day, recorded), &n)| Change {
            recorded: *recorded,
            key: key(&(place.clone(), *measure)),
            day: day.0,
            n: i32::try_from(n).expect("a batch changes a count by less than 2^31"),
        })
        .collect();
    Ok((deltas.by_day.len(), changes))
}

/// A subject a batch touched, and its new history.
struct Touched<'a> {
    /// The batch's last new event of the subject (its partition keys the cached history).
    consumed: &'a Consumed,
    history: Vec<u8>,
}

/// Replaces the histories of the touched subjects (sorted by subject, as the caller gives them).
///
/// The rows go as array parameters, in statements of at most [`HISTORY_CHUNK_BYTES`] sent without
/// waiting for each other. A staging table (and one statement for the batch) made PostgreSQL write a
/// batch's histories (≈ 20 000 of ≈ 1.3 kB at 10 M events) to temporary files: past the session's
/// temporary buffers, then past `work_mem` to sort or to hold the rows of the unnested arrays. Only
/// the owner of a subject's partition writes its row, so no order is needed against other members.
async fn store_histories(tx: &Transaction<'_>, schema: &Schema, touched: &[Touched<'_>]) -> Result<(), StoreError> {
    if touched.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare(&format!(
            "INSERT INTO {}.subjects AS x (subject, history)
             SELECT * FROM UNNEST($1::text[], $2::bytea[])
             ON CONFLICT (subject) DO UPDATE SET history = EXCLUDED.history",
            schema.ident()
        ))
        .await
        .map_err(db("storing subject histories"))?;
    let mut chunks: Vec<(Vec<&str>, Vec<&[u8]>)> = Vec::new();
    let mut bytes = 0;
    for t in touched {
        if chunks.is_empty() || bytes + t.history.len() > HISTORY_CHUNK_BYTES {
            chunks.push((Vec::new(), Vec::new()));
            bytes = 0;
        }
        let (subjects, histories) = chunks.last_mut().expect("a chunk was opened");
        subjects.push(&t.consumed.event.subject);
        histories.push(&t.history);
        bytes += t.history.len();
    }
    let params: Vec<[&(dyn ToSql + Sync); 2]> = chunks.iter().map(|(s, h)| [s as _, h as _]).collect();
    let writes = params.iter().map(|p| tx.execute(&statement, p));
    futures_util::future::try_join_all(writes).await.map_err(db("storing subject histories"))?;
    Ok(())
}

/// Settings of a batch's transaction.
const BATCH_SETTINGS: &str = "SET LOCAL work_mem = '64MB'";

/// The most history bytes one statement carries (but one history, whatever its size): PostgreSQL
/// holds a statement's unnested rows within `work_mem`, and a batch's histories grow with its
/// subjects' histories, which a fixed setting would not bound.
const HISTORY_CHUNK_BYTES: usize = 2 << 20;

/// Appends the subjects a batch wrote with the newest recorded time among their events
/// (`recorded_subjects`: what an audit diff reads the histories of).
async fn record_subjects(
    tx: &Transaction<'_>,
    schema: &Schema,
    newest: Option<i64>,
    touched: &[Touched<'_>],
) -> Result<(), StoreError> {
    let Some(newest) = newest else { return Ok(()) };
    let subjects: Vec<&str> = touched.iter().map(|t| t.consumed.event.subject.as_str()).collect();
    tx.execute(
        &format!("INSERT INTO {}.recorded_subjects (last_recorded, subjects) VALUES ($1, $2)", schema.ident()),
        &[&instant(newest), &subjects],
    )
    .await
    .map_err(db("recording the subjects a batch wrote"))?;
    Ok(())
}

/// Inserts the reference events not stored yet; returns the ids inserted.
async fn insert_reference(
    tx: &Transaction<'_>,
    schema: &Schema,
    events: &[&Consumed],
) -> Result<Vec<Uuid>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = events.iter().map(|c| c.event.id).collect();
    let types: Vec<&str> = events.iter().map(|c| c.event.event_type().stem()).collect();
    let recorded: Vec<DateTime<Utc>> =
        events.iter().map(|c| instant(c.event.recordedtime.expect("checked by the caller"))).collect();
    let bodies: Vec<String> = events.iter().map(|c| c.event.to_json()).collect();
    let rows = tx
        .query(
            &format!(
                "INSERT INTO {}.reference_events (id, type, recorded, body)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[])
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                schema.ident()
            ),
            &[&ids, &types, &recorded, &bodies],
        )
        .await
        .map_err(db("storing reference events"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn store_offsets(
    tx: &Transaction<'_>,
    schema: &Schema,
    next: &HashMap<(String, i32), Progress>,
) -> Result<(), StoreError> {
    if next.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = next.keys().map(|k| k.0.as_str()).collect();
    let partitions: Vec<i32> = next.keys().map(|k| k.1).collect();
    let values: Vec<i64> = next.values().map(|p| p.next).collect();
    let events: Vec<i64> = next.values().map(|p| p.events).collect();
    let firsts: Vec<Option<DateTime<Utc>>> = next.values().map(|p| p.first_recorded.map(instant)).collect();
    let lasts: Vec<Option<DateTime<Utc>>> = next.values().map(|p| p.last_recorded.map(instant)).collect();
    tx.execute(
        &format!(
            "INSERT INTO {s}.consumer_offsets AS x (topic, partition, next_offset, updated_at, events, first_recorded, last_recorded)
             SELECT topic, partition, next_offset, now(), events, first_recorded, last_recorded
             FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::int8[], $5::timestamptz[], $6::timestamptz[])
                 AS t(topic, partition, next_offset, events, first_recorded, last_recorded)
             ON CONFLICT (topic, partition) DO UPDATE
                 SET next_offset = GREATEST(x.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at,
                     events = x.events + EXCLUDED.events,
                     first_recorded = LEAST(x.first_recorded, EXCLUDED.first_recorded),
                     last_recorded = GREATEST(x.last_recorded, EXCLUDED.last_recorded)",
            s = schema.ident()
        ),
        &[&topics, &partitions, &values, &events, &firsts, &lasts],
    )
    .await
    .map_err(db("storing offsets"))?;
    Ok(())
}

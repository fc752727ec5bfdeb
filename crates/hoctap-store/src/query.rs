//! Questions answered from the read models: counts per place on a valid date (as known now from two
//! rows per key, as known at an earlier time from the transaction-time log) and the review built on
//! them by the domain crate.
//!
//! Readers keep a [`ReadCache`]: the engine of the reference events and the count keys of the
//! generation they read, checked against one index lookup per question and read again only when
//! they changed.

use crate::counts::{self, DAYS, MONTHS};
use crate::delta_log::{self, Side};
use crate::error::db;
use crate::keys::Keys;
use crate::projection::{FIRST_YEAR, LAST_YEAR};
use crate::{Schema, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use hoctap_domain::{Day, Engine, Event, PlaceCounts, Query, Recorded, Review};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_postgres::{Client, GenericClient};

/// What readers of one deployment keep between questions (see the module docs). Share one per process.
#[derive(Debug, Default)]
pub struct ReadCache {
    current: Mutex<Option<Arc<Reference>>>,
}

/// The reference engine and count keys of one generation, as of one version of both.
#[derive(Debug)]
pub(crate) struct Reference {
    schema: Schema,
    /// The largest `seq` of `reference_events` folded into `engine`, and how many count keys there
    /// were (keys are never deleted, so an equal number means the same keys).
    version: (i64, i64),
    pub(crate) engine: Arc<Engine>,
    pub(crate) keys: Keys,
}

impl ReadCache {
    pub fn new() -> ReadCache {
        ReadCache::default()
    }

    /// The reference engine and keys of `schema`, read again when either changed.
    pub(crate) async fn get(&self, client: &impl GenericClient, schema: &Schema) -> Result<Arc<Reference>, StoreError> {
        let s = schema.ident();
        let row = client
            .query_one(
                &format!(
                    "SELECT (SELECT coalesce(max(seq), 0) FROM {s}.reference_events),
                            (SELECT count(*) FROM {s}.count_keys)"
                ),
                &[],
            )
            .await
            .map_err(db("reading the version of the reference data"))?;
        let version: (i64, i64) = (row.get(0), row.get(1));
        let cached = self.current.lock().expect("not poisoned").clone();
        let cached = cached.filter(|r| r.schema == *schema);
        if let Some(r) = &cached
            && r.version == version
        {
            return Ok(r.clone());
        }
        let engine = match cached.filter(|r| r.version.0 == version.0) {
            Some(r) => r.engine.clone(),
            None => Arc::new(reference_engine(client, schema, version.0).await?),
        };
        let keys = Keys::load(client, schema).await?;
        let fresh = Arc::new(Reference { schema: schema.clone(), version, engine, keys });
        *self.current.lock().expect("not poisoned") = Some(fresh.clone());
        Ok(fresh)
    }
}

/// An engine of the reference events up to `seq`.
async fn reference_engine(client: &impl GenericClient, schema: &Schema, seq: i64) -> Result<Engine, StoreError> {
    let rows = client
        .query(&format!("SELECT body FROM {}.reference_events WHERE seq <= $1", schema.ident()), &[&seq])
        .await
        .map_err(db("reading reference events"))?;
    let mut engine = Engine::new();
    for row in rows {
        let event = Event::from_json_recorded(row.get::<_, &str>(0).as_bytes())
            .map_err(|r| StoreError::Corrupt { schema: schema.to_string(), detail: format!("a stored event: {r}") })?;
        engine.apply(&event);
    }
    Ok(engine)
}

/// Counts per key on `day` as known now: `counts_year` (before the year, and its months before
/// month(D)) plus `counts_month` (the days of month(D) up to D); outside the campaign's years the
/// months in between are summed whole. `keys` restricts the answer (None: every key).
pub(crate) async fn counts_now(
    client: &impl GenericClient,
    schema: &Schema,
    day: Day,
    keys: Option<&[i32]>,
) -> Result<HashMap<i32, i64>, StoreError> {
    let s = schema.ident();
    let d = day.date();
    let month = first_of_month(d);
    let mut counts: HashMap<i32, i64> = HashMap::new();
    let filter = if keys.is_some() { "AND key = ANY($2)" } else { "AND $2::int4[] IS NULL" };
    let keys_param: Option<Vec<i32>> = keys.map(<[i32]>::to_vec);
    // Whole months summed: before 2021 every month before month(D); after the last year the months
    // since its end. Empty in the campaign's years.
    let year_row = d.year().clamp(FIRST_YEAR, LAST_YEAR);
    let whole_from = if d.year() < FIRST_YEAR {
        NaiveDate::from_ymd_opt(1, 1, 1).expect("a date")
    } else {
        NaiveDate::from_ymd_opt(LAST_YEAR + 1, 1, 1).expect("a date")
    };
    if d.year() >= FIRST_YEAR {
        // In the last year row's year or after it, every month of that year counts; on a month's
        // last day, that month counts whole from its year row.
        let months_before = if d.year() > LAST_YEAR { MONTHS } else { months_counted(d) };
        let rows = client
            .query(
                &format!(
                    "SELECT key, {} FROM {s}.counts_year WHERE year = $1 {filter}",
                    counts::sum_year(months_before)
                ),
                &[&(year_row as i16), &keys_param],
            )
            .await
            .map_err(db("reading the year counts"))?;
        for row in rows {
            *counts.entry(row.get(0)).or_default() += row.get::<_, i64>(1);
        }
    }
    if whole_from < month {
        let rows = client
            .query(
                &format!(
                    "SELECT key, {} FROM {s}.counts_month WHERE month >= $1 AND month < $3 {filter}",
                    counts::sum_month(DAYS)
                ),
                &[&whole_from, &keys_param, &month],
            )
            .await
            .map_err(db("reading the month counts"))?;
        for row in rows {
            *counts.entry(row.get(0)).or_default() += row.get::<_, i64>(1);
        }
    }
    if is_month_end(d) && (FIRST_YEAR..=LAST_YEAR).contains(&d.year()) {
        return Ok(counts);
    }
    let rows = client
        .query(
            &format!(
                "SELECT key, {} FROM {s}.counts_month WHERE month = $1 {filter}",
                counts::sum_month(d.day() as usize)
            ),
            &[&month, &keys_param],
        )
        .await
        .map_err(db("reading the day counts"))?;
    for row in rows {
        *counts.entry(row.get(0)).or_default() += row.get::<_, i64>(1);
    }
    Ok(counts)
}

/// Every event applied, as the offset rows count them: how many, the newest and the first recorded
/// time.
async fn recorded_now(client: &impl GenericClient, schema: &Schema) -> Result<(i64, Recorded), StoreError> {
    let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
    let row = client
        .query_one(
            &format!(
                "SELECT coalesce(sum(events), 0)::int8, max(last_recorded), min(first_recorded)
                 FROM {}.consumer_offsets",
                schema.ident()
            ),
            &[],
        )
        .await
        .map_err(db("counting the events recorded"))?;
    let events: i64 = row.get(0);
    Ok((events, Recorded { events: 0, newest: micros(row.get(1)), first: micros(row.get(2)) }))
}

/// The keys a question reads, each with a slot of its own in dense per-key sums.
pub(crate) struct Slots {
    /// Slot per key (keys are small positive integers); [`NO_SLOT`] for a key not read.
    by_key: Vec<u32>,
    keys: Vec<i32>,
}

const NO_SLOT: u32 = u32::MAX;

impl Slots {
    pub(crate) fn new(keys: &[i32]) -> Slots {
        let size = keys.iter().map(|&k| k.max(0) as usize + 1).max().unwrap_or(0);
        let mut by_key = vec![NO_SLOT; size];
        for (slot, &key) in keys.iter().enumerate() {
            by_key[key.max(0) as usize] = slot as u32;
        }
        Slots { by_key, keys: keys.to_vec() }
    }

    pub(crate) fn slot(&self, key: i32) -> Option<usize> {
        let slot = *self.by_key.get(usize::try_from(key).ok()?)?;
        (slot != NO_SLOT).then_some(slot as usize)
    }

    pub(crate) fn keys(&self) -> &[i32] {
        &self.keys
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Dense sums per slot, bucketed by the smallest of some ascending bounds at or after their day, then
/// made cumulative: bucket j holds the sums of the changes on days ≤ bound j.
struct Buckets {
    bounds: Vec<i32>,
    width: usize,
    sums: Vec<i64>,
}

impl Buckets {
    fn new(mut bounds: Vec<i32>, width: usize) -> Buckets {
        bounds.sort_unstable();
        bounds.dedup();
        let sums = vec![0; bounds.len() * width];
        Buckets { bounds, width, sums }
    }

    fn add(&mut self, day: i32, slot: usize, n: i64) {
        let j = self.bounds.partition_point(|&b| b < day);
        if j < self.bounds.len() {
            self.sums[j * self.width + slot] += n;
        }
    }

    fn cumulative(mut self) -> Buckets {
        for at in self.width..self.sums.len() {
            self.sums[at] += self.sums[at - self.width];
        }
        self
    }

    /// The cumulative sums up to `bound` (one of the bounds).
    fn at(&self, bound: i32) -> &[i64] {
        let j = self.bounds.binary_search(&bound).expect("one of the bounds");
        &self.sums[j * self.width..(j + 1) * self.width]
    }
}

/// What turns counts as known now into counts as known at `known_at`, for each of `dates`: the day
/// whose counts as known now to read, and the changes to add to them, one per slot of `slots`.
///
/// With M = min(D, the day of K in Vietnam), the counts on D as known at K are the counts on M as
/// known now, less the changes recorded after K on days ≤ M, plus (when D is after K's day) the
/// changes recorded by K on days in (M, D]. The log's blocks are split by lateness
/// ([`delta_log::split`]), so the first part reads the on-time blocks recorded within a week after K
/// and the late corrections recorded after K, and the second the on-time blocks of the week before K
/// and the future-dated changes pending at K: what the city holds near K, not the history.
pub(crate) async fn known_at_corrections(
    client: &impl GenericClient,
    schema: &Schema,
    dates: &[Day],
    known_at: i64,
    slots: &Slots,
) -> Result<(Vec<Day>, Vec<Vec<i64>>), StoreError> {
    let k_day = Day::of_instant(known_at);
    let read_on: Vec<Day> = dates.iter().map(|&d| d.min(k_day)).collect();
    let mut later = Buckets::new(read_on.iter().map(|d| d.0).collect(), slots.len());
    let until = read_on.iter().max().map_or(i32::MIN, |d| d.0);
    let window = delta_log::Window { recorded: Side::After(known_at), after_day: i32::MIN, until_day: until };
    let subtract = |key, day, n: i32| {
        if let Some(slot) = slots.slot(key) {
            later.add(day, slot, i64::from(n));
        }
    };
    let started = std::time::Instant::now();
    let after = delta_log::scan(client, schema, window, subtract).await?;
    let after_ms = started.elapsed().as_secs_f64() * 1000.0;
    let later = later.cumulative();
    let ahead: Vec<i32> = dates.iter().filter(|&&d| d > k_day).map(|d| d.0).collect();
    let mut pending = Buckets::new(ahead.clone(), slots.len());
    let mut by_k = delta_log::Scanned::default();
    if let Some(&until) = ahead.iter().max() {
        let window = delta_log::Window { recorded: Side::UpTo(known_at), after_day: k_day.0, until_day: until };
        let add = |key, day, n: i32| {
            if let Some(slot) = slots.slot(key) {
                pending.add(day, slot, i64::from(n));
            }
        };
        by_k = delta_log::scan(client, schema, window, add).await?;
    }
    let pending = pending.cumulative();
    tracing::debug!(
        %schema,
        dates = dates.len(),
        after_blocks = after.blocks,
        after_kib = after.bytes / 1024,
        after_ms,
        pending_blocks = by_k.blocks,
        pending_kib = by_k.bytes / 1024,
        pending_ms = started.elapsed().as_secs_f64() * 1000.0 - after_ms,
        "known-at corrections read"
    );
    let corrections = dates
        .iter()
        .zip(&read_on)
        .map(|(&d, &m)| {
            let mut out: Vec<i64> = later.at(m.0).iter().map(|n| -n).collect();
            if d > k_day {
                out.iter_mut().zip(pending.at(d.0)).for_each(|(o, n)| *o += n);
            }
            out
        })
        .collect();
    Ok((read_on, corrections))
}

/// What was recorded by `known_at` (None: now): from the offset rows as known now, from the log's
/// blocks as known at K.
async fn recorded_by(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: Option<i64>,
) -> Result<Recorded, StoreError> {
    let (all, now) = recorded_now(client, schema).await?;
    let (events, newest) = match known_at {
        None => (all, now.newest),
        Some(k) => delta_log::events_by(client, schema, k).await?,
    };
    let events = u64::try_from(events).map_err(|_| StoreError::Corrupt {
        schema: schema.to_string(),
        detail: format!("a negative number of events recorded ({events})"),
    })?;
    Ok(Recorded { events, newest, first: now.first })
}

/// Counts per key on `day` as known at `known_at` (None: now), and what was recorded by then.
async fn counts_by_key(
    client: &impl GenericClient,
    schema: &Schema,
    keys: &Keys,
    day: Day,
    known_at: Option<i64>,
) -> Result<(HashMap<i32, i64>, Recorded), StoreError> {
    let recorded = recorded_by(client, schema, known_at).await?;
    let Some(k) = known_at else {
        return Ok((counts_now(client, schema, day, None).await?, recorded));
    };
    let slots = Slots::new(&keys.filter(|_| true));
    let (read_on, corrections) = known_at_corrections(client, schema, &[day], k, &slots).await?;
    let mut counts = counts_now(client, schema, read_on[0], None).await?;
    for (&key, &n) in slots.keys().iter().zip(&corrections[0]).filter(|(_, n)| **n != 0) {
        *counts.entry(key).or_default() += n;
    }
    Ok((counts, recorded))
}

/// Counts per key as counts per place; a negative count is corruption.
pub(crate) fn by_place(
    schema: &Schema,
    keys: &Keys,
    counts: impl Iterator<Item = (i32, i64)>,
    day: Day,
) -> Result<PlaceCounts, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { schema: schema.to_string(), detail };
    let mut out = PlaceCounts::new();
    for (key, n) in counts.filter(|(_, n)| *n != 0) {
        let of = keys.of(key).ok_or_else(|| corrupt(format!("count key {key} is not in count_keys")))?;
        let n = u64::try_from(n).map_err(|_| corrupt(format!("count {n} of {:?} at {:?} on {day}", of.1, of.0)))?;
        out.insert(of.clone(), n);
    }
    Ok(out)
}

/// Counts per place and measure on `day`, as known now (`known_at` None) or as known at `known_at`
/// (UTC microseconds). Places are not resolved to units here: [`Engine::review_from_counts`] does
/// that for `day`.
pub async fn place_counts(
    client: &impl GenericClient,
    schema: &Schema,
    cache: &ReadCache,
    day: Day,
    known_at: Option<i64>,
) -> Result<PlaceCounts, StoreError> {
    let reference = cache.get(client, schema).await?;
    let (counts, _) = counts_by_key(client, schema, &reference.keys, day, known_at).await?;
    by_place(schema, &reference.keys, counts.into_iter(), day)
}

/// The review of `query` from the read models: counts from [`place_counts`], and the engine of the
/// reference events to place them, find denominators and check targets (it honours
/// `query.known_at` itself). Everything is read in one snapshot.
pub async fn review(
    client: &mut Client,
    schema: &Schema,
    cache: &ReadCache,
    query: &Query,
) -> Result<Review, StoreError> {
    let tx = crate::error::snapshot(client, "beginning a review").await?;
    let reference = cache.get(&tx, schema).await?;
    let review = review_in(&tx, schema, &reference, query).await?;
    tx.commit().await.map_err(db("ending a review"))?;
    Ok(review)
}

/// [`review`] in a snapshot the caller holds, with the reference it read there.
pub(crate) async fn review_in(
    client: &impl GenericClient,
    schema: &Schema,
    reference: &Reference,
    query: &Query,
) -> Result<Review, StoreError> {
    let (counts, recorded) = counts_by_key(client, schema, &reference.keys, query.as_of, query.known_at).await?;
    let counts = by_place(schema, &reference.keys, counts.into_iter(), query.as_of)?;
    Ok(reference.engine.review_from_counts(query, &counts, recorded)?)
}

/// The review approved by decision `number` (`review.approved`, found among the reference events as
/// known now), answered as [`review`] answers its question and marked with the decision: byte for byte
/// the embedded `Engine::approved_review` but for `generated_at`.
pub async fn review_approved(
    client: &mut Client,
    schema: &Schema,
    cache: &ReadCache,
    number: &str,
) -> Result<Review, StoreError> {
    let approval = cache.get(&*client, schema).await?.engine.approval(number, None)?;
    let mut review = review(client, schema, cache, &approval.query()).await?;
    approval.mark(&mut review);
    Ok(review)
}

/// The approved reviews as known at `known_at` (`None`: now), found among the reference events the
/// read models hold: [`Engine::approvals`], the list the embedded engine gives.
pub async fn approvals(
    client: &impl GenericClient,
    schema: &Schema,
    cache: &ReadCache,
    known_at: Option<i64>,
) -> Result<Vec<hoctap_domain::Approval>, StoreError> {
    Ok(cache.get(client, schema).await?.engine.approvals(known_at))
}

/// The events the read models hold as recorded by `known_at` (all of them when `None`), the newest
/// `recordedtime` among them and the first of all: what a review states it counted. As known now
/// from the offset rows; as known at K from the log's blocks (summed by PostgreSQL up to K, read only
/// where they straddle K).
pub async fn recorded(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: Option<i64>,
) -> Result<Recorded, StoreError> {
    recorded_by(client, schema, known_at).await
}

pub(crate) fn is_month_end(d: NaiveDate) -> bool {
    d.succ_opt().is_none_or(|next| next.month() != d.month())
}

/// How many months of `d`'s year a year row contributes whole on `d`: those before its month, and its
/// month too on its last day (the month row is then not needed).
pub(crate) fn months_counted(d: NaiveDate) -> usize {
    d.month0() as usize + usize::from(is_month_end(d))
}

pub(crate) fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("the first of a month exists")
}

pub(crate) fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The engine of the reference events the read models hold (geography, baselines, targets, approvals),
/// as known now: what the API asks where a unit lies (`Engine::provinces_of`) before it answers a
/// reader allowed one province.
pub async fn reference(
    client: &impl GenericClient,
    schema: &Schema,
    cache: &ReadCache,
) -> Result<Arc<Engine>, StoreError> {
    Ok(cache.get(client, schema).await?.engine.clone())
}

/// The administrative units established by `day` as known at `known_at` (`None`: as known now): those
/// in force with their parent, and those dissolved by then with their successor in force. The answer
/// of [`Engine::units_on`] over the reference events the read models hold, the list `hoctap units`
/// gives from the embedded log.
pub async fn units(
    client: &impl GenericClient,
    schema: &Schema,
    cache: &ReadCache,
    day: Day,
    known_at: Option<i64>,
) -> Result<Vec<hoctap_domain::review::ListedUnit>, StoreError> {
    let reference = cache.get(client, schema).await?;
    Ok(reference.engine.units_on(day, known_at))
}

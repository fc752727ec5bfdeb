//! Questions answered from the read models: counts per place on a valid date (as known now from two
//! rows per key, as known at an earlier time from the transaction-time log) and the review built on
//! them by the domain crate.
//!
//! Readers keep a [`ReadCache`]: the engine of the reference events and the count keys of the
//! generation they read, checked against one index lookup per question and read again only when
//! they changed.

use crate::counts::{self, DAYS, MONTHS};
use crate::delta_log::{self, Part};
use crate::error::db;
use crate::keys::Keys;
use crate::projection::{FIRST_YEAR, LAST_YEAR};
use crate::{Schema, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use hoctap_domain::{Day, Engine, Event, PlaceCounts, Query, Recorded, Review};
use std::collections::{HashMap, HashSet};
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

/// How a question as known at K reads the transaction-time log: the part recorded up to K, or the
/// counts as known now minus the part recorded after K, whichever holds less of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogSide {
    /// K is at or after every recorded event: as known now.
    Now,
    Before,
    After,
}

/// Which side of K to read. Each partition's offset row keeps how many events it applied and the
/// span of their recorded times (stamped in order per partition): the events before K are estimated
/// per partition as if spread evenly over its span.
pub(crate) async fn log_side(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: i64,
) -> Result<LogSide, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT events, first_recorded, last_recorded FROM {}.consumer_offsets WHERE events > 0",
                schema.ident()
            ),
            &[],
        )
        .await
        .map_err(db("reading the span of recorded times"))?;
    let (mut before, mut after) = (0.0, 0.0);
    for row in rows {
        let (events, first, last): (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
            (row.get(0), row.get(1), row.get(2));
        let (Some(first), Some(last)) = (first, last) else { continue };
        let (first, last) = (first.timestamp_micros(), last.timestamp_micros());
        let share = if known_at >= last {
            1.0
        } else if known_at < first {
            0.0
        } else {
            (known_at - first) as f64 / (last - first).max(1) as f64
        };
        before += share * events as f64;
        after += (1.0 - share) * events as f64;
    }
    Ok(if after == 0.0 {
        LogSide::Now
    } else if before < after {
        LogSide::Before
    } else {
        LogSide::After
    })
}

/// The part of the log that `side` of `known_at` reads (`None`: none, the counts as known now answer).
fn part(side: LogSide, known_at: i64) -> Option<Part> {
    match side {
        LogSide::Now => None,
        LogSide::Before => Some(Part::UpTo(known_at)),
        LogSide::After => Some(Part::After(known_at)),
    }
}

/// Sums of the log per key and day on days ≤ `until`, on `side` of `known_at`, for the `keys` given,
/// sorted by day.
pub(crate) async fn log_sums(
    client: &impl GenericClient,
    schema: &Schema,
    side: LogSide,
    known_at: i64,
    until: Day,
    keys: &[i32],
) -> Result<Vec<(i32, Day, i64)>, StoreError> {
    let Some(part) = part(side, known_at) else { return Ok(Vec::new()) };
    let wanted: HashSet<i32> = keys.iter().copied().collect();
    let mut sums: HashMap<(i32, i32), i64> = HashMap::new();
    let change = |c: delta_log::Change| {
        if c.day <= until.0 && wanted.contains(&c.key) {
            *sums.entry((c.day, c.key)).or_default() += i64::from(c.n);
        }
    };
    delta_log::scan(client, schema, part, change, |_| {}).await?;
    let mut out: Vec<(i32, Day, i64)> = sums.into_iter().map(|((day, key), n)| (key, Day(day), n)).collect();
    out.sort_unstable_by_key(|&(key, day, _)| (day, key));
    Ok(out)
}

/// What one pass over one side of the log found.
#[derive(Debug, Default)]
struct LogTotals {
    /// Sums per key of the changes on that side on days ≤ the date asked (when one was).
    sums: Vec<(i32, i64)>,
    /// Events recorded on that side of K.
    events: i64,
    /// The newest recorded time ≤ K among the events of the blocks read.
    newest: Option<i64>,
}

/// One pass over `side` of `known_at`: the changes on days ≤ `until` summed per key (none when
/// `until` is `None`), and the events.
async fn log_totals(
    client: &impl GenericClient,
    schema: &Schema,
    side: LogSide,
    known_at: i64,
    until: Option<Day>,
) -> Result<LogTotals, StoreError> {
    let Some(part) = part(side, known_at) else { return Ok(LogTotals::default()) };
    // Keys are small positive integers: one slot each.
    let mut sums: Vec<i64> = Vec::new();
    let (mut events, mut newest) = (0i64, None);
    let change = |c: delta_log::Change| {
        if until.is_some_and(|d| c.day <= d.0) {
            let at = c.key.max(0) as usize;
            if at >= sums.len() {
                sums.resize(at + 1, 0);
            }
            sums[at] += i64::from(c.n);
        }
    };
    let event = |e: delta_log::Events| {
        if part.holds(e.recorded) {
            events += i64::from(e.n);
        }
        if e.recorded <= known_at {
            newest = newest.max(Some(e.recorded));
        }
    };
    delta_log::scan(client, schema, part, change, event).await?;
    let sums = sums.into_iter().enumerate().filter(|(_, n)| *n != 0).map(|(key, n)| (key as i32, n)).collect();
    Ok(LogTotals { sums, events, newest })
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

/// What was recorded by `known_at` given the offset rows' totals (`all`, `now`) and one pass over
/// `side` of the log.
async fn recorded_by(
    client: &impl GenericClient,
    schema: &Schema,
    (all, now): (i64, Recorded),
    side: LogSide,
    known_at: i64,
    log: &LogTotals,
) -> Result<Recorded, StoreError> {
    let (events, newest) = match side {
        LogSide::Now => (all, now.newest),
        LogSide::Before => (log.events, log.newest),
        LogSide::After => {
            // The newest by K is in a block read (one that straddles K) or ends a block wholly before K.
            let before: Option<DateTime<Utc>> = client
                .query_one(
                    &format!("SELECT max(last_recorded) FROM {}.delta_log WHERE last_recorded <= $1", schema.ident()),
                    &[&instant(known_at)],
                )
                .await
                .map_err(db("reading the newest event recorded by the known-at"))?
                .get(0);
            (all - log.events, log.newest.max(before.map(|t| t.timestamp_micros())))
        }
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
    day: Day,
    known_at: Option<i64>,
) -> Result<(HashMap<i32, i64>, Recorded), StoreError> {
    let (all, now) = recorded_now(client, schema).await?;
    let Some(k) = known_at else {
        let events = u64::try_from(all).unwrap_or_default();
        return Ok((counts_now(client, schema, day, None).await?, Recorded { events, ..now }));
    };
    let side = log_side(client, schema, k).await?;
    let log = log_totals(client, schema, side, k, Some(day)).await?;
    let recorded = recorded_by(client, schema, (all, now), side, k, &log).await?;
    let mut counts = match side {
        LogSide::Before => HashMap::new(),
        LogSide::Now | LogSide::After => counts_now(client, schema, day, None).await?,
    };
    let sign = if side == LogSide::After { -1 } else { 1 };
    for &(key, n) in &log.sums {
        *counts.entry(key).or_default() += sign * n;
    }
    Ok((counts, recorded))
}

/// Counts per key as counts per place; a negative count is corruption.
pub(crate) fn by_place(
    schema: &Schema,
    keys: &Keys,
    counts: &HashMap<i32, i64>,
    day: Day,
) -> Result<PlaceCounts, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { schema: schema.to_string(), detail };
    let mut out = PlaceCounts::with_capacity(counts.len());
    for (&key, &n) in counts.iter().filter(|(_, n)| **n != 0) {
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
    let (counts, _) = counts_by_key(client, schema, day, known_at).await?;
    let reference = cache.get(client, schema).await?;
    by_place(schema, &reference.keys, &counts, day)
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
    let (counts, recorded) = counts_by_key(&tx, schema, query.as_of, query.known_at).await?;
    let reference = cache.get(&tx, schema).await?;
    tx.commit().await.map_err(db("ending a review"))?;
    let counts = by_place(schema, &reference.keys, &counts, query.as_of)?;
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

/// The events the read models hold as recorded by `known_at` (all of them when `None`), the newest
/// `recordedtime` among them and the first of all: what a review states it counted. As known now
/// from the offset rows; as known at K from the events' times in the log's blocks on the smaller side
/// of K.
pub async fn recorded(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: Option<i64>,
) -> Result<Recorded, StoreError> {
    let (all, now) = recorded_now(client, schema).await?;
    let Some(k) = known_at else {
        return Ok(Recorded { events: u64::try_from(all).unwrap_or_default(), ..now });
    };
    let side = log_side(client, schema, k).await?;
    let log = log_totals(client, schema, side, k, None).await?;
    recorded_by(client, schema, (all, now), side, k, &log).await
}

/// Whether `d` is the last day of its month.
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

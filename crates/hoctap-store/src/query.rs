//! Questions answered from the read models: counts per place on a valid date (as known now from two
//! rows per key, as known at an earlier time from the transaction-time log) and the review built on
//! them by the domain crate.
//!
//! Readers keep a [`ReadCache`]: the engine of the reference events and the count keys of the
//! generation they read, checked against one index lookup per question and read again only when
//! they changed.

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
        let rows = client
            .query(
                &format!("SELECT key, before, months FROM {s}.counts_year WHERE year = $1 {filter}"),
                &[&(year_row as i16), &keys_param],
            )
            .await
            .map_err(db("reading the year counts"))?;
        // In the last year row's year or after it, every month of that year counts; on a month's
        // last day, that month counts whole from its year row.
        let months_before = if d.year() > LAST_YEAR { 12 } else { months_counted(d) };
        for row in rows {
            let (key, before, months): (i32, i64, Vec<i32>) = (row.get(0), row.get(1), row.get(2));
            *counts.entry(key).or_default() +=
                before + months.iter().take(months_before).map(|&n| i64::from(n)).sum::<i64>();
        }
    }
    if whole_from < month {
        let rows = client
            .query(
                &format!("SELECT key, days FROM {s}.counts_month WHERE month >= $1 AND month < $3 {filter}"),
                &[&whole_from, &keys_param, &month],
            )
            .await
            .map_err(db("reading the month counts"))?;
        for row in rows {
            let (key, days): (i32, Vec<i32>) = (row.get(0), row.get(1));
            *counts.entry(key).or_default() += days.iter().map(|&n| i64::from(n)).sum::<i64>();
        }
    }
    if is_month_end(d) && (FIRST_YEAR..=LAST_YEAR).contains(&d.year()) {
        return Ok(counts);
    }
    let rows = client
        .query(&format!("SELECT key, days FROM {s}.counts_month WHERE month = $1 {filter}"), &[&month, &keys_param])
        .await
        .map_err(db("reading the day counts"))?;
    for row in rows {
        let (key, days): (i32, Vec<i32>) = (row.get(0), row.get(1));
        *counts.entry(key).or_default() += days.iter().take(d.day() as usize).map(|&n| i64::from(n)).sum::<i64>();
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

/// Sums of the log per key and day on days ≤ `until`, on `side` of `known_at` (`keys` restricts).
pub(crate) async fn log_sums(
    client: &impl GenericClient,
    schema: &Schema,
    side: LogSide,
    known_at: i64,
    until: Day,
    keys: Option<&[i32]>,
) -> Result<Vec<(i32, NaiveDate, i64)>, StoreError> {
    let op = match side {
        LogSide::Now => return Ok(Vec::new()),
        LogSide::Before => "<=",
        LogSide::After => ">",
    };
    let filter = if keys.is_some() { "AND key = ANY($3)" } else { "AND $3::int4[] IS NULL" };
    let keys_param: Option<Vec<i32>> = keys.map(<[i32]>::to_vec);
    let rows = client
        .query(
            &format!(
                "SELECT key, day, sum(n)::int8 FROM {}.delta_log WHERE recorded {op} $1 AND day <= $2 {filter}
                 GROUP BY key, day",
                schema.ident()
            ),
            &[&instant(known_at), &until.date(), &keys_param],
        )
        .await
        .map_err(db("reading the log of changes"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Counts per key on `day` as known at `known_at` (None: now).
async fn counts_by_key(
    client: &impl GenericClient,
    schema: &Schema,
    day: Day,
    known_at: Option<i64>,
) -> Result<HashMap<i32, i64>, StoreError> {
    let Some(k) = known_at else { return counts_now(client, schema, day, None).await };
    let side = log_side(client, schema, k).await?;
    let sums = log_sums(client, schema, side, k, day, None).await?;
    let mut counts = match side {
        LogSide::Before => HashMap::new(),
        LogSide::Now | LogSide::After => counts_now(client, schema, day, None).await?,
    };
    let sign = if side == LogSide::After { -1 } else { 1 };
    for (key, _, n) in sums {
        *counts.entry(key).or_default() += sign * n;
    }
    Ok(counts)
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
    let counts = counts_by_key(client, schema, day, known_at).await?;
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
    let counts = counts_by_key(&tx, schema, query.as_of, query.known_at).await?;
    let recorded = recorded(&tx, schema, query.known_at).await?;
    let reference = cache.get(&tx, schema).await?;
    tx.commit().await.map_err(db("ending a review"))?;
    let counts = by_place(schema, &reference.keys, &counts, query.as_of)?;
    Ok(reference.engine.review_from_counts(query, &counts, recorded)?)
}

/// The events the read models hold as recorded by `known_at` (all of them when `None`), the newest
/// `recordedtime` among them and the first of all: what a review states it counted. As known now
/// from the offset rows; as known at K from `recorded_events`.
pub async fn recorded(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: Option<i64>,
) -> Result<Recorded, StoreError> {
    let s = schema.ident();
    let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
    let all = client
        .query_one(
            &format!(
                "SELECT coalesce(sum(events), 0)::int8, max(last_recorded), min(first_recorded)
                 FROM {s}.consumer_offsets"
            ),
            &[],
        )
        .await
        .map_err(db("counting the events recorded"))?;
    let first = micros(all.get(2));
    let (events, newest): (i64, Option<DateTime<Utc>>) = match known_at {
        None => (all.get(0), all.get(1)),
        Some(k) => {
            let row = client
                .query_one(
                    &format!(
                        "SELECT coalesce(sum(n), 0)::int8, max(recorded) FROM {s}.recorded_events WHERE recorded <= $1"
                    ),
                    &[&instant(k)],
                )
                .await
                .map_err(db("counting the events recorded by the known-at"))?;
            (row.get(0), row.get(1))
        }
    };
    let events = u64::try_from(events).map_err(|_| StoreError::Corrupt {
        schema: schema.to_string(),
        detail: format!("a negative number of events recorded ({events})"),
    })?;
    Ok(Recorded { events, newest: micros(newest), first })
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

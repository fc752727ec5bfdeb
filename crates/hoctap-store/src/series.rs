//! One unit's counts of one title on many dates (a time series for charts), answered from the read
//! models like [`crate::review`]: the same counts, placed by the same reference engine. Only the keys
//! of the title are read, and every date's rows in one statement per table, so the cost follows the
//! number of dates and places, not the history.

use crate::counts::{self, DAYS, MONTHS};
use crate::error::{db, snapshot};
use crate::projection::{FIRST_YEAR, LAST_YEAR};
use crate::query::{
    ReadCache, Slots, by_place, counts_now, first_of_month, is_month_end, known_at_corrections, months_counted,
};
use crate::{Schema, StoreError};
use chrono::{Datelike, NaiveDate};
use hoctap_domain::codes::Title;
use hoctap_domain::review::TitleCounts;
use hoctap_domain::{Day, Measure, PlaceCounts, Query, QueryError};
use std::collections::HashMap;
use tokio_postgres::{Client, GenericClient};

/// The counts of `title` in `unit` on each of `dates` (ascending), as known at `known_at` (None: now):
/// for each date, exactly `units[0].titles[title]` of the review of `unit` on that date (zero when the
/// title is not listed).
///
/// Every date is read in one snapshot.
///
/// A date on which `unit` is not in force (before it was established, after it was dissolved, as known
/// at `known_at`) has no point: it is left out, so the points of a district abolished mid-series stop
/// at its last day. When `unit` is in force on none of `dates`, the answer is
/// [`StoreError::Query`]`(`[`QueryError::ScopeNotInForce`]`)` naming the first date; a code never
/// established is [`QueryError::UnknownScope`]; nothing recorded by `known_at` (or at all) is
/// [`QueryError::NothingRecordedBy`] ([`QueryError::NothingRecorded`]), as for a review. All are the
/// caller's mistake (HTTP 404). No dates,
/// no points (and no check of the unit).
pub async fn series(
    client: &mut Client,
    schema: &Schema,
    cache: &ReadCache,
    unit: &str,
    title: Title,
    dates: &[Day],
    known_at: Option<i64>,
) -> Result<Vec<(Day, TitleCounts)>, StoreError> {
    let Some(&first) = dates.first() else {
        return Ok(Vec::new());
    };
    let started = std::time::Instant::now();
    let tx = snapshot(client, "beginning a series").await?;
    // Nothing recorded by K (or at all) is an error, as for a review.
    crate::query::recorded(&tx, schema, known_at).await?.check(known_at)?;
    let reference = cache.get(&tx, schema).await?;
    let keys = reference.keys.filter(|m| {
        matches!(*m, Measure::Registered(t) | Measure::Declared(t) | Measure::Evidenced(t) | Measure::Recognised(t) if t == title)
    });
    let slots = Slots::new(&keys);
    let mut log_ms = 0;
    let per_date = match known_at {
        None => counts_now_on(&tx, schema, dates, &slots).await?,
        Some(k) => {
            let log = std::time::Instant::now();
            let (read_on, corrections) = known_at_corrections(&tx, schema, dates, k, &slots).await?;
            log_ms = log.elapsed().as_millis() as u64;
            let mut per_date = counts_now_on(&tx, schema, &read_on, &slots).await?;
            for (counts, correction) in per_date.iter_mut().zip(corrections) {
                counts.iter_mut().zip(correction).for_each(|(c, n)| *c += n);
            }
            per_date
        }
    };
    tx.commit().await.map_err(db("ending a series"))?;
    let read = started.elapsed();
    let mut points = Vec::with_capacity(dates.len());
    for (&day, counts) in dates.iter().zip(&per_date) {
        let counts = by_place(schema, &reference.keys, slots.keys().iter().copied().zip(counts.iter().copied()), day)?;
        let query = Query { scope: unit.to_owned(), as_of: day, known_at, milestone: None };
        match reference.engine.title_counts_from(&query, title, &counts) {
            Ok(c) => points.push((day, c)),
            Err(QueryError::ScopeNotInForce { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::debug!(
        %schema,
        unit,
        dates = dates.len(),
        keys = keys.len(),
        read_ms = read.as_millis() as u64,
        log_ms,
        placed_ms = (started.elapsed() - read).as_millis() as u64,
        "series"
    );
    if points.is_empty() {
        return Err(QueryError::ScopeNotInForce { code: unit.to_owned(), as_of: first }.into());
    }
    Ok(points)
}

/// The counts of every place as known now on each of `dates` (ascending), each what
/// [`crate::place_counts`] gives for its date, read in two statements for all of them.
pub(crate) async fn place_counts_now_on(
    client: &impl GenericClient,
    schema: &Schema,
    keys: &crate::keys::Keys,
    dates: &[Day],
) -> Result<Vec<PlaceCounts>, StoreError> {
    let slots = Slots::new(&keys.filter(|_| true));
    let per_date = counts_now_on(client, schema, dates, &slots).await?;
    dates
        .iter()
        .zip(per_date)
        .map(|(&day, counts)| by_place(schema, keys, slots.keys().iter().copied().zip(counts), day))
        .collect()
}

/// Counts as known now of `keys` on each of `dates`: the year and month rows of every date in two
/// statements (dates outside the campaign's years, rare, are read one by one).
async fn counts_now_on(
    client: &impl GenericClient,
    schema: &Schema,
    dates: &[Day],
    slots: &Slots,
) -> Result<Vec<Vec<i64>>, StoreError> {
    let keys = slots.keys();
    let s = schema.ident();
    let in_years = |d: &Day| (FIRST_YEAR..=LAST_YEAR).contains(&d.year());
    let mut years: Vec<i16> = dates.iter().filter(|d| in_years(d)).map(|d| d.year() as i16).collect();
    years.sort_unstable();
    years.dedup();
    // A month's last day needs no month row: its year row holds the whole month.
    let mut months: Vec<NaiveDate> =
        dates.iter().filter(|d| in_years(d) && !is_month_end(d.date())).map(|d| first_of_month(d.date())).collect();
    months.sort_unstable();
    months.dedup();
    // Whole rows as prefix sums (a year row: before, then before and each month; a month row: up to
    // each day): each date reads one entry of each.
    let slot = |key: i32| slots.slot(key).expect("only the keys asked are read");
    let mut year_rows: HashMap<i16, Vec<(usize, [i64; MONTHS + 1])>> = HashMap::new();
    for r in client
        .query(
            &format!(
                "SELECT year, key, before, {} FROM {s}.counts_year WHERE year = ANY($1) AND key = ANY($2)",
                counts::month_columns()
            ),
            &[&years, &keys],
        )
        .await
        .map_err(db("reading the year counts"))?
    {
        let mut prefix = [r.get::<_, i64>(2); MONTHS + 1];
        for m in 1..=MONTHS {
            prefix[m] = prefix[m - 1] + i64::from(r.get::<_, i32>(2 + m));
        }
        year_rows.entry(r.get(0)).or_default().push((slot(r.get(1)), prefix));
    }
    let mut month_rows: HashMap<NaiveDate, Vec<(usize, [i64; DAYS])>> = HashMap::new();
    for r in client
        .query(
            &format!(
                "SELECT month, key, {} FROM {s}.counts_month WHERE month = ANY($1) AND key = ANY($2)",
                counts::day_columns()
            ),
            &[&months, &keys],
        )
        .await
        .map_err(db("reading the month counts"))?
    {
        let mut prefix = [0i64; DAYS];
        let mut sum = 0;
        for (d, p) in prefix.iter_mut().enumerate() {
            sum += i64::from(r.get::<_, i32>(2 + d));
            *p = sum;
        }
        month_rows.entry(r.get(0)).or_default().push((slot(r.get(1)), prefix));
    }
    let mut out = Vec::with_capacity(dates.len());
    for day in dates {
        let mut counts = vec![0i64; slots.len()];
        if !in_years(day) {
            for (key, n) in counts_now(client, schema, *day, Some(keys)).await? {
                counts[slot(key)] += n;
            }
            out.push(counts);
            continue;
        }
        let d = day.date();
        for (at, prefix) in year_rows.get(&(d.year() as i16)).into_iter().flatten() {
            counts[*at] += prefix[months_counted(d)];
        }
        if !is_month_end(d) {
            for (at, prefix) in month_rows.get(&first_of_month(d)).into_iter().flatten() {
                counts[*at] += prefix[d.day() as usize - 1];
            }
        }
        out.push(counts);
    }
    Ok(out)
}

//! Questions answered from the read models: counts per place on a valid date (as known now from the
//! day/month/year buckets, as known at an earlier time from the delta log) and the review built on
//! them by the domain crate.

use crate::codec::{measure_from_text, place_from_text};
use crate::error::db;
use crate::{Schema, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use hoctap_domain::event::EventType;
use hoctap_domain::{Day, Engine, Event, PlaceCounts, Query, Review};
use tokio_postgres::{Client, GenericClient};

/// The first and last year with a `total_before_year` row (the campaign's years and the one after).
const YEARS: std::ops::RangeInclusive<i32> = 2021..=2031;

/// The event types a review needs besides counts: the reference data (geography, denominators,
/// targets), and every retraction (they are few, and one may name a reference event).
fn review_types() -> impl Iterator<Item = EventType> {
    EventType::ALL.iter().copied().filter(|t| t.is_reference() || *t == EventType::EventRetracted)
}

/// Counts per place and measure on `day`, as known now (`known_at` None: read from the buckets, at
/// most 1 + 11 + 31 rows per key) or as known at `known_at` (UTC microseconds: summed from the delta
/// log). Places are not resolved to units here: [`Engine::review_from_counts`] does that for `day`.
pub async fn place_counts(
    client: &impl GenericClient,
    schema: &Schema,
    day: Day,
    known_at: Option<i64>,
) -> Result<PlaceCounts, StoreError> {
    let s = schema.ident();
    let d = day.date();
    let rows = match known_at {
        None => {
            let month = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("the first of a month exists");
            // Before 2021 every month row counts; after 2031 the 2031 total and the months since.
            let year = (day.year() >= *YEARS.start()).then(|| day.year().min(*YEARS.end()));
            let months_from = match year {
                Some(y) => NaiveDate::from_ymd_opt(y, 1, 1).expect("1 January exists"),
                None => NaiveDate::MIN,
            };
            client
                .query(
                    &format!(
                        "SELECT place_kind, place_code, measure, sum(n)::int8 FROM (
                             SELECT place_kind, place_code, measure, n FROM {s}.total_before_year WHERE year = $1
                             UNION ALL
                             SELECT place_kind, place_code, measure, n FROM {s}.delta_month
                             WHERE month >= $2 AND month < $3
                             UNION ALL
                             SELECT place_kind, place_code, measure, n FROM {s}.delta_day
                             WHERE day >= $3 AND day <= $4
                         ) AS t GROUP BY 1, 2, 3 HAVING sum(n) <> 0"
                    ),
                    &[&year, &months_from.max(min_date()), &month, &d],
                )
                .await
                .map_err(db("reading counts"))?
        }
        Some(k) => client
            .query(
                &format!(
                    "SELECT place_kind, place_code, measure, sum(n)::int8 FROM {s}.delta_log
                     WHERE day <= $1 AND recorded <= $2 GROUP BY 1, 2, 3 HAVING sum(n) <> 0"
                ),
                &[&d, &instant(k)],
            )
            .await
            .map_err(db("reading counts as known at an earlier time"))?,
    };
    let corrupt = |detail: String| StoreError::Corrupt { schema: schema.to_string(), detail };
    let mut counts = PlaceCounts::with_capacity(rows.len());
    for row in rows {
        let (kind, code, measure, n): (&str, &str, &str, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let place = place_from_text(kind, code).ok_or_else(|| corrupt(format!("unknown place kind `{kind}`")))?;
        let measure = measure_from_text(measure).ok_or_else(|| corrupt(format!("unknown measure `{measure}`")))?;
        let n = u64::try_from(n).map_err(|_| corrupt(format!("count {n} of {measure:?} at {place:?} on {day}")))?;
        counts.insert((place, measure), n);
    }
    Ok(counts)
}

/// The review of `query` from the read models: counts from [`place_counts`], and an engine of the
/// reference events only (as known at `query.known_at`) to place them, find denominators and check
/// targets. Counts and reference events are read in one snapshot.
pub async fn review(client: &mut Client, schema: &Schema, query: &Query) -> Result<Review, StoreError> {
    let tx = crate::error::snapshot(client, "beginning a review").await?;
    let counts = place_counts(&tx, schema, query.as_of, query.known_at).await?;
    let engine = reference_engine(&tx, schema, query.known_at).await?;
    tx.commit().await.map_err(db("ending a review"))?;
    Ok(engine.review_from_counts(query, &counts)?)
}

/// An engine holding the events a review needs besides counts (see [`review_types`]), as known at
/// `known_at` (None: now).
pub(crate) async fn reference_engine(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: Option<i64>,
) -> Result<Engine, StoreError> {
    let types: Vec<&str> = review_types().map(|t| t.stem()).collect();
    let rows = client
        .query(
            &format!(
                "SELECT body::text FROM {}.events WHERE type = ANY($1) AND ($2::timestamptz IS NULL OR recorded <= $2)",
                schema.ident()
            ),
            &[&types, &known_at.map(instant)],
        )
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

/// The earliest date both chrono and PostgreSQL can represent.
fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("1 January 1 exists")
}

pub(crate) fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

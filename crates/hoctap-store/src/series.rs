//! One unit's counts of one title on many dates (a time series for charts), answered from the read
//! models like [`crate::review`]: the same counts, placed by the same reference engine.

use crate::error::{db, snapshot};
use crate::query::{place_counts, reference_engine};
use crate::{Schema, StoreError};
use hoctap_domain::codes::Title;
use hoctap_domain::review::TitleCounts;
use hoctap_domain::{Day, Query, QueryError};
use tokio_postgres::Client;

/// The counts of `title` in `unit` on each of `dates`, as known at `known_at` (None: now): for each
/// date, exactly `units[0].titles[title]` of the review of `unit` on that date (zero when the title is
/// not listed).
///
/// Every date is read in one snapshot, with the reference events loaded once.
///
/// A date on which `unit` is not in force (before it was established, after it was dissolved, as known
/// at `known_at`) has no point: it is left out, so the points of a district abolished mid-series stop
/// at its last day. When `unit` is in force on none of `dates`, the answer is
/// [`StoreError::Query`]`(`[`QueryError::ScopeNotInForce`]`)` naming the first date; a code never
/// established is [`QueryError::UnknownScope`]. Both are the caller's mistake (HTTP 404). No dates,
/// no points (and no check of the unit).
pub async fn series(
    client: &mut Client,
    schema: &Schema,
    unit: &str,
    title: Title,
    dates: &[Day],
    known_at: Option<i64>,
) -> Result<Vec<(Day, TitleCounts)>, StoreError> {
    let Some(&first) = dates.first() else {
        return Ok(Vec::new());
    };
    let tx = snapshot(client, "beginning a series").await?;
    let engine = reference_engine(&tx, schema, known_at).await?;
    let mut points = Vec::with_capacity(dates.len());
    for &day in dates {
        let counts = place_counts(&tx, schema, day, known_at).await?;
        let query = Query { scope: unit.to_owned(), as_of: day, known_at, milestone: None };
        match engine.review_from_counts(&query, &counts) {
            Ok(review) => {
                let counts = review.units.first().and_then(|u| u.titles.get(&title)).copied().unwrap_or_default();
                points.push((day, counts));
            }
            Err(QueryError::ScopeNotInForce { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await.map_err(db("ending a series"))?;
    if points.is_empty() {
        return Err(QueryError::ScopeNotInForce { code: unit.to_owned(), as_of: first }.into());
    }
    Ok(points)
}

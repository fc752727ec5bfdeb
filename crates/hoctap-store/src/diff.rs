//! The audit diff from the read models: the same question as known at two times, and the events
//! recorded in between that changed its figures, as the embedded engine answers it (`Engine::diff`).
//!
//! Both reviews come from the counts ([`crate::review`]). The events come from the subjects' histories:
//! only a subject with an event or a retraction recorded after the first time can have changed a
//! figure, and `recorded_subjects` (the subjects each batch wrote, by the batch's newest recorded time,
//! indexed) finds those, so a diff reads the subjects recorded since then, not the history. Their
//! histories are loaded into a copy of the reference engine (`Engine::with_histories`), and the domain
//! lists the events with the code the embedded engine runs (`Engine::diff_reviews`). Design: docs/design/2026-11-30-audit-diff.md.

use crate::error::db;
use crate::query::{ReadCache, instant, review_in};
use crate::{Schema, StoreError};
use hoctap_domain::{Query, ReviewDiff};
use tokio_postgres::{Client, GenericClient};

/// `query` (as known at its `known_at`) against the same question as known at `vs` (`None`: now):
/// every figure that differs, and the events recorded in between that changed them. Byte for byte
/// `Engine::diff` of the same events. Read in one snapshot.
pub async fn diff(
    client: &mut Client,
    schema: &Schema,
    cache: &ReadCache,
    query: &Query,
    vs: Option<i64>,
) -> Result<ReviewDiff, StoreError> {
    let tx = crate::error::snapshot(client, "beginning a diff").await?;
    let reference = cache.get(&tx, schema).await?;
    let before = review_in(&tx, schema, &reference, query).await?;
    let after = review_in(&tx, schema, &reference, &ReviewDiff::later(query, &before, vs)).await?;
    let histories = match ReviewDiff::since(query, vs) {
        Some(from) => recorded_after(&tx, schema, from).await?,
        None => Vec::new(),
    };
    tx.commit().await.map_err(db("ending a diff"))?;
    if histories.is_empty() {
        return Ok(reference.engine.diff_reviews(query, vs, &before, &after));
    }
    let engine = reference
        .engine
        .with_histories(histories.iter().map(|(subject, history)| (subject.as_str(), &history[..])))
        .map_err(|e| StoreError::Corrupt { schema: schema.to_string(), detail: e.to_string() })?;
    Ok(engine.diff_reviews(query, vs, &before, &after))
}

/// The histories of the subjects with an event or a retraction recorded after `from`.
async fn recorded_after(
    client: &impl GenericClient,
    schema: &Schema,
    from: i64,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT subject, history FROM {s}.subjects WHERE subject IN
                     (SELECT unnest(subjects) FROM {s}.recorded_subjects WHERE last_recorded > $1)",
                s = schema.ident()
            ),
            &[&instant(from)],
        )
        .await
        .map_err(db("reading the subjects recorded since a time"))?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

//! Figures about one generation for benchmarks and operators: its size in PostgreSQL, the span of the
//! recorded times it holds, fresh planner statistics.

use crate::error::db;
use crate::{Schema, StoreError};
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

/// Bytes of every table of `schema`, indexes and TOAST included.
pub async fn size_bytes(client: &impl GenericClient, schema: &Schema) -> Result<i64, StoreError> {
    Ok(client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')",
            &[&schema.as_str()],
        )
        .await
        .map_err(db("measuring the read models"))?
        .get(0))
}

/// The earliest and latest `recordedtime` (UTC microseconds) of the events `schema` applied.
pub async fn recorded_span(client: &impl GenericClient, schema: &Schema) -> Result<Option<(i64, i64)>, StoreError> {
    let row = client
        .query_one(
            &format!("SELECT min(first_recorded), max(last_recorded) FROM {}.consumer_offsets", schema.ident()),
            &[],
        )
        .await
        .map_err(db("reading the span of recorded times"))?;
    let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (row.get(0), row.get(1));
    Ok(first.zip(last).map(|(f, l)| (f.timestamp_micros(), l.timestamp_micros())))
}

/// Gathers planner statistics of every table of `schema` (as autovacuum would after a bulk load).
pub async fn analyze(client: &impl GenericClient, schema: &Schema) -> Result<(), StoreError> {
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&schema.as_str()],
        )
        .await
        .map_err(db("listing the tables to analyze"))?
        .iter()
        .map(|r| format!("{}.\"{}\"", schema.ident(), r.get::<_, &str>(0)))
        .collect();
    client.batch_execute(&format!("ANALYZE {}", tables.join(", "))).await.map_err(db("analyzing the read models"))
}

//! The store's one error type; each variant says how a caller handles it.

use hoctap_domain::QueryError;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL refused a statement or the connection broke. Nothing of the batch is kept (the
    /// transaction rolled back, and the projection reloads what PostgreSQL holds).
    /// **Retry**: reconnect after a pause and hand the same batch (or whatever the consumer redelivers
    /// from [`crate::offsets`]) to `apply_batch` again; for a review, HTTP 503.
    #[error("PostgreSQL failed while {context}")]
    Db {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The schema name is not a plain lowercase identifier. **Fail**: a configuration mistake.
    #[error(
        "`{0}` is not a valid schema name (lowercase letters, digits and `_`, not starting with a digit, at most 63 bytes, not `pg_…`)"
    )]
    InvalidSchema(String),
    /// The schema holds a migration this binary does not know (a newer binary wrote it) or one
    /// recorded under another name. **Fail**: run the binary that matches the schema, or rebuild into
    /// a new schema.
    #[error("schema `{schema}`: migration {version} {detail}")]
    Migration { schema: String, version: i32, detail: String },
    /// A consumed event has no `recordedtime`. **Fail** (a restart cannot help; do not skip it): the
    /// log stamps every event before it reaches a consumer, so this is a broken invariant upstream.
    #[error("event {id} at {topic}/{partition}@{offset} carries no recordedtime; the log stamps every event")]
    NotRecorded { id: uuid::Uuid, topic: String, partition: i32, offset: i64 },
    /// A stored row cannot be read back: an event that no longer decodes, a measure or place this
    /// binary does not know, a negative count. **Fail**: the read model is corrupt or was written by a
    /// newer binary; rebuild it into a new schema.
    #[error("the read model in schema `{schema}` is inconsistent: {detail}")]
    Corrupt { schema: String, detail: String },
    /// The deployment's control schema does not exist. **Fail**: run `hoctap project` (or any tool
    /// that sets the deployment up) first, or name the right deployment.
    #[error("no read models in deployment `{0}`: start `hoctap project` first (it creates them)")]
    NoDeployment(String),
    /// A batch was headed for a generation that no longer serves: a rebuild switched to `active`.
    /// Nothing of the batch was kept. **Reload**: load the projection of `active` and seek every
    /// assigned partition to its stored offsets.
    #[error("generation `{schema}` no longer serves (`{active}` does since a rebuild)")]
    Retired { schema: String, active: String },
    /// A batch's records of a partition start after the offset stored as the next one: records in
    /// between were never applied. Nothing of the batch was kept. **Seek** the partition back to
    /// `expected` and consume again.
    #[error("{topic}/{partition}: the batch starts at offset {got} but offset {expected} is the next to apply")]
    Gap { topic: String, partition: i32, expected: i64, got: i64 },
    /// The review cannot be given (unknown scope, scope not in force on that date). **The caller's
    /// mistake**: HTTP 404, CLI exit 2.
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// Wraps a PostgreSQL error with what the store was doing.
pub(crate) fn db(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// A read-only transaction on one snapshot, so that everything read in it agrees.
pub(crate) async fn snapshot<'a>(
    client: &'a mut tokio_postgres::Client,
    context: &'static str,
) -> Result<tokio_postgres::Transaction<'a>, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db(context))?;
    // Reviews are many short index reads: compiling them (PostgreSQL's JIT, on by default for costly
    // plans) takes longer than running them.
    tx.batch_execute("SET LOCAL jit = off").await.map_err(db(context))?;
    Ok(tx)
}

//! The store's one error type; each variant says how a caller handles it.

use hoctap_domain::{ApprovalError, QueryError};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL refused a statement or the connection broke. Nothing of the batch is kept (the
    /// transaction rolled back, and the projection reloads what PostgreSQL holds).
    /// **Retry**: reconnect after a pause and hand the same batch (or whatever the consumer redelivers
    /// from [`crate::offsets`]) to `apply_batch` again; for a review, HTTP 503. **Isolate** instead
    /// when [`StoreError::is_content_fault`]: the batch holds a record PostgreSQL will never take.
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
    /// The gateway's writer lease of `epoch` was taken by another gateway (`current`): nothing was
    /// written. **Stop writing**: this gateway is a standby now; answer 503 and take the lease again
    /// when it is free (then read the topic's tail first).
    #[error("the writer lease of epoch {epoch} was taken by another gateway (epoch now {current:?}); nothing written")]
    Fenced { epoch: i64, current: Option<i64> },
    /// The review cannot be given (unknown scope, scope not in force on that date). **The caller's
    /// mistake**: HTTP 404, CLI exit 2.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// No approved review for that decision number (unknown, conflicting, or not reproducible): the
    /// caller's question, like [`StoreError::Query`] (HTTP 404).
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

impl StoreError {
    /// Whether PostgreSQL refused what the batch holds rather than failed: a value it cannot store
    /// (SQLSTATE class 22, e.g. a NUL character in text or JSON), a broken constraint (class 23, but
    /// for unique and exclusion violations, which here come from another member racing for the same
    /// rows) or a limit exceeded (class 54, e.g. a key too long to index).
    ///
    /// **Isolate**: applying the same batch again fails again. Split it; records that fail alone for
    /// their content are refused (dead-lettered) and their offsets advance with the next batch.
    /// Every other error of PostgreSQL (connection lost, server restarting, out of resources,
    /// serialization failure or deadlock, and codes this list does not name) is a failure of the
    /// system: retry the same batch after a pause, since refusing records for a failure that is not
    /// theirs would lose them.
    pub fn is_content_fault(&self) -> bool {
        match self {
            StoreError::Db { source, .. } => source.code().is_some_and(|code| is_content_state(code.code())),
            _ => false,
        }
    }

    /// The SQLSTATE PostgreSQL answered with, for logs and dead letters.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::Db { source, .. } => source.code().map(|code| code.code()),
            _ => None,
        }
    }
}

/// Whether an SQLSTATE says the statement's data was refused (see [`StoreError::is_content_fault`]).
fn is_content_state(code: &str) -> bool {
    match code.get(..2) {
        Some("22" | "54") => true,
        // 23505 unique_violation, 23P01 exclusion_violation.
        Some("23") => !matches!(code, "23505" | "23P01"),
        _ => false,
    }
}

/// Wraps a PostgreSQL error with what the store was doing.
pub(crate) fn db(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// A transaction on one snapshot (`REPEATABLE READ`), so that everything it reads agrees.
pub(crate) async fn one_snapshot<'a>(
    client: &'a mut tokio_postgres::Client,
    read_only: bool,
    context: &'static str,
) -> Result<tokio_postgres::Transaction<'a>, StoreError> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(read_only)
        .start()
        .await
        .map_err(db(context))
}

/// A read-only transaction on one snapshot, so that everything read in it agrees.
pub(crate) async fn snapshot<'a>(
    client: &'a mut tokio_postgres::Client,
    context: &'static str,
) -> Result<tokio_postgres::Transaction<'a>, StoreError> {
    let tx = one_snapshot(client, true, context).await?;
    // Reviews are many short index reads: compiling them (PostgreSQL's JIT, on by default for costly
    // plans) takes longer than running them.
    tx.batch_execute("SET LOCAL jit = off").await.map_err(db(context))?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::is_content_state;

    #[test]
    fn data_and_constraints_are_content_and_the_server_s_troubles_are_not() {
        // NUL in text (22021) or in JSON (22P05), out of range, not null, check, index row too big.
        for code in ["22021", "22P05", "22003", "23502", "23514", "54000"] {
            assert!(is_content_state(code), "{code}");
        }
        // Connection, shutdown, resources, serialization/deadlock, races, bugs of ours.
        for code in ["08006", "57P01", "57P02", "57P03", "53300", "40001", "40P01", "23505", "42P01", "XX000"] {
            assert!(!is_content_state(code), "{code}");
        }
    }
}

//! Versioned migrations of one read-model generation: SQL files embedded in the binary, applied in
//! order in one transaction and recorded in `<schema>.schema_migrations`.

use crate::error::db;
use crate::{Schema, StoreError};
use tokio_postgres::Client;

/// One migration: `migrations/NNNN_name.sql`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in the order they apply. Append only: a released migration is
/// never edited (a changed read model is a new migration, or a rebuild into a new schema).
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "read_models", sql: include_str!("../migrations/0001_read_models.sql") },
    Migration { version: 2, name: "dashboard", sql: include_str!("../migrations/0002_dashboard.sql") },
    Migration { version: 3, name: "compact", sql: include_str!("../migrations/0003_compact.sql") },
    Migration {
        version: 4,
        name: "columns_and_blocks",
        sql: include_str!("../migrations/0004_columns_and_blocks.sql"),
    },
    Migration { version: 5, name: "lateness", sql: include_str!("../migrations/0005_lateness.sql") },
    Migration { version: 6, name: "recorded_subjects", sql: include_str!("../migrations/0006_recorded_subjects.sql") },
    Migration { version: 7, name: "summed_blocks", sql: include_str!("../migrations/0007_summed_blocks.sql") },
];

/// The migrations of the gateway's schema (`<deployment>_gateway`, [`crate::GatewayState`]): what the
/// gateway remembers of the events topic. Append only, like [`MIGRATIONS`].
pub const GATEWAY_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "gateway_state",
    sql: include_str!("../migrations/gateway/0001_gateway_state.sql"),
}];

/// Creates `schema` if needed and applies the migrations it lacks, in order, in one transaction.
/// Idempotent; concurrent callers on the same schema serialise on an advisory lock. Returns the
/// versions applied by this call (empty when the schema was up to date).
pub async fn migrate(client: &mut Client, schema: &Schema) -> Result<Vec<i32>, StoreError> {
    migrate_with(client, schema, MIGRATIONS).await
}

/// [`migrate`] with another list of migrations (the gateway's schema).
pub(crate) async fn migrate_with(
    client: &mut Client,
    schema: &Schema,
    migrations: &[Migration],
) -> Result<Vec<i32>, StoreError> {
    let s = schema.ident();
    let tx = client.transaction().await.map_err(db("beginning the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('hoctap-migrate:' || $1))", &[&schema.as_str()])
        .await
        .map_err(db("locking the schema for migration"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(db("creating the schema"))?;
    let rows = tx
        .query(&format!("SELECT version, name FROM {s}.schema_migrations ORDER BY version"), &[])
        .await
        .map_err(db("reading the applied migrations"))?;
    let mut applied = Vec::new();
    for row in &rows {
        let (version, name): (i32, String) = (row.get(0), row.get(1));
        match migrations.iter().find(|m| m.version == version) {
            Some(m) if m.name == name => applied.push(version),
            Some(m) => {
                return Err(StoreError::Migration {
                    schema: schema.to_string(),
                    version,
                    detail: format!("is recorded as `{name}` but this binary knows it as `{}`", m.name),
                });
            }
            None => {
                return Err(StoreError::Migration {
                    schema: schema.to_string(),
                    version,
                    detail: format!("(`{name}`) is unknown to this binary: the schema was written by a newer one"),
                });
            }
        }
    }
    let mut now = Vec::new();
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        // The files name tables without a schema: they land in the generation's schema.
        tx.batch_execute(&format!("SET LOCAL search_path TO {s}; {}", m.sql))
            .await
            .map_err(db("applying a migration"))?;
        tx.execute(
            &format!("INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&m.version, &m.name],
        )
        .await
        .map_err(db("recording a migration"))?;
        tracing::info!(schema = %schema, version = m.version, name = m.name, "migration applied");
        now.push(m.version);
    }
    tx.commit().await.map_err(db("committing the migration"))?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::{GATEWAY_MIGRATIONS, MIGRATIONS};

    #[test]
    fn versions_increase_and_match_the_file_names() {
        for (i, m) in MIGRATIONS.iter().enumerate().chain(GATEWAY_MIGRATIONS.iter().enumerate()) {
            assert_eq!(m.version, i as i32 + 1);
            assert!(m.sql.starts_with(&format!("-- {:04} {}", m.version, m.name)), "{}", m.name);
        }
    }
}

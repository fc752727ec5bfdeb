//! One deployment of the read models: a control schema naming the generation that serves, the
//! generations themselves (`<name>_g1`, `<name>_g2`, …, each a complete set of read models) and the
//! versioned dashboard views that point at the serving one.
//!
//! - The projector writes into the serving generation and checks, in every batch's transaction, that
//!   it still serves ([`StoreError::Retired`] otherwise: reload the new one and seek to its offsets).
//! - `hoctap rebuild` fills a new generation from offset 0 while the old one serves, then
//!   [`Deployment::switch`]es under the control row's lock, which waits for the batches in flight and
//!   holds the next ones until the switch commits.
//! - Readers (the API, the dashboards' views) ask [`Deployment::active`] which one to read.
//!
//! Design: `docs/design/2026-11-23-generations-and-rebuild.md`.

use crate::counts;
use crate::error::db;
use crate::{Schema, StoreError, migrate};
use tokio_postgres::{Client, GenericClient, Transaction};

/// A deployment named by its control schema, e.g. `hoctap` (generations `hoctap_g1`, …; dashboard
/// views `hoctap_dashboard_v1`; the dashboards' read-only role `hoctap_dashboard`; the API's
/// read-only role `hoctap_api`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    control: Schema,
}

impl Deployment {
    /// `name` must leave room for the longest derived name (`<name>_dashboard_v1`).
    pub fn new(name: &str) -> Result<Deployment, StoreError> {
        let control = Schema::new(name)?;
        Schema::new(&format!("{name}_dashboard_v1"))?;
        Ok(Deployment { control })
    }

    pub fn name(&self) -> &str {
        self.control.as_str()
    }

    /// The schema of generation `n` (1, 2, …).
    pub fn generation(&self, n: u32) -> Schema {
        Schema::new(&format!("{}_g{n}", self.control)).expect("checked by Deployment::new (shorter than the views)")
    }

    /// The number of a generation schema of this deployment.
    fn generation_number(&self, schema: &Schema) -> Option<u32> {
        schema.as_str().strip_prefix(self.control.as_str())?.strip_prefix("_g")?.parse().ok()
    }

    /// The schema of the gateway's memory of the events topic ([`crate::GatewayState`]): not a
    /// generation (a rebuild leaves it alone; it describes the topic, not a read model).
    pub fn gateway_schema(&self) -> Schema {
        Schema::new(&format!("{}_gateway", self.control)).expect("checked by Deployment::new (shorter than the views)")
    }

    /// The schema of the dashboards' views, version 1 of that surface.
    pub fn dashboard_schema(&self) -> Schema {
        Schema::new(&format!("{}_dashboard_v1", self.control)).expect("checked by Deployment::new")
    }

    /// The role dashboards log in through (granted to a login role: `GRANT hoctap_dashboard TO grafana`).
    pub fn dashboard_role(&self) -> String {
        format!("{}_dashboard", self.control)
    }

    /// The role the API reads through (granted to its login role: `GRANT hoctap_api TO api`): SELECT
    /// on the control schema and on the serving generation, nothing else. [`Deployment::ensure`] and
    /// [`Deployment::switch`] grant it the generation that serves, in their transaction.
    pub fn api_role(&self) -> String {
        format!("{}_api", self.control)
    }

    /// Creates the control schema and the first generation when missing, brings the serving
    /// generation's migrations up to date, installs the dashboard views over it and returns it.
    /// Idempotent; concurrent callers serialise on an advisory lock.
    pub async fn ensure(&self, client: &mut Client) -> Result<Schema, StoreError> {
        let c = self.control.ident();
        {
            let tx = client.transaction().await.map_err(db("beginning to set up the deployment"))?;
            lock(&tx, self).await?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {c};
                 CREATE TABLE IF NOT EXISTS {c}.generation (
                     only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
                     schema      text        NOT NULL,
                     switched_at timestamptz NOT NULL DEFAULT now()
                 );"
            ))
            .await
            .map_err(db("creating the control schema"))?;
            tx.commit().await.map_err(db("setting up the deployment"))?;
        }
        let named = client
            .query_opt(&format!("SELECT 1 FROM {c}.generation"), &[])
            .await
            .map_err(db("reading the serving generation"))?
            .is_some();
        if !named {
            // Migrated before the control row names it: a reader never finds the serving generation
            // without its tables.
            let first = self.generation(1);
            migrate(client, &first).await?;
            let tx = client.transaction().await.map_err(db("beginning to set up the deployment"))?;
            lock(&tx, self).await?;
            tx.execute(
                &format!("INSERT INTO {c}.generation (schema) VALUES ($1) ON CONFLICT DO NOTHING"),
                &[&first.as_str()],
            )
            .await
            .map_err(db("naming the first generation"))?;
            tx.commit().await.map_err(db("setting up the deployment"))?;
        }
        let active = self.active(client).await?;
        migrate(client, &active).await?;
        let tx = client.transaction().await.map_err(db("beginning to install the dashboard views"))?;
        lock(&tx, self).await?;
        let active = self.active(&tx).await?;
        crate::dashboard::install(&tx, self, &active).await?;
        self.grant_api(&tx, &active).await?;
        tx.commit().await.map_err(db("installing the dashboard views"))?;
        Ok(active)
    }

    /// The generation that serves now.
    pub async fn active(&self, client: &impl GenericClient) -> Result<Schema, StoreError> {
        let row = client
            .query_opt(&format!("SELECT schema FROM {}.generation", self.control.ident()), &[])
            .await
            .map_err(db("reading the serving generation"))?
            .ok_or_else(|| StoreError::NoDeployment(self.control.to_string()))?;
        Schema::new(row.get(0))
    }

    /// Inside a projector's batch: fails with [`StoreError::Retired`] unless `schema` still serves.
    /// Takes a share lock on the control row, so a switch waits for this transaction and this
    /// transaction waits for a switch in progress.
    pub(crate) async fn check_serving(&self, tx: &Transaction<'_>, schema: &Schema) -> Result<(), StoreError> {
        let row = tx
            .query_one(&format!("SELECT schema FROM {}.generation FOR SHARE", self.control.ident()), &[])
            .await
            .map_err(db("checking the serving generation"))?;
        let active: &str = row.get(0);
        if active == schema.as_str() {
            Ok(())
        } else {
            Err(StoreError::Retired { schema: schema.to_string(), active: active.to_owned() })
        }
    }

    /// Creates the generation after the newest one that exists (dropping nothing), migrated and empty.
    pub async fn create_next_generation(&self, client: &mut Client) -> Result<Schema, StoreError> {
        let prefix = format!("{}_g", self.control);
        let rows = client
            .query("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", &[&prefix])
            .await
            .map_err(db("listing the generations"))?;
        let newest = rows
            .iter()
            .filter_map(|r| Schema::new(r.get(0)).ok())
            .filter_map(|s| self.generation_number(&s))
            .max()
            .unwrap_or(0);
        let next = self.generation(newest + 1);
        migrate(client, &next).await?;
        Ok(next)
    }

    /// Locks the control row against batches (they wait) and other switches, for the rest of `tx`.
    /// Returns the generation serving now.
    pub async fn lock_for_switch(&self, tx: &Transaction<'_>) -> Result<Schema, StoreError> {
        lock(tx, self).await?;
        let row = tx
            .query_one(&format!("SELECT schema FROM {}.generation FOR UPDATE", self.control.ident()), &[])
            .await
            .map_err(db("locking the serving generation"))?;
        Schema::new(row.get(0))
    }

    /// Makes `next` the serving generation and points the dashboard views at it, in `tx` (after
    /// [`Deployment::lock_for_switch`]): readers see the old generation until `tx` commits, then the new.
    pub async fn switch(&self, tx: &Transaction<'_>, next: &Schema) -> Result<(), StoreError> {
        tx.execute(
            &format!("UPDATE {}.generation SET schema = $1, switched_at = now()", self.control.ident()),
            &[&next.as_str()],
        )
        .await
        .map_err(db("switching the serving generation"))?;
        crate::dashboard::install(tx, self, next).await?;
        self.grant_api(tx, next).await
    }

    /// Lets [`Deployment::api_role`] read the control schema and `serving` (created when missing).
    async fn grant_api(&self, tx: &Transaction<'_>, serving: &Schema) -> Result<(), StoreError> {
        let (control, serving) = (self.control.ident(), serving.ident());
        let sql = crate::dashboard::read_only_role(&self.api_role(), &[&control, &serving]);
        tx.batch_execute(&sql).await.map_err(db("granting the API's role"))
    }

    /// Drops the deployment: its control schema, every generation, the views, the gateway's schema, the
    /// dashboard role and the API's role (for tests and for starting over; a role is kept when something
    /// else still uses it, e.g. a login role it was granted to).
    pub async fn drop_all(&self, client: &mut Client) -> Result<(), StoreError> {
        let prefix = format!("{}_g", self.control);
        let rows = client
            .query("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", &[&prefix])
            .await
            .map_err(db("listing the generations"))?;
        let mut schemas: Vec<Schema> = rows
            .iter()
            .filter_map(|r| Schema::new(r.get(0)).ok())
            .filter(|s| self.generation_number(s).is_some())
            .collect();
        schemas.push(self.dashboard_schema());
        schemas.push(self.gateway_schema());
        schemas.push(self.control.clone());
        for s in schemas {
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", s.ident()))
                .await
                .map_err(db("dropping the deployment"))?;
        }
        // With the views gone the role holds no grants; roles are cluster-wide, so a role still used
        // elsewhere (another database) is kept.
        for role in [self.dashboard_role(), self.api_role()] {
            if let Err(e) = client.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\"")).await {
                tracing::info!(role = %role, error = %e, "the role is kept");
            }
        }
        Ok(())
    }
}

/// Serialises set-up and switches of one deployment.
async fn lock(tx: &Transaction<'_>, deployment: &Deployment) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('hoctap-deployment:' || $1))", &[&deployment.name()])
        .await
        .map_err(db("locking the deployment"))?;
    Ok(())
}

/// How many events generation `schema` applied (every partition's count).
pub async fn events_applied(client: &impl GenericClient, schema: &Schema) -> Result<i64, StoreError> {
    Ok(client
        .query_one(&format!("SELECT coalesce(sum(events), 0)::int8 FROM {}.consumer_offsets", schema.ident()), &[])
        .await
        .map_err(db("counting the events applied"))?
        .get(0))
}

/// Drops a generation that no longer serves (after a rebuild switched away from it).
pub async fn drop_generation(client: &impl GenericClient, schema: &Schema) -> Result<(), StoreError> {
    client
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", schema.ident()))
        .await
        .map_err(db("dropping an old generation"))
}

/// How many rows `select` returns and the sum of their 64-bit hashes: equal for equal multisets of
/// rows in any order, and unequal for different ones but with a chance of about 2⁻⁶⁴ (it guards
/// against a divergence of two generations, not against rows crafted to collide).
async fn multiset_fingerprint(client: &impl GenericClient, select: &str) -> Result<(i64, String), StoreError> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(hash_record_extended(q, 0)::numeric), 0)::text FROM ({select}) AS q"
            ),
            &[],
        )
        .await
        .map_err(db("comparing two generations"))?;
    Ok((row.get(0), row.get(1)))
}

/// The rows in which two generations differ, per table (only tables with differences are listed):
/// the stored offsets, the subject histories, the reference events and every count, compared as
/// multisets of rows by what their keys stand for (count keys are numbered in the order each
/// generation met them; all-zero counts are ignored, as later changes may cancel them), and the log of
/// changes by a fingerprint of what it holds (`delta_log` is listed with 1 when it differs).
pub async fn differences(
    client: &impl GenericClient,
    a: &Schema,
    b: &Schema,
) -> Result<Vec<(&'static str, i64)>, StoreError> {
    const TABLES: &[(&str, &str)] = &[
        (
            "consumer_offsets",
            "SELECT topic, partition, next_offset, events, first_recorded, last_recorded
             FROM {g}.consumer_offsets WHERE next_offset <> 0",
        ),
        ("subjects", "SELECT subject, history FROM {g}.subjects"),
        ("reference_events", "SELECT id, type, recorded, body FROM {g}.reference_events"),
        (
            "counts_year",
            "SELECT k.place_kind, k.place_code, k.commune, k.measure, c.year, c.before, {months}
             FROM {g}.counts_year c JOIN {g}.count_keys k USING (key)
             WHERE {months_nonzero}",
        ),
        (
            "counts_month",
            "SELECT k.place_kind, k.place_code, k.commune, k.measure, c.month, {days}
             FROM {g}.counts_month c JOIN {g}.count_keys k USING (key)
             WHERE {days_nonzero}",
        ),
    ];
    let mut out = Vec::new();
    for &(table, select) in TABLES {
        let select = select
            .replace("{months_nonzero}", &counts::any_nonzero(&format!("before, {}", counts::month_columns())))
            .replace("{months}", &counts::month_columns())
            .replace("{days_nonzero}", &counts::any_nonzero(&counts::day_columns()))
            .replace("{days}", &counts::day_columns());
        let (sa, sb) = (select.replace("{g}", &a.ident()), select.replace("{g}", &b.ident()));
        // A multiset fingerprint first (two scans, no sort and no hash table of rows); the rows that
        // differ are counted only when it differs.
        if multiset_fingerprint(client, &sa).await? == multiset_fingerprint(client, &sb).await? {
            continue;
        }
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM (({sa} EXCEPT ALL {sb}) UNION ALL ({sb} EXCEPT ALL {sa})) AS d"),
                &[],
            )
            .await
            .map_err(db("comparing two generations"))?
            .get(0);
        if n != 0 {
            out.push((table, n));
        }
    }
    // The log's blocks follow each generation's batches: compared by what they hold.
    if crate::delta_log::fingerprint(client, a).await? != crate::delta_log::fingerprint(client, b).await? {
        out.push(("delta_log", 1));
    }
    Ok(out)
}

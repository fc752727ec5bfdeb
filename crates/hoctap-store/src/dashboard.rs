//! The SQL surface for dashboards: figures of the reviews at every month end, precomputed into the
//! serving generation ([`refresh_dashboard`]) and read through the views of a versioned schema
//! (`<deployment>_dashboard_v1`) by a read-only role.
//!
//! The views are the contract (documented in `docs/dashboards.md`): their names and columns never
//! change within v1; a rebuild or a migration re-points them ([`install`]) in the transaction that
//! switches generations, so a dashboard's queries keep working across both. A change that would break
//! them is a new schema `_dashboard_v2`, installed beside v1.

use crate::error::{db, one_snapshot};
use crate::query::ReadCache;
use crate::{Deployment, Schema, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use hoctap_domain::{Day, Query, Review};
use tokio_postgres::{Client, GenericClient, Transaction};

/// (Re)creates the views of `deployment` over generation `serving`, and the read-only role that may
/// read them (and nothing else).
pub(crate) async fn install(tx: &Transaction<'_>, deployment: &Deployment, serving: &Schema) -> Result<(), StoreError> {
    let v = deployment.dashboard_schema().ident();
    let g = serving.ident();
    let role = deployment.dashboard_role();
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {v};
         COMMENT ON SCHEMA {v} IS 'hoctap dashboard views, version 1 (docs/dashboards.md); serving generation {serving}';
         CREATE OR REPLACE VIEW {v}.unit_figures AS
             SELECT as_of, scope, unit_code, unit_level, unit_name, is_scope, figure, title, metric, value
             FROM {g}.dashboard_unit_figures;
         CREATE OR REPLACE VIEW {v}.title_counts AS
             SELECT as_of, scope, unit_code, unit_level, unit_name, is_scope, title,
                    coalesce(sum(value) FILTER (WHERE figure = 'registered'), 0)::bigint AS registered,
                    coalesce(sum(value) FILTER (WHERE figure = 'declared'), 0)::bigint AS declared,
                    coalesce(sum(value) FILTER (WHERE figure = 'evidenced'), 0)::bigint AS evidenced,
                    coalesce(sum(value) FILTER (WHERE figure = 'recognised'), 0)::bigint AS recognised
             FROM {g}.dashboard_unit_figures WHERE title <> ''
             GROUP BY as_of, scope, unit_code, unit_level, unit_name, is_scope, title;
         CREATE OR REPLACE VIEW {v}.targets AS
             SELECT as_of, scope, plan, indicator, milestone, target_percent, numerator, denominator,
                    actual_percent, gap_points, status
             FROM {g}.dashboard_targets;
         CREATE OR REPLACE VIEW {v}.refreshed AS
             SELECT refreshed_at, events, last_recorded, '{serving}'::text AS generation
             FROM {g}.dashboard_refresh;
         {}",
        read_only_role(&role, &[v.as_str()])
    ))
    .await
    .map_err(db("installing the dashboard views"))?;
    Ok(())
}

/// SQL that creates `role` (a group role, NOLOGIN: a login role is granted it) when missing and lets
/// it read every table and view of `schemas`, and nothing more: no write, no other schema. The
/// dashboards' role and the API's role are both made by it.
pub(crate) fn read_only_role(role: &str, schemas: &[&str]) -> String {
    let mut sql = format!(
        "DO $$ BEGIN
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE \"{role}\" NOLOGIN;
             END IF;
         END $$;"
    );
    for s in schemas {
        sql.push_str(&format!(
            "\n         GRANT USAGE ON SCHEMA {s} TO \"{role}\";\n         GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO \"{role}\";"
        ));
    }
    sql
}

/// What one [`refresh_dashboard`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Reviews computed (dates × province-level scopes in force).
    pub reviews: usize,
    pub unit_rows: usize,
    pub target_rows: usize,
}

/// The dates whose reviews dashboards get: every month end of the campaign.
pub fn dashboard_dates() -> Vec<Day> {
    (2021..=2030)
        .flat_map(|y| (1..=12).map(move |m| (y, m)))
        .map(|(y, m)| {
            let first_of_next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let date = NaiveDate::from_ymd_opt(first_of_next.0, first_of_next.1, 1).expect("a valid month")
                - chrono::Days::new(1);
            Day::from_date(date)
        })
        .collect()
}

/// Computes the reviews of every province-level scope at every [`dashboard_dates`] date from the read
/// models of `schema` (as known now) and replaces the dashboard tables with their figures, in one
/// transaction. Returns `None` without doing anything when another refresh of `schema` is running.
pub async fn refresh_dashboard(client: &mut Client, schema: &Schema) -> Result<Option<Refreshed>, StoreError> {
    let s = schema.ident();
    let started = std::time::Instant::now();
    // One snapshot for every figure, so that the dates agree with each other.
    let tx = one_snapshot(client, false, "beginning a dashboard refresh").await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock(hashtext('hoctap-dashboard:' || $1))", &[&schema.as_str()])
        .await
        .map_err(db("locking the dashboard"))?
        .get(0);
    if !locked {
        return Ok(None);
    }
    let cache = ReadCache::new();
    let reference = cache.get(&tx, schema).await?;
    let provinces: Vec<String> = tx
        .query(
            &format!(
                "SELECT DISTINCT body::jsonb->'data'->>'code' FROM {s}.reference_events
                 WHERE type = 'admin_unit.established' AND body::jsonb->'data'->>'level' = 'province' ORDER BY 1"
            ),
            &[],
        )
        .await
        .map_err(db("listing the provinces"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let recorded = crate::query::recorded(&tx, schema, None).await?;
    let mut reviews: Vec<Review> = Vec::new();
    let dates = dashboard_dates();
    let per_date = crate::series::place_counts_now_on(&tx, schema, &reference.keys, &dates).await?;
    for (&day, counts) in dates.iter().zip(&per_date) {
        for scope in &provinces {
            let query = Query { scope: scope.clone(), as_of: day, known_at: None, milestone: None };
            // A province not in force at that date has no review then (not even the review of what
            // became of it, whose figures are other units').
            if let Ok(review) = reference.engine.review_from_counts(&query, counts, recorded)
                && review.reform.is_none()
            {
                reviews.push(review);
            }
        }
    }
    let reviewed = started.elapsed();
    let mut units = UnitRows::default();
    let mut targets = TargetRows::default();
    for r in &reviews {
        units.add(r);
        targets.add(r);
    }
    tx.batch_execute(&format!("DELETE FROM {s}.dashboard_unit_figures; DELETE FROM {s}.dashboard_targets;"))
        .await
        .map_err(db("clearing the dashboard figures"))?;
    tx.execute(
        &format!(
            "INSERT INTO {s}.dashboard_unit_figures
                 (as_of, scope, unit_code, unit_level, unit_name, is_scope, figure, title, metric, value)
             SELECT * FROM UNNEST($1::date[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[],
                                  $7::text[], $8::text[], $9::text[], $10::int8[])"
        ),
        &[
            &units.as_of,
            &units.scope,
            &units.code,
            &units.level,
            &units.name,
            &units.is_scope,
            &units.figure,
            &units.title,
            &units.metric,
            &units.value,
        ],
    )
    .await
    .map_err(db("storing the dashboard unit figures"))?;
    tx.execute(
        &format!(
            "INSERT INTO {s}.dashboard_targets
                 (as_of, scope, plan, indicator, milestone, target_percent, numerator, denominator,
                  actual_percent, gap_points, status)
             SELECT * FROM UNNEST($1::date[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::float8[],
                                  $7::int8[], $8::int8[], $9::float8[], $10::float8[], $11::text[])"
        ),
        &[
            &targets.as_of,
            &targets.scope,
            &targets.plan,
            &targets.indicator,
            &targets.milestone,
            &targets.target_percent,
            &targets.numerator,
            &targets.denominator,
            &targets.actual_percent,
            &targets.gap_points,
            &targets.status,
        ],
    )
    .await
    .map_err(db("storing the dashboard targets"))?;
    tx.execute(
        &format!(
            "INSERT INTO {s}.dashboard_refresh (refreshed_at, events, last_recorded)
             SELECT now(), coalesce(sum(events), 0), max(last_recorded) FROM {s}.consumer_offsets
             ON CONFLICT (only_row) DO UPDATE
                 SET refreshed_at = EXCLUDED.refreshed_at, events = EXCLUDED.events,
                     last_recorded = EXCLUDED.last_recorded"
        ),
        &[],
    )
    .await
    .map_err(db("recording the dashboard refresh"))?;
    tx.commit().await.map_err(db("committing the dashboard refresh"))?;
    let refreshed =
        Refreshed { reviews: reviews.len(), unit_rows: units.value.len(), target_rows: targets.status.len() };
    tracing::info!(
        schema = %schema,
        reviews = refreshed.reviews,
        unit_rows = refreshed.unit_rows,
        read_and_reviewed_ms = reviewed.as_millis() as u64,
        stored_ms = (started.elapsed() - reviewed).as_millis() as u64,
        "dashboard figures refreshed"
    );
    Ok(Some(refreshed))
}

/// Which refresh computed a generation's dashboard figures: when it ran, and how many events it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiguresStamp {
    pub refreshed_at: DateTime<Utc>,
    pub events: i64,
}

/// The stamp of `schema`'s dashboard figures when they are current: their refresh read every event the
/// generation has applied (as many as its offsets count now; events are only ever added, so equal
/// counts are the same events). `None` when they are not current, or there are none.
pub async fn current_figures(client: &impl GenericClient, schema: &Schema) -> Result<Option<FiguresStamp>, StoreError> {
    let s = schema.ident();
    let row = client
        .query_opt(
            &format!(
                "SELECT refreshed_at, events FROM {s}.dashboard_refresh
                 WHERE events = (SELECT coalesce(sum(events), 0) FROM {s}.consumer_offsets)"
            ),
            &[],
        )
        .await
        .map_err(db("checking whether the dashboard figures are current"))?;
    Ok(row.map(|r| FiguresStamp { refreshed_at: r.get(0), events: r.get(1) }))
}

/// Copies the dashboard figures of generation `from` into generation `to`, replacing any there, when
/// they are current ([`current_figures`]), and returns the stamp of what it copied (`None`: `from` has
/// none, or they are not current, and nothing was written).
///
/// For a rebuild: the figures are a function of the read models, so the old generation's figures,
/// when [`current_figures`] still gives the copied stamp once the new generation was found equal to
/// it, are the new one's; copying them (three `INSERT … SELECT`) spares the reviews of every month end
/// ([`refresh_dashboard`]).
pub async fn copy_dashboard(
    client: &mut Client,
    from: &Schema,
    to: &Schema,
) -> Result<Option<FiguresStamp>, StoreError> {
    let (f, t) = (from.ident(), to.ident());
    // The stamp and the figures are read in one snapshot of `from`.
    let tx = one_snapshot(client, false, "beginning a copy of dashboard figures").await?;
    let Some(stamp) = current_figures(&tx, from).await? else {
        return Ok(None);
    };
    tx.batch_execute(&format!(
        "DELETE FROM {t}.dashboard_unit_figures; DELETE FROM {t}.dashboard_targets; DELETE FROM {t}.dashboard_refresh;
         INSERT INTO {t}.dashboard_unit_figures SELECT * FROM {f}.dashboard_unit_figures;
         INSERT INTO {t}.dashboard_targets SELECT * FROM {f}.dashboard_targets;
         INSERT INTO {t}.dashboard_refresh SELECT * FROM {f}.dashboard_refresh;"
    ))
    .await
    .map_err(db("copying the dashboard figures"))?;
    tx.commit().await.map_err(db("committing a copy of dashboard figures"))?;
    Ok(Some(stamp))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The columns of `dashboard_unit_figures`, for one UNNEST insert.
#[derive(Default)]
struct UnitRows {
    as_of: Vec<NaiveDate>,
    scope: Vec<String>,
    code: Vec<String>,
    level: Vec<&'static str>,
    name: Vec<String>,
    is_scope: Vec<bool>,
    figure: Vec<&'static str>,
    title: Vec<&'static str>,
    metric: Vec<&'static str>,
    value: Vec<i64>,
}

impl UnitRows {
    fn add(&mut self, review: &Review) {
        for (i, unit) in review.units.iter().enumerate() {
            let mut push = |figure: &'static str, title: &'static str, metric: &'static str, value: u64| {
                self.as_of.push(review.as_of.date());
                self.scope.push(review.scope.clone());
                self.code.push(unit.code.clone());
                self.level.push(unit.level.as_str());
                self.name.push(unit.name.clone());
                self.is_scope.push(i == 0);
                self.figure.push(figure);
                self.title.push(title);
                self.metric.push(metric);
                self.value.push(count(value));
            };
            for (title, c) in &unit.titles {
                let t = title.as_str();
                push("registered", t, "", c.registered);
                push("declared", t, "", c.declared);
                push("evidenced", t, "", c.evidenced);
                push("recognised", t, "", c.recognised);
            }
            // The part placed only by a divided commune's default (counting-rules §3), where there is one.
            for (title, c) in &unit.placed_by_default {
                let t = title.as_str();
                push("placed_by_default:registered", t, "", c.registered);
                push("placed_by_default:declared", t, "", c.declared);
                push("placed_by_default:evidenced", t, "", c.evidenced);
                push("placed_by_default:recognised", t, "", c.recognised);
            }
            push("digital_skill", "", "", unit.digital_skill);
            for (metric, value) in &unit.baselines {
                push("baseline", "", metric.as_str(), *value);
            }
        }
    }
}

/// The columns of `dashboard_targets`, for one UNNEST insert.
#[derive(Default)]
struct TargetRows {
    as_of: Vec<NaiveDate>,
    scope: Vec<String>,
    plan: Vec<String>,
    indicator: Vec<String>,
    milestone: Vec<i32>,
    target_percent: Vec<f64>,
    numerator: Vec<i64>,
    denominator: Vec<Option<i64>>,
    actual_percent: Vec<Option<f64>>,
    gap_points: Vec<Option<f64>>,
    status: Vec<&'static str>,
}

impl TargetRows {
    fn add(&mut self, review: &Review) {
        for t in &review.targets {
            self.as_of.push(review.as_of.date());
            self.scope.push(review.scope.clone());
            self.plan.push(t.plan.clone());
            self.indicator.push(t.indicator.clone());
            self.milestone.push(t.milestone);
            self.target_percent.push(t.target_percent);
            self.numerator.push(count(t.numerator));
            self.denominator.push(t.denominator.map(count));
            self.actual_percent.push(t.actual_percent);
            self.gap_points.push(t.gap_points);
            self.status.push(t.status.as_str());
        }
    }
}

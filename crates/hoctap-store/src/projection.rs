//! The projector's transactional core: a batch of consumed events becomes, in one PostgreSQL
//! transaction, the events themselves, the changes of their subjects' contributions (deltas) and the
//! next offset of every partition. A crash at any instant therefore loses nothing and counts nothing
//! twice: either the whole batch and its offsets are stored, or none of it.
//!
//! Why the in-memory engine: the counting rules live in the domain crate, which computes a subject's
//! contributions from all its events. The projection keeps every applied event in an
//! [`hoctap_domain::Engine`], loaded from the `events` table at start.

use crate::codec::{measure_to_text, place_code, place_kind};
use crate::error::db;
use crate::query::instant;
use crate::{Deployment, Schema, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use hoctap_domain::{Contribution, Day, Engine, Event, EventData, Measure, Place};
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio_postgres::{Client, GenericClient, Transaction};
use uuid::Uuid;

/// One event as the consumer received it, with where it came from.
#[derive(Clone, Debug)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Carries `recordedtime` (the log stamped it before producing).
    pub event: Event,
}

/// Where a record sat in the log: a refused record's position, whose offset advances with the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What one [`Projection::apply_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// New events folded and stored.
    pub events: usize,
    /// Events below a partition's stored next offset: delivered again after a crash or a rebalance.
    pub redelivered: usize,
    /// Events whose id was applied before (rule 3): their offsets advance, nothing else changes.
    pub duplicates: usize,
    /// (place, measure, day) rows changed in `delta_day`.
    pub deltas: usize,
}

/// The read models of one schema and the in-memory engine that feeds them.
///
/// The engine never holds a batch that PostgreSQL does not hold: while a batch is in flight its state
/// is taken out of the projection, and it is put back only after `COMMIT` succeeded. When anything
/// fails, the state is read again from PostgreSQL (at once, or before the next batch if the
/// connection is gone). Reloading, rather than applying to a copy, is also right when the connection
/// breaks during `COMMIT`: then only PostgreSQL knows whether the batch was stored.
#[derive(Debug)]
pub struct Projection {
    schema: Schema,
    /// Set when the projection feeds the serving generation of a deployment: every batch then checks
    /// that `schema` still serves ([`StoreError::Retired`] after a rebuild switched).
    serving: Option<Deployment>,
    state: Option<State>,
}

/// One step of a subject's change: the recorded time it is logged at, and the known-at to read the
/// subject at (`None` for the last step: as known now).
type Step = (i64, Option<i64>);

/// A subject index, or none.
type SubjectIx = u32;
const NO_SUBJECT: SubjectIx = u32::MAX;

#[derive(Debug)]
struct State {
    engine: Engine,
    subjects: Vec<Box<str>>,
    subject_ixs: HashMap<Box<str>, SubjectIx>,
    /// Per applied event id, the subject whose contributions it shapes (a subject event's subject, an
    /// establishment's code), or none. Retractions follow it to the subjects they change.
    touches: HashMap<Uuid, SubjectIx>,
    /// Retraction id → the id it names.
    retracts: HashMap<Uuid, Uuid>,
    /// Codes that some `admin_unit.established` names (only such a subject can be a unit), with the
    /// earliest `recordedtime` of such an establishment: from then on the subject counts as a unit.
    unit_established: HashMap<Box<str>, i64>,
    /// The next offset per (topic, partition) that this state includes.
    next: HashMap<(String, i32), i64>,
}

impl Projection {
    /// Reads every event stored in `schema` into the engine, and the stored offsets.
    pub async fn load(client: &mut Client, schema: &Schema) -> Result<Projection, StoreError> {
        let state = State::load(client, schema).await?;
        Ok(Projection { schema: schema.clone(), serving: None, state: Some(state) })
    }

    /// Sets `deployment` up if needed ([`Deployment::ensure`]) and loads its serving generation; every
    /// batch checks that this generation still serves.
    pub async fn load_serving(client: &mut Client, deployment: &Deployment) -> Result<Projection, StoreError> {
        let schema = deployment.ensure(client).await?;
        let mut projection = Projection::load(client, &schema).await?;
        projection.serving = Some(deployment.clone());
        Ok(projection)
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The engine holding every event committed to the schema; `None` while it must be read again
    /// after a failure (the next `apply_batch` does that first).
    pub fn engine(&self) -> Option<&Engine> {
        self.state.as_ref().map(|s| &s.engine)
    }

    /// The next offset per (topic, partition) that the loaded state includes; `None` while it must be
    /// read again.
    pub fn next_offsets(&self) -> Option<&HashMap<(String, i32), i64>> {
        self.state.as_ref().map(|s| &s.next)
    }

    /// Applies one batch in one transaction (see the module docs). Events below a partition's stored
    /// next offset and ids applied before are skipped; the offsets of the batch's partitions become
    /// their last offset + 1.
    ///
    /// Another consumer-group member may have applied events of these partitions since this state was
    /// read (a rebalance): the stored offsets are locked and compared with this state's, and the state
    /// is read again under the lock when they differ. So a member that missed batches never writes
    /// deltas computed from incomplete histories.
    ///
    /// Contributions as known at earlier times (`delta_log`) are exact when the events of one subject
    /// arrive in `recordedtime` order, which holds when the subject is the partition key and the log
    /// stamps in order per partition. The read models as known now are exact in any arrival order.
    pub async fn apply_batch(&mut self, client: &mut Client, batch: &[Consumed]) -> Result<Applied, StoreError> {
        self.apply_batch_with_refused(client, batch, &[]).await
    }

    /// [`Projection::apply_batch`], where the records at `refused` (dead-lettered by the caller: not
    /// events) are consumed too: their offsets advance in the same transaction.
    ///
    /// Fails with [`StoreError::Gap`] when a partition's records in the batch start after its stored
    /// next offset: the consumer skipped records, and applying would lose them (seek back and retry).
    pub async fn apply_batch_with_refused(
        &mut self,
        client: &mut Client,
        batch: &[Consumed],
        refused: &[Position],
    ) -> Result<Applied, StoreError> {
        if self.state.is_none() {
            self.state = Some(State::load(client, &self.schema).await?);
        }
        let result = self.try_apply(client, batch, refused).await;
        if let Err(e) = &result {
            tracing::warn!(schema = %self.schema, error = %e, events = batch.len(), "batch not applied");
        }
        if self.state.is_none() {
            match State::load(client, &self.schema).await {
                Ok(state) => self.state = Some(state),
                Err(e) => {
                    tracing::warn!(schema = %self.schema, error = %e, "projection will be read again before the next batch")
                }
            }
        }
        result
    }

    async fn try_apply(
        &mut self,
        client: &mut Client,
        batch: &[Consumed],
        refused: &[Position],
    ) -> Result<Applied, StoreError> {
        if let Some(c) = batch.iter().find(|c| c.event.recordedtime.is_none()) {
            return Err(StoreError::NotRecorded {
                id: c.event.id,
                topic: c.topic.clone(),
                partition: c.partition,
                offset: c.offset,
            });
        }
        let schema = &self.schema;
        let tx = client.transaction().await.map_err(db("beginning a batch"))?;
        if let Some(deployment) = &self.serving {
            deployment.check_serving(&tx, schema).await?;
        }
        let positions = batch
            .iter()
            .map(|c| (&c.topic, c.partition, c.offset))
            .chain(refused.iter().map(|p| (&p.topic, p.partition, p.offset)));
        let mut first: HashMap<(String, i32), i64> = HashMap::new();
        for (topic, partition, offset) in positions.clone() {
            let o = first.entry((topic.clone(), partition)).or_insert(offset);
            *o = (*o).min(offset);
        }
        let mut keys: Vec<(String, i32)> = first.keys().cloned().collect();
        keys.sort();
        let stored = lock_offsets(&tx, schema, &keys).await?;
        for (key, &offset) in &first {
            let expected = stored.get(key).copied().unwrap_or(0);
            if offset > expected {
                return Err(StoreError::Gap { topic: key.0.clone(), partition: key.1, expected, got: offset });
            }
        }

        // From here on the state may diverge from PostgreSQL until COMMIT: keep it out of `self`.
        let mut state = self.state.take().expect("apply_batch loads the state first");
        if keys.iter().any(|k| stored.get(k).copied().unwrap_or(0) != state.next.get(k).copied().unwrap_or(0)) {
            tracing::info!(schema = %schema, "another member applied events of these partitions: reading the state again");
            state = State::read(&tx, schema).await?;
        }

        let mut applied = Applied::default();
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        let mut fresh: Vec<&Consumed> = Vec::new();
        let mut in_batch = HashSet::new();
        for c in batch {
            if c.offset < stored.get(&(c.topic.clone(), c.partition)).copied().unwrap_or(0) {
                applied.redelivered += 1;
                continue;
            }
            if state.touches.contains_key(&c.event.id) || !in_batch.insert(c.event.id) {
                applied.duplicates += 1;
                continue;
            }
            fresh.push(c);
        }
        applied.events = fresh.len();
        for (topic, partition, offset) in positions {
            let key = (topic.clone(), partition);
            if offset >= stored.get(&key).copied().unwrap_or(0) {
                let n = next.entry(key).or_insert(offset + 1);
                *n = (*n).max(offset + 1);
            }
        }

        let deltas = state.fold(fresh.iter().map(|c| &c.event));
        applied.deltas = write_deltas(&tx, schema, &deltas).await?;
        insert_events(&tx, schema, &fresh).await?;
        store_offsets(&tx, schema, &next).await?;
        tx.commit().await.map_err(db("committing a batch"))?;

        state.next.extend(next);
        self.state = Some(state);
        tracing::debug!(
            schema = %self.schema,
            events = applied.events,
            redelivered = applied.redelivered,
            duplicates = applied.duplicates,
            deltas = applied.deltas,
            "batch applied"
        );
        Ok(applied)
    }
}

/// The deltas of one batch, summed in memory: per (place, measure, day), and per (place, measure,
/// day, recorded) for the log of transaction times.
#[derive(Debug, Default)]
struct Deltas {
    by_day: HashMap<(Place, Measure, Day), i64>,
    by_recorded: HashMap<(Place, Measure, Day, i64), i64>,
}

impl Deltas {
    fn add(&mut self, c: &Contribution, sign: i64, recorded: i64) {
        for (day, n) in [(c.from, sign), (c.until, -sign)] {
            if day == Day::MAX {
                continue;
            }
            *self.by_day.entry((c.place.clone(), c.measure, day)).or_default() += n;
            *self.by_recorded.entry((c.place.clone(), c.measure, day, recorded)).or_default() += n;
        }
    }

    /// Records the change from `before` to `after` (both sorted multisets): a stretch that disappeared
    /// is taken back, a new one is added.
    fn diff(&mut self, before: &[Contribution], after: &[Contribution], recorded: i64) {
        let (mut i, mut j) = (0, 0);
        while i < before.len() || j < after.len() {
            match (before.get(i), after.get(j)) {
                (Some(b), Some(a)) if b == a => (i, j) = (i + 1, j + 1),
                (Some(b), Some(a)) if b < a => {
                    self.add(b, -1, recorded);
                    i += 1;
                }
                (Some(_), Some(a)) | (None, Some(a)) => {
                    self.add(a, 1, recorded);
                    j += 1;
                }
                (Some(b), None) => {
                    self.add(b, -1, recorded);
                    i += 1;
                }
                (None, None) => unreachable!(),
            }
        }
    }
}

impl State {
    fn empty() -> State {
        State {
            engine: Engine::new(),
            subjects: Vec::new(),
            subject_ixs: HashMap::new(),
            touches: HashMap::new(),
            retracts: HashMap::new(),
            unit_established: HashMap::new(),
            next: HashMap::new(),
        }
    }

    /// Reads the state in one snapshot, so that events and offsets agree.
    async fn load(client: &mut Client, schema: &Schema) -> Result<State, StoreError> {
        let tx = crate::error::snapshot(client, "beginning to load the projection").await?;
        let state = State::read(&tx, schema).await?;
        tx.commit().await.map_err(db("ending the load of the projection"))?;
        Ok(state)
    }

    async fn read(tx: &Transaction<'_>, schema: &Schema) -> Result<State, StoreError> {
        let started = std::time::Instant::now();
        let mut state = State::empty();
        state.next = offsets(tx, schema).await?;
        let s = schema.ident();
        let statement =
            tx.prepare(&format!("SELECT body::text FROM {s}.events")).await.map_err(db("reading the events"))?;
        let portal = tx.bind(&statement, &[]).await.map_err(db("reading the events"))?;
        loop {
            let rows = tx.query_portal(&portal, 10_000).await.map_err(db("reading the events"))?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let event = decode(schema, row.get(0))?;
                state.register(&event);
                state.engine.apply(&event);
            }
        }
        tracing::info!(schema = %schema, events = state.engine.len(), elapsed_ms = started.elapsed().as_millis() as u64, "projection loaded");
        Ok(state)
    }

    fn subject_ix(&mut self, subject: &str) -> SubjectIx {
        if let Some(&ix) = self.subject_ixs.get(subject) {
            return ix;
        }
        let ix = self.subjects.len() as SubjectIx;
        self.subjects.push(subject.into());
        self.subject_ixs.insert(subject.into(), ix);
        ix
    }

    /// Notes what `event` touches, before it is folded.
    fn register(&mut self, event: &Event) {
        let touches = match &event.data {
            EventData::RegistrationSubmitted(_)
            | EventData::RegistrationWithdrawn(_)
            | EventData::DeclarationSubmitted(_)
            | EventData::EvidenceUploaded(_)
            | EventData::RecognitionGranted(_)
            | EventData::RecognitionRevoked(_)
            | EventData::SkillCertified(_)
            | EventData::SubjectRelocated(_) => self.subject_ix(&event.subject),
            // Whether a subject is a unit (its own place) depends on its code's establishment.
            EventData::AdminUnitEstablished(d) => {
                let recorded = event.recordedtime.unwrap_or(i64::MIN);
                let at = self.unit_established.entry(d.code.as_str().into()).or_insert(recorded);
                *at = (*at).min(recorded);
                self.subject_ix(&d.code)
            }
            EventData::EventRetracted(d) => {
                self.retracts.insert(event.id, d.event_id);
                NO_SUBJECT
            }
            EventData::AdminUnitReparented(_)
            | EventData::AdminUnitRenamed(_)
            | EventData::AdminUnitDissolved(_)
            | EventData::BaselineRecorded(_)
            | EventData::TargetSet(_) => NO_SUBJECT,
        };
        self.touches.insert(event.id, touches);
    }

    /// The subjects whose contributions `event` can change: its own, or for a retraction those of the
    /// events down the chain it names (retracting a retraction restores the event it named).
    fn touched(&self, event: &Event) -> Vec<SubjectIx> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut id = event.id;
        while seen.insert(id) {
            match self.touches.get(&id) {
                Some(&s) if s != NO_SUBJECT => out.push(s),
                Some(_) => {}
                // Not known yet: its own arrival will touch its subject.
                None => break,
            }
            match self.retracts.get(&id) {
                Some(&named) => id = named,
                None => break,
            }
        }
        out
    }

    fn is_unit(&self, subject: &str, known_at: Option<i64>) -> bool {
        // Building a locator walks every unit: ask only for subjects that can be one.
        self.unit_established.contains_key(subject) && self.engine.locator(Day(0), known_at).is_unit(subject)
    }

    fn contributions(&self, subject: SubjectIx, known_at: Option<i64>) -> Vec<Contribution> {
        let subject = &self.subjects[subject as usize];
        self.engine.contributions(subject, self.is_unit(subject, known_at), known_at)
    }

    /// Folds `events` (new, each with `recordedtime`) and returns how the touched subjects'
    /// contributions changed.
    ///
    /// For a touched subject, let D(K) be its contributions as known at K after the batch minus those
    /// before it. D changes only at the subject's known times (its events' and their retractions'
    /// `recordedtime`, and for a unit its establishment's) and is zero before the batch's earliest
    /// time m for it. So the batch adds, at each known time t ≥ m, D(t) minus D at the previous known
    /// time, and the deltas with `recorded ≤ K` add up to the subject as known at K, whatever order
    /// the events arrived in. The last step reads the subject as known now, so the tables as known now
    /// are exact too.
    fn fold<'a>(&mut self, events: impl Iterator<Item = &'a Event> + Clone) -> Deltas {
        for e in events.clone() {
            self.register(e);
        }
        let mut times: HashMap<SubjectIx, BTreeSet<i64>> = HashMap::new();
        for e in events.clone() {
            let recorded = e.recordedtime.expect("checked by the caller");
            let retractions = self.engine.retraction_times(&e.id);
            for s in self.touched(e) {
                let t = times.entry(s).or_default();
                t.insert(recorded);
                t.extend(retractions.iter().copied());
            }
        }
        // The steps of each subject: its known times from the batch's earliest one on.
        let steps: Vec<(SubjectIx, Vec<Step>)> = times
            .into_iter()
            .map(|(s, batch_times)| {
                let m = *batch_times.first().expect("at least one time");
                let mut all = batch_times;
                all.extend(self.engine.known_times(&self.subjects[s as usize]));
                if let Some(&t) = self.unit_established.get(&self.subjects[s as usize]) {
                    all.insert(t);
                }
                let mut steps: Vec<Step> = all.range(m..).map(|&t| (t, Some(t))).collect();
                steps.last_mut().expect("m is in the set").1 = None;
                (s, steps)
            })
            .collect();
        let before: Vec<Vec<Vec<Contribution>>> =
            steps.iter().map(|(s, ts)| ts.iter().map(|&(_, k)| self.contributions(*s, k)).collect()).collect();
        for e in events {
            self.engine.apply(e);
        }
        let mut deltas = Deltas::default();
        for ((s, ts), old) in steps.iter().zip(before) {
            let new: Vec<Vec<Contribution>> = ts.iter().map(|&(_, k)| self.contributions(*s, k)).collect();
            for (i, &(at, _)) in ts.iter().enumerate() {
                if i == 0 {
                    deltas.diff(&old[0], &new[0], at);
                } else {
                    deltas.diff(&new[i - 1], &new[i], at);
                    deltas.diff(&old[i], &old[i - 1], at);
                }
            }
        }
        deltas
    }
}

fn decode(schema: &Schema, body: &str) -> Result<Event, StoreError> {
    Event::from_json_recorded(body.as_bytes())
        .map_err(|r| StoreError::Corrupt { schema: schema.to_string(), detail: format!("a stored event: {r}") })
}

/// The next offset to consume per (topic, partition), where a consumer seeks on assignment. A
/// partition that is absent starts at its beginning.
pub async fn offsets(client: &impl GenericClient, schema: &Schema) -> Result<HashMap<(String, i32), i64>, StoreError> {
    let rows = client
        .query(&format!("SELECT topic, partition, next_offset FROM {}.consumer_offsets", schema.ident()), &[])
        .await
        .map_err(db("reading the consumer offsets"))?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

/// Locks the offset rows of the batch's partitions (creating them at 0 if new) in one order, so that
/// two members never apply the same partition at once, and returns them.
async fn lock_offsets(
    tx: &Transaction<'_>,
    schema: &Schema,
    keys: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, StoreError> {
    let s = schema.ident();
    let topics: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let partitions: Vec<i32> = keys.iter().map(|k| k.1).collect();
    tx.execute(
        &format!(
            "INSERT INTO {s}.consumer_offsets (topic, partition, next_offset)
             SELECT topic, partition, 0 FROM UNNEST($1::text[], $2::int4[]) AS k(topic, partition)
             ON CONFLICT DO NOTHING"
        ),
        &[&topics, &partitions],
    )
    .await
    .map_err(db("creating offset rows"))?;
    let rows = tx
        .query(
            &format!(
                "SELECT o.topic, o.partition, o.next_offset FROM {s}.consumer_offsets o
                 JOIN UNNEST($1::text[], $2::int4[]) AS k(topic, partition) USING (topic, partition)
                 ORDER BY o.topic, o.partition FOR UPDATE OF o"
            ),
            &[&topics, &partitions],
        )
        .await
        .map_err(db("locking the offsets"))?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

fn date(day: Day) -> NaiveDate {
    day.date()
}

/// Adds the batch's deltas to the day, month and year tables (one statement) and to the log of
/// transaction times (one statement). Returns the number of day rows.
async fn write_deltas(tx: &Transaction<'_>, schema: &Schema, deltas: &Deltas) -> Result<usize, StoreError> {
    let s = schema.ident();
    let rows: Vec<_> = deltas.by_day.iter().filter(|(_, n)| **n != 0).collect();
    if !rows.is_empty() {
        let kinds: Vec<&str> = rows.iter().map(|((p, _, _), _)| place_kind(p)).collect();
        let codes: Vec<&str> = rows.iter().map(|((p, _, _), _)| place_code(p)).collect();
        let measures: Vec<String> = rows.iter().map(|((_, m, _), _)| measure_to_text(*m)).collect();
        let days: Vec<NaiveDate> = rows.iter().map(|((_, _, d), _)| date(*d)).collect();
        let ns: Vec<i64> = rows.iter().map(|(_, n)| **n).collect();
        // Years: every year Y in 2021..=2031 whose 1 January lies after the delta's day.
        tx.execute(
            &format!(
                "WITH d AS (
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::int8[])
                         AS t(place_kind, place_code, measure, day, n)
                 ), days AS (
                     INSERT INTO {s}.delta_day AS x (place_kind, place_code, measure, day, n)
                     SELECT place_kind, place_code, measure, day, n FROM d
                     ON CONFLICT (day, place_kind, place_code, measure) DO UPDATE SET n = x.n + EXCLUDED.n
                 ), months AS (
                     INSERT INTO {s}.delta_month AS x (place_kind, place_code, measure, month, n)
                     SELECT place_kind, place_code, measure, date_trunc('month', day::timestamp)::date, sum(n)
                     FROM d GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
                     ON CONFLICT (month, place_kind, place_code, measure) DO UPDATE SET n = x.n + EXCLUDED.n
                 )
                 INSERT INTO {s}.total_before_year AS x (place_kind, place_code, measure, year, n)
                 SELECT place_kind, place_code, measure, y, sum(n)
                 FROM d CROSS JOIN generate_series(2021, 2031) AS y
                 WHERE make_date(y, 1, 1) > day
                 GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
                 ON CONFLICT (year, place_kind, place_code, measure) DO UPDATE SET n = x.n + EXCLUDED.n"
            ),
            &[&kinds, &codes, &measures, &days, &ns],
        )
        .await
        .map_err(db("adding deltas"))?;
    }
    let log: Vec<_> = deltas.by_recorded.iter().filter(|(_, n)| **n != 0).collect();
    if !log.is_empty() {
        let kinds: Vec<&str> = log.iter().map(|((p, ..), _)| place_kind(p)).collect();
        let codes: Vec<&str> = log.iter().map(|((p, ..), _)| place_code(p)).collect();
        let measures: Vec<String> = log.iter().map(|((_, m, ..), _)| measure_to_text(*m)).collect();
        let days: Vec<NaiveDate> = log.iter().map(|((_, _, d, _), _)| date(*d)).collect();
        let recorded: Vec<DateTime<Utc>> = log.iter().map(|((.., r), _)| instant(*r)).collect();
        let ns: Vec<i64> = log.iter().map(|(_, n)| **n).collect();
        tx.execute(
            &format!(
                "INSERT INTO {s}.delta_log AS x (place_kind, place_code, measure, day, recorded, n)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::timestamptz[], $6::int8[])
                 ON CONFLICT (day, recorded, place_kind, place_code, measure) DO UPDATE SET n = x.n + EXCLUDED.n"
            ),
            &[&kinds, &codes, &measures, &days, &recorded, &ns],
        )
        .await
        .map_err(db("logging deltas"))?;
    }
    Ok(rows.len())
}

async fn insert_events(tx: &Transaction<'_>, schema: &Schema, events: &[&Consumed]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = events.iter().map(|c| c.event.id).collect();
    let types: Vec<&str> = events.iter().map(|c| c.event.event_type().stem()).collect();
    let subjects: Vec<&str> = events.iter().map(|c| c.event.subject.as_str()).collect();
    let topics: Vec<&str> = events.iter().map(|c| c.topic.as_str()).collect();
    let partitions: Vec<i32> = events.iter().map(|c| c.partition).collect();
    let offsets: Vec<i64> = events.iter().map(|c| c.offset).collect();
    let recorded: Vec<DateTime<Utc>> =
        events.iter().map(|c| instant(c.event.recordedtime.expect("checked by the caller"))).collect();
    let bodies: Vec<String> = events.iter().map(|c| c.event.to_json()).collect();
    tx.execute(
        &format!(
            "INSERT INTO {}.events (id, type, subject, topic, partition, \"offset\", recorded, body)
             SELECT id, type, subject, topic, partition, \"offset\", recorded, body::jsonb
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int8[],
                         $7::timestamptz[], $8::text[])
                 AS t(id, type, subject, topic, partition, \"offset\", recorded, body)",
            schema.ident()
        ),
        &[&ids, &types, &subjects, &topics, &partitions, &offsets, &recorded, &bodies],
    )
    .await
    .map_err(db("storing events"))?;
    Ok(())
}

async fn store_offsets(
    tx: &Transaction<'_>,
    schema: &Schema,
    next: &HashMap<(String, i32), i64>,
) -> Result<(), StoreError> {
    if next.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = next.keys().map(|k| k.0.as_str()).collect();
    let partitions: Vec<i32> = next.keys().map(|k| k.1).collect();
    let values: Vec<i64> = next.values().copied().collect();
    tx.execute(
        &format!(
            "INSERT INTO {s}.consumer_offsets AS x (topic, partition, next_offset, updated_at)
             SELECT topic, partition, next_offset, now()
             FROM UNNEST($1::text[], $2::int4[], $3::int8[]) AS t(topic, partition, next_offset)
             ON CONFLICT (topic, partition) DO UPDATE
                 SET next_offset = GREATEST(x.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at",
            s = schema.ident()
        ),
        &[&topics, &partitions, &values],
    )
    .await
    .map_err(db("storing offsets"))?;
    Ok(())
}

//! The read models against a real PostgreSQL (127.0.0.1:5432, database `test`): reviews from
//! PostgreSQL equal the embedded engine's, redelivery and failed transactions change nothing, offsets
//! travel with their batch. Each test works in a schema of its own, dropped at the end. PostgreSQL
//! must run: a test fails (never skips) when it cannot connect.

use hoctap_domain::event::EventType;
use hoctap_domain::time::parse_instant;
use hoctap_domain::{Day, Engine, Event, Query};
use hoctap_store::{
    Applied, Consumed, Projection, ReadCache, Schema, StoreError, events_applied, migrate, offsets, place_counts,
    review,
};
use std::collections::HashMap;
use std::time::Instant;
use tokio_postgres::Client;

const PARTITIONS: i32 = 4;

async fn connect() -> Client {
    hoctap_tests::pg_connect().await
}

/// A migrated schema with a random name. A test ends with [`Fresh::remove`]; when it panics before,
/// `Drop` removes the schema instead.
struct Fresh {
    schema: Schema,
    removed: bool,
}

impl Fresh {
    async fn new(client: &mut Client) -> Fresh {
        let schema = Schema::new(&format!("hoctap_test_{:016x}", fastrand::u64(..))).unwrap();
        let all: Vec<i32> = hoctap_store::MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(migrate(client, &schema).await.unwrap(), all);
        Fresh { schema, removed: false }
    }

    /// Drops the schema on the test's own connection, after whatever that connection still has queued
    /// (a rollback of a dropped transaction), so that it never waits for its own locks.
    async fn remove(mut self, client: &Client) {
        client.batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema)).await.unwrap();
        self.removed = true;
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let name = self.schema.as_str().to_owned();
        // Drop runs inside the test's runtime, which cannot be blocked on: use a runtime of its own. The
        // test's connection may still hold locks (its task cannot run meanwhile): give up rather than wait.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let sql = format!("SET lock_timeout = '5s'; DROP SCHEMA \"{name}\" CASCADE");
                connect().await.batch_execute(&sql).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("schema {} is left in database `test`: {dropped:?}", self.schema);
        }
    }
}

/// A stable partition of a subject (FNV-1a), as a producer keying by subject would pick.
fn partition_of(subject: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in subject.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % PARTITIONS as u64) as i32
}

/// The events as a consumer would receive them: topic `events`, partition by subject, offsets counted
/// per partition in log order.
fn consumed(events: &[Event]) -> Vec<Consumed> {
    let mut next = [0i64; PARTITIONS as usize];
    events
        .iter()
        .map(|e| {
            let partition = partition_of(&e.subject);
            let offset = next[partition as usize];
            next[partition as usize] += 1;
            Consumed { topic: "events".into(), partition, offset, event: e.clone() }
        })
        .collect()
}

/// Batches as a consumer polls them: up to `per_partition` events of each partition in turn, so that
/// a batch mixes partitions and the order across partitions is not the log's.
fn batches(consumed: &[Consumed], per_partition: usize) -> Vec<Vec<Consumed>> {
    let mut queues: Vec<Vec<&Consumed>> = vec![Vec::new(); PARTITIONS as usize];
    for c in consumed {
        queues[c.partition as usize].push(c);
    }
    let mut at = vec![0; PARTITIONS as usize];
    let mut out = Vec::new();
    loop {
        let mut batch = Vec::new();
        for (p, queue) in queues.iter().enumerate() {
            let end = (at[p] + per_partition).min(queue.len());
            batch.extend(queue[at[p]..end].iter().map(|c| (*c).clone()));
            at[p] = end;
        }
        if batch.is_empty() {
            return out;
        }
        out.push(batch);
    }
}

/// The generated city (duplicates, retractions and late events included), stamped with strictly
/// increasing `recordedtime`s in generation order.
fn city(citizens: u64, seed: u64) -> Vec<Event> {
    hoctap_gen::generate_stamped(
        &hoctap_gen::Config::new(citizens, seed),
        parse_instant("2026-01-01T00:00:00Z").unwrap(),
        1_000,
    )
}

fn engine_of(events: &[Event]) -> Engine {
    let mut engine = Engine::new();
    for e in events {
        engine.apply(e);
    }
    engine
}

async fn apply_all(client: &mut Client, projection: &mut Projection, batches: &[Vec<Consumed>]) -> Applied {
    let mut total = Applied::default();
    for batch in batches {
        let a = projection.apply_batch(client, batch).await.unwrap();
        total.events += a.events;
        total.redelivered += a.redelivered;
        total.duplicates += a.duplicates;
        total.deltas += a.deltas;
    }
    total
}

/// Reviews of Hà Nội from PostgreSQL equal the engine's, on every date, as known at every time given.
async fn assert_same_reviews(
    client: &mut Client,
    schema: &Schema,
    engine: &Engine,
    dates: &[&str],
    known: &[Option<i64>],
) -> usize {
    assert_same_reviews_of(client, schema, engine, "01", dates, known).await
}

/// [`assert_same_reviews`] of any scope: an error of the engine must be PostgreSQL's too.
async fn assert_same_reviews_of(
    client: &mut Client,
    schema: &Schema,
    engine: &Engine,
    scope: &str,
    dates: &[&str],
    known: &[Option<i64>],
) -> usize {
    let mut compared = 0;
    let cache = ReadCache::new();
    for date in dates {
        for &known_at in known {
            let query = Query { scope: scope.into(), as_of: Day::parse(date).unwrap(), known_at, milestone: None };
            match (engine.review(&query), review(client, schema, &cache, &query).await) {
                (Ok(want), Ok(got)) => {
                    assert_eq!(got, want, "review of {scope} on {date} as known at {known_at:?}");
                    compared += 1;
                }
                (Err(want), Err(StoreError::Query(got))) => assert_eq!(got, want, "{scope} {date} {known_at:?}"),
                (want, got) => panic!("{scope} {date} {known_at:?}: engine {want:?}, PostgreSQL {got:?}"),
            }
        }
    }
    compared
}

/// Every row of the schema that carries meaning (not the bookkeeping times), as text, sorted.
async fn dump(client: &Client, schema: &Schema) -> Vec<String> {
    let s = format!("\"{schema}\"");
    let mut out = Vec::new();
    for (table, select) in [
        ("subjects", format!("SELECT subject, history FROM {s}.subjects")),
        ("reference", format!("SELECT id, type, recorded, body FROM {s}.reference_events")),
        (
            "offsets",
            format!(
                "SELECT topic, partition, next_offset, events, first_recorded, last_recorded
                 FROM {s}.consumer_offsets WHERE next_offset > 0"
            ),
        ),
        ("keys", format!("SELECT key, place_kind, place_code, commune, measure FROM {s}.count_keys")),
        ("year", format!("SELECT * FROM {s}.counts_year")),
        ("month", format!("SELECT * FROM {s}.counts_month")),
    ] {
        let rows = client.query(&format!("SELECT x::text FROM ({select}) AS x ORDER BY 1"), &[]).await.unwrap();
        out.extend(rows.iter().map(|r| format!("{table} {}", r.get::<_, String>(0))));
    }
    for (recorded, key, day, n) in hoctap_store::log_changes(client, schema).await.unwrap() {
        out.push(format!("log ({recorded},{key},{day},{n})"));
    }
    out
}

/// The next offset per partition after `delivered`.
fn expected_offsets(delivered: &[&[Consumed]]) -> HashMap<(String, i32), i64> {
    let mut out = HashMap::new();
    for c in delivered.iter().flat_map(|b| b.iter()) {
        let n = out.entry((c.topic.clone(), c.partition)).or_insert(0);
        *n = (*n).max(c.offset + 1);
    }
    out
}

const DATES: &[&str] = &["2021-06-30", "2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"];

#[tokio::test]
async fn reviews_from_postgresql_equal_the_embedded_engine() {
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let events = city(300, 1);
    let engine = engine_of(&events);
    let middle = events[events.len() / 2].recordedtime;
    let batches = batches(&consumed(&events), 75);

    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    let started = Instant::now();
    let applied = apply_all(&mut client, &mut projection, &batches).await;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "applied {} events ({} duplicates) in {} batches in {elapsed:.2} s: {:.0} events/s into PostgreSQL ({} build)",
        applied.events,
        applied.duplicates,
        batches.len(),
        events.len() as f64 / elapsed,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
    assert_eq!(applied.events, engine.len());
    assert_eq!(applied.events + applied.duplicates, events.len());

    let compared = assert_same_reviews(&mut client, &fresh.schema, &engine, DATES, &[None, middle]).await;
    assert!(compared >= 8, "only {compared} reviews compared");
    let q = Query { scope: "01".into(), as_of: Day::parse("2025-12-31").unwrap(), known_at: None, milestone: None };
    let cache = ReadCache::new();
    let city_review = review(&mut client, &fresh.schema, &cache, &q).await.unwrap();
    assert!(
        city_review.units[0].titles.values().any(|t| t.recognised > 0),
        "a city with nothing recognised proves little"
    );

    // The buckets (as known now) and the log (as known at the last recorded time) agree.
    let last = events.iter().filter_map(|e| e.recordedtime).max();
    for date in DATES {
        let day = Day::parse(date).unwrap();
        let now = place_counts(&client, &fresh.schema, &cache, day, None).await.unwrap();
        assert_eq!(place_counts(&client, &fresh.schema, &cache, day, last).await.unwrap(), now, "{date}");
    }
    // Dates outside the years that have year rows read whole months instead; the log read forward from
    // the first recorded time, and backward from now, agree with the counts as known now.
    let first = events.iter().filter_map(|e| e.recordedtime).min().unwrap();
    for date in ["2019-03-01", "2033-02-10", "2025-12-31"] {
        let day = Day::parse(date).unwrap();
        let now = place_counts(&client, &fresh.schema, &cache, day, None).await.unwrap();
        assert_eq!(place_counts(&client, &fresh.schema, &cache, day, last).await.unwrap(), now, "{date}");
        let mut nothing_yet = place_counts(&client, &fresh.schema, &cache, day, Some(first - 1)).await.unwrap();
        nothing_yet.retain(|_, n| *n != 0);
        assert!(nothing_yet.is_empty(), "{date}: {nothing_yet:?}");
    }

    // A projection loaded from PostgreSQL reads the offsets and nothing of the history.
    let reloaded = Projection::load(&mut client, &fresh.schema).await.unwrap();
    assert_eq!(reloaded.next_offsets().unwrap(), &offsets(&client, &fresh.schema).await.unwrap());
    assert_eq!(reloaded.cached(), Some((0, 0)));
    assert_eq!(events_applied(&client, &fresh.schema).await.unwrap(), engine.len() as i64);
    fresh.remove(&client).await;
}

#[tokio::test]
async fn generations_batched_differently_are_equal_and_one_more_event_is_a_difference() {
    let mut client = connect().await;
    let (a, b) = (Fresh::new(&mut client).await, Fresh::new(&mut client).await);
    let events = city(120, 5);
    let all = consumed(&events);
    // The last subject event is held back from the first generation at first.
    let held = all.iter().rposition(|c| !c.event.event_type().is_reference()).unwrap();
    let (mut pa, mut pb) = (
        Projection::load(&mut client, &a.schema).await.unwrap(),
        Projection::load(&mut client, &b.schema).await.unwrap(),
    );
    let without: Vec<Consumed> = all.iter().enumerate().filter(|(i, _)| *i != held).map(|(_, c)| c.clone()).collect();
    apply_all(&mut client, &mut pa, &batches(&without, 40)).await;
    apply_all(&mut client, &mut pb, &batches(&all, 25)).await;
    let diff = hoctap_store::differences(&client, &a.schema, &b.schema).await.unwrap();
    let tables: Vec<&str> = diff.iter().map(|(t, _)| *t).collect();
    assert!(tables.contains(&"delta_log") && tables.contains(&"subjects"), "{diff:?}");

    pa.apply_batch(&mut client, &all[held..=held]).await.unwrap();
    assert_eq!(hoctap_store::differences(&client, &a.schema, &b.schema).await.unwrap(), vec![]);
    a.remove(&client).await;
    b.remove(&client).await;
}

/// The dashboard figures of one generation, row by row (the time of the refresh left out).
async fn dashboard_rows(client: &Client, schema: &Schema) -> Vec<String> {
    let mut rows = Vec::new();
    for select in [
        "SELECT q::text FROM {g}.dashboard_unit_figures q",
        "SELECT q::text FROM {g}.dashboard_targets q",
        "SELECT events::text || ' ' || coalesce(last_recorded::text, '') FROM {g}.dashboard_refresh",
    ] {
        let sql = format!("{} ORDER BY 1", select.replace("{g}", &format!("\"{schema}\"")));
        rows.extend(client.query(&sql, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)));
    }
    rows
}

#[tokio::test]
async fn dashboard_figures_copied_from_an_equal_generation_while_current_are_its_own() {
    use hoctap_store::{copy_dashboard, current_figures, refresh_dashboard};
    let mut client = connect().await;
    let (a, b) = (Fresh::new(&mut client).await, Fresh::new(&mut client).await);
    let all = consumed(&city(120, 8));
    let held = all.iter().rposition(|c| !c.event.event_type().is_reference()).unwrap();
    let without: Vec<Consumed> = all.iter().enumerate().filter(|(i, _)| *i != held).map(|(_, c)| c.clone()).collect();
    let (mut pa, mut pb) = (
        Projection::load(&mut client, &a.schema).await.unwrap(),
        Projection::load(&mut client, &b.schema).await.unwrap(),
    );
    // No figures yet: nothing is copied, and none are current.
    assert_eq!(copy_dashboard(&mut client, &a.schema, &b.schema).await.unwrap(), None);
    assert_eq!(current_figures(&client, &a.schema).await.unwrap(), None);
    apply_all(&mut client, &mut pa, &batches(&without, 40)).await;
    refresh_dashboard(&mut client, &a.schema).await.unwrap().unwrap();
    let stale = copy_dashboard(&mut client, &a.schema, &b.schema).await.unwrap().expect("figures to copy");
    assert_eq!(current_figures(&client, &a.schema).await.unwrap(), Some(stale));
    // One more event after the refresh: the figures are no longer current, and not copied.
    pa.apply_batch(&mut client, &all[held..=held]).await.unwrap();
    assert_eq!(current_figures(&client, &a.schema).await.unwrap(), None);
    assert_eq!(copy_dashboard(&mut client, &a.schema, &b.schema).await.unwrap(), None);
    // Refreshed again and copied: what computing the figures in an equal generation gives.
    apply_all(&mut client, &mut pb, &batches(&all, 25)).await;
    refresh_dashboard(&mut client, &a.schema).await.unwrap().unwrap();
    let copied = copy_dashboard(&mut client, &a.schema, &b.schema).await.unwrap();
    assert!(copied.is_some_and(|c| c != stale && c.events == stale.events + 1), "{copied:?} after {stale:?}");
    assert_eq!(current_figures(&client, &a.schema).await.unwrap(), copied);
    let rows = dashboard_rows(&client, &b.schema).await;
    assert!(rows.len() > 1000, "{} rows", rows.len());
    refresh_dashboard(&mut client, &b.schema).await.unwrap().unwrap();
    assert_eq!(rows, dashboard_rows(&client, &b.schema).await);
    a.remove(&client).await;
    b.remove(&client).await;
}

#[tokio::test]
async fn redelivered_batches_change_nothing() {
    let mut client = connect().await;
    let events = city(300, 2);
    let all = batches(&consumed(&events), 60);
    let prefix = &all[..12];

    // Once, cleanly.
    let clean = Fresh::new(&mut client).await;
    let mut projection = Projection::load(&mut client, &clean.schema).await.unwrap();
    apply_all(&mut client, &mut projection, prefix).await;

    // With every batch delivered twice, a crash (a new projection loaded from PostgreSQL) that makes
    // the consumer redeliver from an older offset, and a batch that straddles stored offsets.
    let twice = Fresh::new(&mut client).await;
    let mut projection = Projection::load(&mut client, &twice.schema).await.unwrap();
    for batch in &prefix[..8] {
        projection.apply_batch(&mut client, batch).await.unwrap();
        let before = dump(&client, &twice.schema).await;
        let again = projection.apply_batch(&mut client, batch).await.unwrap();
        assert_eq!(again, Applied { redelivered: batch.len(), ..Applied::default() });
        assert_eq!(dump(&client, &twice.schema).await, before, "redelivery changed the read models");
    }
    drop(projection);
    let mut projection = Projection::load(&mut client, &twice.schema).await.unwrap();
    let before = dump(&client, &twice.schema).await;
    apply_all(&mut client, &mut projection, &prefix[6..8]).await;
    assert_eq!(dump(&client, &twice.schema).await, before, "redelivery after a restart changed the read models");
    let half = prefix[8].len() / 2;
    let straddling: Vec<Consumed> = prefix[7][half..].iter().chain(&prefix[8][..half]).cloned().collect();
    let a = projection.apply_batch(&mut client, &straddling).await.unwrap();
    assert_eq!(a.redelivered, prefix[7].len() - half);
    apply_all(&mut client, &mut projection, &prefix[8..]).await;

    assert_eq!(dump(&client, &twice.schema).await, dump(&client, &clean.schema).await);
    clean.remove(&client).await;
    twice.remove(&client).await;
}

#[tokio::test]
async fn a_failed_transaction_leaves_postgresql_and_the_projection_as_before() {
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let s = format!("\"{}\"", fresh.schema);
    let events = city(300, 3);
    let engine = engine_of(&events);
    let all = batches(&consumed(&events), 75);
    // Fail a batch that changes counts, not one of the geography at the head of the feed.
    let counting = |b: &Vec<Consumed>| b.iter().any(|c| c.event.event_type() == EventType::RecognitionGranted);
    let (done, rest) = all.split_at(all.iter().position(counting).unwrap() + 1);

    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    apply_all(&mut client, &mut projection, done).await;
    let before = dump(&client, &fresh.schema).await;
    let stored = offsets(&client, &fresh.schema).await.unwrap();

    client
        .batch_execute(&format!(
            "CREATE FUNCTION {s}.fail() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'injected failure'; END $$;
             CREATE FUNCTION {s}.die() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;"
        ))
        .await
        .unwrap();
    // Failures after the deltas were written, and at COMMIT itself.
    for (trigger, context) in [
        (
            format!("CREATE TRIGGER fail AFTER INSERT ON {s}.subjects FOR EACH STATEMENT EXECUTE FUNCTION {s}.fail()"),
            "storing subject histories",
        ),
        (
            format!(
                "CREATE CONSTRAINT TRIGGER fail AFTER INSERT OR UPDATE ON {s}.subjects
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {s}.fail()"
            ),
            "committing a batch",
        ),
    ] {
        client.batch_execute(&trigger).await.unwrap();
        match projection.apply_batch(&mut client, &rest[0]).await {
            Err(e @ StoreError::Db { context: c, .. }) => {
                assert_eq!(c, context);
                // Not the record's fault: the projector retries rather than refuse it.
                assert!(!e.is_content_fault(), "{e:?}");
            }
            other => panic!("expected the injected failure, got {other:?}"),
        }
        assert_eq!(dump(&client, &fresh.schema).await, before, "{context}: PostgreSQL kept part of the batch");
        assert_eq!(offsets(&client, &fresh.schema).await.unwrap(), stored);
        assert_eq!(projection.next_offsets(), Some(&stored), "{context}: the projection kept the batch");
        assert_eq!(projection.cached(), Some((0, 0)), "{context}: the projection kept histories");
        client.batch_execute(&format!("DROP TRIGGER fail ON {s}.subjects")).await.unwrap();
    }

    // The connection dies halfway: the projection cannot read PostgreSQL back at once, so it holds no
    // state until the next batch, which reads it first (on a new connection).
    client
        .batch_execute(&format!(
            "CREATE TRIGGER die AFTER INSERT ON {s}.subjects FOR EACH STATEMENT EXECUTE FUNCTION {s}.die()"
        ))
        .await
        .unwrap();
    match projection.apply_batch(&mut client, &rest[0]).await {
        Err(e @ StoreError::Db { .. }) => assert!(!e.is_content_fault(), "{e:?}"),
        other => panic!("expected the connection to die, got {other:?}"),
    }
    assert!(projection.next_offsets().is_none());
    let mut client = connect().await;
    client.batch_execute(&format!("DROP TRIGGER die ON {s}.subjects")).await.unwrap();
    assert_eq!(dump(&client, &fresh.schema).await, before, "a killed connection left part of the batch");

    // Everything after the failures is counted exactly once.
    let retried = projection.apply_batch(&mut client, &rest[0]).await.unwrap();
    assert!(retried.events > 0 && retried.deltas > 0, "{retried:?}");
    apply_all(&mut client, &mut projection, &rest[1..]).await;
    let middle = events[events.len() / 2].recordedtime;
    assert_same_reviews(&mut client, &fresh.schema, &engine, &["2025-06-30", "2025-12-31"], &[None, middle]).await;
    fresh.remove(&client).await;
}

#[tokio::test]
async fn a_record_postgresql_refuses_is_a_content_fault_and_its_offset_advances_without_it() {
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let events = city(60, 8);
    let all = consumed(&events);
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    apply_all(&mut client, &mut projection, &batches(&all, 50)).await;
    // A registration with a NUL in its subject, as a producer around the gateway could write it, at
    // the end of its partition.
    let template = all.iter().rev().find(|c| c.event.event_type() == EventType::RegistrationSubmitted).unwrap();
    let mut bad = template.clone();
    bad.event.id = uuid::Uuid::from_u128(0x0bad);
    bad.event.subject = "cit-\u{0}x".into();
    bad.offset = all.iter().filter(|c| c.partition == bad.partition).count() as i64;
    let before = dump(&client, &fresh.schema).await;

    let refused = projection.apply_batch(&mut client, std::slice::from_ref(&bad)).await.unwrap_err();
    assert!(refused.is_content_fault(), "{refused:?}");
    assert!(refused.sqlstate().is_some_and(|code| code.starts_with("22")), "{refused:?}");
    assert_eq!(dump(&client, &fresh.schema).await, before);

    // Refused, its offset advances alone; nothing else changes.
    let position = hoctap_store::Position { topic: bad.topic.clone(), partition: bad.partition, offset: bad.offset };
    let applied = projection.apply_batch_with_refused(&mut client, &[], &[position]).await.unwrap();
    assert_eq!(applied, Applied::default());
    let stored = offsets(&client, &fresh.schema).await.unwrap();
    assert_eq!(stored[&(bad.topic.clone(), bad.partition)], bad.offset + 1);
    assert_same_reviews(&mut client, &fresh.schema, &engine_of(&events), &["2025-12-31"], &[None]).await;
    fresh.remove(&client).await;
}

#[tokio::test]
async fn offsets_are_stored_with_their_batch() {
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let all = batches(&consumed(&city(300, 4)), 50);
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    assert!(offsets(&client, &fresh.schema).await.unwrap().is_empty());
    let mut applied = 0;
    for n in 1..=4 {
        applied += projection.apply_batch(&mut client, &all[n - 1]).await.unwrap().events;
        let delivered: Vec<&[Consumed]> = all[..n].iter().map(|b| b.as_slice()).collect();
        assert_eq!(offsets(&client, &fresh.schema).await.unwrap(), expected_offsets(&delivered), "after batch {n}");
        // The events counted per partition travel with the offsets.
        assert_eq!(events_applied(&client, &fresh.schema).await.unwrap(), applied as i64, "after batch {n}");
    }
    // A batch of nothing but redelivered events leaves the offsets alone.
    let stored = offsets(&client, &fresh.schema).await.unwrap();
    projection.apply_batch(&mut client, &all[1]).await.unwrap();
    assert_eq!(offsets(&client, &fresh.schema).await.unwrap(), stored);
    // An event the log did not stamp stops the batch before anything is written.
    let before = dump(&client, &fresh.schema).await;
    let mut unstamped = all[4].clone();
    unstamped[3].event.recordedtime = None;
    let refused = projection.apply_batch(&mut client, &unstamped).await;
    assert!(matches!(refused, Err(StoreError::NotRecorded { .. })), "{refused:?}");
    assert_eq!(dump(&client, &fresh.schema).await, before);
    fresh.remove(&client).await;
}

#[tokio::test]
async fn a_member_that_missed_batches_reads_them_before_applying() {
    // Two consumer-group members over one schema, as around a rebalance: each applies batches the
    // other has not seen in memory.
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let events = city(300, 5);
    let engine = engine_of(&events);
    let all = batches(&consumed(&events), 100);
    let mut a = Projection::load(&mut client, &fresh.schema).await.unwrap();
    let mut b = Projection::load(&mut client, &fresh.schema).await.unwrap();
    for (i, batch) in all.iter().enumerate() {
        let member = if i % 3 == 1 { &mut b } else { &mut a };
        member.apply_batch(&mut client, batch).await.unwrap();
    }
    let middle = events[events.len() / 2].recordedtime;
    assert_same_reviews(&mut client, &fresh.schema, &engine, DATES, &[None, middle]).await;
    fresh.remove(&client).await;
}

#[tokio::test]
async fn the_hand_checked_world_as_known_at_every_recorded_time() {
    let mut world = hoctap_tests::scenario_world();
    // The log stamps in order: a consumer sees each partition in recordedtime order.
    world.sort_by_key(|e| e.recordedtime);
    let engine = engine_of(&world);
    let mut known: Vec<Option<i64>> = world.iter().map(|e| e.recordedtime).collect();
    known.dedup();
    known.push(None);
    let dates = ["2024-12-31", "2025-06-30", "2025-07-01", "2025-10-15", "2025-12-31", "2026-06-30", "2030-12-31"];

    let mut client = connect().await;
    for per_partition in [1, 3, 1000] {
        let fresh = Fresh::new(&mut client).await;
        let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
        apply_all(&mut client, &mut projection, &batches(&consumed(&world), per_partition)).await;
        assert_same_reviews(&mut client, &fresh.schema, &engine, &dates, &known).await;
        // The small blocks of many small batches merged into one: the same answers at every K.
        let merged = hoctap_store::compact_log(&mut client, &fresh.schema).await.unwrap();
        if per_partition < 1000 {
            assert!(merged > 1, "{per_partition} events a partition per batch: {merged} blocks merged");
        }
        assert_eq!(hoctap_store::compact_log(&mut client, &fresh.schema).await.unwrap(), 0);
        assert_same_reviews(&mut client, &fresh.schema, &engine, &dates, &known).await;
        fresh.remove(&client).await;
    }
}

/// `hoctap_store::diff` against `Engine::diff` for every pair of `known` times (the first before the
/// second, or against now), on every date and scope: the same figures and the same events. Returns how
/// many diffs listed events.
async fn assert_same_diffs(
    client: &mut Client,
    schema: &Schema,
    engine: &Engine,
    scopes: &[&str],
    dates: &[&str],
    known: &[Option<i64>],
) -> usize {
    let cache = ReadCache::new();
    let mut listing = 0;
    for scope in scopes {
        for date in dates {
            for (i, &from) in known.iter().enumerate() {
                let Some(from) = from else { continue };
                for &vs in known[i..].iter().step_by(3).chain([&None]) {
                    let query = Query {
                        scope: (*scope).into(),
                        as_of: Day::parse(date).unwrap(),
                        known_at: Some(from),
                        milestone: None,
                    };
                    match (engine.diff(&query, vs), hoctap_store::diff(client, schema, &cache, &query, vs).await) {
                        (Ok(want), Ok(got)) => {
                            assert_eq!(got, want, "diff of {scope} on {date} as known at {from} and {vs:?}");
                            listing += usize::from(want.events.is_some_and(|e| !e.is_empty()));
                        }
                        (Err(want), Err(StoreError::Query(got))) => assert_eq!(got, want, "{scope} {date} {from}"),
                        (want, got) => panic!("{scope} {date} {from} {vs:?}: engine {want:?}, PostgreSQL {got:?}"),
                    }
                }
            }
        }
    }
    listing
}

/// The audit diff from PostgreSQL lists the events the embedded engine lists (their sources too), from
/// the histories of the subjects recorded after the first time, which `recorded_subjects` finds.
#[tokio::test]
async fn diffs_from_postgresql_equal_the_embedded_engine() {
    let mut client = connect().await;
    for (world, scopes, dates) in [
        (hoctap_tests::scenario_world(), &["01", "001", "00001"][..], &["2025-06-30", "2025-12-31", "2026-06-30"][..]),
        (hoctap_tests::divided_world(), &["001", "00004", "00005"][..], &["2025-06-30", "2025-12-31"][..]),
    ] {
        let mut world = world;
        world.sort_by_key(|e| e.recordedtime);
        let engine = engine_of(&world);
        let mut known: Vec<Option<i64>> = world.iter().map(|e| e.recordedtime).collect();
        known.dedup();
        let fresh = Fresh::new(&mut client).await;
        let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
        apply_all(&mut client, &mut projection, &batches(&consumed(&world), 2)).await;
        let listing = assert_same_diffs(&mut client, &fresh.schema, &engine, scopes, dates, &known).await;
        assert!(listing > 10, "only {listing} diffs listed events");
        fresh.remove(&client).await;
    }

    let events = city(300, 1);
    let engine = engine_of(&events);
    let fresh = Fresh::new(&mut client).await;
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    apply_all(&mut client, &mut projection, &batches(&consumed(&events), 75)).await;
    let at = |share: usize| events[events.len() * share / 4].recordedtime;
    let listing = assert_same_diffs(
        &mut client,
        &fresh.schema,
        &engine,
        &["01"],
        &["2025-12-31", "2030-12-31"],
        &[at(1), at(2), at(3)],
    )
    .await;
    assert!(listing >= 4, "only {listing} diffs listed events");
    // Each subject is named by a batch whose newest recorded time is at least its own newest.
    let mut newest: HashMap<&str, i64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    // The first copy of an id is the one folded (a later copy is a duplicate).
    for e in events.iter().filter(|e| seen.insert(e.id) && !e.event_type().is_reference()) {
        let t = newest.entry(e.subject.as_str()).or_insert(i64::MIN);
        *t = (*t).max(e.recordedtime.unwrap());
    }
    let named = format!(
        "SELECT s, max(last_recorded) FROM \"{}\".recorded_subjects, unnest(subjects) AS s GROUP BY s",
        fresh.schema
    );
    let rows = client.query(&named, &[]).await.unwrap();
    assert_eq!(rows.len(), newest.len());
    for row in rows {
        let (subject, last): (String, chrono::DateTime<chrono::Utc>) = (row.get(0), row.get(1));
        let own = newest.get(subject.as_str()).unwrap_or_else(|| panic!("{subject} has no event"));
        assert!(last.timestamp_micros() >= *own, "{subject}");
    }
    fresh.remove(&client).await;
}

/// An old district after the reform (what became of it: its successors' figures), a dissolved commune
/// divided between two, and a new commune before the reform (what it comes from): PostgreSQL gives the
/// engine's answer, as known now and before the reform was recorded.
#[tokio::test]
async fn reviews_across_the_reform_from_postgresql_equal_the_embedded_engine() {
    let mut world = hoctap_tests::divided_world();
    world.sort_by_key(|e| e.recordedtime);
    let engine = engine_of(&world);
    let mut known: Vec<Option<i64>> = world.iter().map(|e| e.recordedtime).collect();
    known.dedup();
    known.push(None);
    let dates = ["2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"];

    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    apply_all(&mut client, &mut projection, &batches(&consumed(&world), 3)).await;
    let mut compared = 0;
    for scope in ["001", "002", "00004", "00005"] {
        compared += assert_same_reviews_of(&mut client, &fresh.schema, &engine, scope, &dates, &known).await;
    }
    assert!(compared > 20, "only {compared} reviews compared");
    // The comparisons above include the reform's answers.
    let query =
        Query { scope: "00004".into(), as_of: Day::parse("2025-12-31").unwrap(), known_at: None, milestone: None };
    let got = review(&mut client, &fresh.schema, &ReadCache::new(), &query).await.unwrap();
    let reform = got.reform.as_ref().expect("what became of 00004");
    let listed: Vec<(&str, bool)> = reform.units.iter().map(|u| (u.code.as_str(), u.default)).collect();
    assert_eq!(listed, [("00005", true), ("00002", false)]);
    assert_eq!(got.units.iter().map(|u| u.code.as_str()).collect::<Vec<_>>(), ["00005", "00002"]);
    let query =
        Query { scope: "00005".into(), as_of: Day::parse("2025-06-30").unwrap(), known_at: None, milestone: None };
    let got = review(&mut client, &fresh.schema, &ReadCache::new(), &query).await.unwrap();
    assert_eq!(got.reform.as_ref().map(|r| r.units.len()), Some(2), "00003 and 00004 make 00005");
    fresh.remove(&client).await;
}

#[tokio::test]
async fn a_unit_follows_its_establishment_and_its_retractions() {
    use hoctap_tests::{event, grant, recorded, reg, retraction, unit};
    use serde_json::json;
    const T: [&str; 4] =
        ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"];
    let registration =
        json!({"subject_kind": "commune", "commune": "00002", "title": "learning_commune", "cycle_year": 2025});
    let world = vec![
        recorded(unit(1, "01", "province", "Hà Nội", None), T[0]),
        recorded(unit(2, "001", "district", "Quận Ba Đình", Some("01")), T[0]),
        recorded(unit(3, "00001", "commune", "Phường Phúc Xá", Some("001")), T[0]),
        recorded(unit(4, "00002", "commune", "Phường Trúc Bạch", Some("001")), T[0]),
        recorded(event(10, "registration.submitted", "2025-02-01T09:00:00+07:00", "00002", registration), T[0]),
        recorded(
            grant(11, "2025-06-01T09:00:00+07:00", "00002", "learning_commune", 2025, "2025-01-01", "2027-12-31"),
            T[0],
        ),
        recorded(reg(12, "2025-02-01T09:00:00+07:00", "cit-1", "00002", 2025, "staff"), T[0]),
        recorded(
            grant(13, "2025-06-01T09:00:00+07:00", "cit-1", "learning_citizen", 2025, "2025-01-01", "2026-12-31"),
            T[0],
        ),
        // 00002 was entered in error, then it was not.
        recorded(retraction(20, "2026-02-01T09:00:00+07:00", "00002", 4), T[1]),
        recorded(retraction(21, "2026-03-01T09:00:00+07:00", "00002", 20), T[2]),
        // And the citizen's grant is withdrawn for good.
        recorded(retraction(22, "2026-04-01T09:00:00+07:00", "cit-1", 13), T[3]),
    ];
    let engine = engine_of(&world);
    let mut known: Vec<Option<i64>> = T.iter().map(|t| parse_instant(t)).collect();
    known.push(None);

    let mut client = connect().await;
    for per_partition in [1, 1000] {
        let fresh = Fresh::new(&mut client).await;
        let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
        apply_all(&mut client, &mut projection, &batches(&consumed(&world), per_partition)).await;
        assert_same_reviews(&mut client, &fresh.schema, &engine, &["2025-06-30", "2025-12-31"], &known).await;
        fresh.remove(&client).await;
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_refuse_a_newer_schema() {
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    assert_eq!(migrate(&mut client, &fresh.schema).await.unwrap(), Vec::<i32>::new());
    let s = format!("\"{}\"", fresh.schema);
    let versions: Vec<i32> = client
        .query(&format!("SELECT version FROM {s}.schema_migrations ORDER BY version"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, hoctap_store::MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    client
        .batch_execute(&format!("INSERT INTO {s}.schema_migrations (version, name) VALUES (99, 'future')"))
        .await
        .unwrap();
    assert!(matches!(migrate(&mut client, &fresh.schema).await, Err(StoreError::Migration { version: 99, .. })));
    fresh.remove(&client).await;
}

/// A generation written before migration 0006 (a subject not in `recorded_subjects`, its history in
/// format 1) is migrated: the subject is read by every diff, and the diffs still equal the engine's.
#[tokio::test]
async fn a_generation_from_before_recorded_subjects_is_migrated_and_its_diffs_stay_right() {
    let mut client = connect().await;
    let fresh =
        Fresh { schema: Schema::new(&format!("hoctap_test_{:016x}", fastrand::u64(..))).unwrap(), removed: false };
    let s = format!("\"{}\"", fresh.schema);
    // The schema as migrations 1 to 5 left it, as `migrate` applies them.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.schema_migrations (
                 version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    for m in hoctap_store::MIGRATIONS.iter().filter(|m| m.version <= 5) {
        tx.batch_execute(&format!("SET LOCAL search_path TO {s}; {}", m.sql)).await.unwrap();
        tx.execute(
            &format!("INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&m.version, &m.name],
        )
        .await
        .unwrap();
    }
    // A history of format 1 (its version byte; no event of the world names this subject).
    tx.batch_execute(&format!("INSERT INTO {s}.subjects (subject, history) VALUES ('cit-old', '\\x01')"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(migrate(&mut client, &fresh.schema).await.unwrap(), [6, 7]);
    let old: bool = client
        .query_one(
            &format!(
                "SELECT bool_or(last_recorded = 'infinity' AND 'cit-old' = ANY(subjects)) FROM {s}.recorded_subjects"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(old, "a subject from before 0006 is read by every diff");

    let mut world = hoctap_tests::scenario_world();
    world.sort_by_key(|e| e.recordedtime);
    let engine = engine_of(&world);
    let mut known: Vec<Option<i64>> = world.iter().map(|e| e.recordedtime).collect();
    known.dedup();
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    apply_all(&mut client, &mut projection, &batches(&consumed(&world), 1000)).await;
    let listing = assert_same_diffs(&mut client, &fresh.schema, &engine, &["01"], &["2025-12-31"], &known).await;
    assert!(listing > 3, "only {listing} diffs listed events");
    fresh.remove(&client).await;
}

/// A city stamped by its arrival clock: ten years of recording, with the late corrections and the
/// future-dated changes (ends of cycles and validities) of a real feed, so that a question as known
/// at K reads blocks near K, late ones after it and pending ones before it. Reviews and series as
/// known at times across the decade equal the engine's, in small and large batches, and after the
/// small blocks are merged.
#[tokio::test]
async fn a_decade_of_recording_as_known_at_times_across_it() {
    use hoctap_domain::codes::Title;
    let events = hoctap_gen::generate_arrived(&hoctap_gen::Config::new(120, 5));
    let engine = engine_of(&events);
    let stamps: Vec<i64> = events.iter().map(|e| e.recordedtime.unwrap()).collect();
    let mut known: Vec<Option<i64>> = (1..10).map(|i| Some(stamps[i * stamps.len() / 10])).collect();
    // The last instant of a year, and the first of the next, on the Vietnam clock.
    known.extend(["2023-12-31T23:59:59.999999+07:00", "2024-01-01T00:00:00+07:00"].map(parse_instant));
    known.extend([Some(stamps[0] - 1), Some(stamps[0]), Some(*stamps.last().unwrap()), None]);
    let dates = [
        "2021-03-31",
        "2022-12-31",
        "2023-01-01",
        "2024-02-10",
        "2025-06-30",
        "2025-07-01",
        "2027-02-14",
        "2030-12-31",
    ];
    let series_dates: Vec<Day> = (0..90).map(|i| Day(Day::parse("2021-01-01").unwrap().0 + i * 41)).collect();

    let mut client = connect().await;
    for per_partition in [9, 1000] {
        let fresh = Fresh::new(&mut client).await;
        let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
        apply_all(&mut client, &mut projection, &batches(&consumed(&events), per_partition)).await;
        for round in ["as applied", "merged"] {
            let compared = assert_same_reviews(&mut client, &fresh.schema, &engine, &dates, &known).await;
            assert!(compared > dates.len() * 8, "{round}: {compared} reviews compared");
            let cache = ReadCache::new();
            for &known_at in &known {
                let want = engine.series("01", Title::LearningCitizen, &series_dates, known_at);
                let got = hoctap_store::series(
                    &mut client,
                    &fresh.schema,
                    &cache,
                    "01",
                    Title::LearningCitizen,
                    &series_dates,
                    known_at,
                )
                .await;
                match (want, got) {
                    (Ok(want), Ok(got)) => assert_eq!(got, want, "{round}: the series as known at {known_at:?}"),
                    (Err(want), Err(StoreError::Query(got))) => assert_eq!(got, want, "{round}: {known_at:?}"),
                    (want, got) => panic!("{round} {known_at:?}: engine {want:?}, PostgreSQL {got:?}"),
                }
            }
            hoctap_store::compact_log(&mut client, &fresh.schema).await.unwrap();
        }
        fresh.remove(&client).await;
    }
}

/// Three batches of registrations, each recorded over a few microseconds of its own day: each
/// batch's future-dated block (the end of the 2025 cycle, one change per registration and recorded
/// time) is stored summed per (key, day) too, and questions as known between the batches read the
/// blocks wholly on their side summed and the others change by change. Every answer equals the engine's.
#[tokio::test]
async fn blocks_read_summed_on_their_side_of_k_give_the_engines_answers() {
    use hoctap_tests::{START, recorded, reg, unit};
    let mut world: Vec<Event> = [
        unit(1, "01", "province", "Hà Nội", None),
        unit(2, "001", "district", "Quận Ba Đình", Some("01")),
        unit(3, "00001", "commune", "Phường Phúc Xá", Some("001")),
        unit(4, "00004", "commune", "Phường Trúc Bạch", Some("001")),
    ]
    .into_iter()
    .map(|e| recorded(e, START))
    .collect();
    let days = ["2025-03-10", "2025-05-12", "2025-08-11"];
    for (b, day) in days.iter().enumerate() {
        let at = parse_instant(&format!("{day}T09:00:00+07:00")).unwrap();
        for i in 0..30u128 {
            let n = 100 + b as u128 * 100 + i;
            let commune = if i % 3 == 0 { "00004" } else { "00001" };
            let mut e = reg(n, &format!("{day}T08:00:00+07:00"), &format!("cit-{n}"), commune, 2025, "resident");
            e.recordedtime = Some(at + i as i64);
            world.push(e);
        }
    }
    let engine = engine_of(&world);
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    let all = consumed(&world);
    // The map with the first batch, then one batch each.
    let (first, rest) = all.split_at(4 + 30);
    projection.apply_batch(&mut client, first).await.unwrap();
    for batch in rest.chunks(30) {
        projection.apply_batch(&mut client, batch).await.unwrap();
    }
    let summed: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{}\".delta_log WHERE summed IS NOT NULL", fresh.schema), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(summed, 3, "one summed future-dated block per batch");
    let mut known: Vec<Option<i64>> = ["2025-04-01", "2025-06-30", "2025-09-01", "2025-03-10", "2025-08-11"]
        .iter()
        .map(|d| Some(parse_instant(&format!("{d}T09:00:00.000010+07:00")).unwrap()))
        .collect();
    known.push(None);
    let dates = ["2025-03-31", "2025-06-30", "2025-12-31", "2026-01-01", "2026-06-30"];
    let compared = assert_same_reviews(&mut client, &fresh.schema, &engine, &dates, &known).await;
    assert_eq!(compared, dates.len() * known.len());
    fresh.remove(&client).await;
}

/// Dashboards get the reviews of the provinces in force on each month end, and nothing of a province
/// merged into another once it is gone (not even the review of what became of it, whose figures are the
/// other province's).
#[tokio::test]
async fn dashboards_leave_out_a_province_after_it_was_merged() {
    use hoctap_tests::{EARLY, REFORM, event, recorded, reg, unit};
    use serde_json::json;
    let world: Vec<Event> = [
        unit(1, "30", "province", "Tỉnh Hải Dương", None),
        unit(2, "31", "province", "Thành phố Hải Phòng", None),
        unit(3, "10001", "commune", "Phường A", Some("30")),
        unit(4, "10002", "commune", "Phường B", Some("31")),
        event(5, "admin_unit.reparented", REFORM, "10001", json!({"code": "10001", "parent": "31"})),
        event(6, "admin_unit.dissolved", REFORM, "30", json!({"code": "30", "successor": "31"})),
        reg(7, "2025-01-10T09:00:00+07:00", "cit-a", "10001", 2025, "resident"),
    ]
    .into_iter()
    .map(|e| recorded(e, EARLY))
    .collect();
    let engine = engine_of(&world);
    let mut client = connect().await;
    let fresh = Fresh::new(&mut client).await;
    let mut projection = Projection::load(&mut client, &fresh.schema).await.unwrap();
    apply_all(&mut client, &mut projection, &batches(&consumed(&world), 1000)).await;
    // The review of 30 after the reform answers with 31 (from PostgreSQL as from the engine)...
    let query = Query { scope: "30".into(), as_of: Day::parse("2025-12-31").unwrap(), known_at: None, milestone: None };
    let got = review(&mut client, &fresh.schema, &ReadCache::new(), &query).await.unwrap();
    assert_eq!(got, engine.review(&query).unwrap());
    assert_eq!(got.reform.as_ref().map(|r| r.units[0].code.as_str()), Some("31"));
    // ... but the dashboards hold 30 only for the 54 month ends up to June 2025, and 31 for all 120.
    let refreshed = hoctap_store::refresh_dashboard(&mut client, &fresh.schema).await.unwrap().unwrap();
    assert_eq!(refreshed.reviews, 54 + 120);
    let sql = format!("SELECT max(as_of)::text FROM \"{}\".dashboard_unit_figures WHERE scope = '30'", fresh.schema);
    let last: String = client.query_one(&sql, &[]).await.unwrap().get(0);
    assert_eq!(last, "2025-06-30");
    fresh.remove(&client).await;
}

/// The gateway's memory: what a request writes is what the next one looks up; the writer lease is
/// taken by one gateway at a time, and a holder that lost it writes nothing more.
#[tokio::test]
async fn the_gateway_state_remembers_ids_and_placements_and_fences_an_old_writer() {
    use hoctap_domain::ContentDigest;
    use hoctap_store::{Folded, GatewayState};
    use std::time::Duration;
    let schema = Schema::new(&format!("hoctap_gw_test_{:016x}", fastrand::u64(..))).unwrap();
    let a = GatewayState::connect(hoctap_tests::PG_URL, schema.clone()).await.unwrap();
    let mut b = GatewayState::connect(hoctap_tests::PG_URL, schema.clone()).await.unwrap();
    let ttl = Duration::from_secs(60);

    let first = a.acquire("a", ttl).await.unwrap().expect("a free lease");
    assert_eq!((first.epoch, first.last_recorded), (1, 0));
    assert_eq!(b.acquire("b", ttl).await.unwrap(), None, "held by a");

    let id = uuid::Uuid::from_u128(7);
    let digest = ContentDigest([3; 16]);
    let mut folded = Folded { last_recorded: 1_000, ..Folded::default() };
    folded.events.push((id, digest, "cit-a"));
    folded.placements.push(("cit-a", "00001"));
    folded.next_offsets.insert(("events", 2), 10);
    let mut a = a;
    a.record(first.epoch, &folded).await.unwrap();
    // Idempotent, and offsets never go back.
    folded.next_offsets.insert(("events", 2), 4);
    a.record(first.epoch, &folded).await.unwrap();
    let known = b.known(&[id, uuid::Uuid::from_u128(8)], &["cit-a", "cit-z"]).await.unwrap();
    assert_eq!(known.events.len(), 1);
    assert_eq!((known.events[0].digest, known.events[0].subject.as_str()), (digest, "cit-a"));
    assert_eq!(known.placements, [("cit-a".to_owned(), "00001".to_owned())]);
    assert_eq!(b.folded("events").await.unwrap(), HashMap::from([(2, 10)]));

    // Released: b takes it with a larger epoch and the last stamp; a is fenced.
    a.release("a", first.epoch).await.unwrap();
    let second = b.acquire("b", ttl).await.unwrap().expect("released");
    assert_eq!((second.epoch, second.last_recorded), (2, 1_000));
    assert!(!a.renew("a", first.epoch, ttl).await.unwrap());
    match a.record(first.epoch, &Folded::default()).await {
        Err(StoreError::Fenced { epoch: 1, current: Some(2) }) => {}
        other => panic!("an old writer must be fenced: {other:?}"),
    }
    assert!(b.renew("b", second.epoch, ttl).await.unwrap());
    b.record(second.epoch, &Folded { last_recorded: 2_000, ..Folded::default() }).await.unwrap();
    assert_eq!(b.holder().await.unwrap().map(|h| (h.holder, h.epoch)), Some(("b".to_owned(), 2)));
    GatewayState::drop_schema(hoctap_tests::PG_URL, &schema).await.unwrap();
}

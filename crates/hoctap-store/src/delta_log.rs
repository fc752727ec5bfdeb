//! The transaction-time log in blocks: each batch appends one row to `delta_log` with its changes
//! packed in columns and the recorded times of the new events it applied
//! (`migrations/0004_columns_and_blocks.sql`). A question as known at K reads the blocks on one side
//! of K and sums them here, which is several times less to store, send and add up than one row per
//! change; the same pass counts the events recorded by K.
//!
//! A batch's changes are split by lateness (the day a change counts on against the day it was
//! recorded, see [`split`]): one block of the changes dated within [`ON_TIME_DAYS`] of their
//! recording, with the batch's events, one block per year of the late changes' days and one per
//! month of the future-dated changes' days. Each block keeps
//! the span of its days, so that a question as known at K reads only the blocks recorded near K, the
//! late corrections recorded after it, and the future-dated changes pending at K
//! (`docs/design/2026-11-30-compact-read-models.md`, point 8).
//!
//! Block format (little-endian), version [`FORMAT`]:
//! ```text
//! u8  format
//! u32 times        distinct recorded times of the changes, ascending
//! u32 changes      changes in all
//! u32 event_times  distinct recorded times of the events, ascending
//! times       × (i64 recorded, u32 how many of the changes that follow carry it)
//! event_times × (i64 recorded, u32 how many events carry it)
//! changes × i32 key      ┐ in (recorded, key, day) order, one column each
//! changes × i32 day      │ (days since 1970-01-01, as `Day`)
//! changes × i32 n        ┘
//! ```
//!
//! A block without events whose changes, summed per (key, day), take at most half as many also keeps
//! them so (`summed`, migration 0007), for the questions that read it wholly on one side of K:
//! ```text
//! u8  format       SUMMED_FORMAT
//! u32 sums
//! sums × i32 key   ┐ in (key, day) order, one column each; none is 0
//! sums × i32 day   │
//! sums × i32 n     ┘
//! ```

use crate::error::db;
use crate::keys::Keys;
use crate::{Schema, StoreError};
use chrono::{DateTime, Datelike, Utc};
use hoctap_domain::Day;
use std::collections::HashMap;
use std::pin::pin;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient};

/// The version byte that opens every block.
const FORMAT: u8 = 1;
/// The version byte that opens a block's changes summed per (key, day).
const SUMMED_FORMAT: u8 = 2;
/// Bytes before the runs of times: the format and three counts.
const HEADER: usize = 13;

/// One change of a count: key `key` changed by `n` on day `day`, by an event recorded at `recorded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Change {
    pub recorded: i64,
    pub key: i32,
    pub day: i32,
    pub n: i32,
}

/// A block ready to insert: the span of its recorded times, its size and its bytes.
#[derive(Debug)]
pub(crate) struct Block {
    pub first_recorded: i64,
    pub last_recorded: i64,
    /// The span of its changes' days ([`NO_DAYS`] when it holds only events).
    pub days: (i32, i32),
    pub changes: i32,
    pub events: i32,
    pub bytes: Vec<u8>,
    /// Its changes summed per (key, day), when that at least halves them (see the module docs).
    pub summed: Option<Vec<u8>>,
}

/// `n` events recorded at `recorded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Events {
    pub recorded: i64,
    pub n: u32,
}

/// Runs of equal values: (value, how many).
fn runs(sorted: impl Iterator<Item = i64>) -> Vec<(i64, u32)> {
    let mut runs: Vec<(i64, u32)> = Vec::new();
    for t in sorted {
        match runs.last_mut() {
            Some((last, n)) if *last == t => *n += 1,
            _ => runs.push((t, 1)),
        }
    }
    runs
}

/// Packs `changes` (sorted here, equal ones summed, those summing to 0 left out) and `events` (equal
/// times summed). `None` when nothing is left.
pub(crate) fn encode(mut changes: Vec<Change>, mut events: Vec<Events>) -> Option<Block> {
    changes.sort_unstable();
    sum_runs(&mut changes, |c| (c.recorded, c.key, c.day), |c| &mut c.n);
    events.sort_unstable();
    sum_runs(&mut events, |e| e.recorded, |e| &mut e.n);
    let ends = |first: Option<i64>, last: Option<i64>| first.zip(last);
    let (first, last) = match (
        ends(changes.first().map(|c| c.recorded), changes.last().map(|c| c.recorded)),
        ends(events.first().map(|e| e.recorded), events.last().map(|e| e.recorded)),
    ) {
        (None, None) => return None,
        (Some(c), None) | (None, Some(c)) => c,
        (Some(c), Some(e)) => (c.0.min(e.0), c.1.max(e.1)),
    };
    let times = runs(changes.iter().map(|c| c.recorded));
    let event_times: Vec<(i64, u32)> = events.iter().map(|e| (e.recorded, e.n)).collect();
    let mut bytes = Vec::with_capacity(HEADER + (times.len() + event_times.len()) * 12 + changes.len() * 12);
    bytes.push(FORMAT);
    bytes.extend_from_slice(&(times.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(event_times.len() as u32).to_le_bytes());
    for (t, n) in times.iter().chain(&event_times) {
        bytes.extend_from_slice(&t.to_le_bytes());
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    put_columns(&mut bytes, &changes, [|c| c.key, |c| c.day, |c| c.n]);
    let days = changes.iter().fold(NO_DAYS, |(lo, hi), c| (lo.min(c.day), hi.max(c.day)));
    let summed = if events.is_empty() { summed(&changes) } else { None };
    Some(Block {
        first_recorded: first,
        last_recorded: last,
        days,
        changes: changes.len() as i32,
        events: events.iter().map(|e| e.n as i32).sum(),
        bytes,
        summed,
    })
}

/// Sums each run of sorted `items` with the same `key` into its first item (`n` names the amount) and
/// leaves out the items summing to 0.
fn sum_runs<T, K: PartialEq, N: Copy + Default + PartialEq + std::ops::AddAssign>(
    items: &mut Vec<T>,
    key: impl Fn(&T) -> K,
    n: impl Fn(&mut T) -> &mut N,
) {
    items.dedup_by(|later, kept| {
        let same = key(later) == key(kept);
        if same {
            let add = *n(later);
            *n(kept) += add;
        }
        same
    });
    items.retain_mut(|item| *n(item) != N::default());
}

/// Appends three columns of `rows`' 32-bit integers, one after the other.
fn put_columns<T>(bytes: &mut Vec<u8>, rows: &[T], columns: [fn(&T) -> i32; 3]) {
    for column in columns {
        for row in rows {
            bytes.extend_from_slice(&column(row).to_le_bytes());
        }
    }
}

/// Row `j` of the three columns of `count` rows at `bytes[at..]`, as [`put_columns`] wrote them (the
/// caller checked the length).
fn column_row(bytes: &[u8], at: usize, count: usize, j: usize) -> [i32; 3] {
    let int = |i: usize| {
        let at = at + (i * count + j) * 4;
        i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
    };
    [int(0), int(1), int(2)]
}

/// `changes` summed per (key, day) in [`SUMMED_FORMAT`], when that at least halves their number.
fn summed(changes: &[Change]) -> Option<Vec<u8>> {
    let mut sums: Vec<[i32; 3]> = changes.iter().map(|c| [c.key, c.day, c.n]).collect();
    sums.sort_unstable();
    sum_runs(&mut sums, |s| (s[0], s[1]), |s| &mut s[2]);
    if sums.len() * 2 > changes.len() {
        return None;
    }
    let mut bytes = Vec::with_capacity(5 + sums.len() * 12);
    bytes.push(SUMMED_FORMAT);
    bytes.extend_from_slice(&(sums.len() as u32).to_le_bytes());
    put_columns(&mut bytes, &sums, [|s| s[0], |s| s[1], |s| s[2]]);
    Some(bytes)
}

/// Calls `sum` with every (key, day, n) of a block's changes summed ([`SUMMED_FORMAT`]).
fn decode_summed(bytes: &[u8], mut sum: impl FnMut(i32, i32, i32)) -> Result<(), Unreadable> {
    let count = bytes.get(1..5).ok_or(Unreadable("truncated summed block"))?;
    let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
    if bytes.len() != 5 + count * 12 {
        return Err(Unreadable("summed block length does not match its header"));
    }
    for j in 0..count {
        let [key, day, n] = column_row(bytes, 5, count, j);
        sum(key, day, n);
    }
    Ok(())
}

/// A block that is not in a format this binary wrote.
#[derive(Debug)]
pub(crate) struct Unreadable(pub &'static str);

/// Calls `change` with every change of a block, in (recorded, key, day) order, and `events` with its
/// events' recorded times.
pub(crate) fn decode(
    bytes: &[u8],
    mut change: impl FnMut(Change),
    mut events: impl FnMut(Events),
) -> Result<(), Unreadable> {
    let u32_at = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    if bytes.first() != Some(&FORMAT) {
        return Err(Unreadable("unknown block format"));
    }
    let header = |at: usize| u32_at(at).map(|n| n as usize).ok_or(Unreadable("truncated block header"));
    let (times, changes, event_times) = (header(1)?, header(5)?, header(9)?);
    let columns = HEADER + (times + event_times) * 12;
    if bytes.len() != columns + changes * 12 {
        return Err(Unreadable("block length does not match its header"));
    }
    let run = |r: usize| {
        let at = HEADER + r * 12;
        let t = i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        (t, u32_at(at + 8).expect("inside the header"))
    };
    let mut j = 0;
    for r in 0..times {
        let (recorded, count) = run(r);
        let count = count as usize;
        if j + count > changes {
            return Err(Unreadable("block times claim more changes than it holds"));
        }
        for k in j..j + count {
            let [key, day, n] = column_row(bytes, columns, changes, k);
            change(Change { recorded, key, day, n });
        }
        j += count;
    }
    if j != changes {
        return Err(Unreadable("block times do not cover its changes"));
    }
    for r in times..times + event_times {
        let (recorded, n) = run(r);
        events(Events { recorded, n });
    }
    Ok(())
}

/// A change counts "on time" when its day is within this many days of the day it was recorded (in
/// Vietnam): sources send what happened this week. The others are late corrections (a retraction, a
/// revocation reaching back, an event sent months late) or future-dated (the end of a cycle or of a
/// recognition's validity, known from the event that opens it). Only speed depends on it: a question
/// as known at K reads the on-time blocks recorded within this many days of K.
pub(crate) const ON_TIME_DAYS: i32 = 7;

/// The day span of a block without changes: no question about days reads it.
pub(crate) const NO_DAYS: (i32, i32) = (i32::MAX, i32::MIN);

/// A batch's changes and events as the blocks that store them: the on-time changes with the events,
/// then the late changes grouped by the year of their day, and the future-dated ones by the month of
/// their day (by year, then month), so that each block's span of days stays narrow where questions ask
/// for spans of days: the side before K reads the future-dated changes about days in (K, D], the side
/// after K reads every late change about days up to min(D, K) whatever their month. Groups are never
/// empty.
pub(crate) fn split(changes: Vec<Change>, events: Vec<Events>) -> Vec<(Vec<Change>, Vec<Events>)> {
    let mut on_time = Vec::new();
    // (year, 0) for the late changes of a year, (year, month) for the future-dated ones of a month.
    let mut by_span: std::collections::BTreeMap<(i32, u32), Vec<Change>> = std::collections::BTreeMap::new();
    for c in changes {
        let lateness = c.day - Day::of_instant(c.recorded).0;
        if lateness.abs() <= ON_TIME_DAYS {
            on_time.push(c);
        } else {
            let date = Day(c.day).date();
            let month = if lateness < 0 { 0 } else { date.month() };
            by_span.entry((date.year(), month)).or_default().push(c);
        }
    }
    let first = (!on_time.is_empty() || !events.is_empty()).then_some((on_time, events));
    first.into_iter().chain(by_span.into_values().map(|c| (c, Vec::new()))).collect()
}

/// Which changes of the log a question reads: those recorded in `recorded` on days in
/// (`after_day`, `until_day`]. Only the blocks whose spans meet both are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub recorded: Side,
    pub after_day: i32,
    pub until_day: i32,
}

/// A side of a known-at K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    UpTo(i64),
    After(i64),
}

impl Side {
    pub(crate) fn holds(self, recorded: i64) -> bool {
        match self {
            Side::UpTo(k) => recorded <= k,
            Side::After(k) => recorded > k,
        }
    }
}

impl Window {
    fn holds_day(self, day: i32) -> bool {
        day > self.after_day && day <= self.until_day
    }

    fn holds(self, c: &Change) -> bool {
        self.recorded.holds(c.recorded) && self.holds_day(c.day)
    }
}

/// Calls `change` with the key, day and n of every change in `window`, block by block as PostgreSQL
/// sends them. A block that lies wholly on the window's side of K is read summed when it was stored so
/// (only the blocks that straddle K need each change's recorded time).
pub(crate) async fn scan(
    client: &impl GenericClient,
    schema: &Schema,
    window: Window,
    mut change: impl FnMut(i32, i32, i32),
) -> Result<Scanned, StoreError> {
    let (recorded, whole, k) = match window.recorded {
        Side::UpTo(k) => ("first_recorded <= $1", "last_recorded <= $1", k),
        Side::After(k) => ("last_recorded > $1", "first_recorded > $1", k),
    };
    let k = crate::query::instant(k);
    let sql = format!(
        "SELECT CASE WHEN summed IS NOT NULL AND {whole} THEN summed ELSE deltas END
         FROM {}.delta_log WHERE {recorded} AND last_day > $2 AND first_day <= $3",
        schema.ident()
    );
    let read = |bytes: &[u8]| {
        if bytes.first() == Some(&SUMMED_FORMAT) {
            decode_summed(bytes, |key, day, n| {
                if window.holds_day(day) {
                    change(key, day, n)
                }
            })
        } else {
            decode(
                bytes,
                |c| {
                    if window.holds(&c) {
                        change(c.key, c.day, c.n)
                    }
                },
                |_| {},
            )
        }
    };
    blocks(client, schema, &sql, &[&k, &window.after_day, &window.until_day], read).await
}

/// Calls `change` with every change of the log and `events` with every run of its events.
async fn scan_all(
    client: &impl GenericClient,
    schema: &Schema,
    mut change: impl FnMut(Change),
    mut events: impl FnMut(Events),
) -> Result<Scanned, StoreError> {
    let sql = format!("SELECT deltas FROM {}.delta_log", schema.ident());
    blocks(client, schema, &sql, &[], |bytes| decode(bytes, &mut change, &mut events)).await
}

/// How much of the log a scan read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub blocks: usize,
    pub bytes: usize,
}

/// Reads every block `sql` selects (its one column: the block's bytes) with `read`.
async fn blocks(
    client: &impl GenericClient,
    schema: &Schema,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    mut read: impl FnMut(&[u8]) -> Result<(), Unreadable>,
) -> Result<Scanned, StoreError> {
    let rows = client.query_raw(sql, params.iter().copied()).await.map_err(db("reading the log of changes"))?;
    let mut rows = pin!(rows);
    let mut scanned = Scanned::default();
    while let Some(row) =
        futures_util::TryStreamExt::try_next(&mut rows).await.map_err(db("reading the log of changes"))?
    {
        let bytes = row.get::<_, &[u8]>(0);
        scanned.blocks += 1;
        scanned.bytes += bytes.len();
        read(bytes).map_err(|e| unreadable(schema, e))?;
    }
    Ok(scanned)
}

/// The events recorded by `known_at` and the newest recorded time among them: the blocks wholly
/// before K are summed by PostgreSQL, and only those that straddle K are read.
pub(crate) async fn events_by(
    client: &impl GenericClient,
    schema: &Schema,
    known_at: i64,
) -> Result<(i64, Option<i64>), StoreError> {
    let s = schema.ident();
    let k = crate::query::instant(known_at);
    let row = client
        .query_one(
            &format!(
                "SELECT coalesce(sum(events), 0)::int8, max(last_recorded) FROM {s}.delta_log
                 WHERE events > 0 AND last_recorded <= $1"
            ),
            &[&k],
        )
        .await
        .map_err(db("counting the events recorded by the known-at"))?;
    let mut events: i64 = row.get(0);
    let mut newest = row.get::<_, Option<DateTime<Utc>>>(1).map(|t| t.timestamp_micros());
    let sql =
        format!("SELECT deltas FROM {s}.delta_log WHERE events > 0 AND first_recorded <= $1 AND last_recorded > $1");
    let mut straddling = |e: Events| {
        if e.recorded <= known_at {
            events += i64::from(e.n);
            newest = newest.max(Some(e.recorded));
        }
    };
    blocks(client, schema, &sql, &[&k], |bytes| decode(bytes, |_| {}, &mut straddling)).await?;
    Ok((events, newest))
}

fn unreadable(schema: &Schema, Unreadable(detail): Unreadable) -> StoreError {
    StoreError::Corrupt { schema: schema.to_string(), detail: format!("a block of the log of changes: {detail}") }
}

/// Appends a batch's changes and events as the blocks of [`split`] (those left empty by [`encode`]
/// are not written), in one statement; `merged` marks the blocks [`compact_log`] wrote. Returns how
/// many of them are small.
pub(crate) async fn append(
    client: &impl GenericClient,
    schema: &Schema,
    changes: Vec<Change>,
    events: Vec<Events>,
    merged: bool,
) -> Result<usize, StoreError> {
    let blocks: Vec<Block> = split(changes, events).into_iter().filter_map(|(c, e)| encode(c, e)).collect();
    if blocks.is_empty() {
        return Ok(0);
    }
    let column =
        |f: fn(&Block) -> i64| -> Vec<DateTime<Utc>> { blocks.iter().map(|b| crate::query::instant(f(b))).collect() };
    let (first, last) = (column(|b| b.first_recorded), column(|b| b.last_recorded));
    let first_day: Vec<i32> = blocks.iter().map(|b| b.days.0).collect();
    let last_day: Vec<i32> = blocks.iter().map(|b| b.days.1).collect();
    let changes: Vec<i32> = blocks.iter().map(|b| b.changes).collect();
    let events: Vec<i32> = blocks.iter().map(|b| b.events).collect();
    let bytes: Vec<&[u8]> = blocks.iter().map(|b| b.bytes.as_slice()).collect();
    let summed: Vec<Option<&[u8]>> = blocks.iter().map(|b| b.summed.as_deref()).collect();
    client
        .execute(
            &format!(
                "INSERT INTO {}.delta_log (first_recorded, last_recorded, first_day, last_day, changes, events, deltas, summed, merged)
                 SELECT f, l, fd, ld, c, e, d, s, $9
                 FROM unnest($1::timestamptz[], $2::timestamptz[], $3::int4[], $4::int4[], $5::int4[], $6::int4[],
                             $7::bytea[], $8::bytea[])
                      AS b(f, l, fd, ld, c, e, d, s)",
                schema.ident()
            ),
            &[&first, &last, &first_day, &last_day, &changes, &events, &bytes, &summed, &merged],
        )
        .await
        .map_err(db("logging deltas"))?;
    Ok(blocks.iter().filter(|b| b.changes + b.events < SMALL_BLOCK).count())
}

/// The events of a batch as runs of equal recorded times.
pub(crate) fn events_at(mut recorded: Vec<i64>) -> Vec<Events> {
    recorded.sort_unstable();
    runs(recorded.into_iter()).into_iter().map(|(recorded, n)| Events { recorded, n }).collect()
}

/// A block with fewer changes and events than this is small: a projector that applies a few events at
/// a time appends many, which [`compact_log`] merges (the partial index of migration 0005 names the
/// same number).
pub(crate) const SMALL_BLOCK: i32 = 4096;
/// Small blocks a member appends before it merges the small blocks of the log.
pub(crate) const COMPACT_EVERY: usize = 64;
/// Small blocks merged at most in one go.
const COMPACT_AT_MOST: i64 = 1024;
/// Changes and events merged at most in one go: a merged block is read whole by every question
/// whose K falls within its span.
const MERGED_AT_MOST: i64 = 16 * SMALL_BLOCK as i64;

/// Merges the oldest small blocks of the log that were never merged, in one transaction, so that the
/// log keeps a few large blocks however small the batches were; the result is split again as
/// [`append`] splits a batch. Merging never changes an answer: a block is only a set of changes and
/// events, each with its own recorded time. Returns the number of blocks merged (0 when fewer than
/// two are small, or when another member is merging).
pub async fn compact_log(client: &mut Client, schema: &Schema) -> Result<usize, StoreError> {
    let s = schema.ident();
    let tx = client.transaction().await.map_err(db("beginning to merge log blocks"))?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock(hashtext('hoctap-compact:' || $1))", &[&schema.as_str()])
        .await
        .map_err(db("locking the log for merging"))?
        .get(0);
    if !locked {
        return Ok(0);
    }
    let rows = tx
        .query(
            &format!(
                "SELECT block, deltas FROM (
                     SELECT block, deltas, first_recorded,
                            sum(changes + events) OVER (ORDER BY first_recorded, block) AS size
                     FROM {s}.delta_log WHERE changes + events < {SMALL_BLOCK} AND NOT merged
                     ORDER BY first_recorded, block LIMIT {COMPACT_AT_MOST}
                 ) small WHERE size <= {MERGED_AT_MOST} ORDER BY first_recorded, block"
            ),
            &[],
        )
        .await
        .map_err(db("reading small log blocks"))?;
    if rows.len() < 2 {
        return Ok(0);
    }
    let (mut changes, mut events) = (Vec::new(), Vec::new());
    let mut blocks = Vec::with_capacity(rows.len());
    for row in &rows {
        blocks.push(row.get::<_, i64>(0));
        decode(row.get(1), |c| changes.push(c), |e| events.push(e)).map_err(|e| unreadable(schema, e))?;
    }
    tx.execute(&format!("DELETE FROM {s}.delta_log WHERE block = ANY($1)"), &[&blocks])
        .await
        .map_err(db("removing merged log blocks"))?;
    append(&tx, schema, changes, events, true).await?;
    tx.commit().await.map_err(db("committing merged log blocks"))?;
    Ok(blocks.len())
}

/// Every change of the log as (recorded, key, day, n), equal ones summed, those summing to 0 left out,
/// sorted: for tests and inspection (it holds the whole log in memory).
pub async fn log_changes(
    client: &impl GenericClient,
    schema: &Schema,
) -> Result<Vec<(i64, i32, i32, i64)>, StoreError> {
    let mut sums: HashMap<(i64, i32, i32), i64> = HashMap::new();
    let add = |c: Change| *sums.entry((c.recorded, c.key, c.day)).or_default() += i64::from(c.n);
    scan_all(client, schema, add, |_| {}).await?;
    let mut out: Vec<(i64, i32, i32, i64)> =
        sums.into_iter().filter(|(_, n)| *n != 0).map(|((r, k, d), n)| (r, k, d, n)).collect();
    out.sort_unstable();
    Ok(out)
}

/// A fingerprint of the whole log as a multiset of (what the key stands for, day, recorded time, n),
/// equal changes summed, and of the events' recorded times: two generations with the same changes
/// and events have the same fingerprint, whatever their batches and key numbers. It is a sum of n × a
/// 128-bit hash of the rest, so splitting or merging changes, or changes that cancel out, do not
/// alter it.
pub(crate) async fn fingerprint(client: &impl GenericClient, schema: &Schema) -> Result<u128, StoreError> {
    use std::hash::{Hash, Hasher};
    let keys = Keys::load(client, schema).await?;
    let mut key_hashes: HashMap<i32, u64> = HashMap::new();
    let mut missing = None;
    let mut sum: u128 = 0;
    let change = |c: Change| {
        let key_hash = *key_hashes.entry(c.key).or_insert_with(|| {
            let mut h = std::hash::DefaultHasher::new();
            match keys.of(c.key) {
                Some(of) => of.hash(&mut h),
                None => missing = Some(c.key),
            }
            h.finish()
        });
        let h = (u128::from(mix(key_hash ^ mix(c.day as u64))) << 64) | u128::from(mix(key_hash ^ c.recorded as u64));
        sum = sum.wrapping_add(h.wrapping_mul(c.n as i128 as u128));
    };
    let mut events = 0u128;
    let event = |e: Events| {
        let h = (u128::from(mix(!(e.recorded as u64))) << 64) | u128::from(mix(e.recorded as u64 ^ 0x5EED));
        events = events.wrapping_add(h.wrapping_mul(u128::from(e.n)));
    };
    scan_all(client, schema, change, event).await?;
    let sum = sum.wrapping_add(events.rotate_left(17));
    match missing {
        Some(key) => Err(StoreError::Corrupt {
            schema: schema.to_string(),
            detail: format!("count key {key} of the log is not in count_keys"),
        }),
        None => Ok(sum),
    }
}

/// SplitMix64's finaliser: a cheap, well-spread 64-bit mix.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(seed: u64, n: usize) -> Vec<Change> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| Change {
                recorded: 1_700_000_000_000_000 + rng.i64(0..50),
                key: rng.i32(1..40),
                day: rng.i32(18_000..22_000),
                n: rng.i32(-3..4),
            })
            .collect()
    }

    /// The changes as a block holds them: sorted, equal ones summed, zeros left out.
    fn summed(mut changes: Vec<Change>) -> Vec<Change> {
        let mut sums = std::collections::BTreeMap::new();
        for c in changes.drain(..) {
            *sums.entry((c.recorded, c.key, c.day)).or_insert(0) += c.n;
        }
        sums.into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|((recorded, key, day), n)| Change { recorded, key, day, n })
            .collect()
    }

    fn events(seed: u64, n: usize) -> Vec<Events> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| Events { recorded: 1_700_000_000_000_000 + rng.i64(-10..60), n: rng.u32(1..3) }).collect()
    }

    /// Events as a block holds them: sorted, equal times summed.
    fn summed_events(events: Vec<Events>) -> Vec<Events> {
        let mut sums = std::collections::BTreeMap::new();
        for e in events {
            *sums.entry(e.recorded).or_insert(0) += e.n;
        }
        sums.into_iter().map(|(recorded, n)| Events { recorded, n }).collect()
    }

    fn read(block: &Block) -> (Vec<Change>, Vec<Events>) {
        let (mut changes, mut events) = (Vec::new(), Vec::new());
        decode(&block.bytes, |c| changes.push(c), |e| events.push(e)).expect("readable");
        (changes, events)
    }

    #[test]
    fn a_block_gives_back_its_changes_and_events_sorted_and_summed() {
        for (seed, n, m) in [(1, 1, 0), (2, 7, 3), (3, 1000, 400), (4, 0, 5)] {
            let (raw, raw_events) = (changes(seed, n), events(seed, m));
            let expected = (summed(raw.clone()), summed_events(raw_events.clone()));
            let Some(block) = encode(raw, raw_events) else {
                assert!(expected.0.is_empty() && expected.1.is_empty());
                continue;
            };
            assert_eq!(read(&block), expected);
            assert_eq!(block.changes as usize, expected.0.len());
            assert_eq!(block.events as u32, expected.1.iter().map(|e| e.n).sum::<u32>());
            let times = expected.0.iter().map(|c| c.recorded).chain(expected.1.iter().map(|e| e.recorded));
            let (first, last) = (times.clone().min().unwrap(), times.max().unwrap());
            assert_eq!((block.first_recorded, block.last_recorded), (first, last));
            // Split, with one half twice: merged into one block, the same with that half doubled.
            let (a, b) = expected.0.split_at(expected.0.len() / 2);
            let (ea, eb) = expected.1.split_at(expected.1.len() / 2);
            let merged = encode([a, b, a].concat(), [ea, eb, ea].concat()).expect("something");
            let doubled: Vec<Change> = a.iter().map(|c| Change { n: 2 * c.n, ..*c }).chain(b.iter().copied()).collect();
            let doubled_events: Vec<Events> =
                ea.iter().map(|e| Events { n: 2 * e.n, ..*e }).chain(eb.iter().copied()).collect();
            assert_eq!(read(&merged), (summed(doubled), summed_events(doubled_events)));
        }
        assert!(encode(Vec::new(), Vec::new()).is_none());
        let cancelling = Change { recorded: 1, key: 2, day: 3, n: 1 };
        assert!(encode(vec![cancelling, Change { n: -1, ..cancelling }], Vec::new()).is_none());
        assert_eq!(events_at(vec![5, 3, 5]), [Events { recorded: 3, n: 1 }, Events { recorded: 5, n: 2 }]);
    }

    #[test]
    fn a_block_without_events_keeps_its_changes_summed_per_key_and_day_when_that_halves_them() {
        // Many recorded times over few (key, day): summed.
        let raw: Vec<Change> = changes(5, 2000).into_iter().map(|c| Change { day: 20_000 + c.day % 3, ..c }).collect();
        let block = encode(raw.clone(), Vec::new()).expect("changes");
        let mut expected = std::collections::BTreeMap::new();
        for c in &raw {
            *expected.entry((c.key, c.day)).or_insert(0) += c.n;
        }
        expected.retain(|_, n| *n != 0);
        let mut got = Vec::new();
        decode_summed(block.summed.as_deref().expect("summed"), |key, day, n| got.push(((key, day), n)))
            .expect("readable");
        assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
        // With events (read for them, and near K), or when summing would not halve it: not kept.
        assert!(encode(raw.clone(), events(5, 3)).expect("changes").summed.is_none());
        let distinct: Vec<Change> =
            (0..100).map(|i| Change { recorded: i64::from(i), key: i, day: 20_000, n: 1 }).collect();
        assert!(encode(distinct, Vec::new()).expect("changes").summed.is_none());
        // Damaged: refused.
        let bytes = block.summed.expect("summed");
        assert!(decode_summed(&bytes[..bytes.len() - 1], |_, _, _| {}).is_err());
        assert!(decode_summed(&bytes[..3], |_, _, _| {}).is_err());
    }

    #[test]
    fn a_batch_is_split_by_lateness_with_its_events_on_time() {
        let day = |text: &str| Day::parse(text).expect("a date").0;
        let recorded = Day(day("2025-03-10")).end_instant() - 1; // 23:59:59.999999 in Vietnam
        let change = |d: &str, key: i32| Change { recorded, key, day: day(d), n: 1 };
        let on_time = [change("2025-03-03", 1), change("2025-03-10", 2), change("2025-03-17", 3)];
        let late = [change("2025-01-20", 4), change("2025-02-28", 5), change("2024-11-02", 6), change("2024-03-01", 9)];
        let ahead = [change("2026-01-01", 7), change("2025-03-18", 8), change("2025-04-02", 10)];
        let events = vec![Events { recorded, n: 3 }];
        let all: Vec<Change> = [&on_time[..], &late, &ahead].concat();
        let groups = split(all.clone(), events.clone());
        // Late changes by year, future-dated ones by month.
        let expected = vec![
            (on_time.to_vec(), events.clone()),
            (vec![late[2], late[3]], vec![]),
            (vec![late[0], late[1]], vec![]),
            (vec![ahead[1]], vec![]),
            (vec![ahead[2]], vec![]),
            (vec![ahead[0]], vec![]),
        ];
        assert_eq!(groups, expected);
        // Events alone make one group; nothing makes none.
        assert_eq!(split(Vec::new(), events.clone()), vec![(Vec::new(), events)]);
        assert!(split(Vec::new(), Vec::new()).is_empty());
        // A block keeps the span of its days.
        let block = encode(late.to_vec(), Vec::new()).expect("changes");
        assert_eq!(block.days, (day("2024-03-01"), day("2025-02-28")));
        assert_eq!(encode(Vec::new(), vec![Events { recorded, n: 1 }]).expect("events").days, NO_DAYS);
    }

    #[test]
    fn the_partial_index_names_the_small_block_size() {
        let sql = include_str!("../migrations/0005_lateness.sql");
        assert!(
            sql.contains(&format!("WHERE changes + events < {SMALL_BLOCK} AND NOT merged;")),
            "migration 0005 and SMALL_BLOCK disagree"
        );
    }

    #[test]
    fn damaged_blocks_are_refused() {
        let block = encode(changes(4, 50), events(4, 5)).expect("changes").bytes;
        let mut wrong_format = block.clone();
        wrong_format[0] = 9;
        let mut wrong_count = block.clone();
        wrong_count[HEADER + 8] ^= 1; // the first time's count
        for (bytes, why) in [
            (&block[..block.len() - 1], "length"),
            (&block[..5], "header"),
            (&wrong_format[..], "format"),
            (&wrong_count[..], "times"),
            (&[][..], "format"),
        ] {
            let err = decode(bytes, |_| {}, |_| {}).expect_err(why);
            assert!(err.0.contains(why), "{why}: {}", err.0);
        }
    }
}

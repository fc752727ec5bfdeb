//! The transaction-time log in blocks: each batch appends one row to `delta_log` with its changes
//! packed in columns and the recorded times of the new events it applied
//! (`migrations/0004_columns_and_blocks.sql`). A question as known at K reads the blocks on one side
//! of K and sums them here, which is several times less to store, send and add up than one row per
//! change; the same pass counts the events recorded by K.
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

use crate::error::db;
use crate::keys::Keys;
use crate::{Schema, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::pin::pin;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient};

/// The version byte that opens every block.
const FORMAT: u8 = 1;
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
    pub changes: i32,
    pub events: i32,
    pub bytes: Vec<u8>,
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
    changes.dedup_by(|later, kept| {
        let same = (later.recorded, later.key, later.day) == (kept.recorded, kept.key, kept.day);
        if same {
            kept.n += later.n;
        }
        same
    });
    changes.retain(|c| c.n != 0);
    events.sort_unstable();
    events.dedup_by(|later, kept| {
        let same = later.recorded == kept.recorded;
        if same {
            kept.n += later.n;
        }
        same
    });
    events.retain(|e| e.n != 0);
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
    for column in [|c: &Change| c.key, |c: &Change| c.day, |c: &Change| c.n] {
        for c in &changes {
            bytes.extend_from_slice(&column(c).to_le_bytes());
        }
    }
    Some(Block {
        first_recorded: first,
        last_recorded: last,
        changes: changes.len() as i32,
        events: events.iter().map(|e| e.n as i32).sum(),
        bytes,
    })
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
    let column = |i: usize| &bytes[columns + i * changes * 4..columns + (i + 1) * changes * 4];
    let int = |col: &[u8], j: usize| i32::from_le_bytes(col[j * 4..j * 4 + 4].try_into().expect("4 bytes"));
    let (keys, days, ns) = (column(0), column(1), column(2));
    let mut j = 0;
    for r in 0..times {
        let (recorded, count) = run(r);
        let count = count as usize;
        if j + count > changes {
            return Err(Unreadable("block times claim more changes than it holds"));
        }
        for k in j..j + count {
            change(Change { recorded, key: int(keys, k), day: int(days, k), n: int(ns, k) });
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

/// Which part of the log a question reads: the changes recorded up to K, or after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    All,
    UpTo(i64),
    After(i64),
}

impl Part {
    pub(crate) fn holds(self, recorded: i64) -> bool {
        match self {
            Part::All => true,
            Part::UpTo(k) => recorded <= k,
            Part::After(k) => recorded > k,
        }
    }
}

/// Calls `change` with every change of `part` of the log and `events` with every run of events of
/// the blocks read (whatever their recorded time: blocks that straddle K hold events on both sides),
/// block by block as PostgreSQL sends them. Only the blocks whose span of recorded times meets `part`
/// are read.
pub(crate) async fn scan(
    client: &impl GenericClient,
    schema: &Schema,
    part: Part,
    mut change: impl FnMut(Change),
    mut events: impl FnMut(Events),
) -> Result<(), StoreError> {
    let (condition, k) = match part {
        Part::All => ("$1::timestamptz IS NULL", None),
        Part::UpTo(k) => ("first_recorded <= $1", Some(k)),
        Part::After(k) => ("last_recorded > $1", Some(k)),
    };
    let k: Option<DateTime<Utc>> = k.map(crate::query::instant);
    let params: [&(dyn ToSql + Sync); 1] = [&k];
    let rows = client
        .query_raw(&format!("SELECT deltas FROM {}.delta_log WHERE {condition}", schema.ident()), params)
        .await
        .map_err(db("reading the log of changes"))?;
    let mut rows = pin!(rows);
    while let Some(row) =
        futures_util::TryStreamExt::try_next(&mut rows).await.map_err(db("reading the log of changes"))?
    {
        let holds = |c: Change| {
            if part.holds(c.recorded) {
                change(c)
            }
        };
        decode(row.get::<_, &[u8]>(0), holds, &mut events).map_err(|e| unreadable(schema, e))?;
    }
    Ok(())
}

fn unreadable(schema: &Schema, Unreadable(detail): Unreadable) -> StoreError {
    StoreError::Corrupt { schema: schema.to_string(), detail: format!("a block of the log of changes: {detail}") }
}

/// Appends one block (nothing when nothing is left, see [`encode`]); returns its size in changes and
/// events.
pub(crate) async fn append(
    client: &impl GenericClient,
    schema: &Schema,
    changes: Vec<Change>,
    events: Vec<Events>,
) -> Result<Option<i32>, StoreError> {
    let Some(block) = encode(changes, events) else { return Ok(None) };
    let (first, last): (DateTime<Utc>, DateTime<Utc>) =
        (crate::query::instant(block.first_recorded), crate::query::instant(block.last_recorded));
    client
        .execute(
            &format!(
                "INSERT INTO {}.delta_log (first_recorded, last_recorded, changes, events, deltas)
                 VALUES ($1, $2, $3, $4, $5)",
                schema.ident()
            ),
            &[&first, &last, &block.changes, &block.events, &block.bytes],
        )
        .await
        .map_err(db("logging deltas"))?;
    Ok(Some(block.changes + block.events))
}

/// The events of a batch as runs of equal recorded times.
pub(crate) fn events_at(mut recorded: Vec<i64>) -> Vec<Events> {
    recorded.sort_unstable();
    runs(recorded.into_iter()).into_iter().map(|(recorded, n)| Events { recorded, n }).collect()
}

/// A block with fewer changes and events than this is small: a projector that applies a few events at
/// a time appends many, which [`compact_log`] merges (the partial index of migration 0004 names the
/// same number).
pub(crate) const SMALL_BLOCK: i32 = 4096;
/// Small blocks a member appends before it merges the small blocks of the log.
pub(crate) const COMPACT_EVERY: usize = 64;
/// Small blocks merged at most in one go.
const COMPACT_AT_MOST: i64 = 1024;

/// Merges the oldest small blocks of the log into one, in one transaction, so that the log keeps a
/// few large blocks however small the batches were. Merging never changes an answer: a block is
/// only a set of changes and events, each with its own recorded time. Returns the number of blocks
/// merged (0 when fewer than two are small, or when another member is merging).
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
                "SELECT block, deltas FROM {s}.delta_log WHERE changes + events < {SMALL_BLOCK}
                 ORDER BY first_recorded, block LIMIT {COMPACT_AT_MOST}"
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
    append(&tx, schema, changes, events).await?;
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
    scan(client, schema, Part::All, add, |_| {}).await?;
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
    scan(client, schema, Part::All, change, event).await?;
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
    fn the_partial_index_names_the_small_block_size() {
        let sql = include_str!("../migrations/0004_columns_and_blocks.sql");
        assert!(
            sql.contains(&format!("WHERE changes + events < {SMALL_BLOCK};")),
            "migration 0004 and SMALL_BLOCK disagree"
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

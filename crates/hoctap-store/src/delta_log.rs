//! The transaction-time log in blocks: each batch appends one row to `delta_log`, its changes packed
//! in columns (`migrations/0004_columns_and_blocks.sql`). A question as known at K reads the blocks on one
//! side of K and sums their changes here, which is several times less to store, send and add up than
//! one row per change.
//!
//! Block format (little-endian), version [`FORMAT`]:
//! ```text
//! u8  format
//! u32 times        distinct recorded times, ascending
//! u32 changes      changes in all
//! times   × (i64 recorded, u32 how many of the changes that follow carry it)
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
    pub bytes: Vec<u8>,
}

/// Packs `changes` (sorted here, equal ones summed, those summing to 0 left out). `None` when none is
/// left.
pub(crate) fn encode(mut changes: Vec<Change>) -> Option<Block> {
    changes.sort_unstable();
    changes.dedup_by(|later, kept| {
        let same = (later.recorded, later.key, later.day) == (kept.recorded, kept.key, kept.day);
        if same {
            kept.n += later.n;
        }
        same
    });
    changes.retain(|c| c.n != 0);
    let (first, last) = (changes.first()?.recorded, changes.last()?.recorded);
    let mut times: Vec<(i64, u32)> = Vec::new();
    for c in &changes {
        match times.last_mut() {
            Some((t, n)) if *t == c.recorded => *n += 1,
            _ => times.push((c.recorded, 1)),
        }
    }
    let mut bytes = Vec::with_capacity(9 + times.len() * 12 + changes.len() * 12);
    bytes.push(FORMAT);
    bytes.extend_from_slice(&(times.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for (t, n) in &times {
        bytes.extend_from_slice(&t.to_le_bytes());
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    for column in [|c: &Change| c.key, |c: &Change| c.day, |c: &Change| c.n] {
        for c in &changes {
            bytes.extend_from_slice(&column(c).to_le_bytes());
        }
    }
    Some(Block { first_recorded: first, last_recorded: last, changes: changes.len() as i32, bytes })
}

/// A block that is not in a format this binary wrote.
#[derive(Debug)]
pub(crate) struct Unreadable(pub &'static str);

/// Calls `f` with every change of a block, in (recorded, key, day) order.
pub(crate) fn decode(bytes: &[u8], mut f: impl FnMut(Change)) -> Result<(), Unreadable> {
    let u32_at = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    if bytes.first() != Some(&FORMAT) {
        return Err(Unreadable("unknown block format"));
    }
    let header = |at: usize| u32_at(at).map(|n| n as usize).ok_or(Unreadable("truncated block header"));
    let (times, changes) = (header(1)?, header(5)?);
    let columns = 9 + times * 12;
    if bytes.len() != columns + changes * 12 {
        return Err(Unreadable("block length does not match its header"));
    }
    let column = |i: usize| &bytes[columns + i * changes * 4..columns + (i + 1) * changes * 4];
    let int = |col: &[u8], j: usize| i32::from_le_bytes(col[j * 4..j * 4 + 4].try_into().expect("4 bytes"));
    let (keys, days, ns) = (column(0), column(1), column(2));
    let mut j = 0;
    for t in 0..times {
        let at = 9 + t * 12;
        let recorded = i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let count = u32_at(at + 8).expect("inside the header") as usize;
        if j + count > changes {
            return Err(Unreadable("block times claim more changes than it holds"));
        }
        for k in j..j + count {
            f(Change { recorded, key: int(keys, k), day: int(days, k), n: int(ns, k) });
        }
        j += count;
    }
    if j != changes {
        return Err(Unreadable("block times do not cover its changes"));
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
    fn holds(self, recorded: i64) -> bool {
        match self {
            Part::All => true,
            Part::UpTo(k) => recorded <= k,
            Part::After(k) => recorded > k,
        }
    }
}

/// Calls `f` with every change of `part` of the log, block by block as PostgreSQL sends them (only
/// the blocks whose span of recorded times meets `part` are read).
pub(crate) async fn scan(
    client: &impl GenericClient,
    schema: &Schema,
    part: Part,
    mut f: impl FnMut(Change),
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
        decode(row.get::<_, &[u8]>(0), |c| {
            if part.holds(c.recorded) {
                f(c)
            }
        })
        .map_err(|Unreadable(detail)| StoreError::Corrupt {
            schema: schema.to_string(),
            detail: format!("a block of the log of changes: {detail}"),
        })?;
    }
    Ok(())
}

/// Appends one block (nothing when no change is left, see [`encode`]); returns how many changes it
/// holds.
pub(crate) async fn append(
    client: &impl GenericClient,
    schema: &Schema,
    changes: Vec<Change>,
) -> Result<Option<i32>, StoreError> {
    let Some(block) = encode(changes) else { return Ok(None) };
    let (first, last): (DateTime<Utc>, DateTime<Utc>) =
        (crate::query::instant(block.first_recorded), crate::query::instant(block.last_recorded));
    client
        .execute(
            &format!(
                "INSERT INTO {}.delta_log (first_recorded, last_recorded, changes, deltas) VALUES ($1, $2, $3, $4)",
                schema.ident()
            ),
            &[&first, &last, &block.changes, &block.bytes],
        )
        .await
        .map_err(db("logging deltas"))?;
    Ok(Some(block.changes))
}

/// A block with fewer changes than this is small: a projector that applies a few events at a time
/// appends many, which [`compact_log`] merges (the partial index of migration 0004 names the same
/// number).
pub(crate) const SMALL_BLOCK: i32 = 4096;
/// Small blocks a member appends before it merges the small blocks of the log.
pub(crate) const COMPACT_EVERY: usize = 64;
/// Small blocks merged at most in one go.
const COMPACT_AT_MOST: i64 = 1024;

/// Merges the oldest small blocks of the log into one, in one transaction, so that the log keeps a
/// few large blocks however small the batches were. Merging never changes an answer: a block is
/// only a set of changes, each with its own recorded time. Returns the number of blocks merged (0
/// when fewer than two are small, or when another member is merging).
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
                "SELECT block, deltas FROM {s}.delta_log WHERE changes < {SMALL_BLOCK}
                 ORDER BY first_recorded, block LIMIT {COMPACT_AT_MOST}"
            ),
            &[],
        )
        .await
        .map_err(db("reading small log blocks"))?;
    if rows.len() < 2 {
        return Ok(0);
    }
    let mut changes = Vec::new();
    let mut blocks = Vec::with_capacity(rows.len());
    for row in &rows {
        blocks.push(row.get::<_, i64>(0));
        decode(row.get(1), |c| changes.push(c)).map_err(|Unreadable(detail)| StoreError::Corrupt {
            schema: schema.to_string(),
            detail: format!("a block of the log of changes: {detail}"),
        })?;
    }
    tx.execute(&format!("DELETE FROM {s}.delta_log WHERE block = ANY($1)"), &[&blocks])
        .await
        .map_err(db("removing merged log blocks"))?;
    append(&tx, schema, changes).await?;
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
    scan(client, schema, Part::All, |c| *sums.entry((c.recorded, c.key, c.day)).or_default() += i64::from(c.n)).await?;
    let mut out: Vec<(i64, i32, i32, i64)> =
        sums.into_iter().filter(|(_, n)| *n != 0).map(|((r, k, d), n)| (r, k, d, n)).collect();
    out.sort_unstable();
    Ok(out)
}

/// A fingerprint of the whole log as a multiset of (what the key stands for, day, recorded time, n),
/// equal changes summed: two generations with the same changes have the same fingerprint, whatever
/// their batches and key numbers. It is a sum of n × a 128-bit hash of the rest, so splitting or
/// merging changes, or changes that cancel out, do not alter it.
pub(crate) async fn fingerprint(client: &impl GenericClient, schema: &Schema) -> Result<u128, StoreError> {
    use std::hash::{Hash, Hasher};
    let keys = Keys::load(client, schema).await?;
    let mut key_hashes: HashMap<i32, u64> = HashMap::new();
    let mut missing = None;
    let mut sum: u128 = 0;
    scan(client, schema, Part::All, |c| {
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
    })
    .await?;
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

    #[test]
    fn a_block_gives_back_its_changes_sorted_and_summed() {
        for (seed, n) in [(1, 1), (2, 7), (3, 1000)] {
            let raw = changes(seed, n);
            let expected = summed(raw.clone());
            let Some(block) = encode(raw) else {
                assert!(expected.is_empty());
                continue;
            };
            let mut back = Vec::new();
            decode(&block.bytes, |c| back.push(c)).expect("readable");
            assert_eq!(back, expected);
            assert_eq!(block.changes as usize, expected.len());
            let (first, last) = (expected[0].recorded, expected[expected.len() - 1].recorded);
            assert_eq!((block.first_recorded, block.last_recorded), (first, last));
            // Split, with one half twice: merged into one block, the same changes with that half doubled.
            let (a, b) = expected.split_at(expected.len() / 2);
            let mut merged = Vec::new();
            decode(&encode([a, b, a].concat()).expect("changes").bytes, |c| merged.push(c)).expect("readable");
            let doubled: Vec<Change> = a.iter().map(|c| Change { n: 2 * c.n, ..*c }).chain(b.iter().copied()).collect();
            assert_eq!(merged, summed(doubled));
        }
        assert!(encode(Vec::new()).is_none());
        let cancelling = Change { recorded: 1, key: 2, day: 3, n: 1 };
        assert!(encode(vec![cancelling, Change { n: -1, ..cancelling }]).is_none());
    }

    #[test]
    fn the_partial_index_names_the_small_block_size() {
        let sql = include_str!("../migrations/0004_columns_and_blocks.sql");
        assert!(sql.contains(&format!("WHERE changes < {SMALL_BLOCK};")), "migration 0004 and SMALL_BLOCK disagree");
    }

    #[test]
    fn damaged_blocks_are_refused() {
        let block = encode(changes(4, 50)).expect("changes").bytes;
        let mut wrong_format = block.clone();
        wrong_format[0] = 9;
        let mut wrong_count = block.clone();
        wrong_count[9 + 8] ^= 1; // the first time's count
        for (bytes, why) in [
            (&block[..block.len() - 1], "length"),
            (&block[..5], "header"),
            (&wrong_format[..], "format"),
            (&wrong_count[..], "times"),
            (&[][..], "format"),
        ] {
            let err = decode(bytes, |_| {}).expect_err(why);
            assert!(err.0.contains(why), "{why}: {}", err.0);
        }
    }
}

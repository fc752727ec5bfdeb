//! Applying a batch so that no record stalls its partitions: when PostgreSQL refuses a batch for what
//! it holds, the batch is split in halves, each applied in a transaction of its own, until the
//! records it refuses stand alone; those are refused (dead-lettered) and every other record is
//! applied exactly once.
//!
//! Offsets of a partition must advance contiguously (a batch that skips a record fails with
//! `StoreError::Gap`). So the batch is ordered by (topic, partition, offset) and only split into
//! consecutive runs, applied in that order; each run carries the positions refused before it (whose
//! offsets advance in its transaction) and the records refused while decoding that precede its end.
//! After a run commits, every record before its end is settled; a run that fails is rolled back
//! whole, so nothing is applied twice.

use hoctap_store::{Applied, Consumed, Position};

/// What [`apply_isolating`] writes to: the read models, through one transaction per call.
pub(crate) trait Sink {
    type Error;

    /// Applies `events` and advances the offsets of `refused` with them in one transaction,
    /// retrying failures of the system as long as it sees fit. `Ok(None)`: records before these
    /// were skipped (a gap); nothing was applied.
    fn apply(&mut self, events: &[Consumed], refused: &[Position]) -> Result<Option<Applied>, Self::Error>;

    /// Whether `error` comes from what the events hold (applying them again fails again).
    fn is_content_fault(error: &Self::Error) -> bool;

    /// `event` failed alone for its content (`why`): refuse it (publish its dead letter) before its
    /// offset advances with the next run.
    fn refuse(&mut self, event: &Consumed, why: &Self::Error) -> Result<(), Self::Error>;
}

/// How a batch went.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    /// What the committed transactions applied, summed.
    pub applied: Applied,
    /// Events refused for their content.
    pub refused: usize,
    /// A run found records skipped before it: it and the runs after it were not applied. Seek back
    /// to the stored offsets and consume them again.
    pub gap: bool,
}

/// Applies `events` and advances the offsets of `refused` (records that are not events) in one
/// transaction when PostgreSQL takes them all, else in the fewest runs that isolate the events it
/// refuses alone (see the module docs).
pub(crate) fn apply_isolating<S: Sink>(
    sink: &mut S,
    mut events: Vec<Consumed>,
    mut refused: Vec<Position>,
) -> Result<Settled, S::Error> {
    events.sort_by(|a, b| key(a).cmp(&key(b)));
    refused.sort_by(|a, b| position_key(a).cmp(&position_key(b)));
    let mut bisection = Bisection {
        sink,
        events: &events,
        letters: &refused,
        letters_done: 0,
        carried: Vec::new(),
        settled: Settled::default(),
    };
    let n = events.len();
    // When the last events are refused, their offsets still have to advance: a run of no events.
    if bisection.settle(0, n)? && n > 0 {
        bisection.settle(n, n)?;
    }
    Ok(bisection.settled)
}

struct Bisection<'a, S> {
    sink: &'a mut S,
    events: &'a [Consumed],
    /// Records refused while decoding, ordered; `letters[..letters_done]` are committed.
    letters: &'a [Position],
    letters_done: usize,
    /// Events refused here whose offsets are not committed yet.
    carried: Vec<Position>,
    settled: Settled,
}

impl<S: Sink> Bisection<'_, S> {
    /// Applies `events[lo..hi]` (after everything before `lo` was settled), splitting it while
    /// PostgreSQL refuses its content. `false`: a gap stopped it.
    fn settle(&mut self, lo: usize, hi: usize) -> Result<bool, S::Error> {
        // Every record before the run's end goes with it, so that its partitions advance without holes.
        let letters_end = match self.events.get(hi) {
            Some(next) => self.letters.partition_point(|p| position_key(p) < key(next)),
            None => self.letters.len(),
        };
        let mut refused = self.letters[self.letters_done..letters_end].to_vec();
        refused.extend(self.carried.iter().cloned());
        let events = &self.events[lo..hi];
        if events.is_empty() && refused.is_empty() {
            return Ok(true);
        }
        match self.sink.apply(events, &refused) {
            Ok(Some(applied)) => {
                let total = &mut self.settled.applied;
                total.events += applied.events;
                total.redelivered += applied.redelivered;
                total.duplicates += applied.duplicates;
                total.deltas += applied.deltas;
                self.letters_done = letters_end;
                self.carried.clear();
                Ok(true)
            }
            Ok(None) => {
                self.settled.gap = true;
                Ok(false)
            }
            Err(e) if S::is_content_fault(&e) && events.len() > 1 => {
                let mid = lo + events.len() / 2;
                Ok(self.settle(lo, mid)? && self.settle(mid, hi)?)
            }
            Err(e) if S::is_content_fault(&e) && events.len() == 1 => {
                let event = &events[0];
                self.sink.refuse(event, &e)?;
                self.settled.refused += 1;
                self.carried.push(Position {
                    topic: event.topic.clone(),
                    partition: event.partition,
                    offset: event.offset,
                });
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

fn key(c: &Consumed) -> (&str, i32, i64) {
    (&c.topic, c.partition, c.offset)
}

fn position_key(p: &Position) -> (&str, i32, i64) {
    (&p.topic, p.partition, p.offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    /// The store as the projector sees it: offsets that advance contiguously per partition, a gap
    /// for a run that skips records, and a content fault for a run holding a poisoned offset.
    #[derive(Default)]
    struct FakeStore {
        next: HashMap<(String, i32), i64>,
        poisoned: BTreeSet<(String, i32, i64)>,
        applied: Vec<(String, i32, i64)>,
        refused: Vec<(String, i32, i64)>,
        transactions: usize,
    }

    #[derive(Debug, PartialEq)]
    enum Fault {
        Content,
    }

    impl Sink for FakeStore {
        type Error = Fault;

        fn apply(&mut self, events: &[Consumed], refused: &[Position]) -> Result<Option<Applied>, Fault> {
            self.transactions += 1;
            let positions: Vec<(String, i32, i64)> = events
                .iter()
                .map(|c| (c.topic.clone(), c.partition, c.offset))
                .chain(refused.iter().map(|p| (p.topic.clone(), p.partition, p.offset)))
                .collect();
            let mut first: HashMap<(String, i32), i64> = HashMap::new();
            for (t, p, o) in &positions {
                let f = first.entry((t.clone(), *p)).or_insert(*o);
                *f = (*f).min(*o);
            }
            if first.iter().any(|(k, &o)| o > self.next.get(k).copied().unwrap_or(0)) {
                return Ok(None);
            }
            if events.iter().any(|c| self.poisoned.contains(&(c.topic.clone(), c.partition, c.offset))) {
                return Err(Fault::Content);
            }
            for (t, p, o) in positions {
                let n = self.next.entry((t.clone(), p)).or_insert(0);
                *n = (*n).max(o + 1);
            }
            self.applied.extend(events.iter().map(|c| (c.topic.clone(), c.partition, c.offset)));
            Ok(Some(Applied { events: events.len(), ..Applied::default() }))
        }

        fn is_content_fault(error: &Fault) -> bool {
            *error == Fault::Content
        }

        fn refuse(&mut self, event: &Consumed, _: &Fault) -> Result<(), Fault> {
            self.refused.push((event.topic.clone(), event.partition, event.offset));
            Ok(())
        }
    }

    fn consumed(topic: &str, partition: i32, offset: i64) -> Consumed {
        let event = hoctap_tests::unit(1 + offset as u128, "01", "province", "Hà Nội", None);
        Consumed { topic: topic.to_owned(), partition, offset, event }
    }

    /// Runs a batch of `partitions` × `per_partition` records, where `letter(p, o)` marks records that
    /// are not events and `poison(p, o)` events PostgreSQL refuses; polls them interleaved across
    /// partitions, as a consumer does.
    fn check(
        partitions: i32,
        per_partition: i64,
        letter: impl Fn(i32, i64) -> bool,
        poison: impl Fn(i32, i64) -> bool,
    ) {
        let mut store = FakeStore::default();
        let (mut events, mut letters) = (Vec::new(), Vec::new());
        for o in 0..per_partition {
            for p in 0..partitions {
                if letter(p, o) {
                    letters.push(Position { topic: "events".into(), partition: p, offset: o });
                } else {
                    events.push(consumed("events", p, o));
                    if poison(p, o) {
                        store.poisoned.insert(("events".into(), p, o));
                    }
                }
            }
        }
        let expected_applied: BTreeSet<_> = events
            .iter()
            .map(|c| (c.topic.clone(), c.partition, c.offset))
            .filter(|k| !store.poisoned.contains(k))
            .collect();
        let settled = apply_isolating(&mut store, events, letters).expect("only content faults");
        assert!(!settled.gap, "a run skipped records");
        let applied: BTreeSet<_> = store.applied.iter().cloned().collect();
        assert_eq!(applied.len(), store.applied.len(), "an event was applied twice");
        assert_eq!(applied, expected_applied);
        assert_eq!(store.refused.iter().cloned().collect::<BTreeSet<_>>(), store.poisoned);
        assert_eq!(settled.refused, store.poisoned.len());
        assert_eq!(settled.applied.events, expected_applied.len());
        for p in 0..partitions {
            assert_eq!(store.next.get(&("events".into(), p)).copied(), Some(per_partition), "partition {p}");
        }
        if store.poisoned.is_empty() {
            assert_eq!(store.transactions, 1, "a batch PostgreSQL takes is one transaction");
        }
    }

    #[test]
    fn a_batch_postgresql_takes_is_one_transaction() {
        check(3, 10, |_, o| o == 4, |_, _| false);
    }

    #[test]
    fn a_refused_event_is_isolated_and_every_other_record_applied_once() {
        check(3, 10, |p, o| p == 1 && o == 7, |p, o| p == 0 && o == 3);
    }

    #[test]
    fn refused_events_last_in_their_partition_still_advance_its_offset() {
        check(2, 6, |_, _| false, |_, o| o == 5);
        check(1, 1, |_, _| false, |_, _| true);
    }

    #[test]
    fn a_batch_of_refused_events_and_letters_only_advances_every_offset() {
        check(2, 5, |p, o| (p + o as i32) % 2 == 0, |_, _| true);
    }

    #[test]
    fn any_mix_of_letters_and_refused_events_settles_exactly() {
        for seed in 0..300 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let (partitions, per_partition) = (rng.i32(1..5), rng.i64(1..40));
            let letters: BTreeSet<(i32, i64)> =
                (0..rng.usize(0..6)).map(|_| (rng.i32(0..partitions), rng.i64(0..per_partition))).collect();
            let poisoned: BTreeSet<(i32, i64)> =
                (0..rng.usize(0..6)).map(|_| (rng.i32(0..partitions), rng.i64(0..per_partition))).collect();
            check(partitions, per_partition, |p, o| letters.contains(&(p, o)), |p, o| poisoned.contains(&(p, o)));
        }
    }

    #[test]
    fn a_gap_stops_the_batch_before_anything_after_it() {
        let mut store = FakeStore { next: HashMap::from([(("events".into(), 0), 5)]), ..FakeStore::default() };
        let events = (6..9).map(|o| consumed("events", 0, o)).collect();
        let settled = apply_isolating(&mut store, events, Vec::new()).unwrap();
        assert!(settled.gap);
        assert!(store.applied.is_empty());
    }
}

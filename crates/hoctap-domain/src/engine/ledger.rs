//! The projector's pure core: how a batch of events changes the counts of the subjects it touches,
//! computed from those subjects' histories alone.
//!
//! A read model stores each subject's contributions (stretches of valid time per place and measure)
//! as deltas, and for "as known at K" the transaction time of each delta. Everything a subject
//! contributes depends on its own events and on the retractions of its own subject (rule 1), never on
//! another subject or on the geography (which [`Place`] leaves to the date asked). So a projector
//! needs, per batch, only the histories of the subjects the batch touches: [`Ledger::load`] takes them
//! as stored, [`Ledger::fold`] returns the [`Deltas`], [`Ledger::history`] gives what to store back.

use super::{Contribution, Engine, Kind, Measure, NO_SOURCE, Place, Rec};
use crate::event::Event;
use crate::time::Day;
use foldhash::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// How a batch changed the counts: +1/−1 per (place, measure, day) as known now, and the same per
/// transaction time for "as known at K". A sum may be 0 when changes cancelled out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deltas {
    pub by_day: HashMap<(Place, Measure, Day), i64>,
    pub by_recorded: HashMap<(Place, Measure, Day, i64), i64>,
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

    /// Drops the entries that summed to 0.
    pub fn prune(&mut self) {
        self.by_day.retain(|_, n| *n != 0);
        self.by_recorded.retain(|_, n| *n != 0);
    }
}

/// A stored history could not be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the stored history of subject `{subject}` is unreadable: {detail}")]
pub struct HistoryError {
    pub subject: String,
    pub detail: String,
}

/// The histories of the subjects one batch touches, and the fold of the batch into them.
#[derive(Debug, Default)]
pub struct Ledger {
    engine: Engine,
}

/// One step of a subject's change: the recorded time its deltas are logged at, and the known-at to
/// read the subject at (`None` for the last step: as known now).
type Step = (i64, Option<i64>);

/// The version byte that opens every stored history. Format 2: the version, the history's table of
/// sources (a count, then each source as a `u16` length and its UTF-8 bytes, in the order the records
/// first name them), then the records, each naming its source by its index in that table.
const HISTORY_FORMAT: u8 = 2;
/// The first format: the same records without sources (read as sources not kept).
const HISTORY_FORMAT_1: u8 = 1;
const TAG_RETRACTION: u8 = 0xFF;
/// A record's source index when its source is not kept (a format-1 history, a state holding
/// `NO_SOURCE` distinct sources, more than 255 distinct sources in one history, or a source longer than
/// 65 535 bytes): listed as empty, as `Engine::diff` lists such a source.
const NO_SOURCE_IX: u8 = u8::MAX;

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Events held (of every loaded subject, the folded batches included).
    pub fn len(&self) -> usize {
        self.engine.len()
    }

    pub fn is_empty(&self) -> bool {
        self.engine.is_empty()
    }

    /// Whether an event with `id` is folded already (a redelivered copy is a duplicate, rule 3).
    pub fn knows(&self, id: &Uuid) -> bool {
        self.engine.ids.contains_key(id)
    }

    /// Loads `subject`'s history as [`Ledger::history`] wrote it. Load every subject a batch touches
    /// before folding it, and each at most once.
    pub fn load(&mut self, subject: &str, history: &[u8]) -> Result<(), HistoryError> {
        self.engine.load_history(subject, history, Known::Refused)
    }

    /// The newest `recordedtime` of `subject`'s history (its events and its retractions), `None` when
    /// it holds none.
    pub fn last_recorded(&self, subject: &str) -> Option<i64> {
        let &sid = self.engine.subject_ids.get(subject)?;
        let s = &self.engine.subjects[sid as usize];
        let metas = &self.engine.metas;
        s.recs.iter().map(|r| r.recorded).chain(s.retractions.iter().map(|&(ev, _)| metas[ev as usize].recorded)).max()
    }

    /// `subject`'s history to store: its records in (time, id) order, then its retractions by id, so
    /// that the same set of events always gives the same bytes.
    pub fn history(&self, subject: &str) -> Vec<u8> {
        let mut out = vec![HISTORY_FORMAT];
        let Some(&sid) = self.engine.subject_ids.get(subject) else {
            out.push(0);
            return out;
        };
        let s = &self.engine.subjects[sid as usize];
        let metas = &self.engine.metas;
        let mut retractions: Vec<(Uuid, i64, Uuid, u32)> = s
            .retractions
            .iter()
            .map(|&(ev, named)| (metas[ev as usize].id, metas[ev as usize].recorded, named, ev))
            .collect();
        retractions.sort_unstable();
        // The table of sources, in the order the records name them.
        let mut table: Vec<u16> = Vec::new();
        let evs = s.recs.iter().map(|r| r.ev).chain(retractions.iter().map(|r| r.3));
        let ixs: Vec<u8> = evs
            .map(|ev| {
                let source = metas[ev as usize].source;
                let kept = source != NO_SOURCE && self.engine.sources.codes[usize::from(source)].len() <= MAX_SOURCE;
                if !kept {
                    return NO_SOURCE_IX;
                }
                match table.iter().position(|&t| t == source) {
                    Some(ix) => ix as u8,
                    None if table.len() < usize::from(NO_SOURCE_IX) => {
                        table.push(source);
                        (table.len() - 1) as u8
                    }
                    None => NO_SOURCE_IX,
                }
            })
            .collect();
        out.push(table.len() as u8);
        for &source in &table {
            let text = self.engine.sources.codes[usize::from(source)].as_bytes();
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text);
        }
        let mut ixs = ixs.into_iter();
        for rec in &s.recs {
            let meta = &metas[rec.ev as usize];
            out.push(rec.kind as u8);
            out.extend_from_slice(meta.id.as_bytes());
            out.extend_from_slice(&meta.recorded.to_le_bytes());
            out.push(ixs.next().expect("one index per record"));
            out.extend_from_slice(&rec.instant.to_le_bytes());
            if has_commune(rec.kind) {
                let code = self.engine.units.codes[rec.a as usize].as_bytes();
                out.push(code.len() as u8);
                out.extend_from_slice(code);
            } else {
                out.extend_from_slice(&rec.a.to_le_bytes());
            }
            out.extend_from_slice(&rec.b.to_le_bytes());
            out.extend_from_slice(&rec.cycle.to_le_bytes());
            out.push(rec.title);
        }
        for (id, recorded, named, _) in retractions {
            out.push(TAG_RETRACTION);
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&recorded.to_le_bytes());
            out.push(ixs.next().expect("one index per retraction"));
            out.extend_from_slice(named.as_bytes());
        }
        out
    }

    /// Folds `events` (new: not [`Ledger::knows`], distinct ids, subjects loaded) and returns how the
    /// counts of their subjects changed. Reference events (geography, baselines, targets) change no
    /// subject's stretches and are not given here.
    ///
    /// For a touched subject, let D(K) be its contributions as known at K after the batch minus those
    /// before it. D changes only at the subject's known times (its events' and their retractions'
    /// `recordedtime`) and is zero before the batch's earliest time m for it. So the batch adds, at each
    /// known time t ≥ m, D(t) minus D at the previous known time, and the deltas with `recorded ≤ K`
    /// add up to the subject as known at K, whatever order the events arrived in. The last step reads
    /// the subject as known now, so the counts as known now are exact too.
    pub fn fold(&mut self, events: &[&Event]) -> Deltas {
        let recorded = |e: &Event| e.recordedtime.unwrap_or(i64::MIN);
        let mut times: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
        for e in events {
            let t = times.entry(e.subject.as_str()).or_default();
            t.insert(recorded(e));
            t.extend(self.engine.retraction_times(&e.subject, &e.id));
        }
        // The steps of each subject: its known times from the batch's earliest one on; the last step
        // reads the subject as known now.
        let steps: Vec<(&str, Vec<Step>)> = times
            .into_iter()
            .map(|(subject, batch_times)| {
                let m = *batch_times.first().expect("at least one time");
                let mut all = batch_times;
                all.extend(self.engine.known_times(subject));
                let mut steps: Vec<Step> = all.range(m..).map(|&t| (t, Some(t))).collect();
                steps.last_mut().expect("m is in the set").1 = None;
                (subject, steps)
            })
            .collect();
        // Each subject's stretches at each step, read on every core (reading shares the engine).
        let read = |engine: &Engine| -> Vec<Vec<Vec<Contribution>>> {
            par_map(&steps, |(subject, ts)| ts.iter().map(|&(_, k)| engine.contributions(subject, k)).collect())
        };
        let before = read(&self.engine);
        for e in events {
            self.engine.apply(e);
        }
        let after = read(&self.engine);
        let mut deltas = Deltas::default();
        for (((_, ts), old), new) in steps.iter().zip(before).zip(after) {
            for (i, &(at, _)) in ts.iter().enumerate() {
                if i == 0 {
                    deltas.diff(&old[0], &new[0], at);
                } else {
                    deltas.diff(&new[i - 1], &new[i], at);
                    deltas.diff(&old[i], &old[i - 1], at);
                }
            }
        }
        deltas.prune();
        deltas
    }
}

/// The longest source a history keeps (its length is stored in a `u16`).
const MAX_SOURCE: usize = u16::MAX as usize;

/// What loading a history does with an event id the engine holds already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    /// A ledger holds each subject once: a known id is a corrupt history.
    Refused,
    /// A copy of the reference engine holds the retractions whose subject may be a unit (they are
    /// reference data too): the same retraction of the same subject is skipped.
    SameRetraction,
}

impl Engine {
    /// A copy of this engine with the stored histories of some subjects loaded, as [`Ledger::history`]
    /// wrote them (each subject once). From the read models' reference engine and the histories of
    /// the subjects recorded after a time, this is the state [`Engine::diff_reviews`] needs to list
    /// the events that changed a question since then, the same listing as [`Engine::diff`]'s.
    pub fn with_histories<'a>(
        &self,
        histories: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Engine, HistoryError> {
        let mut engine = self.clone();
        for (subject, history) in histories {
            engine.load_history(subject, history, Known::SameRetraction)?;
        }
        Ok(engine)
    }

    fn load_history(&mut self, subject: &str, history: &[u8], known: Known) -> Result<(), HistoryError> {
        let corrupt = |detail: &str| HistoryError { subject: subject.to_owned(), detail: detail.to_owned() };
        let mut r = Reader { bytes: history };
        let format = r.u8().ok_or_else(|| corrupt("empty"))?;
        // The history's sources as this engine interns them.
        let mut sources: Vec<u16> = Vec::new();
        match format {
            HISTORY_FORMAT_1 => {}
            HISTORY_FORMAT => {
                let n = r.u8().ok_or_else(|| corrupt("truncated sources"))?;
                for _ in 0..n {
                    let source = r.text().ok_or_else(|| corrupt("truncated source"))?;
                    sources.push(self.source_ix(source));
                }
            }
            _ => return Err(corrupt("unknown format")),
        }
        let source = |r: &mut Reader<'_>| -> Result<u16, HistoryError> {
            if format == HISTORY_FORMAT_1 {
                return Ok(NO_SOURCE);
            }
            match r.u8().ok_or_else(|| corrupt("truncated source index"))? {
                NO_SOURCE_IX => Ok(NO_SOURCE),
                ix => sources.get(usize::from(ix)).copied().ok_or_else(|| corrupt("a source index out of the table")),
            }
        };
        while !r.bytes.is_empty() {
            let tag = r.u8().ok_or_else(|| corrupt("truncated"))?;
            let id = r.id().ok_or_else(|| corrupt("truncated id"))?;
            let recorded = r.i64().ok_or_else(|| corrupt("truncated time"))?;
            let source = source(&mut r)?;
            let twice = || corrupt("an event id twice");
            if tag == TAG_RETRACTION {
                let named = r.id().ok_or_else(|| corrupt("truncated retraction"))?;
                if known == Known::SameRetraction
                    && let Some(&ev) = self.ids.get(&id)
                {
                    let same = self.subject_ids.get(subject) == Some(&self.metas[ev as usize].subject)
                        && self.retractors.get(&named).is_some_and(|list| list.contains(&ev));
                    if same {
                        continue;
                    }
                    return Err(twice());
                }
                let ev = self.push_meta(id, recorded, 0, subject, source).ok_or_else(twice)?;
                self.push_retraction(ev, named);
                continue;
            }
            let kind = kind_of(tag).ok_or_else(|| corrupt("unknown record kind"))?;
            let instant = r.i64().ok_or_else(|| corrupt("truncated record"))?;
            // A commune is stored as its code: unit ids are this engine's own.
            let a = if has_commune(kind) { r.code().map(|code| self.units.intern(code) as i32) } else { r.i32() };
            let (a, b, cycle, title) =
                (a, r.i32(), r.i16(), r.u8()).into_option().ok_or_else(|| corrupt("truncated record"))?;
            let ev = self.push_meta(id, recorded, 0, subject, source).ok_or_else(twice)?;
            let retractable = self.metas[ev as usize].has_retractors;
            let day = Day::of_instant(instant).0;
            self.push_rec(Rec { instant, recorded, ev, day, a, b, cycle, kind, title, retractable });
        }
        Ok(())
    }
}

/// `f` of every item, in order, computed on up to as many threads as there are cores (plain scoped
/// threads: computation, not I/O), or on this one for few items.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(8);
    if threads < 2 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a fold thread")).collect()
    })
}

fn has_commune(kind: Kind) -> bool {
    matches!(kind, Kind::Registered | Kind::Relocated | Kind::Skill)
}

fn kind_of(tag: u8) -> Option<Kind> {
    [
        Kind::Registered,
        Kind::Withdrawn,
        Kind::Declared,
        Kind::Evidenced,
        Kind::Granted,
        Kind::Revoked,
        Kind::Skill,
        Kind::Relocated,
    ]
    .into_iter()
    .find(|k| *k as u8 == tag)
}

/// Little-endian fields off the front of a byte slice; `None` when too short.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_le_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    fn id(&mut self) -> Option<Uuid> {
        self.take().map(Uuid::from_bytes)
    }
    /// A `u16` length, then that many bytes of UTF-8.
    fn text(&mut self) -> Option<&'a str> {
        let len = usize::from(self.take().map(u16::from_le_bytes)?);
        let (text, rest) = self.bytes.split_at_checked(len)?;
        self.bytes = rest;
        std::str::from_utf8(text).ok()
    }
    fn code(&mut self) -> Option<&'a str> {
        let len = self.u8()? as usize;
        let (code, rest) = self.bytes.split_at_checked(len)?;
        self.bytes = rest;
        std::str::from_utf8(code).ok()
    }
}

/// A tuple of options as an option of a tuple.
trait IntoOption<T> {
    fn into_option(self) -> Option<T>;
}

impl<A, B, C, D> IntoOption<(A, B, C, D)> for (Option<A>, Option<B>, Option<C>, Option<D>) {
    fn into_option(self) -> Option<(A, B, C, D)> {
        Some((self.0?, self.1?, self.2?, self.3?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{SubjectKind, Title};
    use crate::event::{EventData, EventRetracted, RegistrationSubmitted};

    fn at(n: u128, subject: &str, recorded: i64, data: EventData) -> Event {
        let mut e = Event::new(Uuid::from_u128(n), "test", "2025-02-01T09:00:00+07:00", subject, data).unwrap();
        e.recordedtime = Some(recorded);
        e
    }

    fn registration(n: u128, subject: &str, recorded: i64) -> Event {
        let data = EventData::RegistrationSubmitted(RegistrationSubmitted {
            subject_kind: SubjectKind::Citizen,
            commune: "00001".into(),
            title: Title::LearningCitizen,
            cycle_year: 2025,
            subject_group: None,
        });
        at(n, subject, recorded, data)
    }

    fn retraction(n: u128, subject: &str, recorded: i64, named: u128) -> Event {
        let data =
            EventData::EventRetracted(EventRetracted { event_id: Uuid::from_u128(named), reason: "error".into() });
        at(n, subject, recorded, data)
    }

    /// Folds `batches` one after the other, each into a ledger loaded from the histories the previous
    /// batches stored, as a projector does; returns the summed deltas and the stored histories.
    fn fold_in(batches: &[Vec<Event>]) -> (Deltas, HashMap<String, Vec<u8>>) {
        let mut stored: HashMap<String, Vec<u8>> = HashMap::default();
        let mut total = Deltas::default();
        for batch in batches {
            let mut ledger = Ledger::new();
            let subjects: BTreeSet<&str> = batch.iter().map(|e| e.subject.as_str()).collect();
            for s in &subjects {
                if let Some(h) = stored.get(*s) {
                    ledger.load(s, h).unwrap();
                }
            }
            let fresh: Vec<&Event> = batch.iter().filter(|e| !ledger.knows(&e.id)).collect();
            let deltas = ledger.fold(&fresh);
            for (k, n) in deltas.by_recorded {
                *total.by_recorded.entry(k).or_default() += n;
            }
            for (k, n) in deltas.by_day {
                *total.by_day.entry(k).or_default() += n;
            }
            for s in subjects {
                stored.insert(s.to_owned(), ledger.history(s));
            }
        }
        total.prune();
        (total, stored)
    }

    #[test]
    fn a_history_loads_back_to_the_same_bytes() {
        let (_, stored) = fold_in(&[vec![registration(1, "cit-a", 10), retraction(2, "cit-a", 20, 1)]]);
        let mut ledger = Ledger::new();
        ledger.load("cit-a", &stored["cit-a"]).unwrap();
        assert_eq!(ledger.history("cit-a"), stored["cit-a"]);
        assert!(ledger.knows(&Uuid::from_u128(1)) && ledger.knows(&Uuid::from_u128(2)));
        for bad in [&b""[..], &[9u8][..], &stored["cit-a"][..stored["cit-a"].len() - 3]] {
            assert!(Ledger::new().load("cit-a", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_history_keeps_its_sources_and_the_first_format_reads_as_sources_not_kept() {
        let (_, stored) = fold_in(&[vec![registration(1, "cit-a", 10), retraction(2, "cit-a", 20, 1)]]);
        let history = &stored["cit-a"];
        // One source, "test", named by both records (index 0).
        assert_eq!(&history[..8], &[HISTORY_FORMAT, 1, 4, 0, b't', b'e', b's', b't']);
        // The records: a registration (tag, id, recorded, source, instant, commune, group, cycle,
        // title) and a retraction (tag, id, recorded, source, named).
        let (registration, retraction) = (1 + 16 + 8 + 1 + 8 + 6 + 4 + 2 + 1, 1 + 16 + 8 + 1 + 16);
        assert_eq!(history.len(), 8 + registration + retraction);
        let source_at = [8 + 25, 8 + registration + 25];
        assert!(source_at.iter().all(|&at| history[at] == 0));
        // The same records as the first format wrote them: no table, no source per record.
        let mut first = vec![HISTORY_FORMAT_1];
        first.extend(history[8..].iter().enumerate().filter(|(i, _)| !source_at.contains(&(i + 8))).map(|(_, b)| b));
        let mut ledger = Ledger::new();
        ledger.load("cit-a", &first).unwrap();
        assert!(ledger.knows(&Uuid::from_u128(1)) && ledger.knows(&Uuid::from_u128(2)));
        // Written again in the current format, with sources not kept.
        let mut again = vec![HISTORY_FORMAT, 0];
        again.extend(
            history[8..].iter().enumerate().map(|(i, &b)| if source_at.contains(&(i + 8)) { NO_SOURCE_IX } else { b }),
        );
        assert_eq!(ledger.history("cit-a"), again);
        assert_eq!(ledger.last_recorded("cit-a"), Some(20));
        // A source index outside the table is corrupt.
        let mut bad = history.clone();
        bad[source_at[0]] = 1;
        assert!(Ledger::new().load("cit-a", &bad).is_err());
    }

    #[test]
    fn an_early_retraction_takes_effect_when_its_event_arrives() {
        // Retracted at 20 before the registration (recorded 30) arrived: it never counts, as known at
        // any time, whether both come in one batch or in two.
        let together = fold_in(&[vec![retraction(2, "cit-a", 20, 1), registration(1, "cit-a", 30)]]).0;
        let apart = fold_in(&[vec![retraction(2, "cit-a", 20, 1)], vec![registration(1, "cit-a", 30)]]).0;
        assert_eq!(together, Deltas::default());
        assert_eq!(apart, Deltas::default());
    }

    #[test]
    fn a_retraction_of_another_subject_changes_nothing() {
        let alone = fold_in(&[vec![registration(1, "cit-a", 10)]]).0;
        assert!(!alone.by_day.is_empty());
        // "cit-b" names cit-a's registration: rule 1 ignores it, in the engine as in the ledger.
        let (deltas, _) = fold_in(&[vec![registration(1, "cit-a", 10)], vec![retraction(2, "cit-b", 20, 1)]]);
        assert_eq!(deltas, alone);
        let mut engine = Engine::new();
        engine.apply(&registration(1, "cit-a", 10));
        let before = engine.contributions("cit-a", None);
        engine.apply(&retraction(2, "cit-b", 20, 1));
        assert_eq!(engine.contributions("cit-a", None), before);
        engine.apply(&retraction(3, "cit-a", 30, 1));
        assert!(engine.contributions("cit-a", None).is_empty());
    }

    #[test]
    fn a_subject_shaped_like_a_code_is_placed_for_the_geography_to_decide() {
        let (deltas, _) = fold_in(&[vec![registration(1, "00002", 10), registration(2, "cit-a", 10)]]);
        let places: BTreeSet<Place> = deltas.by_day.keys().map(|(p, ..)| p.clone()).collect();
        assert_eq!(
            places,
            BTreeSet::from([
                Place::Named("00001".into()),
                Place::Unit { code: "00002".into(), commune: Some("00001".into()) }
            ])
        );
    }
}

//! The engine's state as bytes, for the embedded mode's checkpoint: a later process decodes it instead
//! of folding the whole log again. Bytes in, bytes out; the file, and the log position the state
//! stands for, belong to `hoctap-log` and the CLI.
//!
//! The encoding is postcard (serde) of the engine's own records. Indexes that are functions of other
//! fields (event id → meta, subject name → subject, code → unit) are not stored but rebuilt on load:
//! the file is smaller and cannot hold an index that disagrees with its records.

use super::{ApprovalRec, Engine, Interner, Meta, NO_SOURCE, Name, Stamped, Subject, TargetRec};
use crate::codes::Metric;
use crate::event::Event;
use crate::geo::{UnitHistory, UnitId};
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use uuid::Uuid;

/// Version of the encoded state. Bump it whenever the bytes of the same events change: a field added
/// to a record, or `Engine::apply` keeping something else (the golden test below fails first). A
/// checkpoint of another version is ignored and the log replayed.
pub const CHECKPOINT_VERSION: u32 = 6;

/// Why bytes are not a usable engine state. In every case the caller replays the log instead.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Not this encoding: damaged, or written by a build with other records under the same version.
    #[error("the engine state does not decode: {0}")]
    Decode(String),
    /// Admission compares stored fingerprints with fresh ones, so both must come from one function.
    #[error("the engine state was written by a build that fingerprints events differently")]
    Fingerprints,
    /// Decoded, but its indexes do not fit together.
    #[error("the engine state is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The engine's fields as stored. `Cow` lets one type serve both ways: encoding borrows the live
/// state (no copy of a gigabyte), decoding owns what it read.
#[derive(Serialize, Deserialize)]
struct State<'a> {
    /// The fingerprint of [`PROBE`] as the writing build computed it.
    probe: u64,
    metas: Records<'a, Meta>,
    /// Sorted by the id named, so that the same state always gives the same bytes.
    retractors: Vec<(Uuid, Cow<'a, [u32]>)>,
    /// Subject names by dense id.
    subject_names: Vec<Cow<'a, str>>,
    subjects: Records<'a, Subject>,
    /// Unit codes by dense id.
    unit_codes: Cow<'a, [Box<str>]>,
    geo: Cow<'a, [UnitHistory]>,
    /// Sorted by key, like `retractors`.
    baselines: Vec<(Baseline, Cow<'a, [Stamped<u64>]>)>,
    targets: Cow<'a, [Stamped<TargetRec>]>,
    /// Review approvals (version 5), sorted by (time, event id) like every record.
    approvals: Cow<'a, [Stamped<ApprovalRec>]>,
    /// The events' sources by their index in `Meta::source` (version 6).
    source_names: Cow<'a, [Box<str>]>,
}

/// What baselines are kept by: the unit and the metric.
type Baseline = (UnitId, Metric);

/// A fixed event whose fingerprint tells whether two builds fingerprint alike.
const PROBE: &str = r#"{"specversion":"1.0","id":"6f1d2c3b-8a9e-4f00-b1c2-d3e4f5a6b7c8","source":"checkpoint.probe","type":"vn.hoctap.registration.submitted.v1","time":"2025-01-15T08:30:00+07:00","subject":"cit-probe","datacontenttype":"application/json","data":{"subject_kind":"citizen","commune":"00004","title":"learning_citizen","cycle_year":2025,"subject_group":"resident"}}"#;

fn probe() -> u64 {
    Event::from_json(PROBE.as_bytes()).expect("the probe event is valid").fingerprint()
}

impl Engine {
    /// The whole state as bytes (see [`Engine::from_checkpoint`]). The same state gives the same bytes.
    pub fn to_checkpoint(&self) -> Vec<u8> {
        // Exhaustive on purpose: a field added to the engine must be stored or rebuilt, or this stops compiling.
        let Engine {
            ids: _,
            metas,
            retractors,
            subject_ids,
            subjects,
            units,
            geo,
            baselines,
            targets,
            approvals,
            sources,
        } = self;
        let Interner { ids: _, codes } = units;
        let Interner { ids: _, codes: source_names } = sources;
        let mut subject_names = vec![Cow::Borrowed(""); subjects.len()];
        for (name, &s) in subject_ids {
            subject_names[s as usize] = Cow::Borrowed(&**name);
        }
        let mut retractors: Vec<_> = retractors.iter().map(|(id, evs)| (*id, Cow::Borrowed(&evs[..]))).collect();
        retractors.sort_unstable_by_key(|(id, _)| *id);
        let mut baselines: Vec<_> = baselines.iter().map(|(key, list)| (*key, Cow::Borrowed(&list[..]))).collect();
        baselines.sort_unstable_by_key(|(key, _)| *key);
        let state = State {
            probe: probe(),
            metas: Records(Cow::Borrowed(metas)),
            retractors,
            subject_names,
            subjects: Records(Cow::Borrowed(subjects)),
            unit_codes: Cow::Borrowed(codes),
            geo: Cow::Borrowed(geo),
            baselines,
            targets: Cow::Borrowed(targets),
            approvals: Cow::Borrowed(approvals),
            source_names: Cow::Borrowed(source_names),
        };
        // No record encodes to more bytes than it takes in memory: one allocation holds the whole
        // state, where growing by doubling would copy (and fault in) a gigabyte several times.
        let room = size_of_val(&**metas) + subjects.iter().map(|s| size_of_val(&*s.recs)).sum::<usize>() + (1 << 20);
        postcard::to_extend(&state, Vec::with_capacity(room)).expect("serialising into memory cannot fail")
    }

    /// The state [`Engine::to_checkpoint`] encoded, with its indexes rebuilt: it answers every question
    /// exactly as the engine that wrote it, and folds further events the same way.
    pub fn from_checkpoint(bytes: &[u8]) -> Result<Engine, CheckpointError> {
        let (state, rest) =
            postcard::take_from_bytes::<State>(bytes).map_err(|e| CheckpointError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CheckpointError::Decode(format!("{} bytes after the state", rest.len())));
        }
        if state.probe != probe() {
            return Err(CheckpointError::Fingerprints);
        }
        let metas = state.metas.0.into_owned();
        let subjects = state.subjects.0.into_owned();
        if state.subject_names.len() != subjects.len() {
            return Err(CheckpointError::Inconsistent("subject names and subjects differ in number"));
        }
        let events = metas.len();
        // The id index is the largest part of a load: it is built on another core meanwhile.
        let (ids, metas_fit) = std::thread::scope(|s| {
            let ids = s.spawn(|| index(metas.iter().map(|m| m.id), events));
            let fit = metas.iter().all(|m| (m.subject as usize) < subjects.len())
                && subjects.iter().flat_map(|s| &s.recs).all(|r| (r.ev as usize) < events);
            (ids.join().expect("building the id index does not panic"), fit)
        });
        if !metas_fit {
            return Err(CheckpointError::Inconsistent("a record names an event or subject that is not there"));
        }
        let ids = ids.ok_or(CheckpointError::Inconsistent("an event id twice"))?;
        let subject_ids = index(state.subject_names.iter().map(|n| Name::from(&**n)), subjects.len())
            .ok_or(CheckpointError::Inconsistent("a subject name twice"))?;
        let codes = state.unit_codes.into_owned();
        let unit_ids =
            index(codes.iter().cloned(), codes.len()).ok_or(CheckpointError::Inconsistent("a unit code twice"))?;
        let geo = state.geo.into_owned();
        if geo.len() > codes.len() {
            return Err(CheckpointError::Inconsistent("more unit histories than unit codes"));
        }
        let source_names = state.source_names.into_owned();
        if metas.iter().any(|m| m.source != NO_SOURCE && usize::from(m.source) >= source_names.len()) {
            return Err(CheckpointError::Inconsistent("an event names a source that is not there"));
        }
        let source_ids = index(source_names.iter().cloned(), source_names.len())
            .ok_or(CheckpointError::Inconsistent("a source twice"))?;
        Ok(Engine {
            ids,
            metas,
            retractors: state.retractors.into_iter().map(|(id, evs)| (id, evs.into_owned())).collect(),
            subject_ids,
            subjects,
            units: Interner { ids: unit_ids, codes },
            geo,
            baselines: state.baselines.into_iter().map(|(key, list)| (key, list.into_owned())).collect(),
            targets: state.targets.into_owned(),
            approvals: state.approvals.into_owned(),
            sources: Interner { ids: source_ids, codes: source_names },
        })
    }
}

/// The engine's largest slices, stored as postcard sequences. Decoded into a vector allocated once at
/// the sequence's length: serde's own `Vec` starts from a guess capped at 1 MiB and grows by doubling,
/// which for ten million records copies (and faults in) the vector several times over.
struct Records<'a, T: Clone>(Cow<'a, [T]>);

/// The most records allocated ahead of decoding them: a length read from a damaged file must not ask
/// for all the memory there is (past it the vector grows as usual).
const MAX_AHEAD: usize = 1 << 26;

/// Room left in the largest vectors and indexes of a loaded state, as a fraction of their length, for
/// the events folded after the load: growing a full vector of ten million records copies all of it.
/// The CLI writes a new checkpoint before one lacks much more than a sixteenth of its events.
const ROOM: usize = 16;

impl<T: Clone + Serialize> Serialize for Records<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Clone + Deserialize<'de>> Deserialize<'de> for Records<'_, T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Seq<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of records")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let len = seq.size_hint().unwrap_or(0).min(MAX_AHEAD);
                let mut out = Vec::with_capacity(len + len / ROOM);
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Seq(std::marker::PhantomData)).map(|v| Records(Cow::Owned(v)))
    }
}

/// Maps each key to its position; `None` when a key repeats.
fn index<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>, len: usize) -> Option<HashMap<K, u32>> {
    let mut map = HashMap::with_capacity(len + len / ROOM);
    for (i, key) in keys.enumerate() {
        if map.insert(key, i as u32).is_some() {
            return None;
        }
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Admission, Batch, Query};
    use crate::time::{Day, parse_instant};

    /// Every kind of state the engine keeps: geography changed by a reform, a baseline, a target, every
    /// subject event, late decisions, retractions (one of a retraction, one naming an id not yet known),
    /// an approved review.
    /// One event a line: id, type, time, subject, recordedtime, data.
    const WORLD: &str = r#"
1 admin_unit.established 2021-01-01T00:00:00+07:00 01 2026-01-05T00:00:00Z {"code":"01","level":"province","name":"Hà Nội"}
2 admin_unit.established 2021-01-01T00:00:00+07:00 001 2026-01-05T00:00:00Z {"code":"001","level":"district","name":"Ba Đình","parent":"01"}
3 admin_unit.established 2021-01-01T00:00:00+07:00 00001 2026-01-05T00:00:00Z {"code":"00001","level":"commune","name":"Phúc Xá","parent":"001"}
4 admin_unit.established 2021-01-01T00:00:00+07:00 00002 2026-01-05T00:00:00Z {"code":"00002","level":"commune","name":"Trúc Bạch","parent":"001"}
5 admin_unit.renamed 2023-05-01T00:00:00+07:00 00001 2026-01-05T00:00:00Z {"code":"00001","name":"Ba Đình"}
6 admin_unit.reparented 2025-07-01T00:00:00+07:00 00001 2026-01-05T00:00:00Z {"code":"00001","parent":"01"}
7 admin_unit.dissolved 2025-07-01T00:00:00+07:00 00002 2026-01-05T00:00:00Z {"code":"00002","successor":"00001"}
8 admin_unit.dissolved 2025-07-01T00:00:00+07:00 001 2026-01-05T00:00:00Z {"code":"001","successor":"01"}
9 baseline.recorded 2021-01-01T00:00:00+07:00 00001 2026-01-05T00:00:00Z {"unit":"00001","metric":"adults","value":10}
10 target.set 2021-01-01T00:00:00+07:00 01 2026-01-05T00:00:00Z {"plan":{"issuer":"UBND-01","number":"290","year":2021},"scope":"01","indicator":"learning_citizen/adults","milestone":2025,"percent":50}
20 registration.submitted 2025-01-10T09:00:00+07:00 cit-a 2026-01-05T00:00:00Z {"subject_kind":"citizen","commune":"00002","title":"learning_citizen","cycle_year":2025,"subject_group":"staff"}
21 declaration.submitted 2025-04-01T09:00:00+07:00 cit-a 2026-01-05T00:00:00Z {"title":"learning_citizen","cycle_year":2025,"criteria_set":"CDHT","scores":[{"criterion":"C1","score":90}],"total":90}
22 evidence.uploaded 2025-05-01T09:00:00+07:00 cit-a 2026-01-05T00:00:00Z {"title":"learning_citizen","cycle_year":2025,"criterion":"C1","sha256":"abababababababababababababababababababababababababababababababab","uri":"https://e.example/a.pdf","media_type":"application/pdf","bytes":1024}
23 recognition.granted 2025-11-20T09:00:00+07:00 cit-a 2026-01-05T00:00:00Z {"title":"learning_citizen","cycle_year":2025,"decision":{"number":"6/QD-UBND","issuer":"UBND-01","date":"2025-11-20"},"valid_from":"2025-01-01","valid_until":"2026-12-31"}
24 skill.certified 2025-08-01T09:00:00+07:00 cit-a 2026-01-05T00:00:00Z {"commune":"00001","level":"basic"}
30 registration.submitted 2025-01-10T09:00:00+07:00 cit-b 2026-01-05T00:00:00Z {"subject_kind":"citizen","commune":"00001","title":"learning_citizen","cycle_year":2025,"subject_group":"resident"}
31 registration.withdrawn 2025-03-01T09:00:00+07:00 cit-b 2026-01-05T00:00:00Z {"title":"learning_citizen","cycle_year":2025}
32 subject.relocated 2025-03-02T09:00:00+07:00 cit-b 2026-01-05T00:00:00Z {"commune":"00002"}
41 event.retracted 2025-04-05T09:00:00+07:00 cit-c 2026-01-10T00:00:00Z {"event_id":"00000000-0000-0000-0000-000000000028","reason":"x"}
40 registration.submitted 2025-02-01T09:00:00+07:00 cit-c 2026-01-11T00:00:00Z {"subject_kind":"citizen","commune":"00001","title":"learning_citizen","cycle_year":2025}
42 event.retracted 2025-04-06T09:00:00+07:00 cit-c 2026-03-01T00:00:00Z {"event_id":"00000000-0000-0000-0000-000000000029","reason":"y"}
25 recognition.revoked 2026-01-15T09:00:00+07:00 cit-a 2026-02-20T00:00:00Z {"title":"learning_citizen","cycle_year":2025,"decision":{"number":"7/QD-UBND","issuer":"UBND-01","date":"2026-01-15"},"effective":"2025-10-01"}
11 review.approved 2026-01-20T09:00:00+07:00 01 2026-01-21T00:00:00Z {"scope":"01","as_of":"2025-12-31","milestone":2025,"known_at":"2026-01-10T12:00:00Z","decision":{"number":"15/QD-UBND","issuer":"UBND-01","date":"2026-01-20"}}
"#;

    fn world() -> Vec<Event> {
        WORLD
            .lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let [n, stem, time, subject, recorded, data] =
                    line.splitn(6, ' ').collect::<Vec<_>>().try_into().expect("six fields");
                let id = Uuid::from_u128(n.parse().expect("a number"));
                let json = format!(
                    r#"{{"specversion":"1.0","id":"{id}","source":"test","type":"vn.hoctap.{stem}.v1","time":"{time}","subject":"{subject}","recordedtime":"{recorded}","data":{data}}}"#
                );
                Event::from_json_recorded(json.as_bytes()).unwrap_or_else(|r| panic!("test event {n}: {r}"))
            })
            .collect()
    }

    fn fold(events: &[Event]) -> Engine {
        let mut engine = Engine::new();
        events.iter().for_each(|e| engine.apply(e));
        engine
    }

    /// Every answer the world gives: before, on and after the reform, as known at several times.
    fn answers(engine: &Engine) -> Vec<String> {
        let days = ["2024-12-31", "2025-03-01", "2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"];
        let known = [None, Some("2026-01-10T12:00:00Z"), Some("2026-02-01T00:00:00Z"), Some("2026-03-02T00:00:00Z")];
        let mut out = Vec::new();
        for d in days {
            for k in known {
                let query = Query {
                    scope: "01".into(),
                    as_of: Day::parse(d).unwrap(),
                    known_at: k.map(|k| parse_instant(k).unwrap()),
                    milestone: None,
                };
                out.push(format!("{d} {k:?}: {:?}", engine.review(&query)));
            }
        }
        for subject in ["cit-a", "cit-b", "cit-c"] {
            out.push(format!("{subject}: {:?}", engine.contributions(subject, None)));
        }
        out.push(format!("approved: {:?}", engine.approved_review("15/QD-UBND")));
        out
    }

    #[test]
    fn a_loaded_state_encodes_to_the_same_bytes_and_gives_the_same_answers() {
        let engine = fold(&world());
        let bytes = engine.to_checkpoint();
        let loaded = Engine::from_checkpoint(&bytes).unwrap();
        assert_eq!(loaded.to_checkpoint(), bytes);
        assert_eq!(answers(&loaded), answers(&engine));
        assert_eq!(loaded.len(), engine.len());
    }

    #[test]
    fn folding_on_from_a_checkpoint_is_folding_from_the_start() {
        let events = world();
        let whole = fold(&events);
        for split in 0..=events.len() {
            let mut resumed = Engine::from_checkpoint(&fold(&events[..split]).to_checkpoint()).unwrap();
            events[split..].iter().for_each(|e| resumed.apply(e));
            assert_eq!(resumed.to_checkpoint(), whole.to_checkpoint(), "checkpoint after {split} events");
            assert_eq!(answers(&resumed), answers(&whole), "checkpoint after {split} events");
        }
    }

    #[test]
    fn a_loaded_state_admits_like_the_one_that_wrote_it() {
        let events = world();
        let loaded = Engine::from_checkpoint(&fold(&events).to_checkpoint()).unwrap();
        let mut batch = Batch::default();
        let mut again = events[10].clone();
        again.recordedtime = None;
        assert_eq!(loaded.admit(&mut batch, &again), Ok(Admission::Duplicate));
        let mut changed = again.clone();
        changed.subject = "cit-other".into();
        let refusal = loaded.admit(&mut batch, &changed).unwrap_err();
        assert_eq!(refusal.rule, crate::Rule::DuplicateId);
        let mut elsewhere = again;
        elsewhere.id = Uuid::from_u128(99);
        if let crate::EventData::RegistrationSubmitted(d) = &mut elsewhere.data {
            d.commune = "00009".into();
        }
        assert_eq!(loaded.admit(&mut batch, &elsewhere).unwrap_err().rule, crate::Rule::UnknownUnit);
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused() {
        let bytes = fold(&world()).to_checkpoint();
        for cut in [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            assert!(Engine::from_checkpoint(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(Engine::from_checkpoint(&longer), Err(CheckpointError::Decode(_))));
        // The probe leads the state: another build's fingerprints show there.
        let mut other = bytes;
        other[0] ^= 0x01;
        assert!(matches!(Engine::from_checkpoint(&other), Err(CheckpointError::Fingerprints)));
    }

    /// FNV-1a: a stable digest that depends on nothing but the bytes.
    fn digest(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// Pins the encoding. When this fails, the bytes of the same events changed: bump
    /// `CHECKPOINT_VERSION` (so that older checkpoints are ignored instead of misread), then update
    /// the digest here.
    #[test]
    fn the_encoding_of_a_fixed_world_is_pinned_to_its_version() {
        let bytes = fold(&world()).to_checkpoint();
        assert_eq!((CHECKPOINT_VERSION, bytes.len(), digest(&bytes)), (6, 1633, 18_220_100_656_643_723_539));
    }
}

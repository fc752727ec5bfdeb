//! The engine: admits events (duplicate and unknown-unit rules), folds them into bitemporal state and
//! answers reviews. Folding cannot fail and does not depend on the order events arrive in.

use crate::codes::{Metric, Title};
use crate::event::{ContentDigest, Decision, Event, EventData, Plan, ReviewApproved};
use crate::geo::{Change, GeoRec, UnitHistory, UnitId};
use crate::indicator::Indicator;
use crate::refusal::{Refusal, Rule};
use crate::time::Day;
use crate::validate;
use foldhash::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use uuid::Uuid;

/// What admitting an event decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new event: append it to the log, then fold it.
    New,
    /// The same id with the same content was accepted before: nothing to do (rule 3).
    Duplicate,
}

/// What one batch (one ingested file, one HTTP batch) brings that validation must see as a whole:
/// the units it establishes anywhere in it, the subject of each of its events and the subjects it
/// places (a retraction must share the subject of the event it names; warnings), and the ids
/// admitted so far. Events given to [`Batch::add_units`] are known wherever they stand in the batch
/// (the gateway gives all of them); the others from their admission on (`hoctap ingest` gives only
/// the establishments, so that it decodes each line once).
#[derive(Debug, Default)]
pub struct Batch {
    units: HashSet<String>,
    /// The subject of each event, as [`subject_key`] (a batch may hold millions of events).
    subjects: HashMap<Uuid, u64>,
    /// Subjects that an event of the batch places in a commune (for warnings), as [`subject_key`].
    placed: HashSet<u64>,
    ids: HashMap<Uuid, u64>,
    /// The review approvals admitted from the batch so far (a decision number approves one review).
    approvals: Vec<ReviewApproved>,
    /// The earliest `recordedtime` the door will stamp on the batch, when it knows it (its clock now):
    /// an approval must have frozen an instant before it.
    now: Option<i64>,
    /// Events accepted before that the engine does not hold (a door that keeps its ids elsewhere, the
    /// gateway in PostgreSQL, tells the batch about the ids it holds): their content digest and
    /// subject (as [`subject_key`]).
    prior: HashMap<Uuid, (ContentDigest, u64)>,
    /// Subjects that events accepted before (and not in the engine) placed in a commune.
    prior_placed: HashSet<u64>,
}

/// A subject's name as 64 bits, for a batch's bookkeeping: equal names, equal keys; two names with
/// one key (odds 2⁻⁶⁴) would only make a mismatched retraction pass admission, which the fold
/// ignores anyway (rule 1).
fn subject_key(subject: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(subject)
}

impl Batch {
    /// A batch that its door will stamp at `now` (UTC microseconds) or later: the door's clock before it
    /// stamps. Only then can [`Engine::admit`] refuse an approval whose `known_at` is not in the past
    /// (rule `known_at_future`); a [`Batch::default`] leaves that to [`Engine::approval`].
    pub fn recording_at(now: i64) -> Batch {
        Batch { now: Some(now), ..Batch::default() }
    }

    /// Tells the batch that an event with this id, content digest and subject was accepted before,
    /// although the engine does not hold it: [`Engine::admit`] then treats a copy with the same digest
    /// as a duplicate, one with another as a conflicting id, and a retraction naming it by its subject,
    /// exactly as if the engine held it.
    pub fn accepted_before(&mut self, id: Uuid, digest: ContentDigest, subject: &str) {
        self.prior.insert(id, (digest, subject_key(subject)));
    }

    /// Tells the batch that events accepted before (not in the engine) placed `subject` in a commune.
    pub fn placed_before(&mut self, subject: &str) {
        self.prior_placed.insert(subject_key(subject));
    }

    /// Notes `event`'s subject under its id (the first one given for an id), and whether it places
    /// its subject in a commune.
    fn note(&mut self, e: &Event) {
        let key = subject_key(&e.subject);
        self.subjects.entry(e.id).or_insert(key);
        if matches!(
            e.data,
            EventData::RegistrationSubmitted(_) | EventData::SkillCertified(_) | EventData::SubjectRelocated(_)
        ) {
            self.placed.insert(key);
        }
    }

    /// Adds the units that `events` establish, so that every event of the batch knows them wherever
    /// they stand in it. An establishment that would itself be refused (bad content, a conflicting id,
    /// a parent known neither before nor in the batch) establishes nothing. Also notes the subject of
    /// every event of the batch (the first one given for an id), for the retraction rule of [`Engine::admit`].
    pub fn add_units<'a>(&mut self, engine: &Engine, events: impl IntoIterator<Item = &'a Event>) {
        let events: Vec<&'a Event> = events.into_iter().collect();
        for e in &events {
            self.note(e);
        }
        let mut pending: Vec<(&'a Event, &'a crate::event::AdminUnitEstablished)> = events
            .into_iter()
            .filter_map(|e| match &e.data {
                EventData::AdminUnitEstablished(d) => Some((e, d)),
                _ => None,
            })
            .filter(|(e, _)| validate::check_content(e).is_ok())
            .filter(|(e, _)| {
                engine.ids.get(&e.id).is_none_or(|&m| engine.metas[m as usize].fingerprint == e.fingerprint())
                    && self.prior.get(&e.id).is_none_or(|(digest, _)| *digest == e.content_digest())
            })
            .collect();
        // Parents may be established later in the batch: settle until nothing changes.
        loop {
            let before = pending.len();
            pending.retain(|(_, d)| {
                let parent_known = d.parent.as_deref().is_none_or(|p| engine.unit_known(p) || self.units.contains(p));
                if parent_known {
                    self.units.insert(d.code.clone());
                }
                !parent_known
            });
            if pending.len() == before {
                break;
            }
        }
    }
}

/// Per accepted event: its id, transaction time and whether some retraction names it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Meta {
    id: Uuid,
    recorded: i64,
    fingerprint: u64,
    has_retractors: bool,
    /// The event's subject (every event's, interned). A retraction counts only for an event of its own
    /// subject (rule 1), and a subject event's records are found through it.
    subject: u32,
    /// The event's `source`, interned in `Engine::sources` ([`NO_SOURCE`] when not kept: a ledger's
    /// histories do not store it, and a state holds at most `NO_SOURCE` distinct sources). Only an
    /// audit diff reads it (`engine/diff.rs`).
    source: u16,
}

/// [`Meta::source`] of an event whose source is not kept.
const NO_SOURCE: u16 = u16::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub(crate) enum Kind {
    Registered,
    Withdrawn,
    Declared,
    Evidenced,
    Granted,
    Revoked,
    Skill,
    Relocated,
}

/// One subject event, compact. `a`/`b` depend on the kind: the commune and group of a registration,
/// the commune of a relocation or skill, valid_from/valid_until of a grant, the effective day of a revocation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Rec {
    instant: i64,
    /// Copied from the event's meta so that a review reads one cache line per record.
    recorded: i64,
    ev: u32,
    day: i32,
    a: i32,
    b: i32,
    cycle: i16,
    kind: Kind,
    title: u8,
    /// Some retraction names this event: liveness needs the retraction graph.
    retractable: bool,
}

const NO_GROUP: i32 = -1;

impl Rec {
    fn commune(&self) -> Option<UnitId> {
        matches!(self.kind, Kind::Registered | Kind::Relocated | Kind::Skill).then_some(self.a as UnitId)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Subject {
    /// Sorted by (time, event id).
    recs: Vec<Rec>,
    /// The retractions whose subject this is: their meta and the id each names, in the order folded.
    retractions: Vec<(u32, Uuid)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stamped<T> {
    instant: i64,
    day: Day,
    ev: u32,
    value: T,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TargetRec {
    plan: Plan,
    scope: UnitId,
    indicator: Indicator,
    indicator_text: String,
    milestone: i32,
    percent: f64,
}

/// A review approval as kept (and checkpointed: postcard needs every field written, so not the event's
/// own struct, which leaves out an absent milestone).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ApprovalRec {
    scope: String,
    as_of: Day,
    milestone: Option<i32>,
    known_at: String,
    decision: Decision,
}

impl ApprovalRec {
    fn of(d: &ReviewApproved) -> ApprovalRec {
        ApprovalRec {
            scope: d.scope.clone(),
            as_of: d.as_of,
            milestone: d.milestone,
            known_at: d.known_at.clone(),
            decision: d.decision.clone(),
        }
    }

    /// The event's data again.
    fn data(&self) -> ReviewApproved {
        ReviewApproved {
            scope: self.scope.clone(),
            as_of: self.as_of,
            milestone: self.milestone,
            known_at: self.known_at.clone(),
            decision: self.decision.clone(),
        }
    }
}

/// Codes to dense ids.
#[derive(Clone, Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, UnitId>,
    codes: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, code: &str) -> UnitId {
        if let Some(&id) = self.ids.get(code) {
            return id;
        }
        let id = self.codes.len() as UnitId;
        self.codes.push(code.into());
        self.ids.insert(code.into(), id);
        id
    }

    fn get(&self, code: &str) -> Option<UnitId> {
        self.ids.get(code).copied()
    }
}

/// Figures about the state's size, for benchmarks.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct MemoryStats {
    pub events: u64,
    pub subjects: u64,
    pub subject_records: u64,
    /// Approximate heap bytes held by the state.
    pub approx_bytes: u64,
}

/// The folded state of every accepted event, and the questions asked of it. A clone is a copy of the
/// state (the read models load subjects' histories into a copy of their reference engine:
/// [`Engine::with_histories`]).
#[derive(Clone, Debug, Default)]
pub struct Engine {
    ids: HashMap<Uuid, u32>,
    metas: Vec<Meta>,
    /// Retractions by the id they name; the named event may not be known yet.
    retractors: HashMap<Uuid, Vec<u32>>,
    subject_ids: HashMap<Name, u32>,
    subjects: Vec<Subject>,
    units: Interner,
    geo: Vec<UnitHistory>,
    baselines: HashMap<(UnitId, Metric), Vec<Stamped<u64>>>,
    targets: Vec<Stamped<TargetRec>>,
    /// Review approvals, sorted by (time, event id): looked up by decision number (`engine/approval.rs`).
    approvals: Vec<Stamped<ApprovalRec>>,
    /// The events' sources by [`Meta::source`].
    sources: Interner,
}

/// Orders records by (time, event id): the only order the rules know.
fn by_time_then_id(metas: &[Meta], a: (i64, u32), b: (i64, u32)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| metas[a.1 as usize].id.cmp(&metas[b.1 as usize].id))
}

fn insert_sorted<T>(metas: &[Meta], list: &mut Vec<T>, item: T, key: impl Fn(&T) -> (i64, u32)) {
    let k = key(&item);
    // Events mostly arrive in time order: check the end first.
    let pos = if list.last().is_none_or(|last| by_time_then_id(metas, key(last), k) != Ordering::Greater) {
        list.len()
    } else {
        list.partition_point(|x| by_time_then_id(metas, key(x), k) != Ordering::Greater)
    };
    list.insert(pos, item);
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Makes room for `events` more events (a replay knows how many records the log holds), so the
    /// id index is not rehashed again and again while it grows.
    pub fn reserve(&mut self, events: usize) {
        self.ids.reserve(events);
        self.metas.reserve(events);
    }

    /// Packs the state after a bulk replay: every subject's records are copied, in subject order, into
    /// allocations of exactly their size. Reviews read records subject after subject, and records
    /// that lie close together in memory are read several times faster than scattered ones.
    pub fn pack(&mut self) {
        for subject in &mut self.subjects {
            let mut packed = Vec::with_capacity(subject.recs.len());
            packed.extend_from_slice(&subject.recs);
            subject.recs = packed;
        }
    }

    /// Number of distinct events folded.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Decides whether `event` may be accepted: every rule of bad input, including those that need what
    /// is known (unknown units, the same id with other content). Records the id in `batch`.
    pub fn admit(&self, batch: &mut Batch, event: &Event) -> Result<Admission, Refusal> {
        validate::check_content(event)?;
        let fingerprint = event.fingerprint();
        let earlier = match (self.ids.get(&event.id), batch.prior.get(&event.id)) {
            (Some(&m), _) => Some(self.metas[m as usize].fingerprint == fingerprint),
            (None, Some((digest, _))) => Some(*digest == event.content_digest()),
            (None, None) => batch.ids.get(&event.id).map(|&f| f == fingerprint),
        };
        if let Some(same) = earlier {
            return if same {
                Ok(Admission::Duplicate)
            } else {
                Err(Refusal::new(
                    Some(event.id.to_string()),
                    "id",
                    Rule::DuplicateId,
                    "an event with this id and other content was accepted before; ids are unique forever",
                ))
            };
        }
        // An establishment names its own code too, but that one need not be known yet.
        let named =
            event.data.named_units().into_iter().filter(|(field, _)| {
                !(*field == "data.code" && matches!(event.data, EventData::AdminUnitEstablished(_)))
            });
        for (field, code) in named {
            if !self.unit_known(code) && !batch.units.contains(code) {
                return Err(Refusal::new(
                    Some(event.id.to_string()),
                    field,
                    Rule::UnknownUnit,
                    format!("`{code}` is not an administrative unit established by an accepted event or by this batch"),
                ));
            }
        }
        if let EventData::EventRetracted(d) = &event.data
            && self.subject_of_is(&d.event_id, &event.subject, batch) == Some(false)
        {
            // The other event's subject is not repeated: it may be another source's.
            return Err(Refusal::new(
                Some(event.id.to_string()),
                "subject",
                Rule::SubjectMismatch,
                format!(
                    "a retraction's subject must be the subject of the event it retracts; event {} is not about `{}`",
                    d.event_id, event.subject
                ),
            ));
        }
        if let EventData::ReviewApproved(d) = &event.data {
            self.admit_approval(batch, event, d)?;
            batch.approvals.push(d.clone());
        }
        batch.ids.insert(event.id, fingerprint);
        batch.note(event);
        Ok(Admission::New)
    }

    /// Why `event`, admitted with `batch`, will not count as it stands (see [`crate::warning`]): a date
    /// more than a year after the campaign's last year; an event about a subject no accepted event nor the batch places
    /// in a commune (nor a unit); a retraction of an id known neither before nor in the batch.
    pub fn warnings(&self, batch: &Batch, event: &Event) -> Vec<crate::Warning> {
        use crate::warning::{Warning, WarningKind};
        let mut out = Vec::new();
        let mut warn = |field: &'static str, warning: WarningKind, detail: String| {
            out.push(Warning { event_id: event.id.to_string(), field, warning, detail })
        };
        // Decisions on the last cycle come in the year after it (late recognitions of 2030 in 2031):
        // only a later date is beyond the campaign.
        let last_year = *crate::codes::CYCLE_YEARS.end();
        let year = event.day().year();
        if year > last_year + 1 {
            warn(
                "time",
                WarningKind::AfterCampaign,
                format!(
                    "the event happens in {year}, more than a year after the campaign's last year {last_year}: no review of the campaign counts it; check the year"
                ),
            );
        }
        let about_subject = matches!(
            event.data,
            EventData::RegistrationWithdrawn(_)
                | EventData::DeclarationSubmitted(_)
                | EventData::EvidenceUploaded(_)
                | EventData::RecognitionGranted(_)
                | EventData::RecognitionRevoked(_)
        );
        if about_subject
            && !self.is_placed(&event.subject)
            && !batch.placed.contains(&subject_key(&event.subject))
            && !batch.prior_placed.contains(&subject_key(&event.subject))
            && !batch.units.contains(&event.subject)
        {
            warn(
                "subject",
                WarningKind::NotPlaced,
                format!(
                    "subject `{}` has no commune: no accepted event registers, relocates or certifies it in one, so this event counts nowhere until one does",
                    event.subject
                ),
            );
        }
        if let EventData::EventRetracted(d) = &event.data
            && !self.ids.contains_key(&d.event_id)
            && !batch.prior.contains_key(&d.event_id)
            && !batch.subjects.contains_key(&d.event_id)
        {
            warn(
                "data.event_id",
                WarningKind::RetractsUnknown,
                format!(
                    "no event {} was accepted: this retraction retracts nothing until that event arrives",
                    d.event_id
                ),
            );
        }
        out
    }

    /// Whether an accepted event places `subject` in a commune, or the subject is a unit.
    fn is_placed(&self, subject: &str) -> bool {
        self.unit_known(subject)
            || self
                .subject_ids
                .get(subject)
                .is_some_and(|&s| self.subjects[s as usize].recs.iter().any(|r| r.commune().is_some()))
    }

    /// Whether the event `id` (accepted before, else in `batch`) is about `subject`; `None` when the
    /// event is known neither here nor in the batch.
    fn subject_of_is(&self, id: &Uuid, subject: &str, batch: &Batch) -> Option<bool> {
        match (self.ids.get(id), batch.prior.get(id)) {
            (Some(&m), _) => Some(self.subject_ids.get(subject) == Some(&self.metas[m as usize].subject)),
            (None, Some(&(_, s))) => Some(s == subject_key(subject)),
            (None, None) => batch.subjects.get(id).map(|&s| s == subject_key(subject)),
        }
    }

    fn unit_known(&self, code: &str) -> bool {
        self.units.get(code).is_some_and(|u| self.geo.get(u as usize).is_some_and(UnitHistory::ever_established))
    }

    /// Folds one accepted event. An event without `recordedtime` counts as known at every time.
    /// A second copy of a known id changes nothing (the copy folded first stays).
    pub fn apply(&mut self, event: &Event) {
        self.apply_digested(event, &Digest::of(event));
    }

    /// [`Engine::apply`] with the event's [`Digest`] computed beforehand (on a replay's decoding threads).
    pub fn apply_digested(&mut self, event: &Event, digest: &Digest) {
        let recorded = event.recordedtime.unwrap_or(i64::MIN);
        let source = self.source_ix(&event.source);
        let Some(ev) = self.push_meta(event.id, recorded, digest.fingerprint, &event.subject, source) else { return };
        let has_retractors = self.metas[ev as usize].has_retractors;
        let day = event.day();
        let instant = event.instant;
        let recorded = self.metas[ev as usize].recorded;
        let rec = |kind: Kind, title: Title, cycle: i32, a: i32, b: i32| Rec {
            instant,
            recorded,
            retractable: has_retractors,
            ev,
            day: day.0,
            a,
            b,
            cycle: cycle as i16,
            kind,
            title: title.index() as u8,
        };
        let no_title = Title::LearningCitizen;
        let subject_rec = match &event.data {
            EventData::RegistrationSubmitted(d) => {
                let commune = self.units.intern(&d.commune);
                let group = d.subject_group.map_or(NO_GROUP, |g| g.index() as i32);
                Some(rec(Kind::Registered, d.title, d.cycle_year, commune as i32, group))
            }
            EventData::RegistrationWithdrawn(d) => Some(rec(Kind::Withdrawn, d.title, d.cycle_year, 0, 0)),
            EventData::DeclarationSubmitted(d) => Some(rec(Kind::Declared, d.title, d.cycle_year, 0, 0)),
            EventData::EvidenceUploaded(d) => Some(rec(Kind::Evidenced, d.title, d.cycle_year, 0, 0)),
            EventData::RecognitionGranted(d) => {
                Some(rec(Kind::Granted, d.title, d.cycle_year, d.valid_from.0, d.valid_until.0))
            }
            EventData::RecognitionRevoked(d) => Some(rec(Kind::Revoked, d.title, d.cycle_year, d.effective.0, 0)),
            EventData::SkillCertified(d) => {
                Some(rec(Kind::Skill, no_title, 0, self.units.intern(&d.commune) as i32, 0))
            }
            EventData::SubjectRelocated(d) => {
                Some(rec(Kind::Relocated, no_title, 0, self.units.intern(&d.commune) as i32, 0))
            }
            EventData::BaselineRecorded(d) => {
                let unit = self.units.intern(&d.unit);
                let list = self.baselines.entry((unit, d.metric)).or_default();
                insert_sorted(&self.metas, list, Stamped { instant, day, ev, value: d.value }, |s| (s.instant, s.ev));
                None
            }
            EventData::TargetSet(d) => {
                let scope = self.units.intern(&d.scope);
                if let Some(indicator) = Indicator::parse(&d.indicator) {
                    let value = TargetRec {
                        plan: d.plan.clone(),
                        scope,
                        indicator,
                        indicator_text: d.indicator.clone(),
                        milestone: d.milestone,
                        percent: d.percent.0,
                    };
                    self.targets.push(Stamped { instant, day, ev, value });
                }
                None
            }
            EventData::AdminUnitEstablished(d) => {
                let parent = d.parent.as_deref().map(|p| self.units.intern(p));
                self.geo_change(
                    &d.code,
                    instant,
                    day,
                    ev,
                    Change::Established {
                        level: d.level,
                        parent,
                        name: d.name.as_str().into(),
                        coords: d.coordinates.map(|c| (c.lat.0, c.lon.0)),
                    },
                );
                None
            }
            EventData::AdminUnitReparented(d) => {
                let parent = self.units.intern(&d.parent);
                self.geo_change(&d.code, instant, day, ev, Change::Reparented { parent });
                None
            }
            EventData::AdminUnitRenamed(d) => {
                self.geo_change(&d.code, instant, day, ev, Change::Renamed { name: d.name.as_str().into() });
                None
            }
            EventData::AdminUnitDissolved(d) => {
                // Validation guarantees one default; the first successor stands in for a missing one.
                let default = d.default_successor().or(d.successors.first().map(|s| s.code.as_str()));
                let Some(default) = default else { return };
                let successor = self.units.intern(default);
                let others = d.successors.iter().filter(|s| s.code != default).map(|s| self.units.intern(&s.code));
                let others = others.collect();
                self.geo_change(&d.code, instant, day, ev, Change::Dissolved { successor, others });
                None
            }
            EventData::ReviewApproved(d) => {
                let approval = Stamped { instant, day, ev, value: ApprovalRec::of(d) };
                insert_sorted(&self.metas, &mut self.approvals, approval, |s| (s.instant, s.ev));
                None
            }
            EventData::EventRetracted(d) => {
                self.push_retraction(ev, d.event_id);
                None
            }
        };
        if let Some(rec) = subject_rec {
            self.push_rec(rec);
        }
    }

    /// The dense id of `subject`, added when new.
    fn subject_ix(&mut self, subject: &str) -> u32 {
        if let Some(&s) = self.subject_ids.get(subject) {
            return s;
        }
        let s = self.subjects.len() as u32;
        self.subjects.push(Subject::default());
        self.subject_ids.insert(subject.into(), s);
        s
    }

    /// Registers a new event id and returns its meta index; `None` when the id is known (rule 3).
    /// The interned index of `source`, [`NO_SOURCE`] once as many sources are kept.
    fn source_ix(&mut self, source: &str) -> u16 {
        if let Some(ix) = self.sources.get(source) {
            return ix as u16;
        }
        if self.sources.codes.len() >= usize::from(NO_SOURCE) {
            return NO_SOURCE;
        }
        self.sources.intern(source) as u16
    }

    fn push_meta(&mut self, id: Uuid, recorded: i64, fingerprint: u64, subject: &str, source: u16) -> Option<u32> {
        let ev = self.metas.len() as u32;
        // One probe of the id index for both the check and the insert: it is the largest table.
        match self.ids.entry(id) {
            Entry::Occupied(_) => return None,
            Entry::Vacant(slot) => slot.insert(ev),
        };
        let subject = self.subject_ix(subject);
        let has_retractors = self.retractors.contains_key(&id);
        self.metas.push(Meta { id, recorded, fingerprint, has_retractors, subject, source });
        Some(ev)
    }

    /// Files a subject event's record under its meta's subject.
    fn push_rec(&mut self, rec: Rec) {
        let sid = self.metas[rec.ev as usize].subject;
        insert_sorted(&self.metas, &mut self.subjects[sid as usize].recs, rec, |r| (r.instant, r.ev));
    }

    /// Files retraction `ev` as naming `named` (which may not be known yet).
    fn push_retraction(&mut self, ev: u32, named: Uuid) {
        self.retractors.entry(named).or_default().push(ev);
        let sid = self.metas[ev as usize].subject;
        self.subjects[sid as usize].retractions.push((ev, named));
        if let Some(&target) = self.ids.get(&named) {
            self.mark_retractable(target);
        }
    }

    fn mark_retractable(&mut self, target: u32) {
        let meta = &mut self.metas[target as usize];
        meta.has_retractors = true;
        if let Some(rec) = self.subjects[meta.subject as usize].recs.iter_mut().find(|r| r.ev == target) {
            rec.retractable = true;
        }
    }

    /// [`Engine::alive`] for a subject record, reading only the record in the common case.
    fn rec_alive(&self, rec: &Rec, known_at: Option<i64>) -> bool {
        if known_at.is_some_and(|k| rec.recorded > k) {
            return false;
        }
        !rec.retractable || self.alive(rec.ev, known_at)
    }

    fn geo_change(&mut self, code: &str, instant: i64, day: Day, ev: u32, change: Change) {
        let unit = self.units.intern(code) as usize;
        if self.geo.len() <= unit {
            self.geo.resize_with(self.units.codes.len(), UnitHistory::default);
        }
        insert_sorted(&self.metas, &mut self.geo[unit].recs, GeoRec { instant, day, ev, change }, |r| {
            (r.instant, r.ev)
        });
    }

    /// Whether event `ev` exists as known at `known_at` (rule 1): recorded by then and not retracted
    /// by a retraction of the same subject that itself exists then (retractions of retractions restore
    /// the event).
    fn alive(&self, ev: u32, known_at: Option<i64>) -> bool {
        self.alive_on_path(ev, known_at, &mut Vec::new())
    }

    /// Retraction graphs may hold cycles (two retractions naming each other): an edge back into the
    /// path being evaluated is ignored, so the answer is still a function of the set of events.
    fn alive_on_path(&self, ev: u32, known_at: Option<i64>, path: &mut Vec<u32>) -> bool {
        let meta = &self.metas[ev as usize];
        if known_at.is_some_and(|k| meta.recorded > k) {
            return false;
        }
        if !meta.has_retractors {
            return true;
        }
        path.push(ev);
        let retracted = self.retractors[&meta.id].iter().any(|&r| {
            self.metas[r as usize].subject == meta.subject
                && !path.contains(&r)
                && self.alive_on_path(r, known_at, path)
        });
        path.pop();
        !retracted
    }

    /// Approximate sizes, for the replay benchmark.
    pub fn memory_stats(&self) -> MemoryStats {
        use std::mem::size_of;
        let recs: usize = self.subjects.iter().map(|s| s.recs.capacity()).sum();
        let approx = self.metas.capacity() * size_of::<Meta>()
            + self.ids.capacity() * (size_of::<(Uuid, u32)>() + 1)
            + self.subjects.capacity() * size_of::<Subject>()
            + recs * size_of::<Rec>()
            + self.subject_ids.capacity() * (size_of::<(Name, u32)>() + 1)
            + self.subject_ids.keys().map(|k| k.len()).sum::<usize>()
            + self.retractors.capacity() * (size_of::<(Uuid, Vec<u32>)>() + 1);
        MemoryStats {
            events: self.metas.len() as u64,
            subjects: self.subjects.len() as u64,
            subject_records: recs as u64,
            approx_bytes: approx as u64,
        }
    }
}

mod approval;
mod checkpoint;
mod contributions;
mod diff;
mod digest;
mod ledger;
mod name;
pub(crate) mod query;
pub use approval::{Approval, ApprovalError};
pub use checkpoint::{CHECKPOINT_VERSION, CheckpointError};
pub use contributions::{Contribution, Locator, Measure, Place};
pub use digest::Digest;
pub use ledger::{Deltas, HistoryError, Ledger};
use name::Name;
pub use query::{PlaceCounts, Query, QueryError, Recorded};

//! The audit diff on the folded state: the same question as known at two times, and the events
//! recorded in between that changed its figures (`ReviewDiff`, compared in `crate::diff`).

use super::query::{LC, RECOGNISED, locate};
use super::{Engine, Kind, NO_GROUP, NO_SOURCE, Query, QueryError};
use crate::diff::{ChangedBy, ReviewDiff};
use crate::event::EventType;
use crate::geo::{Change, GeoAt, UnitId};
use crate::review::Review;
use crate::time::{self, Day};
use foldhash::{HashMap, HashMapExt};

/// The transaction times after `from` and at or before `to` (`None`: now).
#[derive(Clone, Copy)]
struct Between {
    from: i64,
    to: Option<i64>,
}

impl Between {
    fn holds(self, recorded: i64) -> bool {
        recorded > self.from && self.to.is_none_or(|to| recorded <= to)
    }
}

impl Engine {
    /// `query` (its scope, D, milestone) as known at `query.known_at` against the same question as known
    /// at `vs` (`None`: now): every figure that differs, and the events recorded after the first time
    /// and by the second that changed them. A subject's events are listed when its standing on D or
    /// the unit it is counted in differs between the two times and lies in the question's units on
    /// either side; a geography, baseline or target event (or its retraction) when it was recorded in
    /// between and concerns those units on or before D.
    ///
    /// Either review's error is the diff's (a known-at before every record, a scope unknown or not in
    /// force and with no relation on D).
    pub fn diff(&self, query: &Query, vs: Option<i64>) -> Result<ReviewDiff, QueryError> {
        let before = self.review(query)?;
        let after = self.review(&ReviewDiff::later(query, &before, vs))?;
        Ok(self.diff_reviews(query, vs, &before, &after))
    }

    /// [`Engine::diff`] of two reviews computed elsewhere: `before` answers `query`, `after` answers
    /// [`ReviewDiff::later`]'s question (from this state or from the read models' counts). The events
    /// are listed from this state, which must hold the reference events and every subject with an
    /// event or retraction recorded after `query.known_at`: the whole state, or the read models'
    /// reference engine [`Engine::with_histories`] of the subjects recorded since then.
    pub fn diff_reviews(&self, query: &Query, vs: Option<i64>, before: &Review, after: &Review) -> ReviewDiff {
        let events = match ReviewDiff::since(query, vs) {
            Some(from) => self.changed_by(query.as_of, Between { from, to: vs }, (before, after)),
            // The second time is not after the first: nothing was recorded in between.
            None => Vec::new(),
        };
        ReviewDiff::between(before, after, Some(events))
    }

    fn changed_by(&self, day: Day, between: Between, (before, after): (&Review, &Review)) -> Vec<ChangedBy> {
        let sides = [(self.geo_at(day, Some(between.from)), before), (self.geo_at(day, between.to), after)];
        // The units each side's figures are about: the scope, or the units the reform relates it to.
        let roots: Vec<Vec<UnitId>> = sides
            .iter()
            .map(|(_, review)| {
                let codes: Vec<&str> = match &review.reform {
                    Some(reform) => reform.units.iter().map(|u| u.code.as_str()).collect(),
                    None => vec![review.scope.as_str()],
                };
                codes.iter().filter_map(|c| self.units.get(c)).collect()
            })
            .collect();
        let concerns = |unit: UnitId| {
            sides.iter().zip(&roots).any(|((geo, _), roots)| {
                let unit_known = (unit as usize) < geo.units.len();
                roots.iter().any(|&r| r == unit || (unit_known && geo.within(unit, r)))
            })
        };
        let mut found: Vec<(i64, uuid::Uuid, EventType, u32)> = Vec::new();
        let mut add = |ev: u32, ty: EventType| {
            let meta = &self.metas[ev as usize];
            found.push((meta.recorded, meta.id, ty, ev));
        };

        let year = day.year() as i16;
        let admins = [self.admin_subjects(&sides[0].0), self.admin_subjects(&sides[1].0)];
        for (sid, subject) in self.subjects.iter().enumerate() {
            let recorded = |ev: u32| between.holds(self.metas[ev as usize].recorded);
            let touched = subject.recs.iter().any(|r| between.holds(r.recorded))
                || subject.retractions.iter().any(|&(ev, _)| recorded(ev));
            if !touched {
                continue;
            }
            // What the subject adds to the tallies on one side: nothing, or its measures where it is
            // counted (a subject that is placed but holds no measure adds nothing anywhere).
            let standing = |side: usize, known_at: Option<i64>| {
                let geo: &GeoAt<'_> = &sides[side].0;
                let at = self.subject_at(subject, day.0, year, known_at);
                if at.measures.iter().all(|&bits| bits == 0) && !at.skill {
                    return None;
                }
                let (location, by_default) = locate(geo, admins[side].get(&(sid as u32)).copied(), &at);
                let location = location.filter(|&unit| roots[side].iter().any(|&r| geo.within(unit, r)));
                // The group counts only for a recognised learning citizen.
                let group = if at.measures[LC] & (1 << RECOGNISED) != 0 { at.group } else { NO_GROUP };
                location.map(|unit| (unit, by_default, at.measures, at.skill, group))
            };
            if standing(0, Some(between.from)) == standing(1, between.to) {
                continue;
            }
            for r in subject.recs.iter().filter(|r| between.holds(r.recorded)) {
                add(r.ev, event_type(r.kind));
            }
            for &(ev, _) in subject.retractions.iter().filter(|&&(ev, _)| recorded(ev)) {
                add(ev, EventType::EventRetracted);
            }
        }

        // Reference events: listed when recorded in between, or when a retraction recorded in between names them.
        let mut reference = |ev: u32, ty: EventType| {
            if between.holds(self.metas[ev as usize].recorded) {
                add(ev, ty);
            }
            let id = self.metas[ev as usize].id;
            for &r in self.retractors.get(&id).into_iter().flatten() {
                if between.holds(self.metas[r as usize].recorded) {
                    add(r, EventType::EventRetracted);
                }
            }
        };
        for (&(unit, _), list) in &self.baselines {
            if concerns(unit) {
                for s in list.iter().filter(|s| s.day <= day) {
                    reference(s.ev, EventType::BaselineRecorded);
                }
            }
        }
        for t in self.targets.iter().filter(|t| t.day <= day && concerns(t.value.scope)) {
            reference(t.ev, EventType::TargetSet);
        }
        for (unit, history) in self.geo.iter().enumerate() {
            if concerns(unit as UnitId) {
                for r in history.recs.iter().filter(|r| r.day <= day) {
                    reference(r.ev, geo_event_type(&r.change));
                }
            }
        }

        found.sort_unstable_by_key(|&(recorded, id, ..)| (recorded, id));
        found.dedup_by_key(|&mut (_, id, ..)| id);
        let mut wanted: Vec<u32> = found.iter().map(|&(.., ev)| self.metas[ev as usize].subject).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut names: HashMap<u32, &str> = HashMap::with_capacity(wanted.len());
        for (name, &sid) in &self.subject_ids {
            if wanted.binary_search(&sid).is_ok() {
                names.insert(sid, name);
            }
        }
        found
            .into_iter()
            .map(|(recorded, id, ty, ev)| {
                let meta = &self.metas[ev as usize];
                ChangedBy {
                    id,
                    event_type: ty.stem().to_owned(),
                    source: match meta.source {
                        NO_SOURCE => String::new(),
                        s => self.sources.codes[usize::from(s)].to_string(),
                    },
                    subject: names.get(&meta.subject).copied().unwrap_or_default().to_owned(),
                    recordedtime: time::format_instant(recorded),
                }
            })
            .collect()
    }
}

/// The type of the event a subject record was folded from.
fn event_type(kind: Kind) -> EventType {
    match kind {
        Kind::Registered => EventType::RegistrationSubmitted,
        Kind::Withdrawn => EventType::RegistrationWithdrawn,
        Kind::Declared => EventType::DeclarationSubmitted,
        Kind::Evidenced => EventType::EvidenceUploaded,
        Kind::Granted => EventType::RecognitionGranted,
        Kind::Revoked => EventType::RecognitionRevoked,
        Kind::Skill => EventType::SkillCertified,
        Kind::Relocated => EventType::SubjectRelocated,
    }
}

fn geo_event_type(change: &Change) -> EventType {
    match change {
        Change::Established { .. } => EventType::AdminUnitEstablished,
        Change::Reparented { .. } => EventType::AdminUnitReparented,
        Change::Renamed { .. } => EventType::AdminUnitRenamed,
        Change::Dissolved { .. } => EventType::AdminUnitDissolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{Level, Metric, SubjectKind, Title};
    use crate::diff::Count;
    use crate::event::{
        AdminUnitEstablished, BaselineRecorded, Decision, Event, EventData, EventRetracted, RecognitionGranted,
        RegistrationSubmitted,
    };

    /// Recorded before the first knowledge time.
    const EARLY: &str = "2025-03-01T00:00:00Z";
    /// The first knowledge time, as at a meeting.
    const MEETING: &str = "2026-01-15T00:00:00Z";
    /// Recorded after the meeting.
    const LATE: &str = "2026-02-01T00:00:00Z";

    fn instant(text: &str) -> i64 {
        time::parse_instant(text).unwrap()
    }

    fn event(n: u128, source: &str, subject: &str, recorded: &str, data: EventData) -> Event {
        event_at(n, source, "2025-02-01T09:00:00+07:00", subject, recorded, data)
    }

    fn event_at(n: u128, source: &str, time: &str, subject: &str, recorded: &str, data: EventData) -> Event {
        let mut e = Event::new(uuid::Uuid::from_u128(n), source, time, subject, data).unwrap();
        e.recordedtime = Some(instant(recorded));
        e
    }

    fn unit(n: u128, code: &str, level: Level, parent: Option<&str>) -> Event {
        let data = EventData::AdminUnitEstablished(AdminUnitEstablished {
            code: code.into(),
            level,
            name: format!("Đơn vị {code}"),
            parent: parent.map(Into::into),
            coordinates: None,
        });
        event(n, "/geo", code, EARLY, data)
    }

    fn registration(n: u128, subject: &str, commune: &str, recorded: &str) -> Event {
        let data = EventData::RegistrationSubmitted(RegistrationSubmitted {
            subject_kind: SubjectKind::Citizen,
            commune: commune.into(),
            title: Title::LearningCitizen,
            cycle_year: 2025,
            subject_group: None,
        });
        event(n, "/xa", subject, recorded, data)
    }

    /// Hà Nội (01) with communes 00001 and 00002, Huế (46) with 19999; four citizens registered in
    /// 2025 before the meeting. After it: cit-1 is recognised, cit-2's registration is retracted, a
    /// citizen registers in Huế (outside the question), 00001 gets a baseline, and cit-3 and a new
    /// citizen register for 2026 (nothing on 2025-12-31 changes).
    fn events() -> Vec<Event> {
        let mut events = vec![
            unit(1, "01", Level::Province, None),
            unit(2, "00001", Level::Commune, Some("01")),
            unit(3, "00002", Level::Commune, Some("01")),
            unit(4, "46", Level::Province, None),
            unit(5, "19999", Level::Commune, Some("46")),
            registration(10, "cit-1", "00001", EARLY),
            registration(11, "cit-2", "00002", EARLY),
            registration(12, "cit-3", "00002", EARLY),
            registration(13, "cit-4", "00001", EARLY),
        ];
        let decision =
            Decision { number: "7/QĐ".into(), issuer: "UBND-01".into(), date: Day::parse("2025-11-01").unwrap() };
        let grant = RecognitionGranted {
            title: Title::LearningCitizen,
            cycle_year: 2025,
            level: None,
            decision,
            valid_from: Day::parse("2025-11-01").unwrap(),
            valid_until: Day::parse("2026-12-31").unwrap(),
        };
        events.push(event(20, "/xa", "cit-1", LATE, EventData::RecognitionGranted(grant)));
        let retract = EventRetracted { event_id: uuid::Uuid::from_u128(11), reason: "nhập nhầm".into() };
        events.push(event(21, "/xa-2", "cit-2", LATE, EventData::EventRetracted(retract)));
        events.push(registration(22, "cit-9", "19999", LATE));
        let baseline = BaselineRecorded { unit: "00001".into(), metric: Metric::Adults, value: 40 };
        events.push(event(23, "/thong-ke", "00001", LATE, EventData::BaselineRecorded(baseline)));
        let next_cycle = EventData::RegistrationSubmitted(RegistrationSubmitted {
            subject_kind: SubjectKind::Citizen,
            commune: "00002".into(),
            title: Title::LearningCitizen,
            cycle_year: 2026,
            subject_group: None,
        });
        events.push(event_at(24, "/xa", "2026-01-20T09:00:00+07:00", "cit-3", LATE, next_cycle.clone()));
        // A first registration, for 2026: the subject is placed, but counts nothing on 2025-12-31.
        events.push(event_at(25, "/xa", "2026-01-20T09:00:00+07:00", "cit-8", LATE, next_cycle));
        events
    }

    fn engine_of(events: &[Event]) -> Engine {
        let mut engine = Engine::new();
        for e in events {
            engine.apply(e);
        }
        engine
    }

    fn query() -> Query {
        Query {
            scope: "01".into(),
            as_of: Day::parse("2025-12-31").unwrap(),
            known_at: Some(instant(MEETING)),
            milestone: None,
        }
    }

    type Figure = (String, Option<Title>, Count, Option<u64>, Option<u64>);

    fn figures(diff: &ReviewDiff) -> Vec<Figure> {
        diff.figures.iter().map(|f| (f.unit.clone(), f.title, f.count, f.before, f.after)).collect()
    }

    #[test]
    fn lists_the_figures_that_changed_and_the_events_that_changed_them() {
        let diff = engine_of(&events()).diff(&query(), None).unwrap();
        let lc = Some(Title::LearningCitizen);
        assert_eq!(
            figures(&diff),
            vec![
                ("01".into(), lc, Count::Registered, Some(4), Some(3)),
                ("01".into(), lc, Count::Recognised, Some(0), Some(1)),
                // Rule 7: the city's denominator is the sum of its communes' that have one.
                ("01".into(), None, Count::Baseline, None, Some(40)),
                ("00001".into(), lc, Count::Recognised, Some(0), Some(1)),
                ("00001".into(), None, Count::Baseline, None, Some(40)),
                ("00002".into(), lc, Count::Registered, Some(2), Some(1)),
            ]
        );
        let listed: Vec<(u128, &str, &str, &str)> = diff
            .events
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.id.as_u128(), e.event_type.as_str(), e.source.as_str(), e.subject.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (20, "recognition.granted", "/xa", "cit-1"),
                (21, "event.retracted", "/xa-2", "cit-2"),
                (23, "baseline.recorded", "/thong-ke", "00001"),
            ]
        );
        assert!(diff.events.as_ref().unwrap().iter().all(|e| e.recordedtime == "2026-02-01T00:00:00Z"));
        assert_eq!((diff.before.events, diff.after.events), (9, 15));
        assert_eq!(diff.before.known_at.as_deref(), Some("2026-01-15T00:00:00Z"));
    }

    #[test]
    fn the_diff_does_not_depend_on_the_order_events_arrived_in() {
        let events = events();
        let forward = engine_of(&events).diff(&query(), None).unwrap();
        let mut reversed = events.clone();
        reversed.reverse();
        assert_eq!(engine_of(&reversed).diff(&query(), None).unwrap(), forward);
    }

    #[test]
    fn nothing_changed_between_two_times_without_records_in_between() {
        let engine = engine_of(&events());
        let diff = engine.diff(&query(), Some(instant("2026-01-20T00:00:00Z"))).unwrap();
        assert!(diff.is_empty() && diff.events == Some(Vec::new()), "{diff:?}");
        // The second time before the first: the events in between are none, the figures still compared.
        let back = engine.diff(&Query { known_at: Some(instant(LATE)), ..query() }, Some(instant(MEETING))).unwrap();
        assert_eq!(back.events, Some(Vec::new()));
        assert_eq!(back.figures.len(), 6);
    }

    #[test]
    fn a_known_at_before_every_record_is_the_reviews_error() {
        let engine = engine_of(&events());
        let early = Query { known_at: Some(instant("2020-01-01T00:00:00Z")), ..query() };
        assert!(matches!(engine.diff(&early, None), Err(QueryError::NothingRecordedBy { .. })));
    }

    /// The read models' way to the same listing: an engine of the reference events (with the
    /// retractions whose subject may be a unit, which are reference data too), the subjects' histories
    /// as a ledger stores them, and only those recorded after the first time loaded into a copy of it.
    #[test]
    fn the_reference_engine_with_the_histories_recorded_since_lists_the_same_events() {
        use crate::codes::may_be_unit_code;
        use crate::engine::Ledger;
        let mut events = events();
        // Commune 00002 registered as a learning commune before the meeting, the registration
        // retracted after it: a retraction of a subject that is a unit.
        let commune = EventData::RegistrationSubmitted(RegistrationSubmitted {
            subject_kind: SubjectKind::Commune,
            commune: "00002".into(),
            title: Title::LearningCommune,
            cycle_year: 2025,
            subject_group: None,
        });
        events.push(event(30, "/huyen", "00002", EARLY, commune));
        let retract = EventRetracted { event_id: uuid::Uuid::from_u128(30), reason: "trùng".into() };
        events.push(event(31, "/huyen-2", "00002", LATE, EventData::EventRetracted(retract)));
        let full = engine_of(&events);

        let mut reference = Engine::new();
        for e in &events {
            let retraction = matches!(e.data, EventData::EventRetracted(_));
            if e.event_type().is_reference() || (retraction && may_be_unit_code(&e.subject)) {
                reference.apply(e);
            }
        }
        let mut ledger = Ledger::new();
        let subject_events: Vec<&Event> = events.iter().filter(|e| !e.event_type().is_reference()).collect();
        ledger.fold(&subject_events);
        let mut subjects: Vec<&str> = subject_events.iter().map(|e| e.subject.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let stored: Vec<(&str, Vec<u8>, i64)> =
            subjects.iter().map(|&s| (s, ledger.history(s), ledger.last_recorded(s).unwrap())).collect();

        for vs in [None, Some(instant("2026-03-01T00:00:00Z")), Some(instant("2026-01-20T00:00:00Z"))] {
            let want = full.diff(&query(), vs).unwrap();
            let before = full.review(&query()).unwrap();
            let after = full.review(&ReviewDiff::later(&query(), &before, vs)).unwrap();
            let since = stored.iter().filter(|(_, _, last)| *last > instant(MEETING));
            let copy = reference.with_histories(since.map(|(s, h, _)| (*s, &h[..]))).unwrap();
            assert_eq!(copy.diff_reviews(&query(), vs, &before, &after), want, "{vs:?}");
            if vs.is_none() {
                let listed: Vec<(u128, &str)> =
                    want.events.iter().flatten().map(|e| (e.id.as_u128(), e.source.as_str())).collect();
                assert_eq!(listed, [(20, "/xa"), (21, "/xa-2"), (23, "/thong-ke"), (31, "/huyen-2")]);
                // Without the histories, the subjects' events are missing.
                let bare = reference.diff_reviews(&query(), vs, &before, &after);
                assert_eq!(bare.events.unwrap().len(), 1, "the baseline only");
            }
        }
        // The subjects recorded only before the meeting were not needed.
        assert!(stored.iter().any(|(_, _, last)| *last <= instant(MEETING)));
    }
}

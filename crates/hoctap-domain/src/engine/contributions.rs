//! A subject's counts as a step function of valid time: the stretches of days during which it counts
//! for one measure of one title at one place. This is what a read model stores: a new event for a
//! subject replaces its old stretches with new ones, and the difference is what changes in the counts.

use super::{Engine, Kind};
use crate::codes::{SubjectGroup, TITLES, Title};
use crate::time::Day;
use serde::Serialize;

/// What a stretch counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Registered(Title),
    Declared(Title),
    Evidenced(Title),
    Recognised(Title),
    /// A citizen holding a certified digital skill.
    DigitalSkill,
    /// A recognised learning citizen holding a digital skill.
    RecognisedWithSkill,
    /// A recognised learning citizen of one group.
    RecognisedInGroup(SubjectGroup),
}

/// Where a stretch counts: the commune code the subject is located by (successors and ancestors are
/// applied for the date asked, from the geography), or the administrative unit that is the subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Named(String),
    Own(String),
}

/// The subject counts for `measure` at `place` on every day in `from..until`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Contribution {
    pub place: Place,
    pub measure: Measure,
    pub from: Day,
    /// Exclusive; `Day::MAX` when open-ended.
    pub until: Day,
}

impl Engine {
    /// The transaction times at which what is known of `subject` changed: the `recordedtime` of each
    /// of its events and of every retraction naming one of them (directly or down a chain), sorted and
    /// distinct. Its contributions as known at K change only at these times.
    pub fn known_times(&self, subject: &str) -> Vec<i64> {
        let Some(&sid) = self.subject_ids.get(subject) else { return Vec::new() };
        let mut times = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &self.subjects[sid as usize].recs {
            times.push(r.recorded);
            if r.retractable {
                self.push_retraction_times(self.metas[r.ev as usize].id, &mut seen, &mut times);
            }
        }
        times.sort_unstable();
        times.dedup();
        times
    }

    /// The `recordedtime` of every known retraction naming event `id`, directly or down a chain
    /// (the event itself may not be known yet).
    pub fn retraction_times(&self, id: &uuid::Uuid) -> Vec<i64> {
        let mut times = Vec::new();
        self.push_retraction_times(*id, &mut std::collections::HashSet::new(), &mut times);
        times
    }

    fn push_retraction_times(&self, id: uuid::Uuid, seen: &mut std::collections::HashSet<u32>, times: &mut Vec<i64>) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            for &r in self.retractors.get(&id).into_iter().flatten() {
                if seen.insert(r) {
                    let meta = &self.metas[r as usize];
                    times.push(meta.recorded);
                    stack.push(meta.id);
                }
            }
        }
    }

    /// Every stretch of `subject` as known at `known_at`, sorted. `is_unit` says whether the subject is an
    /// administrative unit (its id is the code of an established unit); it is then its own place.
    ///
    /// Evaluates the subject at each day where something about it can change (an event's day, the
    /// first and the day after the last day of a validity window, an effective date, each 1 January,
    /// when the cycle of D moves on) and joins equal neighbours.
    pub fn contributions(&self, subject: &str, is_unit: bool, known_at: Option<i64>) -> Vec<Contribution> {
        let Some(&sid) = self.subject_ids.get(subject) else { return Vec::new() };
        let s = &self.subjects[sid as usize];
        let mut points: Vec<i32> = Vec::new();
        for r in s.recs.iter().filter(|r| self.rec_alive(r, known_at)) {
            points.push(r.day);
            match r.kind {
                Kind::Granted => points.extend([r.a, r.b.saturating_add(1)]),
                Kind::Revoked => points.push(r.a),
                _ => {}
            }
        }
        let (Some(&first), Some(&last)) = (points.iter().min(), points.iter().max()) else { return Vec::new() };
        let (first_year, last_year) = (Day(first).year(), Day(last).year());
        points.extend((first_year..=last_year + 1).filter_map(|y| Day::from_ymd(y, 1, 1)).map(|d| d.0));
        points.sort_unstable();
        points.dedup();

        let mut open: Vec<(Place, Measure, Day)> = Vec::new();
        let mut done = Vec::new();
        for &p in &points {
            let day = Day(p);
            let at = self.subject_at(s, p, day.year() as i16, known_at);
            let place = at.code.map(|c| {
                let code = self.units.codes[c as usize].to_string();
                if is_unit { Place::Own(subject.to_owned()) } else { Place::Named(code) }
            });
            let mut now: Vec<(Place, Measure)> = Vec::new();
            if let Some(place) = place.or_else(|| is_unit.then(|| Place::Own(subject.to_owned()))) {
                for (t, &bits) in at.measures.iter().enumerate().take(TITLES) {
                    let title = Title::ALL[t];
                    let kinds = [
                        Measure::Registered(title),
                        Measure::Declared(title),
                        Measure::Evidenced(title),
                        Measure::Recognised(title),
                    ];
                    for (m, measure) in kinds.into_iter().enumerate() {
                        if bits >> m & 1 == 1 {
                            now.push((place.clone(), measure));
                        }
                    }
                }
                if at.skill {
                    now.push((place.clone(), Measure::DigitalSkill));
                }
                if at.measures[Title::LearningCitizen.index()] >> 3 & 1 == 1 {
                    if at.skill {
                        now.push((place.clone(), Measure::RecognisedWithSkill));
                    }
                    if let Some(g) = usize::try_from(at.group).ok().and_then(|g| SubjectGroup::ALL.get(g)) {
                        now.push((place.clone(), Measure::RecognisedInGroup(*g)));
                    }
                }
            }
            // Close what stopped, open what started.
            open.retain(|(pl, m, from)| {
                let still = now.iter().any(|(p2, m2)| p2 == pl && m2 == m);
                if !still {
                    done.push(Contribution { place: pl.clone(), measure: *m, from: *from, until: day });
                }
                still
            });
            for (pl, m) in now {
                if !open.iter().any(|(p2, m2, _)| *p2 == pl && *m2 == m) {
                    open.push((pl, m, day));
                }
            }
        }
        done.extend(open.into_iter().map(|(place, measure, from)| Contribution {
            place,
            measure,
            from,
            until: Day::MAX,
        }));
        done.sort();
        done
    }

    /// The subjects folded so far, by id (for tools that walk every subject's contributions).
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.subject_ids.keys().map(|k| &**k)
    }
}

/// Where places count on one date, as known at one time: the geography in force, for read models that
/// store contributions by place and roll them up when asked.
#[derive(Debug)]
pub struct Locator<'a> {
    engine: &'a Engine,
    geo: crate::geo::GeoAt<'a>,
}

impl Engine {
    /// The geography in force on `day` as known at `known_at`, for placing contributions.
    pub fn locator(&self, day: Day, known_at: Option<i64>) -> Locator<'_> {
        Locator { engine: self, geo: self.geo_at(day, known_at) }
    }
}

impl Locator<'_> {
    /// The unit in force where `place` counts (rule 4: successors for a named commune; a unit that is
    /// its own subject counts only while in force), then its ancestors, nearest first. Empty: nowhere.
    pub fn chain(&self, place: &Place) -> Vec<&str> {
        let units = &self.engine.units;
        let unit = match place {
            Place::Named(code) => units.get(code).and_then(|u| self.geo.resolved[u as usize]),
            Place::Own(code) => units.get(code).filter(|u| self.geo.units[*u as usize].in_force),
        };
        unit.map(|u| self.geo.ancestors(u).map(|a| &*units.codes[a as usize]).collect()).unwrap_or_default()
    }

    /// Whether `code` is an administrative unit known at the locator's time (so a subject with that id
    /// is the unit itself).
    pub fn is_unit(&self, code: &str) -> bool {
        self.engine.units.get(code).is_some_and(|u| self.geo.units[u as usize].level.is_some())
    }
}

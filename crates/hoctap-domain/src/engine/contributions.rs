//! A subject's counts as a step function of valid time: the stretches of days during which it counts
//! for one measure of one title at one place. This is what a read model stores: a new event for a
//! subject replaces its old stretches with new ones, and the difference is what changes in the counts.

use super::query::Sweep;
use super::{Engine, Kind, Rec};
use crate::codes::{SubjectGroup, TITLES, Title};
use crate::geo::UnitId;
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

/// Where a stretch counts. Successors and ancestors are applied for the date asked, from the
/// geography, so that a reform or a late establishment never rewrites stored stretches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The commune code the subject is located by.
    Named(String),
    /// A subject whose id has the shape of an administrative code. If `code` is an established unit
    /// as known at the time asked, the subject is that unit and counts in itself while it is in force
    /// (rule 6); otherwise it counts like `Named(commune)` (nowhere without a commune). Deciding this
    /// when a date is asked keeps a subject's stretches independent of the geography.
    Unit { code: String, commune: Option<String> },
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
                self.push_retraction_times(sid, self.metas[r.ev as usize].id, &mut seen, &mut times);
            }
        }
        times.sort_unstable();
        times.dedup();
        times
    }

    /// The `recordedtime` of every known retraction of `subject` naming event `id`, directly or down a
    /// chain (the event itself may not be known yet).
    pub fn retraction_times(&self, subject: &str, id: &uuid::Uuid) -> Vec<i64> {
        let mut times = Vec::new();
        if let Some(&sid) = self.subject_ids.get(subject) {
            self.push_retraction_times(sid, *id, &mut std::collections::HashSet::new(), &mut times);
        }
        times
    }

    fn push_retraction_times(
        &self,
        sid: u32,
        id: uuid::Uuid,
        seen: &mut std::collections::HashSet<u32>,
        times: &mut Vec<i64>,
    ) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            for &r in self.retractors.get(&id).into_iter().flatten().filter(|&&r| self.metas[r as usize].subject == sid)
            {
                if seen.insert(r) {
                    let meta = &self.metas[r as usize];
                    times.push(meta.recorded);
                    stack.push(meta.id);
                }
            }
        }
    }

    /// Every stretch of `subject` as known at `known_at`, sorted. A subject whose id has the shape of an
    /// administrative code is placed as [`Place::Unit`], whether or not that unit is established: the
    /// geography decides when a date is asked.
    ///
    /// Evaluates the subject at each day where something about it can change (an event's day, the
    /// first and the day after the last day of a validity window, an effective date, each 1 January,
    /// when the cycle of D moves on) and joins equal neighbours.
    pub fn contributions(&self, subject: &str, known_at: Option<i64>) -> Vec<Contribution> {
        let may_be_unit = crate::codes::may_be_unit_code(subject);
        let Some(&sid) = self.subject_ids.get(subject) else { return Vec::new() };
        let s = &self.subjects[sid as usize];
        let alive: Vec<&Rec> = s.recs.iter().filter(|r| self.rec_alive(r, known_at)).collect();
        let mut points: Vec<i32> = Vec::new();
        for r in &alive {
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

        // Swept with the commune as its id: the place follows from it (and from the subject's id), so
        // places are built only for the stretches returned.
        let place = |commune: Option<UnitId>| {
            let commune = commune.map(|c| self.units.codes[c as usize].to_string());
            if may_be_unit {
                Some(Place::Unit { code: subject.to_owned(), commune })
            } else {
                commune.map(Place::Named)
            }
        };
        let mut open: Vec<(Option<UnitId>, Measure, Day)> = Vec::new();
        let mut now: Vec<(Option<UnitId>, Measure)> = Vec::new();
        let mut done = Vec::new();
        let mut close = |commune: Option<UnitId>, measure: Measure, from: Day, until: Day| {
            let place = place(commune).expect("only a subject with a place counts");
            done.push(Contribution { place, measure, from, until });
        };
        let mut sweep = Sweep::new(&alive);
        for &p in &points {
            let day = Day(p);
            let year = day.year() as i16;
            let at = sweep.at(p, year);
            now.clear();
            if may_be_unit || at.code.is_some() {
                let commune = at.code;
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
                            now.push((commune, measure));
                        }
                    }
                }
                if at.skill {
                    now.push((commune, Measure::DigitalSkill));
                }
                if at.measures[Title::LearningCitizen.index()] >> 3 & 1 == 1 {
                    if at.skill {
                        now.push((commune, Measure::RecognisedWithSkill));
                    }
                    if let Some(g) = usize::try_from(at.group).ok().and_then(|g| SubjectGroup::ALL.get(g)) {
                        now.push((commune, Measure::RecognisedInGroup(*g)));
                    }
                }
            }
            // Close what stopped, open what started.
            open.retain(|&(c, m, from)| {
                let still = now.contains(&(c, m));
                if !still {
                    close(c, m, from, day);
                }
                still
            });
            for &(c, m) in &now {
                if !open.iter().any(|&(c2, m2, _)| c2 == c && m2 == m) {
                    open.push((c, m, day));
                }
            }
        }
        for (c, m, from) in open {
            close(c, m, from, Day::MAX);
        }
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
    /// Where `place` counts in `geo` (rules 4 and 6): the unit in force, and whether it is the subject
    /// itself (an administrative unit counted in itself). `None`: nowhere.
    pub(crate) fn place_unit(&self, geo: &crate::geo::GeoAt<'_>, place: &Place) -> Option<(crate::geo::UnitId, bool)> {
        let named = |code: &str| self.units.get(code).and_then(|u| geo.resolved[u as usize]).map(|u| (u, false));
        match place {
            Place::Named(code) => named(code),
            Place::Unit { code, commune } => {
                match self.units.get(code).filter(|u| geo.units[*u as usize].level.is_some()) {
                    Some(unit) => geo.units[unit as usize].in_force.then_some((unit, true)),
                    None => commune.as_deref().and_then(named),
                }
            }
        }
    }

    /// Whether `place` counts where `place_unit` puts it only by a divided unit's default successor.
    pub(crate) fn placed_by_default(&self, geo: &crate::geo::GeoAt<'_>, place: &Place) -> bool {
        let named = |code: &str| self.units.get(code).is_some_and(|u| geo.by_default[u as usize]);
        match place {
            Place::Named(code) => named(code),
            Place::Unit { code, commune } => {
                match self.units.get(code).filter(|u| geo.units[*u as usize].level.is_some()) {
                    Some(_) => false,
                    None => commune.as_deref().is_some_and(named),
                }
            }
        }
    }

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
        let unit = self.engine.place_unit(&self.geo, place).map(|(u, _)| u);
        unit.map(|u| self.geo.ancestors(u).map(|a| &*units.codes[a as usize]).collect()).unwrap_or_default()
    }

    /// Whether `code` is an administrative unit known at the locator's time (so a subject with that id
    /// is the unit itself).
    pub fn is_unit(&self, code: &str) -> bool {
        self.engine.units.get(code).is_some_and(|u| self.geo.units[u as usize].level.is_some())
    }
}

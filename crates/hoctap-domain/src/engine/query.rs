//! Answering questions: a review of one scope at valid date D as known at transaction time K
//! (rules 4–10), computed from the folded state without reading any log.

use super::{Engine, Kind, Measure, NO_GROUP, Place, Rec, Stamped, Subject, TargetRec};
use crate::codes::{GROUPS, Level, Metric, TITLES, Title};
use crate::geo::{GeoAt, UnitAt, UnitId};
use crate::indicator::Indicator;
use crate::review::{Geography, Review, Status, TargetReview, TitleCounts, UnitReview};
use crate::time::{self, Day};
use foldhash::{HashMap, HashMapExt};

/// A review request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The unit the review is about (usually a province-level city).
    pub scope: String,
    /// Valid date D.
    pub as_of: Day,
    /// Transaction time K, UTC microseconds; `None` = everything known now.
    pub known_at: Option<i64>,
    /// Which milestone's targets to compare; `None` = the smallest milestone ≥ the year of D.
    pub milestone: Option<i32>,
}

/// Why a review cannot be given. Both are the caller's mistake (HTTP 404 / CLI exit 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("scope `{0}` is not a known administrative unit")]
    UnknownScope(String),
    #[error("scope `{code}` is not in force on {as_of} (not yet established, or dissolved by then)")]
    ScopeNotInForce { code: String, as_of: Day },
    #[error(
        "nothing had been recorded by known-at {known_at}: the first event was recorded at {first}; ask for a known-at at or after it"
    )]
    NothingRecordedBy { known_at: String, first: String },
    #[error("nothing has been recorded yet: ingest events first")]
    NothingRecorded,
}

/// The events a review counts: those recorded by its known-at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Events recorded at or before the known-at (all of them as known now).
    pub events: u64,
    /// The `recordedtime` of the newest of them, UTC microseconds; `None` when none carries one.
    pub newest: Option<i64>,
    /// The `recordedtime` of the first event ever recorded, whatever the known-at (for the error
    /// when the known-at precedes it).
    pub first: Option<i64>,
}

impl Recorded {
    /// Refuses a review that would count nothing: a known-at before the first record (say so, with
    /// the first record's time) or an empty log.
    pub fn check(&self, known_at: Option<i64>) -> Result<(), QueryError> {
        if self.events > 0 {
            return Ok(());
        }
        match (known_at, self.first) {
            (Some(k), Some(first)) => Err(QueryError::NothingRecordedBy {
                known_at: time::format_instant(k),
                first: time::format_instant(first),
            }),
            _ => Err(QueryError::NothingRecorded),
        }
    }

    /// The known-at a review states: K as asked, else the newest event counted.
    fn stated(&self, known_at: Option<i64>) -> Option<String> {
        known_at.or(self.newest).map(time::format_instant)
    }
}

const REGISTERED: usize = 0;
const DECLARED: usize = 1;
const EVIDENCED: usize = 2;
const RECOGNISED: usize = 3;
const LC: usize = 0; // Title::LearningCitizen.index()

/// Counts for one unit: per title the four measures, digital skills, and the learning-citizen splits
/// that indicators need.
#[derive(Clone, Debug, Default)]
struct Tally {
    titles: [[u64; 4]; TITLES],
    /// The part of `titles` placed only by a divided unit's default successor.
    by_default: [[u64; 4]; TITLES],
    skill: u64,
    lc_skill: u64,
    lc_group: [u64; GROUPS],
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        for (a, b) in self.titles.iter_mut().zip(&other.titles).chain(self.by_default.iter_mut().zip(&other.by_default))
        {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.skill += other.skill;
        self.lc_skill += other.lc_skill;
        for (x, y) in self.lc_group.iter_mut().zip(&other.lc_group) {
            *x += y;
        }
    }
}

/// What one subject contributes at D.
pub(super) struct SubjectAt {
    /// Per title, one bit per measure (REGISTERED…RECOGNISED).
    pub(super) measures: [u8; TITLES],
    pub(super) skill: bool,
    pub(super) group: i32,
    /// The code it is located by (before successors).
    pub(super) code: Option<UnitId>,
}

impl Engine {
    /// The review of `query.scope` at `query.as_of` as known at `query.known_at` (rules 4–10).
    pub fn review(&self, query: &Query) -> Result<Review, QueryError> {
        let day = query.as_of;
        let known_at = query.known_at;
        let recorded = self.recorded(known_at);
        recorded.check(known_at)?;
        let geo = self.geo_at(day, known_at);
        let scope = self.units.get(&query.scope).ok_or_else(|| QueryError::UnknownScope(query.scope.clone()))?;
        if !geo.units[scope as usize].in_force {
            return Err(QueryError::ScopeNotInForce { code: query.scope.clone(), as_of: day });
        }
        let (tallies, holds) = self.tally(&geo, day, known_at);
        Ok(self.assemble(query, &geo, scope, (&tallies, &holds), recorded))
    }

    /// The same review from counts per place, as a read model stores them (see [`Engine::contributions`]):
    /// this engine then only needs the reference events (geography, baselines, targets) to place the
    /// counts on D, roll them up and check the targets.
    /// `recorded` is what the read models say of the events they counted by `query.known_at`.
    pub fn review_from_counts(
        &self,
        query: &Query,
        counts: &PlaceCounts,
        recorded: Recorded,
    ) -> Result<Review, QueryError> {
        recorded.check(query.known_at)?;
        let geo = self.geo_at(query.as_of, query.known_at);
        let scope = self.units.get(&query.scope).ok_or_else(|| QueryError::UnknownScope(query.scope.clone()))?;
        if !geo.units[scope as usize].in_force {
            return Err(QueryError::ScopeNotInForce { code: query.scope.clone(), as_of: query.as_of });
        }
        let n = geo.units.len();
        let mut own = vec![Tally::default(); n];
        let mut holds = vec![0u8; n];
        for ((place, measure), &count) in counts {
            let Some((unit, own_place)) = self.place_unit(&geo, place) else { continue };
            let by_default = self.placed_by_default(&geo, place);
            let t = &mut own[unit as usize];
            let mut title_measure = |title: Title, m: usize| {
                t.titles[title.index()][m] += count;
                if by_default {
                    t.by_default[title.index()][m] += count;
                }
            };
            match *measure {
                Measure::Registered(title) => title_measure(title, REGISTERED),
                Measure::Declared(title) => title_measure(title, DECLARED),
                Measure::Evidenced(title) => title_measure(title, EVIDENCED),
                Measure::Recognised(title) => {
                    title_measure(title, RECOGNISED);
                    if own_place && count > 0 {
                        holds[unit as usize] |= 1 << title.index();
                    }
                }
                Measure::DigitalSkill => t.skill += count,
                Measure::RecognisedWithSkill => t.lc_skill += count,
                Measure::RecognisedInGroup(g) => t.lc_group[g.index()] += count,
            }
        }
        let tallies = roll_up(&geo, &own);
        Ok(self.assemble(query, &geo, scope, (&tallies, &holds), recorded))
    }

    /// The counts of `title` in `query.scope` on `query.as_of` as known at `query.known_at`, from counts
    /// per place: exactly `units[0].titles[title]` of [`Engine::review_from_counts`] (zero when not
    /// listed), without the rest of the review, for time series.
    pub fn title_counts_from(
        &self,
        query: &Query,
        title: Title,
        counts: &PlaceCounts,
    ) -> Result<TitleCounts, QueryError> {
        let geo = self.geo_at(query.as_of, query.known_at);
        let scope = self.units.get(&query.scope).ok_or_else(|| QueryError::UnknownScope(query.scope.clone()))?;
        if !geo.units[scope as usize].in_force {
            return Err(QueryError::ScopeNotInForce { code: query.scope.clone(), as_of: query.as_of });
        }
        let mut out = TitleCounts::default();
        for ((place, measure), &count) in counts {
            let field = match *measure {
                Measure::Registered(t) if t == title => &mut out.registered,
                Measure::Declared(t) if t == title => &mut out.declared,
                Measure::Evidenced(t) if t == title => &mut out.evidenced,
                Measure::Recognised(t) if t == title => &mut out.recognised,
                _ => continue,
            };
            if self.place_unit(&geo, place).is_some_and(|(unit, _)| geo.within(unit, scope)) {
                *field += count;
            }
        }
        Ok(out)
    }

    /// The counts of `title` in `unit` on each of `dates`, as known at `known_at` (None: now): for each
    /// date exactly `units[0].titles[title]` of [`Engine::review`] (zero when the title is not listed),
    /// the points the read models give for the same question (`hoctap_store::series`).
    ///
    /// A date on which `unit` is not in force has no point; when it is in force on none of `dates`,
    /// [`QueryError::ScopeNotInForce`] names the first date. An unknown code is
    /// [`QueryError::UnknownScope`]; a `known_at` before every record is the review's error saying so.
    /// No dates, no points.
    pub fn series(
        &self,
        unit: &str,
        title: Title,
        dates: &[Day],
        known_at: Option<i64>,
    ) -> Result<Vec<(Day, TitleCounts)>, QueryError> {
        self.series_with(unit, title, dates, known_at, |_| {})
    }

    /// [`Engine::series`], calling `done` after each date (for a progress bar).
    pub fn series_with(
        &self,
        unit: &str,
        title: Title,
        dates: &[Day],
        known_at: Option<i64>,
        mut done: impl FnMut(Day),
    ) -> Result<Vec<(Day, TitleCounts)>, QueryError> {
        let Some(&first) = dates.first() else {
            return Ok(Vec::new());
        };
        let mut points = Vec::with_capacity(dates.len());
        for &as_of in dates {
            let query = Query { scope: unit.to_owned(), as_of, known_at, milestone: None };
            match self.review(&query) {
                Ok(review) => {
                    let counts = review.units.first().and_then(|u| u.titles.get(&title)).copied().unwrap_or_default();
                    points.push((as_of, counts));
                }
                Err(QueryError::ScopeNotInForce { .. }) => {}
                Err(e) => return Err(e),
            }
            done(as_of);
        }
        if points.is_empty() {
            return Err(QueryError::ScopeNotInForce { code: unit.to_owned(), as_of: first });
        }
        Ok(points)
    }

    /// Everything of a review but the counting: units, denominators, targets, the geography used.
    fn assemble(
        &self,
        query: &Query,
        geo: &GeoAt<'_>,
        scope: UnitId,
        (tallies, holds): (&[Tally], &[u8]),
        recorded: Recorded,
    ) -> Review {
        let (day, known_at) = (query.as_of, query.known_at);
        let mut denominators = HashMap::new();

        // The scope's districts in force at D; where it has none, its communes.
        let children = &geo.children[scope as usize];
        let of_level = |level| {
            children.iter().copied().filter(|c| geo.units[*c as usize].level == Some(level)).collect::<Vec<_>>()
        };
        let mut child_units = of_level(Level::District);
        if child_units.is_empty() {
            child_units = of_level(Level::Commune);
        }
        child_units.sort_by(|a, b| self.units.codes[*a as usize].cmp(&self.units.codes[*b as usize]));
        let units = std::iter::once(scope)
            .chain(child_units)
            .map(|u| {
                let at = &geo.units[u as usize];
                let tally = &tallies[u as usize];
                let counts = |of: &[[u64; 4]; TITLES]| {
                    Title::ALL
                        .iter()
                        .map(|t| {
                            let m = of[t.index()];
                            (
                                *t,
                                TitleCounts {
                                    registered: m[REGISTERED],
                                    declared: m[DECLARED],
                                    evidenced: m[EVIDENCED],
                                    recognised: m[RECOGNISED],
                                },
                            )
                        })
                        .filter(|(_, c)| !c.is_zero())
                        .collect()
                };
                let titles = counts(&tally.titles);
                let placed_by_default = counts(&tally.by_default);
                let baselines = Metric::ALL
                    .iter()
                    .filter_map(|m| self.denominator(geo, u, *m, day, known_at, &mut denominators).map(|v| (*m, v)))
                    .collect();
                UnitReview {
                    code: self.units.codes[u as usize].to_string(),
                    level: at.level.unwrap_or(Level::Commune),
                    name: at.name.to_owned(),
                    coordinates: at.coords.map(|(lat, lon)| crate::review::UnitCoordinates { lat, lon }),
                    titles,
                    placed_by_default,
                    digital_skill: tally.skill,
                    baselines,
                }
            })
            .collect();

        let (milestone, targets) = self.targets_at(scope, day, known_at, query.milestone);
        let targets = targets
            .into_iter()
            .map(|t| {
                self.check_target(t, geo, scope, (&tallies[scope as usize], holds), day, known_at, &mut denominators)
            })
            .collect();

        let mut geography = Geography { provinces: 0, districts: 0, communes: 0 };
        for (u, at) in geo.units.iter().enumerate() {
            if at.in_force && geo.within(u as UnitId, scope) {
                match at.level {
                    Some(Level::Province) => geography.provinces += 1,
                    Some(Level::District) => geography.districts += 1,
                    Some(Level::Commune) => geography.communes += 1,
                    None => {}
                }
            }
        }

        Review {
            scope: query.scope.clone(),
            as_of: day,
            approved: None,
            known_at: recorded.stated(known_at),
            events: recorded.events,
            software: None,
            generated_at: None,
            milestone,
            geography,
            units,
            targets,
        }
    }

    /// The events recorded by `known_at` (all of them when `None`), their newest `recordedtime`, and
    /// the first `recordedtime` of all. Independent of the order events were folded in.
    pub fn recorded(&self, known_at: Option<i64>) -> Recorded {
        let mut out = Recorded::default();
        for meta in &self.metas {
            // An event without `recordedtime` (folded by hand) counts as known at every time.
            let stamped = (meta.recorded != i64::MIN).then_some(meta.recorded);
            if let Some(r) = stamped {
                out.first = Some(out.first.map_or(r, |f| f.min(r)));
            }
            if known_at.is_none_or(|k| meta.recorded <= k) {
                out.events += 1;
                if let Some(r) = stamped {
                    out.newest = Some(out.newest.map_or(r, |n| n.max(r)));
                }
            }
        }
        out
    }

    /// Every unit established by `day` as known at `known_at`, by code: those in force with their parent,
    /// those dissolved by then with the unit in force that succeeds them (rule 4).
    pub fn units_on(&self, day: Day, known_at: Option<i64>) -> Vec<crate::review::ListedUnit> {
        let geo = self.geo_at(day, known_at);
        let code = |u: UnitId| self.units.codes[u as usize].to_string();
        let mut out: Vec<crate::review::ListedUnit> = geo
            .units
            .iter()
            .enumerate()
            .filter_map(|(id, at)| {
                let level = at.level?;
                let dissolved = !at.in_force && at.successor.is_some();
                (at.in_force || dissolved).then(|| crate::review::ListedUnit {
                    code: code(id as UnitId),
                    level,
                    name: at.name.to_owned(),
                    in_force: at.in_force,
                    parent: at.parent.filter(|_| at.in_force).map(code),
                    successor: if dissolved { geo.resolved[id].map(code) } else { None },
                })
            })
            .collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out
    }

    /// The geography in force at `day` as known at `known_at`.
    pub(super) fn geo_at(&self, day: Day, known_at: Option<i64>) -> GeoAt<'_> {
        let alive = |ev| self.alive(ev, known_at);
        let units: Vec<UnitAt<'_>> = (0..self.units.codes.len())
            .map(|u| match self.geo.get(u) {
                Some(history) => history.at(day, alive),
                None => crate::geo::EMPTY,
            })
            .collect();
        GeoAt::new(units)
    }

    /// Counts per unit, each unit including everything located below it.
    /// Also returns, per unit, the titles it holds as its own subject (one bit per title).
    ///
    /// Subjects are independent of each other at (D, K), so large states are split over the available
    /// cores (plain scoped threads: computation, not I/O) and the partial tallies summed.
    fn tally(&self, geo: &GeoAt<'_>, day: Day, known_at: Option<i64>) -> (Vec<Tally>, Vec<u8>) {
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(8);
        let parts = if self.subjects.len() < 65_536 { 1 } else { threads };
        self.tally_in_parts(geo, day, known_at, parts)
    }

    fn tally_in_parts(&self, geo: &GeoAt<'_>, day: Day, known_at: Option<i64>, parts: usize) -> (Vec<Tally>, Vec<u8>) {
        let n = geo.units.len();
        // A subject whose id is the code of an established unit is that unit (rule 6).
        let admin: HashMap<u32, UnitId> = (0..n)
            .filter(|&u| geo.units[u].level.is_some())
            .filter_map(|u| self.subject_ids.get(&*self.units.codes[u]).map(|&s| (s, u as UnitId)))
            .collect();
        let chunk = self.subjects.len().div_ceil(parts.max(1)).max(1);
        let parts: Vec<(Vec<Tally>, Vec<u8>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.subjects.len())
                .step_by(chunk)
                .map(|from| {
                    let to = (from + chunk).min(self.subjects.len());
                    let admin = &admin;
                    scope.spawn(move || self.tally_range(from..to, geo, admin, day, known_at))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("tally thread")).collect()
        });
        let mut own = vec![Tally::default(); n];
        let mut holds = vec![0u8; n];
        for (part, part_holds) in parts {
            for (total, t) in own.iter_mut().zip(&part) {
                total.add(t);
            }
            for (total, h) in holds.iter_mut().zip(&part_holds) {
                *total |= h;
            }
        }
        (roll_up(geo, &own), holds)
    }

    /// The tallies of the subjects in `range`, per location (not rolled up).
    fn tally_range(
        &self,
        range: std::ops::Range<usize>,
        geo: &GeoAt<'_>,
        admin: &HashMap<u32, UnitId>,
        day: Day,
        known_at: Option<i64>,
    ) -> (Vec<Tally>, Vec<u8>) {
        let n = geo.units.len();
        let mut own = vec![Tally::default(); n];
        let mut holds = vec![0u8; n];
        let year = day.year() as i16;
        for sid in range {
            let subject = &self.subjects[sid];
            let at = self.subject_at(subject, day.0, year, known_at);
            let own_unit = admin.get(&(sid as u32)).copied();
            let (location, by_default) = match own_unit {
                // An administrative unit is counted in itself while in force, never in a successor.
                Some(unit) => (Some(unit).filter(|u| geo.units[*u as usize].in_force), false),
                None => {
                    at.code.map_or((None, false), |code| (geo.resolved[code as usize], geo.by_default[code as usize]))
                }
            };
            let Some(loc) = location else { continue };
            let t = &mut own[loc as usize];
            for (title, &bits) in at.measures.iter().enumerate() {
                if bits == 0 {
                    continue;
                }
                if own_unit.is_some() && bits & (1 << RECOGNISED) != 0 {
                    holds[loc as usize] |= 1 << title;
                }
                for (m, count) in t.titles[title].iter_mut().enumerate() {
                    *count += u64::from(bits >> m & 1);
                }
                if by_default {
                    for (m, count) in t.by_default[title].iter_mut().enumerate() {
                        *count += u64::from(bits >> m & 1);
                    }
                }
            }
            if at.skill {
                t.skill += 1;
            }
            if at.measures[LC] & (1 << RECOGNISED) != 0 {
                if at.skill {
                    t.lc_skill += 1;
                }
                if at.group != NO_GROUP {
                    t.lc_group[at.group as usize] += 1;
                }
            }
        }
        (own, holds)
    }

    /// One subject's standing at D (rules 4–6).
    pub(super) fn subject_at(&self, subject: &Subject, day: i32, year: i16, known_at: Option<i64>) -> SubjectAt {
        let mut first_code = None;
        let mut code = None;
        // Per title, for the cycle of D: 0 = no registration, 1 = registered, 2 = withdrawn.
        let mut registration = [0u8; TITLES];
        let mut withdrawn_at = [i64::MIN; TITLES];
        let mut activity = [0u8; TITLES];
        let mut granted = [0u16; TITLES];
        let mut revoked = [0u16; TITLES];
        let mut group_latest = None;
        let mut group_first = None;
        let mut skill = false;
        for r in subject.recs.iter().filter(|r| self.rec_alive(r, known_at)) {
            if let Some(c) = r.commune() {
                first_code.get_or_insert(c);
                if r.day <= day {
                    code = Some(c);
                }
            }
            let t = r.title as usize;
            let this_cycle = r.cycle == year && r.day <= day;
            match r.kind {
                Kind::Registered => {
                    if t == LC {
                        group_first.get_or_insert(r.b);
                        if r.day <= day {
                            group_latest = Some(r.b);
                        }
                    }
                    // On the same instant a withdrawal wins over a registration.
                    if this_cycle && !(registration[t] == 2 && withdrawn_at[t] == r.instant) {
                        registration[t] = 1;
                    }
                }
                Kind::Withdrawn if this_cycle => {
                    registration[t] = 2;
                    withdrawn_at[t] = r.instant;
                }
                Kind::Declared if this_cycle => activity[t] |= 1 << DECLARED,
                Kind::Evidenced if this_cycle => activity[t] |= 1 << EVIDENCED,
                Kind::Granted if r.a <= day && day <= r.b => granted[t] |= cycle_bit(r),
                Kind::Revoked if r.a <= day => revoked[t] |= cycle_bit(r),
                Kind::Skill if r.day <= day => skill = true,
                _ => {}
            }
        }
        let mut measures = [0u8; TITLES];
        for t in 0..TITLES {
            let mut bits = 0;
            if registration[t] != 2 {
                bits |= activity[t];
                if registration[t] == 1 {
                    bits |= 1 << REGISTERED;
                }
            }
            if granted[t] & !revoked[t] != 0 {
                bits |= 1 << RECOGNISED;
            }
            measures[t] = bits;
        }
        SubjectAt {
            measures,
            skill,
            group: group_latest.or(group_first).unwrap_or(NO_GROUP),
            code: code.or(first_code),
        }
    }

    /// The latest recorded value of a metric for a unit at D (rule 7, first half).
    fn baseline(&self, unit: UnitId, metric: Metric, day: Day, known_at: Option<i64>) -> Option<u64> {
        let list = self.baselines.get(&(unit, metric))?;
        list.iter().rev().find(|s| s.day <= day && self.alive(s.ev, known_at)).map(|s| s.value)
    }

    /// The denominator of a metric for a unit at D: its own baseline, else the sum over its children in
    /// force that have one, recursively (rule 7). Memoised per review.
    fn denominator(
        &self,
        geo: &GeoAt<'_>,
        unit: UnitId,
        metric: Metric,
        day: Day,
        known_at: Option<i64>,
        memo: &mut HashMap<(UnitId, Metric), Option<u64>>,
    ) -> Option<u64> {
        if let Some(v) = memo.get(&(unit, metric)) {
            return *v;
        }
        let value = self.baseline(unit, metric, day, known_at).or_else(|| {
            let mut sum = None;
            for &child in &geo.children[unit as usize] {
                if let Some(v) = self.denominator(geo, child, metric, day, known_at, memo) {
                    *sum.get_or_insert(0) += v;
                }
            }
            sum
        });
        memo.insert((unit, metric), value);
        value
    }

    /// The scope's targets for one milestone: the latest `target.set` known at D per (plan, indicator,
    /// milestone), for the requested milestone or the smallest one ≥ the year of D (rule 9).
    fn targets_at(
        &self,
        scope: UnitId,
        day: Day,
        known_at: Option<i64>,
        milestone: Option<i32>,
    ) -> (Option<i32>, Vec<&TargetRec>) {
        let mut latest: HashMap<(&crate::event::Plan, &str, i32), &Stamped<TargetRec>> = HashMap::new();
        for t in &self.targets {
            if t.value.scope != scope || t.day > day || !self.alive(t.ev, known_at) {
                continue;
            }
            let key = (&t.value.plan, t.value.indicator_text.as_str(), t.value.milestone);
            let newer = latest.get(&key).is_none_or(|old| {
                super::by_time_then_id(&self.metas, (t.instant, t.ev), (old.instant, old.ev)).is_gt()
            });
            if newer {
                latest.insert(key, t);
            }
        }
        let year = day.year();
        let milestone = milestone.or_else(|| latest.keys().map(|k| k.2).filter(|m| *m >= year).min());
        let Some(milestone) = milestone else { return (None, Vec::new()) };
        let mut list: Vec<&TargetRec> =
            latest.into_values().map(|t| &t.value).filter(|t| t.milestone == milestone).collect();
        list.sort_by(|a, b| {
            (a.plan.year, &a.plan.issuer, &a.plan.number, &a.indicator_text).cmp(&(
                b.plan.year,
                &b.plan.issuer,
                &b.plan.number,
                &b.indicator_text,
            ))
        });
        (Some(milestone), list)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_target(
        &self,
        target: &TargetRec,
        geo: &GeoAt<'_>,
        scope: UnitId,
        (tally, holds): (&Tally, &[u8]),
        day: Day,
        known_at: Option<i64>,
        memo: &mut HashMap<(UnitId, Metric), Option<u64>>,
    ) -> TargetReview {
        let recognised = |t: Title| tally.titles[t.index()][RECOGNISED];
        let (numerator, denominator, counts_units) = match target.indicator {
            Indicator::Recognised { title, group, metric } => {
                let n = match group {
                    Some(g) => tally.lc_group[g.index()],
                    None => recognised(title),
                };
                (n, self.denominator(geo, scope, metric, day, known_at, memo), false)
            }
            Indicator::UnitsHolding { title, level } => {
                let units: Vec<usize> = (0..geo.units.len())
                    .filter(|&u| {
                        let at = &geo.units[u];
                        at.in_force && at.level == Some(level) && geo.within(u as UnitId, scope)
                    })
                    .collect();
                let holding = units.iter().filter(|&&u| holds[u] & (1 << title.index()) != 0).count();
                (holding as u64, Some(units.len() as u64), true)
            }
            Indicator::DigitalSkill { metric } => {
                (tally.skill, self.denominator(geo, scope, metric, day, known_at, memo), false)
            }
            Indicator::DigitalSkillOfLearningCitizens => {
                (tally.lc_skill, Some(recognised(Title::LearningCitizen)), false)
            }
        };
        let actual = denominator.filter(|d| *d > 0).map(|d| numerator as f64 * 100.0 / d as f64);
        let status = match denominator {
            Some(0) if counts_units => Status::UnitAbolished,
            None | Some(0) => Status::NoDenominator,
            // Compared without dividing, so that 29 of 100 meets a 29 % target exactly.
            Some(d) if numerator as f64 * 100.0 >= target.percent * d as f64 => Status::Met,
            Some(_) => Status::Behind,
        };
        TargetReview {
            plan: target.plan.id(),
            indicator: target.indicator_text.clone(),
            milestone: target.milestone,
            target_percent: target.percent,
            numerator,
            denominator,
            actual_percent: actual,
            gap_points: actual.map(|a| a - target.percent),
            status,
        }
    }
}

/// Each unit's tally plus those of every unit below it on D.
fn roll_up(geo: &GeoAt<'_>, own: &[Tally]) -> Vec<Tally> {
    let mut rolled = own.to_vec();
    for (u, tally) in own.iter().enumerate() {
        for ancestor in geo.ancestors(u as UnitId).skip(1) {
            rolled[ancestor as usize].add(tally);
        }
    }
    rolled
}

/// Counts per place and measure on one date, as a read model gives them.
pub type PlaceCounts = std::collections::HashMap<(Place, Measure), u64>;

fn cycle_bit(r: &Rec) -> u16 {
    1 << ((r.cycle as i32 - 2016).clamp(0, 15))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{SubjectKind, Title};
    use crate::event::Decision;
    use crate::event::{AdminUnitEstablished, Event, EventData, RecognitionGranted, RegistrationSubmitted};

    fn event(n: u128, subject: &str, data: EventData) -> Event {
        let id = uuid::Uuid::from_u128(n);
        Event::new(id, "test", "2025-02-01T09:00:00+07:00", subject, data).unwrap()
    }

    #[test]
    fn tallies_split_over_threads_add_up_to_one_pass() {
        let mut engine = Engine::new();
        let unit = |code: &str, level, parent: Option<&str>| {
            EventData::AdminUnitEstablished(AdminUnitEstablished {
                code: code.into(),
                level,
                name: code.into(),
                parent: parent.map(Into::into),
                coordinates: None,
            })
        };
        engine.apply(&event(1, "01", unit("01", Level::Province, None)));
        engine.apply(&event(2, "00001", unit("00001", Level::Commune, Some("01"))));
        engine.apply(&event(3, "00002", unit("00002", Level::Commune, Some("01"))));
        for i in 0..500u128 {
            let subject = format!("cit-{i}");
            let commune = if i % 3 == 0 { "00001" } else { "00002" };
            let reg = RegistrationSubmitted {
                subject_kind: SubjectKind::Citizen,
                commune: commune.into(),
                title: Title::LearningCitizen,
                cycle_year: 2025,
                subject_group: None,
            };
            engine.apply(&event(100 + i, &subject, EventData::RegistrationSubmitted(reg)));
            if i % 4 == 0 {
                let decision =
                    Decision { number: "1".into(), issuer: "UBND-01".into(), date: Day::parse("2025-02-01").unwrap() };
                let grant = RecognitionGranted {
                    title: Title::LearningCitizen,
                    cycle_year: 2025,
                    level: None,
                    decision,
                    valid_from: Day::parse("2025-01-01").unwrap(),
                    valid_until: Day::parse("2026-12-31").unwrap(),
                };
                engine.apply(&event(1000 + i, &subject, EventData::RecognitionGranted(grant)));
            }
        }
        let day = Day::parse("2025-12-31").unwrap();
        let geo = engine.geo_at(day, None);
        let (one, one_holds) = engine.tally_in_parts(&geo, day, None, 1);
        for parts in [2, 3, 7, 1000] {
            let (split, holds) = engine.tally_in_parts(&geo, day, None, parts);
            assert_eq!(holds, one_holds);
            for (a, b) in one.iter().zip(&split) {
                assert_eq!(
                    (a.titles, a.skill, a.lc_skill, a.lc_group),
                    (b.titles, b.skill, b.lc_skill, b.lc_group),
                    "{parts} parts"
                );
            }
        }
        let city = engine.units.get("01").unwrap() as usize;
        assert_eq!(one[city].titles[0], [500, 0, 0, 125]);
    }
}

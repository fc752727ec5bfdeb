//! Answering questions: a review of one scope at valid date D as known at transaction time K
//! (rules 4–10), computed from the folded state without reading any log.

use super::{Engine, Kind, Measure, NO_GROUP, Place, Rec, Stamped, Subject, TargetRec};
use crate::codes::{GROUPS, Level, Metric, TITLES, Title};
use crate::geo::{Change, GeoAt, UnitAt, UnitId};
use crate::indicator::Indicator;
use crate::review::{
    Completeness, Geography, MissingBaselines, NamedUnit, Reform, RelatedUnit, Relation, Review, Status, TargetName,
    TargetReview, TitleCounts, UnitReview,
};
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

/// Why a review cannot be given. All are the caller's mistake (HTTP 404 / CLI exit 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("scope `{0}` is not a known administrative unit")]
    UnknownScope(String),
    /// Not in force on D, and no successor or predecessor of it is (counting-rules §3, "A unit across the reform").
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
pub(super) const RECOGNISED: usize = 3;
pub(super) const LC: usize = 0; // Title::LearningCitizen.index()

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

/// What a review is about: a unit in force at D, or the units the reform relates a code to.
enum About {
    Scope(UnitId),
    Reform { scope: UnitId, relation: Relation, date: Day, units: Vec<Related> },
}

/// A unit related to the code asked about (see [`RelatedUnit`]).
#[derive(Clone, Copy, Debug)]
struct Related {
    unit: UnitId,
    default: bool,
    divided: bool,
}

/// What one subject contributes at D.
#[derive(PartialEq, Eq)]
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
        let about = self.about(query, &geo)?;
        let (tallies, holds) = self.tally(&geo, day, known_at);
        Ok(self.assemble(query, &geo, about, (&tallies, &holds), recorded))
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
        let about = self.about(query, &geo)?;
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
        Ok(self.assemble(query, &geo, about, (&tallies, &holds), recorded))
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
    /// A date on which `unit` is not in force has no point (even where its review answers with its
    /// successors or predecessors); when it is in force on none of `dates`,
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
                // What became of the unit is not the unit: no point on that date.
                Ok(review) if review.reform.is_some() => {}
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

    /// What `query` is about on its date: its scope when in force, else what the reform relates it to
    /// (counting-rules §3, "A unit across the reform"). A code never seen is [`QueryError::UnknownScope`]; a unit not
    /// in force with no related unit in force is [`QueryError::ScopeNotInForce`].
    fn about(&self, query: &Query, geo: &GeoAt<'_>) -> Result<About, QueryError> {
        let scope = self.units.get(&query.scope).ok_or_else(|| QueryError::UnknownScope(query.scope.clone()))?;
        let at = &geo.units[scope as usize];
        if at.in_force {
            return Ok(About::Scope(scope));
        }
        let not_in_force = || QueryError::ScopeNotInForce { code: query.scope.clone(), as_of: query.as_of };
        let (relation, date, units) = match (at.dissolved_on, at.established_on) {
            (Some(dissolved), _) => (Relation::Successors, dissolved, self.successors(geo, scope, query.known_at)),
            (None, Some(established)) if established > query.as_of => {
                (Relation::Predecessors, established, self.predecessors(geo, scope, query.known_at))
            }
            _ => return Err(not_in_force()),
        };
        if units.is_empty() {
            return Err(not_in_force());
        }
        Ok(About::Reform { scope, relation, date, units })
    }

    /// The units in force at D that a unit dissolved by D passed into, following later dissolutions:
    /// every successor of a divided unit, the default first (the unit its subjects are counted in,
    /// `geo.resolved`), then by code. A unit dissolved into the unit above it (a district abolished into
    /// its province on 1 July 2025) passed into what its own units became: its children on the day
    /// before, each followed the same way, none of them a default.
    fn successors(&self, geo: &GeoAt<'_>, unit: UnitId, known_at: Option<i64>) -> Vec<Related> {
        let default = geo.resolved[unit as usize];
        // Every path is walked (each unit at most once divided and once not), and a unit reached by
        // several is divided when any of them is: the answer does not depend on the order units were
        // first seen in, which differs between engines fed the same events in another order.
        let mut visited = vec![[false; 2]; geo.units.len()];
        let mut found: Vec<Option<bool>> = vec![None; geo.units.len()];
        let mut stack = vec![(unit, false)];
        while let Some((cur, divided)) = stack.pop() {
            let at = &geo.units[cur as usize];
            let next: Vec<UnitId> = match (at.successor, at.dissolved_on) {
                (Some(successor), Some(dissolved)) if at.others.is_empty() && at.parent == Some(successor) => {
                    let before = self.geo_at(Day(dissolved.0 - 1), known_at);
                    before.children[cur as usize].clone()
                }
                _ => at.successor.iter().chain(at.others).copied().collect(),
            };
            let divided = divided || !at.others.is_empty();
            for next in next.into_iter().filter(|&n| n != unit) {
                let next_at = &geo.units[next as usize];
                if next_at.in_force {
                    let flag = found[next as usize].get_or_insert(false);
                    *flag |= divided;
                } else if next_at.successor.is_some()
                    && !std::mem::replace(&mut visited[next as usize][usize::from(divided)], true)
                {
                    stack.push((next, divided));
                }
            }
        }
        let mut out: Vec<Related> = found
            .iter()
            .enumerate()
            .filter_map(|(u, divided)| {
                divided.map(|divided| Related { unit: u as UnitId, default: Some(u as UnitId) == default, divided })
            })
            .collect();
        self.order_related(&mut out);
        out
    }

    /// The units in force at D that dissolve into `unit`, which is established after D, as known at K:
    /// those whose dissolution names it among its successors (followed back through units that are not
    /// yet established at D either), leaving out a unit that contains another one listed (a district
    /// whose dissolution also names the new commune, beside its communes), by code. A unit reached by
    /// several ways is the default when one of them is all defaults, divided when one of them is.
    fn predecessors(&self, geo: &GeoAt<'_>, unit: UnitId, known_at: Option<i64>) -> Vec<Related> {
        let alive = |ev| self.alive(ev, known_at);
        // Every dissolution known at K, whatever its date, as (dissolved unit, successor, default, divided).
        let links: Vec<(UnitId, UnitId, bool, bool)> = self
            .geo
            .iter()
            .enumerate()
            .flat_map(|(u, history)| {
                history.dissolutions(alive).map(move |(to, default, divided, _)| (u as UnitId, to, default, divided))
            })
            .collect();
        let mut visited = vec![[false; 4]; geo.units.len()];
        let mut found: Vec<Option<(bool, bool)>> = vec![None; geo.units.len()];
        let mut stack = vec![(unit, true, false)];
        while let Some((cur, default, divided)) = stack.pop() {
            for &(from, _, link_default, link_divided) in links.iter().filter(|l| l.1 == cur && l.0 != unit) {
                let (default, divided) = (default && link_default, divided || link_divided);
                let at = &geo.units[from as usize];
                if at.in_force {
                    let flags = found[from as usize].get_or_insert((false, false));
                    *flags = (flags.0 || default, flags.1 || divided);
                } else if at.dissolved_on.is_none()
                    && !std::mem::replace(
                        &mut visited[from as usize][usize::from(default) * 2 + usize::from(divided)],
                        true,
                    )
                {
                    // Not yet established at D either: what it comes from.
                    stack.push((from, default, divided));
                }
            }
        }
        let found: Vec<Related> = found
            .iter()
            .enumerate()
            .filter_map(|(u, flags)| flags.map(|(default, divided)| Related { unit: u as UnitId, default, divided }))
            .collect();
        let mut out: Vec<Related> = found
            .iter()
            .filter(|p| !found.iter().any(|other| other.unit != p.unit && geo.within(other.unit, p.unit)))
            .copied()
            .collect();
        self.order_related(&mut out);
        out
    }

    /// The default first, then by code.
    fn order_related(&self, list: &mut [Related]) {
        list.sort_by(|a, b| {
            (!a.default, &self.units.codes[a.unit as usize]).cmp(&(!b.default, &self.units.codes[b.unit as usize]))
        });
    }

    /// Everything of a review but the counting: units, denominators, targets, the geography used.
    fn assemble(
        &self,
        query: &Query,
        geo: &GeoAt<'_>,
        about: About,
        (tallies, holds): (&[Tally], &[u8]),
        recorded: Recorded,
    ) -> Review {
        let (day, known_at) = (query.as_of, query.known_at);
        let mut denominators = HashMap::new();
        let mut row = |u: UnitId| self.unit_review(geo, u, &tallies[u as usize], day, known_at, &mut denominators);

        let (units, reform, listed) = match &about {
            About::Scope(scope) => {
                // The scope's districts in force at D; where it has none, its communes.
                let children = &geo.children[*scope as usize];
                let of_level = |level| {
                    children.iter().copied().filter(|c| geo.units[*c as usize].level == Some(level)).collect::<Vec<_>>()
                };
                let mut child_units = of_level(Level::District);
                if child_units.is_empty() {
                    child_units = of_level(Level::Commune);
                }
                child_units.sort_by(|a, b| self.units.codes[*a as usize].cmp(&self.units.codes[*b as usize]));
                let units = std::iter::once(*scope).chain(child_units).map(&mut row).collect();
                (units, None, vec![*scope])
            }
            About::Reform { scope, relation, date, units: related } => {
                let at = &geo.units[*scope as usize];
                let reform = Reform {
                    code: query.scope.clone(),
                    level: at.level.unwrap_or(Level::Commune),
                    name: at.name.to_owned(),
                    relation: *relation,
                    date: *date,
                    units: related
                        .iter()
                        .map(|r| RelatedUnit {
                            code: self.units.codes[r.unit as usize].to_string(),
                            default: r.default,
                            divided: r.divided,
                        })
                        .collect(),
                };
                let units = related.iter().map(|r| row(r.unit)).collect();
                (units, Some(reform), related.iter().map(|r| r.unit).collect())
            }
        };

        // Targets are the scope's; a unit not in force has none to check.
        let (milestone, targets) = match about {
            About::Scope(scope) => {
                let (milestone, targets) = self.targets_at(scope, day, known_at, query.milestone);
                let targets = targets
                    .into_iter()
                    .map(|t| {
                        self.check_target(
                            t,
                            geo,
                            scope,
                            (&tallies[scope as usize], holds),
                            day,
                            known_at,
                            &mut denominators,
                        )
                    })
                    .collect();
                (milestone, targets)
            }
            About::Reform { .. } => (None, Vec::new()),
        };

        let mut geography = Geography { provinces: 0, districts: 0, communes: 0 };
        for (u, at) in geo.units.iter().enumerate() {
            if at.in_force && listed.iter().any(|&l| geo.within(u as UnitId, l)) {
                match at.level {
                    Some(Level::Province) => geography.provinces += 1,
                    Some(Level::District) => geography.districts += 1,
                    Some(Level::Commune) => geography.communes += 1,
                    None => {}
                }
            }
        }

        let completeness = match about {
            About::Scope(scope) => {
                Some(self.completeness(geo, scope, tallies, &targets, day, known_at, &mut denominators))
            }
            About::Reform { .. } => None,
        };

        Review {
            completeness,
            scope: query.scope.clone(),
            as_of: day,
            approved: None,
            known_at: recorded.stated(known_at),
            events: recorded.events,
            software: None,
            generated_at: None,
            milestone,
            geography,
            reform,
            units,
            targets,
        }
    }

    /// The completeness of the scope's data (see [`Completeness`]): its communes in force at D whose
    /// tallies hold no registration, declaration or evidence of the cycle year, those without a
    /// denominator for a metric the targets divide by, and the targets without a denominator.
    #[allow(clippy::too_many_arguments)]
    fn completeness(
        &self,
        geo: &GeoAt<'_>,
        scope: UnitId,
        tallies: &[Tally],
        targets: &[TargetReview],
        day: Day,
        known_at: Option<i64>,
        denominators: &mut HashMap<(UnitId, Metric), Option<u64>>,
    ) -> Completeness {
        let mut metrics: Vec<Metric> = targets
            .iter()
            .filter_map(|t| match Indicator::parse(&t.indicator)? {
                Indicator::Recognised { metric, .. } | Indicator::DigitalSkill { metric } => Some(metric),
                Indicator::UnitsHolding { .. } | Indicator::DigitalSkillOfLearningCitizens => None,
            })
            .collect();
        metrics.sort_unstable();
        metrics.dedup();
        let mut communes: Vec<UnitId> = (0..geo.units.len() as UnitId)
            .filter(|&u| {
                let at = &geo.units[u as usize];
                at.in_force && at.level == Some(Level::Commune) && geo.within(u, scope)
            })
            .collect();
        communes.sort_by(|a, b| self.units.codes[*a as usize].cmp(&self.units.codes[*b as usize]));
        let named = |u: UnitId| NamedUnit {
            code: self.units.codes[u as usize].to_string(),
            name: geo.units[u as usize].name.to_owned(),
        };
        let silent = communes
            .iter()
            .filter(|&&u| {
                tallies[u as usize].titles.iter().all(|m| m[REGISTERED] == 0 && m[DECLARED] == 0 && m[EVIDENCED] == 0)
            })
            .map(|&u| named(u))
            .collect();
        let mut without_baseline = Vec::new();
        for &u in &communes {
            let missing: Vec<Metric> = metrics
                .iter()
                .copied()
                .filter(|&m| !matches!(self.denominator(geo, u, m, day, known_at, denominators), Some(v) if v > 0))
                .collect();
            if !missing.is_empty() {
                let NamedUnit { code, name } = named(u);
                without_baseline.push(MissingBaselines { code, name, metrics: missing });
            }
        }
        Completeness {
            cycle_year: day.year(),
            communes: communes.len() as u64,
            silent,
            without_baseline,
            targets_without_denominator: targets
                .iter()
                .filter(|t| t.status == Status::NoDenominator)
                .map(|t| TargetName { plan: t.plan.clone(), indicator: t.indicator.clone() })
                .collect(),
        }
    }

    /// One unit's row: its counts, the part placed by default, digital skills, its denominators.
    fn unit_review(
        &self,
        geo: &GeoAt<'_>,
        u: UnitId,
        tally: &Tally,
        day: Day,
        known_at: Option<i64>,
        denominators: &mut HashMap<(UnitId, Metric), Option<u64>>,
    ) -> UnitReview {
        let at = &geo.units[u as usize];
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
        let baselines = Metric::ALL
            .iter()
            .filter_map(|m| self.denominator(geo, u, *m, day, known_at, denominators).map(|v| (*m, v)))
            .collect();
        UnitReview {
            code: self.units.codes[u as usize].to_string(),
            level: at.level.unwrap_or(Level::Commune),
            name: at.name.to_owned(),
            coordinates: at.coords.map(|(lat, lon)| crate::review::UnitCoordinates { lat, lon }),
            titles: counts(&tally.titles),
            placed_by_default: counts(&tally.by_default),
            digital_skill: tally.skill,
            baselines,
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

    /// The provinces unit `code` ever lay in, as known now: the province-level units reached by
    /// following every parent it was ever given (establishments and reparentings not retracted),
    /// whatever the date. What a reader allowed one province may read (the gateway asks the same
    /// question of the units an event names: a unit that passed from one province to another belongs
    /// to both). Sorted; empty for a code never established.
    pub fn provinces_of(&self, code: &str) -> Vec<String> {
        let Some(start) = self.units.get(code) else { return Vec::new() };
        let mut seen = vec![start];
        let mut todo = vec![start];
        let mut out = Vec::new();
        while let Some(unit) = todo.pop() {
            let Some(history) = self.geo.get(unit as usize) else { continue };
            for rec in history.recs.iter().filter(|r| self.alive(r.ev, None)) {
                let parent = match &rec.change {
                    Change::Established { level, parent, .. } => {
                        if *level == Level::Province {
                            out.push(self.units.codes[unit as usize].to_string());
                        }
                        *parent
                    }
                    Change::Reparented { parent } => Some(*parent),
                    Change::Renamed { .. } | Change::Dissolved { .. } => None,
                };
                if let Some(p) = parent.filter(|p| !seen.contains(p)) {
                    seen.push(p);
                    todo.push(p);
                }
            }
        }
        out.sort();
        out.dedup();
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
        let admin = self.admin_subjects(geo);
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
            let (location, by_default) = locate(geo, own_unit, &at);
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

    /// The subjects that are administrative units: a subject whose id is the code of an established
    /// unit is that unit (rule 6).
    pub(super) fn admin_subjects(&self, geo: &GeoAt<'_>) -> HashMap<u32, UnitId> {
        (0..geo.units.len())
            .filter(|&u| geo.units[u].level.is_some())
            .filter_map(|u| self.subject_ids.get(&*self.units.codes[u]).map(|&s| (s, u as UnitId)))
            .collect()
    }

    /// One subject's standing at D (rules 4–6).
    pub(super) fn subject_at(&self, subject: &Subject, day: i32, year: i16, known_at: Option<i64>) -> SubjectAt {
        standing(subject.recs.iter().filter(|r| self.rec_alive(r, known_at)), day, year)
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
/// Where a subject standing `at` on D is counted, and whether only by a divided unit's default: an
/// administrative unit (`own_unit`) in itself while in force, never in a successor; any other subject
/// in the unit in force that its code resolves to.
pub(super) fn locate(geo: &GeoAt<'_>, own_unit: Option<UnitId>, at: &SubjectAt) -> (Option<UnitId>, bool) {
    match own_unit {
        Some(unit) => (Some(unit).filter(|u| geo.units[*u as usize].in_force), false),
        None => at.code.map_or((None, false), |code| (geo.resolved[code as usize], geo.by_default[code as usize])),
    }
}

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

/// A subject's standing at D (rules 4–6) from its records known at the time asked, in their order.
pub(super) fn standing<'r>(recs: impl Iterator<Item = &'r Rec>, day: i32, year: i16) -> SubjectAt {
    let mut folded = Standing::default();
    for r in recs {
        folded.add(r, day, year);
    }
    folded.at()
}

/// What a subject's records say of day `day` of cycle `year`, folded record by record in their order.
#[derive(Clone, Copy)]
struct Standing {
    first_code: Option<UnitId>,
    code: Option<UnitId>,
    /// Per title, for the cycle of D: 0 = no registration, 1 = registered, 2 = withdrawn.
    registration: [u8; TITLES],
    withdrawn_at: [i64; TITLES],
    activity: [u8; TITLES],
    granted: [u16; TITLES],
    revoked: [u16; TITLES],
    group_latest: Option<i32>,
    group_first: Option<i32>,
    skill: bool,
}

impl Default for Standing {
    fn default() -> Standing {
        Standing {
            first_code: None,
            code: None,
            registration: [0; TITLES],
            withdrawn_at: [i64::MIN; TITLES],
            activity: [0; TITLES],
            granted: [0; TITLES],
            revoked: [0; TITLES],
            group_latest: None,
            group_first: None,
            skill: false,
        }
    }
}

impl Standing {
    fn add(&mut self, r: &Rec, day: i32, year: i16) {
        if let Some(c) = r.commune() {
            self.first_code.get_or_insert(c);
            if r.day <= day {
                self.code = Some(c);
            }
        }
        let t = r.title as usize;
        let this_cycle = r.cycle == year && r.day <= day;
        match r.kind {
            Kind::Registered => {
                if t == LC {
                    self.group_first.get_or_insert(r.b);
                    if r.day <= day {
                        self.group_latest = Some(r.b);
                    }
                }
                // On the same instant a withdrawal wins over a registration.
                if this_cycle && !(self.registration[t] == 2 && self.withdrawn_at[t] == r.instant) {
                    self.registration[t] = 1;
                }
            }
            Kind::Withdrawn if this_cycle => {
                self.registration[t] = 2;
                self.withdrawn_at[t] = r.instant;
            }
            Kind::Declared if this_cycle => self.activity[t] |= 1 << DECLARED,
            Kind::Evidenced if this_cycle => self.activity[t] |= 1 << EVIDENCED,
            Kind::Granted if r.a <= day && day <= r.b => self.granted[t] |= cycle_bit(r),
            Kind::Revoked if r.a <= day => self.revoked[t] |= cycle_bit(r),
            Kind::Skill if r.day <= day => self.skill = true,
            _ => {}
        }
    }

    fn at(&self) -> SubjectAt {
        let mut measures = [0u8; TITLES];
        for (t, bits) in measures.iter_mut().enumerate() {
            if self.registration[t] != 2 {
                *bits |= self.activity[t];
                if self.registration[t] == 1 {
                    *bits |= 1 << REGISTERED;
                }
            }
            if self.granted[t] & !self.revoked[t] != 0 {
                *bits |= 1 << RECOGNISED;
            }
        }
        SubjectAt {
            measures,
            skill: self.skill,
            group: self.group_latest.or(self.group_first).unwrap_or(NO_GROUP),
            code: self.code.or(self.first_code),
        }
    }
}

/// [`standing`] on ascending days, for one subject's records sorted by day (as every subject's are:
/// by time, then id). A record counts on day D through its own day being ≤ D, except a recognition's
/// or a revocation's effect, which may start before the record's day; and the first commune and
/// group come from every record. So the records up to D are folded once as the days advance (again
/// when the cycle changes), and only the recognitions and revocations are read again for each day:
/// the cost of a subject's sweep grows with its records plus its days, not their product.
pub(super) struct Sweep<'r> {
    recs: &'r [&'r Rec],
    windows: Vec<&'r Rec>,
    first_code: Option<UnitId>,
    group_first: Option<i32>,
    /// `recs[..next]` are folded into `upto`, for cycle `year`.
    next: usize,
    year: Option<i16>,
    upto: Standing,
}

impl<'r> Sweep<'r> {
    /// `recs` sorted by day: a subject's records as the engine keeps them, by (time, id).
    pub(super) fn new(recs: &'r [&'r Rec]) -> Sweep<'r> {
        debug_assert!(recs.windows(2).all(|w| w[0].day <= w[1].day), "a subject's records are sorted by time");
        let windows = recs.iter().copied().filter(|r| is_window(r)).collect();
        let mut all = Standing::default();
        for r in recs {
            all.add(r, i32::MIN, i16::MIN);
        }
        Sweep {
            recs,
            windows,
            first_code: all.first_code,
            group_first: all.group_first,
            next: 0,
            year: None,
            upto: Standing::default(),
        }
    }

    /// The standing on `day` of cycle `year`; `day` never less than the day asked before.
    pub(super) fn at(&mut self, day: i32, year: i16) -> SubjectAt {
        if self.year != Some(year) {
            self.year = Some(year);
            self.upto = Standing::default();
            for r in self.recs[..self.next].iter().filter(|r| !is_window(r)) {
                self.upto.add(r, day, year);
            }
        }
        while let Some(r) = self.recs.get(self.next).filter(|r| r.day <= day) {
            if !is_window(r) {
                self.upto.add(r, day, year);
            }
            self.next += 1;
        }
        let mut on = self.upto;
        for r in &self.windows {
            on.add(r, day, year);
        }
        on.first_code = self.first_code;
        on.group_first = self.group_first;
        on.at()
    }
}

/// A record whose effect on a day does not follow from its own day alone.
fn is_window(r: &Rec) -> bool {
    matches!(r.kind, Kind::Granted | Kind::Revoked)
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

/// Reviews of a code on a date it is not in force: what became of it, or what it comes from.
#[cfg(test)]
mod reform_tests {
    use super::*;
    use crate::codes::SubjectKind;
    use crate::event::{
        AdminUnitDissolved, AdminUnitEstablished, AdminUnitReparented, Event, EventData, RegistrationSubmitted,
        Successor,
    };
    use crate::review::Relation;

    /// Before anything of the reform was recorded.
    const EARLY: &str = "2025-01-01T00:00:00Z";
    /// When the new communes were recorded.
    const NEW_UNITS: &str = "2025-06-01T00:00:00Z";
    /// When the dissolutions of the reform were recorded, after the fact.
    const DISSOLUTIONS: &str = "2025-08-01T00:00:00Z";

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    fn instant(text: &str) -> i64 {
        time::parse_instant(text).unwrap()
    }

    struct World {
        events: Vec<Event>,
        next: u128,
    }

    impl World {
        fn put(&mut self, time: &str, subject: &str, recorded: &str, data: EventData) {
            self.next += 1;
            let mut e = Event::new(uuid::Uuid::from_u128(self.next), "test", time, subject, data).unwrap();
            e.recordedtime = Some(instant(recorded));
            self.events.push(e);
        }

        fn unit(&mut self, time: &str, recorded: &str, code: &str, level: Level, parent: Option<&str>) {
            let data = EventData::AdminUnitEstablished(AdminUnitEstablished {
                code: code.into(),
                level,
                name: format!("Đơn vị {code}"),
                parent: parent.map(Into::into),
                coordinates: None,
            });
            self.put(time, code, recorded, data);
        }

        fn dissolve(&mut self, time: &str, code: &str, successors: &[&str]) {
            let successors =
                successors.iter().enumerate().map(|(i, s)| Successor { code: (*s).into(), default: i == 0 }).collect();
            let data = EventData::AdminUnitDissolved(AdminUnitDissolved { code: code.into(), successors });
            self.put(time, code, DISSOLUTIONS, data);
        }
    }

    /// Hà Nội (01) with districts 001 (communes 00001, 00002) and 002 (00003, 00004) until the reform of
    /// 1 July 2025, which makes the communes 00010 and 00011: 00001 passes whole into 00010, 00002 is
    /// divided between 00010 (its default) and 00011, 00004 passes into 00011, 00003 keeps its code
    /// under the city; 001 is divided between 00010 and 00011, 002 passes into the city. On 1 January
    /// 2026 00011 passes into 00003. One citizen registers in each old commune.
    fn world() -> Engine {
        engine_of(world_events().iter())
    }

    fn engine_of<'a>(events: impl Iterator<Item = &'a Event>) -> Engine {
        let mut engine = Engine::new();
        for e in events {
            engine.apply(e);
        }
        engine
    }

    fn world_events() -> Vec<Event> {
        let mut w = World { events: Vec::new(), next: 0 };
        let start = "2021-01-01T00:00:00+07:00";
        let reform = "2025-07-01T00:00:00+07:00";
        w.unit(start, EARLY, "01", Level::Province, None);
        w.unit(start, EARLY, "001", Level::District, Some("01"));
        w.unit(start, EARLY, "002", Level::District, Some("01"));
        for (commune, district) in [("00001", "001"), ("00002", "001"), ("00003", "002"), ("00004", "002")] {
            w.unit(start, EARLY, commune, Level::Commune, Some(district));
        }
        w.unit(reform, NEW_UNITS, "00010", Level::Commune, Some("01"));
        w.unit(reform, NEW_UNITS, "00011", Level::Commune, Some("01"));
        let reparent =
            EventData::AdminUnitReparented(AdminUnitReparented { code: "00003".into(), parent: "01".into() });
        w.put(reform, "00003", DISSOLUTIONS, reparent);
        w.dissolve(reform, "00001", &["00010"]);
        w.dissolve(reform, "00002", &["00010", "00011"]);
        w.dissolve(reform, "00004", &["00011"]);
        w.dissolve(reform, "001", &["00010", "00011"]);
        w.dissolve(reform, "002", &["01"]);
        w.dissolve("2026-01-01T00:00:00+07:00", "00011", &["00003"]);
        for (n, commune) in ["00001", "00002", "00003", "00004"].into_iter().enumerate() {
            let data = EventData::RegistrationSubmitted(RegistrationSubmitted {
                subject_kind: SubjectKind::Citizen,
                commune: commune.into(),
                title: Title::LearningCitizen,
                cycle_year: 2025,
                subject_group: None,
            });
            w.put("2025-02-01T09:00:00+07:00", &format!("cit-{n}"), EARLY, data);
        }
        w.events
    }

    fn review(engine: &Engine, scope: &str, as_of: &str, known_at: Option<&str>) -> Result<Review, QueryError> {
        let query = Query { scope: scope.into(), as_of: day(as_of), known_at: known_at.map(instant), milestone: None };
        engine.review(&query)
    }

    /// (code, default, divided) of the reform section, and each row's registered learning citizens.
    type Listed<'a> = (Relation, Vec<(&'a str, bool, bool)>, Vec<(&'a str, u64)>);

    fn related(review: &Review) -> Listed<'_> {
        let reform = review.reform.as_ref().expect("a review of what the reform made of the scope");
        assert_eq!(reform.code, review.scope);
        let listed = reform.units.iter().map(|u| (u.code.as_str(), u.default, u.divided)).collect();
        let rows = review
            .units
            .iter()
            .map(|u| (u.code.as_str(), u.titles.get(&Title::LearningCitizen).map_or(0, |c| c.registered)))
            .collect();
        assert!(review.targets.is_empty() && review.milestone.is_none(), "a unit not in force has no targets");
        (reform.relation, listed, rows)
    }

    #[test]
    fn a_unit_in_force_has_no_reform_section() {
        let engine = world();
        let city = review(&engine, "01", "2025-07-15", None).unwrap();
        assert!(city.reform.is_none());
        assert_eq!(city.units[0].code, "01");
        let json = serde_json::to_string(&city).unwrap();
        assert!(!json.contains("reform"), "{json}");
    }

    #[test]
    fn a_commune_dissolved_whole_answers_with_its_successor() {
        let engine = world();
        let r = review(&engine, "00001", "2025-07-15", None).unwrap();
        let (relation, listed, rows) = related(&r);
        assert_eq!(relation, Relation::Successors);
        assert_eq!(listed, [("00010", true, false)]);
        // 00010 counts the citizens of 00001 and, by default, of the divided 00002.
        assert_eq!(rows, [("00010", 2)]);
        assert_eq!(r.units[0].placed_by_default[&Title::LearningCitizen].registered, 1);
        let reform = r.reform.as_ref().unwrap();
        assert_eq!(
            (reform.level, reform.name.as_str(), reform.date),
            (Level::Commune, "Đơn vị 00001", day("2025-07-01"))
        );
        assert_eq!((r.geography.districts, r.geography.communes), (0, 1));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["reform"]["relation"], "successors");
        assert_eq!(json["reform"]["date"], "2025-07-01");
        assert_eq!(json["reform"]["units"][0], serde_json::json!({"code": "00010", "default": true, "divided": false}));
    }

    #[test]
    fn a_divided_unit_answers_with_every_successor_the_default_first() {
        let engine = world();
        for scope in ["00002", "001"] {
            let r = review(&engine, scope, "2025-07-15", None).unwrap();
            let (relation, listed, rows) = related(&r);
            assert_eq!(relation, Relation::Successors, "{scope}");
            assert_eq!(listed, [("00010", true, true), ("00011", false, true)], "{scope}");
            assert_eq!(rows, [("00010", 2), ("00011", 1)], "{scope}");
        }
    }

    #[test]
    fn a_district_abolished_into_the_city_answers_with_what_its_communes_became() {
        let engine = world();
        // 002 passed into the city (its parent): its communes 00003 (kept) and 00004 (into 00011).
        let r = review(&engine, "002", "2025-12-31", None).unwrap();
        let (relation, listed, rows) = related(&r);
        assert_eq!(relation, Relation::Successors);
        assert_eq!(listed, [("00003", false, false), ("00011", false, false)], "no default: the city is");
        assert_eq!(rows, [("00003", 1), ("00011", 1)]);
        assert_eq!((r.geography.provinces, r.geography.districts, r.geography.communes), (0, 0, 2));
        // After 00011 passed into 00003, one unit.
        let r1 = review(&engine, "002", "2026-06-30", None).unwrap();
        let (_, listed, _) = related(&r1);
        assert_eq!(listed, [("00003", false, false)]);
    }

    #[test]
    fn successors_are_followed_to_the_units_in_force_on_the_date() {
        let engine = world();
        let r2 = review(&engine, "00004", "2025-12-31", None).unwrap();
        let (_, listed, _) = related(&r2);
        assert_eq!(listed, [("00011", true, false)]);
        // 00011 passed into 00003 on 1 January 2026.
        let r = review(&engine, "00004", "2026-06-30", None).unwrap();
        let (_, listed, _) = related(&r);
        assert_eq!(listed, [("00003", true, false)]);
        assert_eq!(r.reform.as_ref().unwrap().date, day("2025-07-01"), "the asked unit's own dissolution");
        let r3 = review(&engine, "00002", "2026-06-30", None).unwrap();
        let (_, listed, _) = related(&r3);
        assert_eq!(listed, [("00010", true, true), ("00003", false, true)]);
    }

    #[test]
    fn a_new_unit_before_the_reform_answers_with_its_predecessors() {
        let engine = world();
        let r = review(&engine, "00010", "2025-06-30", None).unwrap();
        let (relation, listed, rows) = related(&r);
        assert_eq!(relation, Relation::Predecessors);
        // District 001 also names 00010 but holds 00001 and 00002: left out, not counted twice.
        assert_eq!(listed, [("00001", true, false), ("00002", true, true)]);
        assert_eq!(rows, [("00001", 1), ("00002", 1)]);
        assert_eq!(r.reform.as_ref().unwrap().date, day("2025-07-01"));
        assert_eq!((r.geography.districts, r.geography.communes), (0, 2));
        let r4 = review(&engine, "00011", "2025-06-30", None).unwrap();
        let (_, listed, _) = related(&r4);
        assert_eq!(listed, [("00004", true, false), ("00002", false, true)]);
    }

    #[test]
    fn unknown_codes_and_units_without_relation_stay_errors() {
        let engine = world();
        assert_eq!(review(&engine, "99999", "2025-07-15", None), Err(QueryError::UnknownScope("99999".into())));
        // Hà Nội before its establishment: nothing dissolves into it.
        assert!(matches!(review(&engine, "01", "2020-06-30", None), Err(QueryError::ScopeNotInForce { .. })));
        // A series still has no point where the unit is not in force.
        let points =
            engine.series("001", Title::LearningCitizen, &[day("2025-06-30"), day("2025-07-15")], None).unwrap();
        assert_eq!(points.iter().map(|p| p.0).collect::<Vec<_>>(), [day("2025-06-30")]);
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_events_arrived_in() {
        let events = world_events();
        let (forward, backward) = (engine_of(events.iter()), engine_of(events.iter().rev()));
        let mut compared = 0;
        for scope in ["001", "002", "00002", "00004", "00010", "00011"] {
            for date in ["2025-06-30", "2025-07-15", "2026-06-30"] {
                let (a, b) = (review(&forward, scope, date, None), review(&backward, scope, date, None));
                assert_eq!(a, b, "{scope} {date}");
                compared += usize::from(a.is_ok_and(|r| r.reform.is_some()));
            }
        }
        assert!(compared >= 10, "{compared}");
    }

    #[test]
    fn before_the_reform_was_recorded_there_is_no_relation() {
        let engine = world();
        let between = Some("2025-07-01T00:00:00Z");
        // The new commune was recorded, the dissolutions naming it were not: nothing it comes from yet.
        assert_eq!(
            review(&engine, "00010", "2025-06-30", between),
            Err(QueryError::ScopeNotInForce { code: "00010".into(), as_of: day("2025-06-30") })
        );
        // Nor the new commune itself before it was recorded.
        assert!(matches!(
            review(&engine, "00010", "2025-06-30", Some("2025-05-01T00:00:00Z")),
            Err(QueryError::ScopeNotInForce { .. })
        ));
        // The old commune was still in force as known then: its ordinary review.
        let old = review(&engine, "00001", "2025-07-15", between).unwrap();
        assert!(old.reform.is_none());
        assert_eq!(old.units[0].code, "00001");
        // Once the dissolutions are known, the answers above change.
        assert!(review(&engine, "00010", "2025-06-30", Some(DISSOLUTIONS)).unwrap().reform.is_some());
        assert!(review(&engine, "00001", "2025-07-15", Some(DISSOLUTIONS)).unwrap().reform.is_some());
    }
}

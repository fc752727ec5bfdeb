//! The map the generated people live on: Vietnam's official units of one province (Hà Nội by
//! default) or of the whole country, before and after the reform of 1 July 2025, read from the
//! events `hoctap-geography` writes for it.
//!
//! The generator learns the map from those events rather than from the dataset's tables, so that
//! it knows exactly what a tracker fed the same events knows: a commune that kept its code is the
//! same unit before and after the reform (even when part of it went to a neighbour: the events
//! cannot say so), a dissolved commune passes into its successors, a divided one into several,
//! one of them the default.
//!
//! The map does not depend on the seed: every generated city of a province has the same units and
//! the same weights, so datasets of different seeds can be compared unit by unit. Only the people
//! living on it change.

use crate::clock::{self, Local};
use crate::spec::mix;
use fastrand::Rng;
use hoctap_domain::codes::Level;
use hoctap_domain::event::{Event, EventData};
use hoctap_geography::{GeographyError, Official, Scope};
use std::collections::HashMap;

/// The day the two-tier local government took effect.
pub(crate) fn reform() -> Local {
    clock::midnight(2025, 7, 1)
}

/// The day the generated map starts: the old units are established on it.
pub(crate) fn established() -> hoctap_domain::time::Day {
    clock::date(2021, 1, 1)
}

/// Share of a divided commune's people who live in the part that went to its default successor;
/// the rest are spread evenly over the other successors. The dataset names the default but does not
/// say how people were split, so this is the generator's assumption, not a fact.
const DEFAULT_SHARE: f64 = 0.5;

/// One administrative unit, with what the reform does to it.
pub(crate) struct Unit {
    pub code: String,
    pub level: Level,
    /// Index of the parent before the reform (a province is its own parent).
    pub parent: u16,
    /// Index of the parent from the reform on, for a unit still in force then.
    pub parent_after: u16,
    /// For a unit the reform dissolves: what it passed into, the default first.
    pub successors: Vec<u16>,
    /// Established by the reform (a new commune with a code of its own).
    pub new: bool,
    /// Relative number of people living there before the reform (communes only).
    pub weight: f64,
    /// Relative number of people living there from the reform on (communes in force then).
    pub weight_after: f64,
}

impl Unit {
    pub(crate) fn dissolved(&self) -> bool {
        !self.successors.is_empty()
    }
}

/// The whole map, with the events that describe it (the head of the stream writes them as they are).
pub(crate) struct Geography {
    pub units: Vec<Unit>,
    /// The `admin_unit.*` events of the official geography, in the order `hoctap geography` writes them.
    pub events: Vec<Event>,
    /// The provinces in force from the reform on, in code order: the scopes of the targets.
    pub provinces: Vec<u16>,
    /// The communes in force before the reform, and from it on.
    pub old_communes: Vec<u16>,
    pub communes_after: Vec<u16>,
    /// One commune in force on both sides of the reform for which no `unit_staff` baseline is recorded.
    pub without_unit_staff: Option<u16>,
    before: Picker,
    after: Picker,
}

/// Weighted choice of a commune, by cumulative weight.
struct Picker {
    units: Vec<u16>,
    cumulative: Vec<f64>,
}

impl Picker {
    fn new(units: Vec<u16>, weight: impl Fn(u16) -> f64) -> Picker {
        let mut sum = 0.0;
        let cumulative = units
            .iter()
            .map(|&u| {
                sum += weight(u);
                sum
            })
            .collect();
        Picker { units, cumulative }
    }

    fn pick(&self, rng: &mut Rng) -> u16 {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.f64() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.units[i.min(self.units.len() - 1)]
    }
}

impl Geography {
    /// The official map of `scope` (a province as it stands from 1 July 2025 with every province
    /// merged into it, or the whole country).
    pub(crate) fn official(scope: &Scope) -> Result<Geography, GeographyError> {
        let events = Official::load()?.events(scope, established())?;
        Ok(Geography::from_events(events))
    }

    fn from_events(events: Vec<Event>) -> Geography {
        let reform_day = clock::day_of(reform());
        let mut units: Vec<Unit> = Vec::new();
        let mut index: HashMap<String, u16> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for e in &events {
            match &e.data {
                EventData::AdminUnitEstablished(d) => {
                    let at = u16::try_from(units.len()).expect("fewer than 65 536 units");
                    let parent = d.parent.as_ref().map_or(at, |p| index[p.as_str()]);
                    index.insert(d.code.clone(), at);
                    names.push(d.name.clone());
                    units.push(Unit {
                        code: d.code.clone(),
                        level: d.level,
                        parent,
                        parent_after: parent,
                        successors: Vec::new(),
                        new: e.day() >= reform_day,
                        weight: 0.0,
                        weight_after: 0.0,
                    });
                }
                EventData::AdminUnitReparented(d) => {
                    let at = index[d.code.as_str()];
                    units[at as usize].parent_after = index[d.parent.as_str()];
                }
                EventData::AdminUnitDissolved(d) => {
                    let at = index[d.code.as_str()] as usize;
                    let default = d.default_successor().expect("the official geography names a default");
                    let mut successors = vec![index[default]];
                    successors.extend(d.successors.iter().filter(|s| !s.default).map(|s| index[s.code.as_str()]));
                    units[at].successors = successors;
                }
                _ => {}
            }
        }

        // Where people live: wards are denser than townships, townships than rural communes. The
        // same constant seed for every city (see the module comment).
        let mut rng = Rng::with_seed(0x4841_4e4f_4920_3031);
        for (unit, name) in units.iter_mut().zip(&names) {
            if unit.level == Level::Commune && !unit.new {
                let density = if name.starts_with("Phường") {
                    1.4
                } else if name.starts_with("Thị trấn") {
                    1.0
                } else {
                    0.8
                };
                unit.weight = density * (0.5 + rng.f64());
            }
        }
        // After the reform a commune holds the people of the old communes (or the parts of them) that
        // passed into it, and a commune that kept its code its own.
        let mut after = vec![0.0; units.len()];
        for (at, unit) in units.iter().enumerate().filter(|(_, u)| u.weight > 0.0) {
            match unit.successors.len() {
                0 => after[at] += unit.weight,
                n => {
                    for (i, &s) in unit.successors.iter().enumerate() {
                        after[s as usize] += unit.weight * share(i, n);
                    }
                }
            }
        }
        for (unit, weight) in units.iter_mut().zip(after) {
            unit.weight_after = weight;
        }

        let old_communes: Vec<u16> = (0..units.len() as u16)
            .filter(|&u| units[u as usize].level == Level::Commune && !units[u as usize].new)
            .collect();
        let in_force_after = |u: &Unit| !u.dissolved();
        let communes_after: Vec<u16> = (0..units.len() as u16)
            .filter(|&u| units[u as usize].level == Level::Commune && in_force_after(&units[u as usize]))
            .collect();
        let mut provinces: Vec<u16> = (0..units.len() as u16)
            .filter(|&u| units[u as usize].level == Level::Province && in_force_after(&units[u as usize]))
            .collect();
        provinces.sort_by(|a, b| units[*a as usize].code.cmp(&units[*b as usize].code));
        let kept: Vec<u16> = communes_after.iter().copied().filter(|&u| !units[u as usize].new).collect();
        let without_unit_staff = kept.get(kept.len() / 2).copied();
        let before = Picker::new(old_communes.clone(), |u| units[u as usize].weight);
        let after = Picker::new(communes_after.clone(), |u| units[u as usize].weight_after);
        Geography { units, events, provinces, old_communes, communes_after, without_unit_staff, before, after }
    }

    pub(crate) fn code(&self, unit: u16) -> &str {
        &self.units[unit as usize].code
    }

    /// The commune in force at `t` that the tracker counts a subject in whose last named commune is
    /// `commune`: the default successor of a dissolved one.
    pub(crate) fn in_force(&self, commune: u16, t: Local) -> u16 {
        match self.units[commune as usize].successors.first() {
            Some(&default) if t >= reform() => default,
            _ => commune,
        }
    }

    /// The commune in force at `t` where a subject whose last named commune is `commune` actually
    /// lives: for a divided commune, the part of it that the subject's `key` falls in (half the
    /// people in the default successor's part, the rest spread evenly over the others).
    pub(crate) fn lives_in(&self, commune: u16, t: Local, key: u64) -> u16 {
        let successors = &self.units[commune as usize].successors;
        if t < reform() || successors.is_empty() {
            return commune;
        }
        let n = successors.len();
        if n == 1 {
            return successors[0];
        }
        let x = (mix(key ^ 0x7061_7274) >> 11) as f64 / (1u64 << 53) as f64;
        let mut sum = 0.0;
        for (i, &s) in successors.iter().enumerate() {
            sum += share(i, n);
            if x < sum {
                return s;
            }
        }
        successors[n - 1]
    }

    /// Whether the tracker places a subject of `commune` by default from the reform on.
    pub(crate) fn is_divided(&self, commune: u16) -> bool {
        self.units[commune as usize].successors.len() > 1
    }

    /// The province a unit in force at `t` lies in.
    pub(crate) fn province_at(&self, unit: u16, t: Local) -> u16 {
        let mut u = unit;
        loop {
            let unit = &self.units[u as usize];
            if unit.level == Level::Province {
                return u;
            }
            u = if t >= reform() { unit.parent_after } else { unit.parent };
        }
    }

    /// The unit that decides on a unit's title at `t`: a commune's district before the reform and its
    /// province after; a district's province. `None` for a province (the ministry decides).
    pub(crate) fn issuer_of(&self, unit: u16, t: Local) -> Option<u16> {
        let u = &self.units[unit as usize];
        match u.level {
            Level::Province => None,
            Level::District => Some(u.parent),
            Level::Commune if t < reform() => Some(u.parent),
            Level::Commune => Some(u.parent_after),
        }
    }

    /// A commune in force at `t`, chosen by population weight (where people live and move to).
    pub(crate) fn pick_commune(&self, rng: &mut Rng, t: Local) -> u16 {
        if t >= reform() { self.after.pick(rng) } else { self.before.pick(rng) }
    }
}

/// The share of a divided commune's people living in its `i`-th successor of `n` (the default first).
fn share(i: usize, n: usize) -> f64 {
    match (n, i) {
        (1, _) => 1.0,
        (_, 0) => DEFAULT_SHARE,
        _ => (1.0 - DEFAULT_SHARE) / (n - 1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hanoi_has_526_communes_then_126() {
        let g = Geography::official(&Scope::Province("01".into())).unwrap();
        assert_eq!(g.old_communes.len(), 526);
        assert_eq!(g.communes_after.len(), 126);
        let divided = g.old_communes.iter().filter(|&&c| g.is_divided(c)).count();
        // 199 were divided; the events show it only for those whose code did not live on.
        assert!((100..=199).contains(&divided), "{divided}");
        let codes: HashSet<&str> = g.units.iter().map(|u| u.code.as_str()).collect();
        assert_eq!(codes.len(), g.units.len(), "codes are unique");
        assert_eq!(g.provinces.iter().map(|&p| g.code(p)).collect::<Vec<_>>(), ["01"]);
        // People after the reform live where the people before it lived.
        let before: f64 = g.old_communes.iter().map(|&c| g.units[c as usize].weight).sum();
        let after: f64 = g.communes_after.iter().map(|&c| g.units[c as usize].weight_after).sum();
        assert!((before - after).abs() < 1e-6 * before, "{before} {after}");
    }

    #[test]
    fn a_divided_communes_people_split_half_to_the_default() {
        let g = Geography::official(&Scope::Province("01".into())).unwrap();
        let divided = *g.old_communes.iter().find(|&&c| g.is_divided(c)).unwrap();
        let default = g.in_force(divided, reform());
        assert_ne!(default, divided);
        let n = 10_000;
        let at_default = (0..n).filter(|&k| g.lives_in(divided, reform(), k) == default).count();
        assert!((4_500..5_500).contains(&at_default), "{at_default}");
        assert_eq!(g.lives_in(divided, reform() - 1, 3), divided, "before the reform it is whole");
        for k in 0..100 {
            assert!(g.units[divided as usize].successors.contains(&g.lives_in(divided, reform(), k)));
        }
    }

    #[test]
    fn a_merged_province_passes_into_the_one_it_joined() {
        let g = Geography::official(&Scope::Province("31".into())).unwrap();
        let hai_duong = g.units.iter().position(|u| u.code == "30").unwrap() as u16;
        let hai_phong = g.units.iter().position(|u| u.code == "31").unwrap() as u16;
        assert_eq!(g.in_force(hai_duong, reform()), hai_phong);
        let commune = g.old_communes.iter().copied().find(|&c| g.province_at(c, reform() - 1) == hai_duong).unwrap();
        let now = g.in_force(commune, reform());
        assert_eq!(g.province_at(now, reform()), hai_phong);
        assert_eq!(g.provinces, [hai_phong]);
    }
}

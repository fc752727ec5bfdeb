//! Geography over time: administrative units established, reparented, renamed and dissolved, and the
//! snapshot of it in force at one date as known at one time (rule 4).

use crate::codes::Level;
use crate::time::Day;
use serde::{Deserialize, Serialize};

/// Dense id of an administrative code (also used for codes not yet established).
pub type UnitId = u32;

/// One change to a unit, as folded from an `admin_unit.*` event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GeoRec {
    pub instant: i64,
    pub day: Day,
    /// Index of the event's meta (its id and recorded time).
    pub ev: u32,
    pub change: Change,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Change {
    Established {
        level: Level,
        parent: Option<UnitId>,
        name: Box<str>,
        /// (latitude, longitude) in degrees, when the event gives them.
        coords: Option<(f64, f64)>,
    },
    Reparented {
        parent: UnitId,
    },
    Renamed {
        name: Box<str>,
    },
    /// `successor` is the default; `others` the other units a divided unit passed into.
    Dissolved {
        successor: UnitId,
        others: Box<[UnitId]>,
    },
}

/// Every change to one unit, sorted by (time, event id) so that the fold does not depend on arrival order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct UnitHistory {
    pub recs: Vec<GeoRec>,
}

/// A unit as it stands at D.
#[derive(Clone, Debug)]
pub struct UnitAt<'a> {
    /// Established ≤ D < dissolved.
    pub in_force: bool,
    pub level: Option<Level>,
    pub parent: Option<UnitId>,
    pub name: &'a str,
    /// Set when the unit was dissolved by D: the default successor.
    pub successor: Option<UnitId>,
    /// The other successors of a unit dissolved by D that was divided between several (else empty).
    pub others: &'a [UnitId],
    /// (latitude, longitude) of its latest establishment, when given.
    pub coords: Option<(f64, f64)>,
    /// The day of its latest establishment by D; for a unit not yet established at D, of its first
    /// establishment after D.
    pub established_on: Option<Day>,
    /// Set when the unit was dissolved by D: the day of that dissolution.
    pub dissolved_on: Option<Day>,
}

pub(crate) const EMPTY: UnitAt<'static> = UnitAt {
    in_force: false,
    level: None,
    parent: None,
    name: "",
    successor: None,
    others: &[],
    coords: None,
    established_on: None,
    dissolved_on: None,
};

/// The geography in force at one date, as known at one time: every unit's state, its children, and
/// where each code leads after following successors.
#[derive(Debug)]
pub struct GeoAt<'a> {
    pub units: Vec<UnitAt<'a>>,
    pub children: Vec<Vec<UnitId>>,
    /// For each code: the unit in force at D that a subject naming it is counted in (rule 4).
    pub resolved: Vec<Option<UnitId>>,
    /// For each code: whether the way to `resolved` passed through a divided unit, so that a subject
    /// naming the code is there only by that unit's default ("placed by default").
    pub by_default: Vec<bool>,
}

impl UnitHistory {
    /// The unit at D, reading only the changes `alive` admits.
    pub(crate) fn at(&self, day: Day, alive: impl Fn(u32) -> bool) -> UnitAt<'_> {
        let mut at = EMPTY;
        for rec in self.recs.iter().filter(|r| r.day <= day && alive(r.ev)) {
            match &rec.change {
                Change::Established { level, parent, name, coords } => {
                    at.in_force = true;
                    at.level = Some(*level);
                    at.parent = *parent;
                    at.name = name;
                    at.coords = *coords;
                    at.successor = None;
                    at.others = &[];
                    at.established_on = Some(rec.day);
                    at.dissolved_on = None;
                }
                Change::Reparented { parent } => at.parent = Some(*parent),
                Change::Renamed { name } => at.name = name,
                Change::Dissolved { successor, others } => {
                    at.in_force = false;
                    at.successor = Some(*successor);
                    at.others = others;
                    at.dissolved_on = Some(rec.day);
                }
            }
        }
        if at.level.is_none() {
            // Not yet established at D: keep the name and level it will have, for messages.
            if let Some((level, name, on)) = self.recs.iter().filter(|r| alive(r.ev)).find_map(|r| match &r.change {
                Change::Established { level, name, .. } => Some((*level, &**name, r.day)),
                _ => None,
            }) {
                at.level = Some(level);
                at.name = name;
                at.established_on = Some(on);
            }
        }
        at
    }

    /// The successors named by every dissolution `alive` admits, whatever its date: (successor, whether
    /// it is the default, whether the unit was divided, the day).
    pub(crate) fn dissolutions(&self, alive: impl Fn(u32) -> bool) -> impl Iterator<Item = (UnitId, bool, bool, Day)> {
        self.recs.iter().filter(move |r| alive(r.ev)).flat_map(|r| match &r.change {
            Change::Dissolved { successor, others } => {
                let divided = !others.is_empty();
                std::iter::once((*successor, true, divided, r.day))
                    .chain(others.iter().map(move |o| (*o, false, divided, r.day)))
                    .collect::<Vec<_>>()
            }
            _ => Vec::new(),
        })
    }

    /// Whether any change (alive or not) established the unit: such a code is "known" to validation.
    pub(crate) fn ever_established(&self) -> bool {
        self.recs.iter().any(|r| matches!(r.change, Change::Established { .. }))
    }
}

impl<'a> GeoAt<'a> {
    pub(crate) fn new(units: Vec<UnitAt<'a>>) -> GeoAt<'a> {
        let n = units.len();
        let mut children = vec![Vec::new(); n];
        for (id, u) in units.iter().enumerate() {
            if u.in_force
                && let Some(p) = u.parent
                && units[p as usize].in_force
            {
                children[p as usize].push(id as UnitId);
            }
        }
        let (resolved, by_default) = (0..n as UnitId)
            .map(|start| {
                let mut cur = start;
                let mut by_default = false;
                // A successor chain longer than the number of units is a cycle: count nowhere.
                for _ in 0..=n {
                    let u = &units[cur as usize];
                    if u.in_force {
                        return (Some(cur), by_default);
                    }
                    by_default |= !u.others.is_empty();
                    let Some(next) = u.successor else { return (None, false) };
                    cur = next;
                }
                (None, false)
            })
            .unzip();
        GeoAt { units, children, resolved, by_default }
    }

    /// The unit and its ancestors in force at D, nearest first.
    pub fn ancestors(&self, unit: UnitId) -> impl Iterator<Item = UnitId> + '_ {
        let mut next = Some(unit);
        let mut steps = 0;
        std::iter::from_fn(move || {
            let cur = next?;
            steps += 1;
            let u = &self.units[cur as usize];
            next = u.parent.filter(|p| steps <= self.units.len() && self.units[*p as usize].in_force);
            Some(cur)
        })
    }

    /// Whether `unit` lies in `scope` at D (a unit lies in itself).
    pub fn within(&self, unit: UnitId, scope: UnitId) -> bool {
        self.ancestors(unit).any(|a| a == scope)
    }
}

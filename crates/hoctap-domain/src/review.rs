//! The review, as data: the one shape that the CLI (`--format json`), the HTTP API and dashboards read.

use crate::codes::{Level, Metric, Title};
use crate::event::Decision;
use crate::time::Day;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts of distinct subjects for one title in one unit at D (rules 5 and 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TitleCounts {
    pub registered: u64,
    pub declared: u64,
    pub evidenced: u64,
    pub recognised: u64,
}

impl TitleCounts {
    pub fn is_zero(&self) -> bool {
        *self == TitleCounts::default()
    }
}

/// One administrative unit in a review.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitReview {
    pub code: String,
    pub level: Level,
    /// The name in force at D.
    pub name: String,
    /// The unit's centre, when its establishment gave one (for maps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<UnitCoordinates>,
    /// Every title with a non-zero count, keyed by its identifier.
    pub titles: BTreeMap<Title, TitleCounts>,
    /// The part of `titles` whose subjects are counted here only because a unit they named was
    /// divided and this is (within) its default successor: no event of theirs says where they live
    /// now. Titles with none are left out; absent when there are none at all.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub placed_by_default: BTreeMap<Title, TitleCounts>,
    /// Citizens located in the unit at D holding a certified digital skill.
    pub digital_skill: u64,
    /// Every metric with a denominator at D (recorded, or summed from the children: rule 7).
    pub baselines: BTreeMap<Metric, u64>,
}

/// A unit's centre in a review, WGS 84 degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct UnitCoordinates {
    pub lat: f64,
    pub lon: f64,
}

/// How a target stands at D (rule 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Behind,
    NoDenominator,
    UnitAbolished,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Behind => "behind",
            Status::NoDenominator => "no_denominator",
            Status::UnitAbolished => "unit_abolished",
        }
    }

    /// Vietnamese label for reports.
    pub fn label_vi(self) -> &'static str {
        match self {
            Status::Met => "Đạt",
            Status::Behind => "Chưa đạt",
            Status::NoDenominator => "Thiếu mẫu số",
            Status::UnitAbolished => "Không còn đơn vị",
        }
    }
}

/// One target checked at D.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetReview {
    /// `issuer/number/year`.
    pub plan: String,
    pub indicator: String,
    pub milestone: i32,
    pub target_percent: f64,
    pub numerator: u64,
    /// `None` when no denominator exists at D (rule 7); a count of units may be 0.
    pub denominator: Option<u64>,
    /// Unrounded; `None` whenever there is no denominator or it is 0 (never 0 % or 100 % in its place).
    pub actual_percent: Option<f64>,
    /// `actual_percent - target_percent`, in percentage points; `None` without an actual.
    pub gap_points: Option<f64>,
    pub status: Status,
}

/// A review of one scope at valid date D as known at transaction time K.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Review {
    pub scope: String,
    pub as_of: Day,
    /// The decision that approved this review (`review.approved`), when it is asked as the approved
    /// review (`hoctap review --approved NUMBER`, `GET /v1/reviews?approved=NUMBER`); absent otherwise.
    /// Its figures are those of the same question asked as known at the approved `known_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<Decision>,
    /// The transaction time the figures are as known at, RFC 3339 in UTC: K as asked, else the
    /// `recordedtime` of the newest event counted, so that asking again with it gives the same figures.
    /// Absent only when no event counted carries a `recordedtime` (events folded by hand in tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_at: Option<String>,
    /// How many events the tracker had recorded by `known_at` (every accepted event, counted or not on D).
    pub events: u64,
    /// The software that computed the review (`hoctap 0.1.0`); set by whoever renders it
    /// (`hoctap_report::stamp`), absent on a review straight from the engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// When it was computed (RFC 3339, UTC); set with `software`. The only field that differs between
    /// two answers to the same question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    /// The milestone year whose targets are listed (`None` when the scope has no targets).
    pub milestone: Option<i32>,
    /// The geography used: the one in force at D (for a review of what became of a unit, the units
    /// in force at D within the units listed).
    pub geography: Geography,
    /// Set only when `scope` is not in force at D but the reform relates it to units that are: a unit
    /// dissolved by D answers with its successors, a unit established after D with its predecessors.
    /// `units` then holds those units' rows (and no row of `scope`), `milestone` is `None` and
    /// `targets` is empty. Absent from every other review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reform: Option<Reform>,
    /// The scope first, then its child units in force at D; for a review with `reform`, the units it
    /// lists, in its order.
    pub units: Vec<UnitReview>,
    pub targets: Vec<TargetReview>,
    /// What the figures may lack: the communes of the scope that reported nothing in the cycle, those
    /// without a denominator the targets need, the targets without a denominator. Absent from a review
    /// with `reform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completeness: Option<Completeness>,
}

/// How complete the data behind a review is, commune by commune (the communes in force at D within the
/// scope). Computed with the review's own counts and denominators, so it says exactly what is missing
/// from those figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Completeness {
    /// The cycle year of D: the year whose registrations, declarations and evidence are counted.
    pub cycle_year: i32,
    /// Communes in force at D within the scope.
    pub communes: u64,
    /// Communes where no subject is counted as registered, declared or evidenced for any title in the
    /// cycle year (recognitions of earlier cycles may still count there), in code order.
    pub silent: Vec<NamedUnit>,
    /// Communes without a denominator (rule 7: recorded for the commune) for a metric the scope's
    /// targets divide by, in code order, with the metrics missing.
    pub without_baseline: Vec<MissingBaselines>,
    /// The targets whose denominator is missing or 0 in the scope (status `no_denominator`).
    pub targets_without_denominator: Vec<TargetName>,
}

/// A unit by code and name (the name in force at D).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedUnit {
    pub code: String,
    pub name: String,
}

/// A commune and the metrics it has no denominator for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingBaselines {
    pub code: String,
    pub name: String,
    pub metrics: Vec<Metric>,
}

/// A target by plan and indicator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetName {
    pub plan: String,
    pub indicator: String,
}

/// What became of a unit that is not in force at D, or what a unit not yet established at D comes from:
/// the answer to a review of a code on a date across the reform of 1 July 2025 (counting-rules §3, "A unit across the
/// reform").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reform {
    /// The code asked about (the review's `scope`).
    pub code: String,
    pub level: Level,
    /// Its name when it was last in force (dissolved), or the name it is established with (not yet).
    pub name: String,
    pub relation: Relation,
    /// `successors`: the day the unit was dissolved (it is in force until the day before);
    /// `predecessors`: the day it is established.
    pub date: Day,
    /// The related units in force at D, in the order of the review's `units` (which hold their figures).
    pub units: Vec<RelatedUnit>,
}

/// How the units of a [`Reform`] relate to the code asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The unit was dissolved by D; these are the units in force at D it passed into, followed through
    /// later dissolutions.
    Successors,
    /// The unit is established after D; these are the units in force at D that the reform dissolves
    /// into it.
    Predecessors,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Successors => "successors",
            Relation::Predecessors => "predecessors",
        }
    }
}

/// One unit of a [`Reform`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelatedUnit {
    pub code: String,
    /// `successors`: the unit the asked code's subjects are counted in at D when no event of theirs
    /// names a newer commune (the end of the chain of default successors, rule 4). `predecessors`:
    /// the asked unit is this unit's default successor, so its subjects are counted there after the
    /// reform.
    pub default: bool,
    /// Whether a unit on the way was divided between several: a successor then received only part of
    /// the asked unit, a predecessor passed only partly into it. Its figures are always the whole
    /// unit's.
    pub divided: bool,
}

/// Which geography a review used, stated for the reader.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Geography {
    /// Units in force at D inside the scope, by level (the scope itself included).
    pub provinces: u64,
    pub districts: u64,
    pub communes: u64,
}

/// One administrative unit in the list of units on a date (`hoctap units`): what a source system needs
/// to name a valid code, and where a dissolved code's subjects are counted now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedUnit {
    pub code: String,
    pub level: Level,
    /// The name in force on D (for a dissolved unit, its last name).
    pub name: String,
    /// Whether the unit is in force on D; `false` for one dissolved by then.
    pub in_force: bool,
    /// The parent in force on D (a province has none; a dissolved unit lists none).
    pub parent: Option<String>,
    /// For a unit dissolved by D: the unit in force on D that its subjects are counted in (its successor,
    /// followed through later dissolutions). Absent for a unit in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
}

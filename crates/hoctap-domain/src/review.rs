//! The review, as data: the one shape that the CLI (`--format json`), the HTTP API and dashboards read.

use crate::codes::{Level, Metric, Title};
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
    /// RFC 3339; absent means "now" (everything known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_at: Option<String>,
    /// The milestone year whose targets are listed (`None` when the scope has no targets).
    pub milestone: Option<i32>,
    /// The geography used: the one in force at D.
    pub geography: Geography,
    /// The scope first, then its child units in force at D.
    pub units: Vec<UnitReview>,
    pub targets: Vec<TargetReview>,
}

/// Which geography a review used, stated for the reader.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Geography {
    /// Units in force at D inside the scope, by level (the scope itself included).
    pub provinces: u64,
    pub districts: u64,
    pub communes: u64,
}

//! What changed between two knowledge times: the figures of one question (scope, D, milestone) as known
//! at K1 and as known at K2, and the events recorded in between that changed them. Pure: the embedded
//! engine and the read models compare their reviews with the same code (`ReviewDiff::between`).

use crate::codes::{Metric, Title};
use crate::engine::Query;
use crate::review::{Review, Status, TargetReview, TitleCounts, UnitReview};
use crate::time::Day;
use serde::Serialize;

/// One side of a diff: the transaction time and how many events were recorded by then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Known {
    /// RFC 3339 in UTC, as the review states it (K as asked, else the newest event counted).
    pub known_at: Option<String>,
    pub events: u64,
}

/// Which figure of a unit changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    Registered,
    Declared,
    Evidenced,
    Recognised,
    /// Citizens holding a certified digital skill.
    DigitalSkill,
    /// A denominator (rule 7), with its metric in `metric`.
    Baseline,
}

impl Count {
    pub fn as_str(self) -> &'static str {
        match self {
            Count::Registered => "registered",
            Count::Declared => "declared",
            Count::Evidenced => "evidenced",
            Count::Recognised => "recognised",
            Count::DigitalSkill => "digital_skill",
            Count::Baseline => "baseline",
        }
    }

    /// This count of a title's counts (0 for the counts that are not a title's).
    pub fn of(self, counts: &TitleCounts) -> u64 {
        match self {
            Count::Registered => counts.registered,
            Count::Declared => counts.declared,
            Count::Evidenced => counts.evidenced,
            Count::Recognised => counts.recognised,
            Count::DigitalSkill | Count::Baseline => 0,
        }
    }

    /// Vietnamese label for reports.
    pub fn label_vi(self) -> &'static str {
        match self {
            Count::Registered => "Đăng ký",
            Count::Declared => "Kê khai",
            Count::Evidenced => "Minh chứng",
            Count::Recognised => "Công nhận",
            Count::DigitalSkill => "Kỹ năng số",
            Count::Baseline => "Mẫu số",
        }
    }
}

/// One figure of one unit whose value differs. `None`: the unit was not listed on that side (not in
/// force, or not yet known), or it had no such baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FigureChange {
    pub unit: String,
    /// The unit's name in force at D, on the later side when it is listed there.
    pub name: String,
    /// The title counted; absent for digital skills and baselines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Title>,
    pub count: Count,
    /// The baseline's metric, for `count: baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// One target whose numerator, denominator or status differs (matched by plan, indicator and milestone).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetChange {
    pub plan: String,
    pub indicator: String,
    pub milestone: i32,
    pub target_percent: f64,
    pub before: Option<TargetSide>,
    pub after: Option<TargetSide>,
}

/// A target's figures on one side of a diff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetSide {
    pub numerator: u64,
    pub denominator: Option<u64>,
    pub actual_percent: Option<f64>,
    pub status: Status,
}

/// An event recorded between the two knowledge times that changed some figure of the question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangedBy {
    pub id: uuid::Uuid,
    /// The event's type without prefix and version, e.g. `recognition.granted`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: String,
    pub subject: String,
    /// RFC 3339 in UTC.
    pub recordedtime: String,
}

/// The same question as known at two times.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewDiff {
    pub scope: String,
    pub as_of: Day,
    pub milestone: Option<i32>,
    pub before: Known,
    pub after: Known,
    /// Every figure that differs, unit by unit in the order of the later review.
    pub figures: Vec<FigureChange>,
    pub targets: Vec<TargetChange>,
    /// The events recorded after `before.known_at` and by `after.known_at` that changed a figure of
    /// the question, in the order they were recorded (then by id); absent only from
    /// [`ReviewDiff::between`] called without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<ChangedBy>>,
}

impl ReviewDiff {
    /// The second question of a diff of `query`, whose review is `before`: the same scope and date as
    /// known at `vs` (`None`: now), with the milestone the first review used, so that both compare the
    /// same targets.
    pub fn later(query: &Query, before: &Review, vs: Option<i64>) -> Query {
        Query { known_at: vs, milestone: query.milestone.or(before.milestone), ..query.clone() }
    }

    /// The first knowledge time of a diff of `query` against the same question as known at `vs`, when
    /// events can have been recorded in between (`vs` is after it, or now); `None` otherwise.
    pub fn since(query: &Query, vs: Option<i64>) -> Option<i64> {
        query.known_at.filter(|&from| vs.is_none_or(|to| to > from))
    }

    /// Compares two reviews of the same question (scope, D, milestone) as known at two times.
    pub fn between(before: &Review, after: &Review, events: Option<Vec<ChangedBy>>) -> ReviewDiff {
        let mut figures = Vec::new();
        // The later review's units first, in its order, then those only the earlier one lists.
        let earlier_only = before.units.iter().filter(|b| !after.units.iter().any(|a| a.code == b.code));
        for unit in after.units.iter().chain(earlier_only) {
            let old = before.units.iter().find(|u| u.code == unit.code);
            let new = after.units.iter().find(|u| u.code == unit.code);
            unit_changes(unit, old, new, &mut figures);
        }
        ReviewDiff {
            scope: after.scope.clone(),
            as_of: after.as_of,
            milestone: after.milestone.or(before.milestone),
            before: Known { known_at: before.known_at.clone(), events: before.events },
            after: Known { known_at: after.known_at.clone(), events: after.events },
            figures,
            targets: target_changes(&before.targets, &after.targets),
            events,
        }
    }

    /// Whether no figure and no target changed.
    pub fn is_empty(&self) -> bool {
        self.figures.is_empty() && self.targets.is_empty()
    }
}

fn unit_changes(unit: &UnitReview, old: Option<&UnitReview>, new: Option<&UnitReview>, out: &mut Vec<FigureChange>) {
    let change = |title, count, metric, before, after| FigureChange {
        unit: unit.code.clone(),
        name: unit.name.clone(),
        title,
        count,
        metric,
        before,
        after,
    };
    let counts = |u: Option<&UnitReview>, title: &Title| u.map(|u| u.titles.get(title).copied().unwrap_or_default());
    let mut titles: Vec<Title> = old.into_iter().chain(new).flat_map(|u| u.titles.keys().copied()).collect();
    titles.sort_unstable();
    titles.dedup();
    for title in titles {
        let (b, a) = (counts(old, &title), counts(new, &title));
        for count in [Count::Registered, Count::Declared, Count::Evidenced, Count::Recognised] {
            let (before, after) = (b.map(|c| count.of(&c)), a.map(|c| count.of(&c)));
            if differs(before, after) {
                out.push(change(Some(title), count, None, before, after));
            }
        }
    }
    let (before, after) = (old.map(|u| u.digital_skill), new.map(|u| u.digital_skill));
    if differs(before, after) {
        out.push(change(None, Count::DigitalSkill, None, before, after));
    }
    let mut metrics: Vec<Metric> = old.into_iter().chain(new).flat_map(|u| u.baselines.keys().copied()).collect();
    metrics.sort_unstable();
    metrics.dedup();
    for metric in metrics {
        let (before, after) = (old.and_then(|u| u.baselines.get(&metric)), new.and_then(|u| u.baselines.get(&metric)));
        if before != after {
            out.push(change(None, Count::Baseline, Some(metric), before.copied(), after.copied()));
        }
    }
}

/// A count absent on one side (its unit not listed there) is zero for the comparison.
fn differs(before: Option<u64>, after: Option<u64>) -> bool {
    before.unwrap_or(0) != after.unwrap_or(0)
}

fn target_changes(before: &[TargetReview], after: &[TargetReview]) -> Vec<TargetChange> {
    let same = |a: &TargetReview, b: &TargetReview| {
        a.plan == b.plan && a.indicator == b.indicator && a.milestone == b.milestone
    };
    let side = |t: &TargetReview| TargetSide {
        numerator: t.numerator,
        denominator: t.denominator,
        actual_percent: t.actual_percent,
        status: t.status,
    };
    let earlier_only = before.iter().filter(|b| !after.iter().any(|a| same(a, b)));
    after
        .iter()
        .chain(earlier_only)
        .filter_map(|t| {
            let old = before.iter().find(|b| same(b, t)).map(side);
            let new = after.iter().find(|a| same(a, t)).map(side);
            (old != new).then(|| TargetChange {
                plan: t.plan.clone(),
                indicator: t.indicator.clone(),
                milestone: t.milestone,
                target_percent: t.target_percent,
                before: old,
                after: new,
            })
        })
        .collect()
}

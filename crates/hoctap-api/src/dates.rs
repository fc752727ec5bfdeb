//! The dates of a series: every day, week, month end or year end between two days.

use chrono::{Datelike, NaiveDate};
use hoctap_domain::Day;
use hoctap_domain::codes::Title;
use hoctap_domain::review::TitleCounts;
use serde::Serialize;

/// The most points one series answer holds (a month series of the whole campaign is 120).
pub const MAX_POINTS: usize = 1000;

/// How far apart the points of a series are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Every day from `from` to `to`.
    Day,
    /// `from`, `from` + 7 days, … up to `to`.
    Week,
    /// The last day of every month, from the end of `from`'s month up to `to`.
    Month,
    /// 31 December of every year, from `from`'s year up to `to`.
    Year,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Day, Step::Week, Step::Month, Step::Year];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Day => "day",
            Step::Week => "week",
            Step::Month => "month",
            Step::Year => "year",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The answer of `GET /v1/units/{code}/series`, and of `hoctap series --format json` for the same
/// question: one title's four counts in one unit on each date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Series {
    pub unit: String,
    pub title: Title,
    pub step: Step,
    /// RFC 3339 in UTC as in a review; `null` = as known now.
    pub known_at: Option<String>,
    pub points: Vec<Point>,
}

/// One date of a [`Series`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    pub as_of: Day,
    #[serde(flatten)]
    pub counts: TitleCounts,
}

impl Series {
    /// The series of `points` (as the store and the engine give them: date and counts).
    pub fn new(
        unit: String,
        title: Title,
        step: Step,
        known_at: Option<i64>,
        points: Vec<(Day, TitleCounts)>,
    ) -> Series {
        let points = points.into_iter().map(|(as_of, counts)| Point { as_of, counts }).collect();
        Series { unit, title, step, known_at: known_at.map(hoctap_domain::time::format_instant), points }
    }
}

/// A series would have more than the allowed number of points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more than {max} points")]
pub struct TooManyPoints {
    pub max: usize,
}

/// The dates of a series from `from` to `to` (both included, as bounds: a month step lands on month
/// ends, so `from` itself is a point only when it is one), in order. Empty when `to < from` or when no
/// step lands in between. Stops counting, rather than allocating, past `max`.
pub fn dates(from: Day, to: Day, step: Step, max: usize) -> Result<Vec<Day>, TooManyPoints> {
    let mut out = Vec::new();
    let mut next = match step {
        Step::Day | Step::Week => Some(from.date()),
        Step::Month => month_end(from.date()),
        Step::Year => NaiveDate::from_ymd_opt(from.year(), 12, 31),
    };
    while let Some(d) = next.filter(|d| *d <= to.date()) {
        if out.len() == max {
            return Err(TooManyPoints { max });
        }
        out.push(Day::from_date(d));
        next = match step {
            Step::Day => d.succ_opt(),
            Step::Week => d.checked_add_days(chrono::Days::new(7)),
            Step::Month => d.succ_opt().and_then(month_end),
            Step::Year => NaiveDate::from_ymd_opt(d.year() + 1, 12, 31),
        };
    }
    Ok(out)
}

/// The last day of `d`'s month.
fn month_end(d: NaiveDate) -> Option<NaiveDate> {
    let (year, month) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(year, month, 1)?.pred_opt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    fn texts(from: &str, to: &str, step: Step) -> Vec<String> {
        dates(day(from), day(to), step, MAX_POINTS).unwrap().iter().map(Day::to_string).collect()
    }

    #[test]
    fn months_land_on_month_ends_within_the_bounds() {
        assert_eq!(
            texts("2024-01-15", "2024-04-30", Step::Month),
            ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]
        );
        assert_eq!(texts("2025-01-31", "2025-03-30", Step::Month), ["2025-01-31", "2025-02-28"]);
        assert_eq!(texts("2025-11-01", "2026-01-31", Step::Month), ["2025-11-30", "2025-12-31", "2026-01-31"]);
        assert!(texts("2025-01-02", "2025-01-30", Step::Month).is_empty());
        assert_eq!(dates(day("2021-01-01"), day("2030-12-31"), Step::Month, MAX_POINTS).unwrap().len(), 120);
    }

    #[test]
    fn days_weeks_and_years() {
        assert_eq!(texts("2025-02-27", "2025-03-01", Step::Day), ["2025-02-27", "2025-02-28", "2025-03-01"]);
        assert_eq!(texts("2025-01-01", "2025-01-15", Step::Week), ["2025-01-01", "2025-01-08", "2025-01-15"]);
        assert_eq!(texts("2021-06-30", "2023-12-30", Step::Year), ["2021-12-31", "2022-12-31"]);
        assert_eq!(texts("2025-03-01", "2025-03-01", Step::Day), ["2025-03-01"]);
        assert!(texts("2025-03-02", "2025-03-01", Step::Day).is_empty());
        assert_eq!(texts("9999-12-31", "9999-12-31", Step::Month), ["9999-12-31"]);
    }

    #[test]
    fn too_many_points_stops_early() {
        assert_eq!(dates(day("2025-01-01"), day("2025-01-03"), Step::Day, 3).unwrap().len(), 3);
        assert_eq!(dates(day("2025-01-01"), day("2025-01-04"), Step::Day, 3), Err(TooManyPoints { max: 3 }));
        assert!(dates(day("0001-01-01"), day("9999-12-31"), Step::Day, MAX_POINTS).is_err());
    }

    #[test]
    fn steps_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Step::parse("Month"), None);
    }
}

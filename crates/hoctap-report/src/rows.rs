//! The CSV report: one long-format table that spreadsheets, pandas and R read without knowing our sections.
//!
//! Units and targets have different columns, and several CSV files per review are awkward to hand around,
//! so every figure is one row of a single table: `section` says which kind it is and cells that do not
//! apply stay empty. Numbers are unrounded and missing percentages are empty cells, never 0.

use hoctap_domain::review::{Reform, Relation, Review, TargetReview, TitleCounts, UnitReview};

/// The columns, in order; part of what downstream scripts rely on.
pub(crate) const HEADER: [&str; 25] = [
    "section",
    "scope",
    "as_of",
    "known_at",
    "unit_code",
    "unit_level",
    "unit_name",
    "title",
    "measure",
    "value",
    "plan",
    "indicator",
    "milestone",
    "target_percent",
    "actual_percent",
    "gap_points",
    "numerator",
    "denominator",
    "status",
    "events",
    "software",
    "generated_at",
    "approved_number",
    "approved_issuer",
    "approved_date",
];

/// Renders several reviews into one table; every row carries its scope, `as_of` and `known_at`, so the
/// phase and the final review can share a file.
pub(crate) fn render(reviews: &[&Review]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // A `Vec<u8>` sink never fails and every record has HEADER's length, so the writer cannot error;
    // the expects state that rather than burden callers with a Result that is always Ok.
    writer.write_record(HEADER).expect("writing CSV into memory cannot fail");
    for review in reviews {
        for record in records(review) {
            writer.write_record(&record).expect("writing CSV into memory cannot fail");
        }
    }
    let bytes = writer.into_inner().expect("flushing CSV into memory cannot fail");
    // Every cell came from a Rust `String`, so the bytes are UTF-8.
    String::from_utf8(bytes).expect("CSV built from Strings is UTF-8")
}

/// A row as cells in HEADER order.
type Record = [String; 25];

fn records(review: &Review) -> Vec<Record> {
    let mut out = Vec::new();
    if let Some(reform) = &review.reform {
        out.extend(reform_rows(review, reform));
    }
    for unit in &review.units {
        for (title, counts) in &unit.titles {
            for (measure, value) in measures(counts) {
                out.push(unit_row(review, unit, title.as_str(), measure, value));
            }
        }
        // Only where some subjects are placed by a divided commune's default (counting-rules §3).
        for (title, counts) in &unit.placed_by_default {
            for (measure, value) in measures(counts) {
                out.push(unit_row(review, unit, title.as_str(), &format!("placed_by_default:{measure}"), value));
            }
        }
        out.push(unit_row(review, unit, "", "digital_skill", unit.digital_skill));
        for (metric, value) in &unit.baselines {
            let measure = format!("baseline:{}", metric.as_str());
            out.push(unit_row(review, unit, "", &measure, *value));
        }
    }
    for target in &review.targets {
        out.push(target_row(review, target));
    }
    out
}

/// A review of a unit not in force on D (counting-rules §3, "A unit across the reform"): first the asked unit
/// (`measure` = `dissolved_on` or `established_on`, the date in `value`), then one row per related unit in order
/// (`measure` = `successor` or `predecessor`, `status` = `default`, `divided`, `default+divided` or empty); the related
/// units' figures follow as ordinary `unit` rows.
fn reform_rows(review: &Review, reform: &Reform) -> Vec<Record> {
    let (date_measure, related) = match reform.relation {
        Relation::Successors => ("dissolved_on", "successor"),
        Relation::Predecessors => ("established_on", "predecessor"),
    };
    let mut first = empty_record(review, "reform");
    first[4] = reform.code.clone();
    first[5] = reform.level.as_str().to_owned();
    first[6] = reform.name.clone();
    first[8] = date_measure.to_owned();
    first[9] = reform.date.to_string();
    let mut out = vec![first];
    for unit in &reform.units {
        let mut record = empty_record(review, "reform");
        record[4] = unit.code.clone();
        if let Some(row) = review.units.iter().find(|u| u.code == unit.code) {
            record[5] = row.level.as_str().to_owned();
            record[6] = row.name.clone();
        }
        record[8] = related.to_owned();
        let flags: Vec<&str> = [(unit.default, "default"), (unit.divided, "divided")]
            .into_iter()
            .filter_map(|(on, flag)| on.then_some(flag))
            .collect();
        record[18] = flags.join("+");
        out.push(record);
    }
    out
}

/// The four counts of rules 5 and 6, named as in the JSON.
fn measures(counts: &TitleCounts) -> [(&'static str, u64); 4] {
    [
        ("registered", counts.registered),
        ("declared", counts.declared),
        ("evidenced", counts.evidenced),
        ("recognised", counts.recognised),
    ]
}

fn empty_record(review: &Review, section: &str) -> Record {
    let mut record: Record = Default::default();
    record[0] = section.to_owned();
    record[1] = review.scope.clone();
    record[2] = review.as_of.to_string();
    record[3] = review.known_at.clone().unwrap_or_default();
    record[19] = review.events.to_string();
    record[20] = review.software.clone().unwrap_or_default();
    record[21] = review.generated_at.clone().unwrap_or_default();
    // Empty unless the review is asked as the one a decision approved.
    if let Some(decision) = &review.approved {
        record[22] = decision.number.clone();
        record[23] = decision.issuer.clone();
        record[24] = decision.date.to_string();
    }
    record
}

fn unit_row(review: &Review, unit: &UnitReview, title: &str, measure: &str, value: u64) -> Record {
    let mut record = empty_record(review, "unit");
    record[4] = unit.code.clone();
    record[5] = unit.level.as_str().to_owned();
    record[6] = unit.name.clone();
    record[7] = title.to_owned();
    record[8] = measure.to_owned();
    record[9] = value.to_string();
    record
}

/// `f64`'s `Display` is the shortest text that reads back to the same value: unrounded, and no noise digits.
fn number(value: f64) -> String {
    if value.is_finite() { value.to_string() } else { String::new() }
}

fn target_row(review: &Review, target: &TargetReview) -> Record {
    let mut record = empty_record(review, "target");
    record[10] = target.plan.clone();
    record[11] = target.indicator.clone();
    record[12] = target.milestone.to_string();
    record[13] = number(target.target_percent);
    record[14] = target.actual_percent.map(number).unwrap_or_default();
    record[15] = target.gap_points.map(number).unwrap_or_default();
    record[16] = target.numerator.to_string();
    record[17] = target.denominator.map(|d| d.to_string()).unwrap_or_default();
    record[18] = target.status.as_str().to_owned();
    record
}

//! Pure rendering of a [`Review`] into the formats people and programs read: JSON, a terminal table, CSV, HTML.
//!
//! Nothing here does I/O or computes a counting rule: every figure comes from the `Review`, which the
//! domain crate built. The only numbers derived here are display shares (`% công nhận` of a unit against
//! its matching baseline), computed like rule 7: no positive denominator, no percentage.
//!
//! Decisions a reader of the output should know:
//! - Human formats (terminal, HTML) use Vietnamese number style: `2.480.000`, `52,35`; percentages are
//!   rounded to two decimals there only. A missing figure is `—`, never `0`.
//! - Machine formats (JSON, CSV) keep unrounded numbers; a missing percentage is `null` / an empty cell.
//! - CSV is one long table (see [`csv`]); baselines appear as `measure = baseline:<metric>`.

mod dashboard;
mod diff;
mod figures;
mod page;
mod rows;
pub mod sheet;
mod terminal;

pub use dashboard::{approvals_json, labels_json};
pub use terminal::Rows;

use hoctap_domain::review::Review;

/// The software that computes reviews, as every review states it: `hoctap 0.1.0`.
pub const SOFTWARE: &str = concat!("hoctap ", env!("CARGO_PKG_VERSION"));

/// Marks `review` as computed by this software at `generated_at` (UTC microseconds, from the caller's
/// clock: this crate reads none). The CLI and the HTTP API stamp every review they render, so every
/// format states who computed it and when; the rest of the review depends only on the question.
pub fn stamp(review: &mut Review, generated_at: i64) {
    review.software = Some(SOFTWARE.to_owned());
    review.generated_at = Some(hoctap_domain::time::format_instant(generated_at));
}

/// The review as the JSON contract of `domain.md` ("The review, as data"), pretty-printed.
///
/// The shape is `Review`'s serde output; this function only fixes the formatting so that the CLI
/// and the HTTP API print byte-identical documents.
pub fn json(review: &Review) -> String {
    // Every map key in a Review is a string-like vocabulary value and no field has a fallible
    // Serialize, so serialisation cannot fail.
    serde_json::to_string_pretty(review).expect("a Review always serialises to JSON")
}

/// The review for a terminal: header facts (scope, as of, known at, milestone, geography), the targets
/// table, one table per title counted, and digital skills beside the baselines; `rows` says whether
/// every unit's rows are printed or a summary (the scope's row and the units furthest behind).
pub fn table(review: &Review, rows: Rows) -> String {
    terminal::render(review, rows)
}

/// The audit diff for a terminal: the two knowledge times, the targets and figures that changed, and
/// the first events recorded in between that changed them (the JSON lists every one); `rows` says
/// whether every unit's figures are printed or the scope's own (with a count of the rest).
pub fn diff_table(diff: &hoctap_domain::ReviewDiff, rows: Rows) -> String {
    diff::render(diff, rows)
}

/// The audit diff as data, pretty-printed: `hoctap diff --format json` and `GET /v1/reviews/diff`
/// print the same bytes for the same diff.
pub fn diff_json(diff: &hoctap_domain::ReviewDiff) -> String {
    serde_json::to_string_pretty(diff).expect("a ReviewDiff always serialises to JSON")
}

/// The units established by `as_of` for a terminal (`hoctap units`): those in force with their parent,
/// then those dissolved by then with their successor.
pub fn units_table(units: &[hoctap_domain::review::ListedUnit], as_of: hoctap_domain::Day) -> String {
    terminal::units(units, as_of)
}

/// The same list as JSON: `{"as_of", "known_at"?, "units": [{"code", "level", "name", "in_force",
/// "parent", "successor"?}]}`.
pub fn units_json(
    units: &[hoctap_domain::review::ListedUnit],
    as_of: hoctap_domain::Day,
    known_at: Option<&str>,
) -> String {
    let mut doc = serde_json::Map::new();
    doc.insert("as_of".into(), as_of.to_string().into());
    if let Some(k) = known_at {
        doc.insert("known_at".into(), k.into());
    }
    doc.insert("units".into(), serde_json::to_value(units).expect("a unit list always serialises"));
    serde_json::to_string_pretty(&doc).expect("a JSON value always serialises")
}

/// The review as one long-format CSV table with the header
/// `section,scope,as_of,known_at,unit_code,unit_level,unit_name,title,measure,value,plan,indicator,`
/// `milestone,target_percent,actual_percent,gap_points,numerator,denominator,status,events,software,`
/// `generated_at` (the last three, like `scope`, `as_of` and `known_at`, on every row).
///
/// `section = unit` rows: one per unit, title and measure (`registered`, `declared`, `evidenced`,
/// `recognised`) for every title listed in the unit, one `digital_skill` row per unit and one
/// `baseline:<metric>` row per baseline; the figure is in `value`. `section = target` rows: one per
/// target, with the target columns filled. Cells that do not apply are empty; so is `actual_percent`
/// (and `gap_points`, `denominator`) when missing, never 0.
///
/// A review of a unit not in force on D (with `reform`) starts with `section = reform` rows: the asked
/// unit with `measure = dissolved_on` or `established_on` and the date in `value`, then each related
/// unit with `measure = successor` or `predecessor` and `status` = `default`, `divided`,
/// `default+divided` or empty; the related units' own figures are the `unit` rows.
pub fn csv(review: &Review) -> String {
    rows::render(&[review])
}

/// [`csv`] preceded by a UTF-8 byte order mark: Excel on Windows then reads the file as UTF-8 instead of
/// the machine's code page (which garbles "Hà Nội"). Other readers (pandas, R) skip the mark.
pub fn csv_with_bom(review: &Review) -> String {
    format!("\u{feff}{}", csv(review))
}

/// The review as an Excel workbook (the bytes of an `.xlsx` file): a targets sheet, a wide sheet per
/// title, digital skills and baselines, and what was asked. See [`sheet`] for the sheet names and columns.
pub fn xlsx(review: &Review) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    sheet::render(review)
}

/// Several reviews in one CSV table under one header (each row carries its scope, `as_of` and `known_at`),
/// e.g. the phase review and the final review side by side for a spreadsheet.
pub fn csv_all(reviews: &[&Review]) -> String {
    rows::render(reviews)
}

/// `Hà Nội — đánh giá ngày 2025-12-31`: the title of one review's page.
pub fn page_title(review: &Review) -> String {
    let name = figures::scope_name(review).unwrap_or(review.scope.as_str());
    format!("{name} — đánh giá ngày {}", review.as_of)
}

/// One self-contained HTML page (`lang="vi"`, UTF-8, inline CSS, no script) titled `title` holding every
/// review in order: header facts, targets with status badges and an actual-vs-target bar, unit tables.
/// Pass one review for one file per review, or the phase and final reviews together for one report.
pub fn html(reviews: &[&Review], title: &str) -> String {
    page::render(reviews, title)
}

#[cfg(test)]
mod tests;

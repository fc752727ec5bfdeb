//! The XLSX workbook: what a reviewer opens in Excel, built with `rust_xlsxwriter` (no hand-written XML).
//!
//! Sheets, in order: `Sắp xếp đơn vị` (only for a unit not in force on D: its successors or
//! predecessors, counting-rules §3, "A unit across the reform"), `Chỉ tiêu` (the targets), one wide sheet per title
//! counted (a row per unit, a column per measure), `Kỹ năng số, mẫu số` (digital skills and baselines), and `Câu hỏi`
//! (what was asked: scope, dates, known-at, events, software, generation time). Headers are Vietnamese; counts are
//! numbers, shares are fractions formatted as percentages (`0.00%`), so Excel computes with them and its own ROUND
//! agrees with the other formats. A missing figure is an empty cell, never 0.

use crate::figures::{
    geography_counts, indicator_name_vi, metric_label_vi, metrics_present, milestone_text, plan_name_vi, reform_text,
    related_note, relation_label, scope_heading, share, title_baseline, titles_present,
};
use hoctap_domain::codes::{Metric, Title};
use hoctap_domain::review::{Review, UnitReview};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// The sheet names, stable for scripts that open the workbook: 31 characters at most, no `[]:*?/\`.
pub const TARGETS_SHEET: &str = "Chỉ tiêu";
pub const SKILLS_SHEET: &str = "Kỹ năng số, mẫu số";
pub const ASKED_SHEET: &str = "Câu hỏi";
/// Only in the workbook of a unit not in force on D: what became of it, or what it comes from.
pub const REFORM_SHEET: &str = "Sắp xếp đơn vị";

/// The columns of the reform sheet.
pub const REFORM_HEADERS: [&str; 6] = ["Mã", "Đơn vị", "Cấp", "Quan hệ", "Ghi chú", "Mã quan hệ"];

/// The columns of the targets sheet.
/// Plans and indicators by name first (what a reviewer reads); their codes last (what the data says).
pub const TARGET_HEADERS: [&str; 12] = [
    "Kế hoạch",
    "Chỉ tiêu",
    "Mốc",
    "Mục tiêu",
    "Thực tế",
    "Chênh lệch (điểm %)",
    "Tử số",
    "Mẫu số",
    "Trạng thái",
    "Mã trạng thái",
    "Mã kế hoạch",
    "Mã chỉ tiêu",
];

/// The title's sheet name: its Vietnamese label (`Công dân học tập`).
pub fn title_sheet(title: Title) -> &'static str {
    title.label_vi()
}

struct Formats {
    header: Format,
    percent: Format,
    points: Format,
    count: Format,
    scope: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            header: Format::new().set_bold().set_background_color("#F6F8FA").set_text_wrap(),
            percent: Format::new().set_num_format("0.00%"),
            points: Format::new().set_num_format("+0.00;-0.00;0.00"),
            count: Format::new().set_num_format("#,##0"),
            scope: Format::new().set_bold(),
        }
    }
}

/// The workbook of one review, as the bytes of an `.xlsx` file.
pub fn render(review: &Review) -> Result<Vec<u8>, XlsxError> {
    let f = Formats::new();
    let mut workbook = Workbook::new();
    if review.reform.is_some() {
        reform(workbook.add_worksheet(), review, &f)?;
    }
    targets(workbook.add_worksheet(), review, &f)?;
    for title in titles_present(review) {
        title_sheet_rows(workbook.add_worksheet(), review, title, &f)?;
    }
    skills(workbook.add_worksheet(), review, &f)?;
    asked(workbook.add_worksheet(), review, &f)?;
    workbook.save_to_buffer()
}

fn headers(sheet: &mut Worksheet, cells: &[&str], f: &Formats) -> Result<(), XlsxError> {
    for (col, text) in cells.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *text, &f.header)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.set_row_height(0, 30)?;
    Ok(())
}

fn finish(sheet: &mut Worksheet, rows: u32, cols: u16) -> Result<(), XlsxError> {
    if rows > 0 {
        sheet.autofilter(0, 0, rows, cols - 1)?;
    }
    sheet.autofit();
    Ok(())
}

fn optional(sheet: &mut Worksheet, row: u32, col: u16, value: Option<f64>, format: &Format) -> Result<(), XlsxError> {
    match value {
        Some(v) if v.is_finite() => sheet.write_number_with_format(row, col, v, format).map(|_| ()),
        _ => Ok(()),
    }
}

/// The sentence of the other formats in the first row, then one row per related unit.
fn reform(sheet: &mut Worksheet, review: &Review, f: &Formats) -> Result<(), XlsxError> {
    sheet.set_name(REFORM_SHEET)?;
    headers(sheet, &REFORM_HEADERS, f)?;
    let Some(reform) = &review.reform else { return Ok(()) };
    for (i, unit) in reform.units.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, &unit.code)?;
        if let Some(r) = review.units.iter().find(|u| u.code == unit.code) {
            sheet.write_string(row, 1, &r.name)?;
            sheet.write_string(row, 2, r.level.label_vi())?;
        }
        sheet.write_string(row, 3, relation_label(reform.relation))?;
        sheet.write_string(row, 4, related_note(unit).unwrap_or(""))?;
        sheet.write_string(row, 5, reform.relation.as_str())?;
    }
    let rows = reform.units.len() as u32;
    finish(sheet, rows, REFORM_HEADERS.len() as u16)?;
    if let Some(text) = reform_text(review) {
        sheet.write_string(rows + 2, 0, text)?;
    }
    Ok(())
}

fn targets(sheet: &mut Worksheet, review: &Review, f: &Formats) -> Result<(), XlsxError> {
    sheet.set_name(TARGETS_SHEET)?;
    headers(sheet, &TARGET_HEADERS, f)?;
    for (i, t) in review.targets.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, plan_name_vi(&t.plan))?;
        sheet.write_string(row, 1, indicator_name_vi(&t.indicator))?;
        sheet.write_number(row, 2, f64::from(t.milestone))?;
        sheet.write_number_with_format(row, 3, t.target_percent / 100.0, &f.percent)?;
        optional(sheet, row, 4, t.actual_percent.map(|a| a / 100.0), &f.percent)?;
        optional(sheet, row, 5, t.gap_points, &f.points)?;
        sheet.write_number_with_format(row, 6, t.numerator as f64, &f.count)?;
        optional(sheet, row, 7, t.denominator.map(|d| d as f64), &f.count)?;
        sheet.write_string(row, 8, t.status.label_vi())?;
        sheet.write_string(row, 9, t.status.as_str())?;
        sheet.write_string(row, 10, &t.plan)?;
        sheet.write_string(row, 11, &t.indicator)?;
    }
    finish(sheet, review.targets.len() as u32, TARGET_HEADERS.len() as u16)
}

fn unit_cells(
    sheet: &mut Worksheet,
    row: u32,
    review: &Review,
    unit: &UnitReview,
    f: &Formats,
) -> Result<(), XlsxError> {
    let plain = Format::new();
    let format = if unit.code == review.scope { &f.scope } else { &plain };
    sheet.write_string_with_format(row, 0, &unit.code, format)?;
    sheet.write_string_with_format(row, 1, &unit.name, format)?;
    sheet.write_string_with_format(row, 2, unit.level.label_vi(), format)?;
    Ok(())
}

fn title_sheet_rows(sheet: &mut Worksheet, review: &Review, title: Title, f: &Formats) -> Result<(), XlsxError> {
    sheet.set_name(title_sheet(title))?;
    let baseline = title_baseline(title);
    let mut cells = vec!["Mã", "Đơn vị", "Cấp", "Đăng ký", "Kê khai", "Minh chứng", "Công nhận"];
    if let Some(metric) = baseline {
        cells.push(metric_label_vi(metric));
        cells.push("% công nhận");
    }
    headers(sheet, &cells, f)?;
    for (i, unit) in review.units.iter().enumerate() {
        let row = i as u32 + 1;
        unit_cells(sheet, row, review, unit, f)?;
        let counts = unit.titles.get(&title).copied().unwrap_or_default();
        for (col, value) in
            [counts.registered, counts.declared, counts.evidenced, counts.recognised].into_iter().enumerate()
        {
            sheet.write_number_with_format(row, 3 + col as u16, value as f64, &f.count)?;
        }
        if let Some(metric) = baseline {
            let denominator = unit.baselines.get(&metric).copied();
            optional(sheet, row, 7, denominator.map(|d| d as f64), &f.count)?;
            optional(sheet, row, 8, share(counts.recognised, denominator).map(|s| s / 100.0), &f.percent)?;
        }
    }
    finish(sheet, review.units.len() as u32, cells.len() as u16)
}

fn skills(sheet: &mut Worksheet, review: &Review, f: &Formats) -> Result<(), XlsxError> {
    sheet.set_name(SKILLS_SHEET)?;
    let metrics: Vec<Metric> = metrics_present(review);
    let mut cells = vec!["Mã", "Đơn vị", "Cấp", "Kỹ năng số", "% người lớn"];
    cells.extend(metrics.iter().map(|m| metric_label_vi(*m)));
    headers(sheet, &cells, f)?;
    for (i, unit) in review.units.iter().enumerate() {
        let row = i as u32 + 1;
        unit_cells(sheet, row, review, unit, f)?;
        sheet.write_number_with_format(row, 3, unit.digital_skill as f64, &f.count)?;
        let adults = unit.baselines.get(&Metric::Adults).copied();
        optional(sheet, row, 4, share(unit.digital_skill, adults).map(|s| s / 100.0), &f.percent)?;
        for (j, metric) in metrics.iter().enumerate() {
            optional(sheet, row, 5 + j as u16, unit.baselines.get(metric).map(|v| *v as f64), &f.count)?;
        }
    }
    finish(sheet, review.units.len() as u32, cells.len() as u16)
}

fn asked(sheet: &mut Worksheet, review: &Review, f: &Formats) -> Result<(), XlsxError> {
    sheet.set_name(ASKED_SHEET)?;
    headers(sheet, &["Câu hỏi", "Giá trị", "Mã"], f)?;
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    let mut rows: Vec<(&str, String, &str)> = vec![
        ("Phạm vi", scope_heading(review), "scope"),
        ("Ngày đánh giá", review.as_of.to_string(), "as_of"),
        ("Dữ liệu đến (thời điểm ghi nhận)", text(review.known_at.as_ref()), "known_at"),
        ("Mốc", milestone_text(review.milestone), "milestone"),
        ("Số sự kiện đã ghi nhận", review.events.to_string(), "events"),
        ("Địa bàn", geography_counts(review), "geography"),
        ("Phần mềm", text(review.software.as_ref()), "software"),
        ("Lập lúc", text(review.generated_at.as_ref()), "generated_at"),
    ];
    if let Some(decision) = &review.approved {
        rows.push(("Phê duyệt: số quyết định", decision.number.clone(), "approved_number"));
        rows.push(("Phê duyệt: cơ quan ban hành", decision.issuer.clone(), "approved_issuer"));
        rows.push(("Phê duyệt: ngày", decision.date.to_string(), "approved_date"));
    }
    // Last, so that the rows above keep their places; only when the scope is not in force on D.
    if let Some(text) = reform_text(review) {
        rows.push(("Sắp xếp đơn vị hành chính", text, "reform"));
    }
    for (i, (label, value, key)) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, *label)?;
        if *key == "events" {
            sheet.write_number_with_format(row, 1, review.events as f64, &f.count)?;
        } else {
            sheet.write_string(row, 1, value)?;
        }
        sheet.write_string(row, 2, *key)?;
    }
    sheet.autofit();
    Ok(())
}

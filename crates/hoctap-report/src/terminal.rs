//! The terminal report: what a reviewer at a Hội Khuyến học office reads, header facts then boxed tables.
//!
//! Layout is left to `comfy-table`, which measures cells with `unicode-width`, so Vietnamese letters
//! (one column each, whether precomposed or built with combining marks) keep the borders straight.
//! Its `tty` feature is off: a report is a string, and must not change with the terminal that renders it.

use crate::figures::{
    BY_DEFAULT_HEADING, BY_DEFAULT_NOTE, MISSING, any_placed_by_default, count, gap, geography_text, known_at_text,
    metric_heading, metrics_present, milestone_text, opt_count, opt_percent, percent, scope_heading, share,
    status_text, title_baseline, title_heading, titles_present,
};
use comfy_table::{CellAlignment, Table, presets};
use hoctap_domain::codes::{Metric, Title};
use hoctap_domain::review::{Review, UnitReview};
use std::fmt::Write as _;

/// Renders the whole review.
pub(crate) fn render(review: &Review) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; the Result only exists because `fmt::Write` is general.
    let _ = write_review(&mut out, review);
    out
}

fn write_review(out: &mut String, review: &Review) -> std::fmt::Result {
    writeln!(out, "Đánh giá xây dựng xã hội học tập: {}", scope_heading(review))?;
    writeln!(out, "Ngày đánh giá (as of): {}", review.as_of)?;
    writeln!(out, "Dữ liệu đến (known at): {}", known_at_text(review))?;
    writeln!(out, "Mốc (milestone): {}", milestone_text(review.milestone))?;
    writeln!(out, "{}", geography_text(review))?;

    writeln!(out)?;
    writeln!(out, "Chỉ tiêu (targets)")?;
    if review.targets.is_empty() {
        writeln!(out, "Không có chỉ tiêu nào cho phạm vi và mốc này.")?;
    } else {
        writeln!(out, "{}", targets_table(review))?;
    }

    for title in titles_present(review) {
        writeln!(out)?;
        writeln!(out, "{}", title_heading(title))?;
        writeln!(out, "{}", title_table(review, title))?;
        if any_placed_by_default(review, title) {
            writeln!(out, "{BY_DEFAULT_NOTE}")?;
        }
    }
    if review.units.iter().all(|u| u.titles.is_empty()) {
        writeln!(out)?;
        writeln!(out, "Chưa có đơn vị nào có số liệu danh hiệu tại ngày {}.", review.as_of)?;
    }

    writeln!(out)?;
    writeln!(out, "Kỹ năng số (digital_skill) và mẫu số (baselines)")?;
    writeln!(out, "{}", skills_table(review))?;
    Ok(())
}

fn new_table(header: Vec<String>) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_header(header);
    table
}

/// Numbers are right-aligned so that digits of the same magnitude line up down a column.
fn align_right(table: &mut Table, columns: impl IntoIterator<Item = usize>) {
    for index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn targets_table(review: &Review) -> Table {
    let header =
        ["Kế hoạch", "Chỉ tiêu", "Mốc", "Mục tiêu %", "Thực tế %", "Chênh lệch", "Tử số", "Mẫu số", "Trạng thái"];
    let mut table = new_table(header.iter().map(|h| (*h).to_owned()).collect());
    for target in &review.targets {
        table.add_row(vec![
            target.plan.clone(),
            target.indicator.clone(),
            target.milestone.to_string(),
            percent(target.target_percent),
            opt_percent(target.actual_percent),
            gap(target.gap_points),
            count(target.numerator),
            opt_count(target.denominator),
            status_text(target.status),
        ]);
    }
    align_right(&mut table, 2..8);
    table
}

fn unit_columns(unit: &UnitReview) -> Vec<String> {
    vec![unit.code.clone(), unit.name.clone(), unit.level.label_vi().to_owned()]
}

/// One table per title keeps the width readable on an 80–120 column terminal; eight titles side by side would not.
fn title_table(review: &Review, title: Title) -> Table {
    let baseline = title_baseline(title);
    let mut header: Vec<String> = ["Mã", "Đơn vị", "Cấp", "Đăng ký", "Kê khai", "Minh chứng", "Công nhận"]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    let by_default = any_placed_by_default(review, title);
    if by_default {
        header.push(BY_DEFAULT_HEADING.to_owned());
    }
    if let Some(metric) = baseline {
        header.push(metric_heading(metric));
        header.push("% công nhận".to_owned());
    }
    let width = header.len();
    let mut table = new_table(header);
    for unit in &review.units {
        let counts = unit.titles.get(&title).copied().unwrap_or_default();
        let mut row = unit_columns(unit);
        row.extend([counts.registered, counts.declared, counts.evidenced, counts.recognised].map(count));
        if by_default {
            row.push(count(unit.placed_by_default.get(&title).map_or(0, |c| c.recognised)));
        }
        if let Some(metric) = baseline {
            let denominator = unit.baselines.get(&metric).copied();
            row.push(opt_count(denominator));
            row.push(opt_percent(share(counts.recognised, denominator)));
        }
        table.add_row(row);
    }
    align_right(&mut table, 3..width);
    table
}

/// Digital skill beside every denominator, so a reviewer can check a target's denominator unit by unit.
fn skills_table(review: &Review) -> Table {
    let metrics = metrics_present(review);
    let mut header: Vec<String> =
        ["Mã", "Đơn vị", "Cấp", "Kỹ năng số", "% người lớn"].iter().map(|h| (*h).to_owned()).collect();
    header.extend(metrics.iter().map(|m| metric_heading(*m)));
    let width = header.len();
    let mut table = new_table(header);
    for unit in &review.units {
        let adults = unit.baselines.get(&Metric::Adults).copied();
        let mut row = unit_columns(unit);
        row.push(count(unit.digital_skill));
        row.push(opt_percent(share(unit.digital_skill, adults)));
        row.extend(metrics.iter().map(|m| unit.baselines.get(m).map_or_else(|| MISSING.to_owned(), |v| count(*v))));
        table.add_row(row);
    }
    align_right(&mut table, 3..width);
    table
}

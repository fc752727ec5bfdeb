//! The audit diff for a terminal: the figures and targets that changed between two knowledge times,
//! and the events recorded in between that changed them.

use crate::figures::{
    MISSING, count, date_vi, metric_heading, milestone_text, opt_count, opt_percent, status_text, title_heading,
};
use crate::terminal::{Rows, align_right, new_table};
use hoctap_domain::diff::{Count, Known, ReviewDiff, TargetSide};
use std::fmt::Write as _;

/// Events listed in the terminal diff, every row or a summary; the JSON lists every one.
const EVENTS_SHOWN: usize = 50;
const EVENTS_IN_SUMMARY: usize = 10;

pub(crate) fn render(diff: &ReviewDiff, rows: Rows) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_diff(&mut out, diff, rows);
    out
}

fn known(side: &Known) -> String {
    format!("{} ({} sự kiện / events)", side.known_at.as_deref().unwrap_or(MISSING), count(side.events))
}

fn signed(before: Option<u64>, after: Option<u64>) -> String {
    let delta = i128::from(after.unwrap_or(0)) - i128::from(before.unwrap_or(0));
    if delta > 0 { format!("+{}", count(delta as u64)) } else { format!("−{}", count(delta.unsigned_abs() as u64)) }
}

fn target_side(side: &Option<TargetSide>) -> [String; 3] {
    match side {
        Some(t) => [
            format!("{} / {}", count(t.numerator), opt_count(t.denominator)),
            opt_percent(t.actual_percent),
            status_text(t.status),
        ],
        None => [MISSING.to_owned(), MISSING.to_owned(), MISSING.to_owned()],
    }
}

fn write_diff(out: &mut String, diff: &ReviewDiff, rows: Rows) -> std::fmt::Result {
    writeln!(out, "Thay đổi giữa hai thời điểm dữ liệu (audit diff): phạm vi {}", diff.scope)?;
    writeln!(out, "Ngày đánh giá (as of): {} ({})", diff.as_of, date_vi(diff.as_of))?;
    writeln!(out, "Mốc (milestone): {}", milestone_text(diff.milestone))?;
    writeln!(out, "Trước (known at): {}", known(&diff.before))?;
    writeln!(out, "Sau (vs): {}", known(&diff.after))?;
    if diff.is_empty() {
        writeln!(out)?;
        writeln!(out, "Không có số liệu nào thay đổi (no figure changed).")?;
    }

    if !diff.targets.is_empty() {
        writeln!(out)?;
        writeln!(out, "Chỉ tiêu thay đổi (targets that changed)")?;
        let mut table = new_table(
            [
                "Kế hoạch",
                "Chỉ tiêu",
                "Mục tiêu %",
                "Trước: tử / mẫu",
                "Trước %",
                "Trước",
                "Sau: tử / mẫu",
                "Sau %",
                "Sau",
            ]
            .map(String::from)
            .to_vec(),
        );
        for t in &diff.targets {
            let mut row = vec![t.plan.clone(), t.indicator.clone(), crate::figures::percent(t.target_percent)];
            row.extend(target_side(&t.before));
            row.extend(target_side(&t.after));
            table.add_row(row);
        }
        align_right(&mut table, [2, 3, 4, 6, 7]);
        writeln!(out, "{table}")?;
    }

    // A summary keeps the scope's own figures; the units' figures are counted.
    let figures: Vec<_> = match rows {
        Rows::All => diff.figures.iter().collect(),
        Rows::Summary => diff.figures.iter().filter(|f| f.unit == diff.scope).collect(),
    };
    if !figures.is_empty() {
        writeln!(out)?;
        writeln!(out, "Số liệu thay đổi (figures that changed)")?;
        let mut table = new_table(
            ["Mã", "Đơn vị", "Danh hiệu / mẫu số", "Chỉ số", "Trước", "Sau", "Chênh lệch"].map(String::from).to_vec(),
        );
        for f in &figures {
            let what = match (f.title, f.metric) {
                (Some(title), _) => title_heading(title),
                (None, Some(metric)) => metric_heading(metric),
                (None, None) => String::new(),
            };
            let count_label = format!("{} ({})", f.count.label_vi(), f.count.as_str());
            let change = if f.count == Count::Baseline && (f.before.is_none() || f.after.is_none()) {
                MISSING.to_owned()
            } else {
                signed(f.before, f.after)
            };
            table.add_row(vec![
                f.unit.clone(),
                f.name.clone(),
                what,
                count_label,
                opt_count(f.before),
                opt_count(f.after),
                change,
            ]);
        }
        align_right(&mut table, [4, 5, 6]);
        writeln!(out, "{table}")?;
    }
    if figures.len() < diff.figures.len() {
        let units = {
            let mut codes: Vec<&str> =
                diff.figures.iter().filter(|f| f.unit != diff.scope).map(|f| f.unit.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            codes.len()
        };
        writeln!(
            out,
            "Cùng {} số liệu thay đổi ở {} đơn vị trực thuộc; --units all in tất cả (and {} changed figures in {} units within; --units all prints every one).",
            count((diff.figures.len() - figures.len()) as u64),
            count(units as u64),
            diff.figures.len() - figures.len(),
            units
        )?;
    }

    if let Some(events) = &diff.events {
        writeln!(out)?;
        writeln!(
            out,
            "Sự kiện ghi nhận trong khoảng làm thay đổi số liệu (events recorded in between that changed them): {}",
            count(events.len() as u64)
        )?;
        if !events.is_empty() {
            let mut table =
                new_table(["Ghi nhận lúc", "Mã sự kiện", "Loại", "Nguồn", "Đối tượng"].map(String::from).to_vec());
            let shown = match rows {
                Rows::All => EVENTS_SHOWN,
                Rows::Summary => EVENTS_IN_SUMMARY,
            };
            for e in events.iter().take(shown) {
                table.add_row(vec![
                    e.recordedtime.clone(),
                    e.id.to_string(),
                    e.event_type.clone(),
                    e.source.clone(),
                    e.subject.clone(),
                ]);
            }
            writeln!(out, "{table}")?;
            if events.len() > shown {
                writeln!(
                    out,
                    "… và {} sự kiện khác; --format json liệt kê tất cả (and {} more; --format json lists every one).",
                    count((events.len() - shown) as u64),
                    events.len() - shown
                )?;
            }
        }
    }
    Ok(())
}

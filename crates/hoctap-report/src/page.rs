//! The HTML report: one self-contained page (inline CSS, no script, no external asset) holding one or more reviews.
//!
//! It is mailed around and opened offline at a Hội Khuyến học office, so nothing may be fetched. Every
//! value that came from events (names, codes, plan ids) goes through [`escape`]: a unit name is data,
//! and data must never become markup.

use crate::figures::{
    BY_DEFAULT_HEADING, BY_DEFAULT_NOTE, MISSING, any_placed_by_default, approved_text, count, gap, generated_text,
    geography_counts, indicator_name_vi, known_at_text, metric_heading, metrics_present, milestone_text,
    no_targets_text, opt_count, opt_percent, percent, plan_name_vi, reform_note, reform_text, scope_heading, share,
    status_text, title_baseline, title_heading, titles_present,
};
use hoctap_domain::codes::{Metric, Title};
use hoctap_domain::review::{Review, TargetReview, UnitReview};
use std::fmt::{self, Write as _};

/// Escapes text for element content and double- or single-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif;
       margin: 2rem auto; max-width: 80rem; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #d0d7de; padding-bottom: .25rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; }
nav ul { padding-left: 1.2rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: middle; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.scope td { font-weight: 600; background: #fbfcfd; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; color: #57606a; }
td code { white-space: nowrap; }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-size: .82rem;
         font-weight: 600; white-space: nowrap; border: 1px solid; }
.badge.met { background: #dafbe1; color: #116329; border-color: #4ac26b; }
.badge.behind { background: #fff1e5; color: #953800; border-color: #fb8f44; }
.badge.no_denominator, .badge.unit_abolished { background: #eaeef2; color: #57606a; border-color: #afb8c1; }
.bar { position: relative; height: .75rem; min-width: 8rem; background: #eaeef2; border-radius: 3px; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 3px; }
.bar .fill.met { background: #2da44e; }
.bar .fill.behind { background: #fb8c00; }
.bar .goal { position: absolute; top: -.25rem; bottom: -.25rem; width: 2px; margin-left: -1px; background: #1f2328; }
.missing { color: #8c959f; }
.note { color: #57606a; font-size: .9rem; }
.reform { border-left: 4px solid #fb8c00; background: #fff8f0; padding: .5rem .8rem; font-weight: 600; }
/* Print (A4 landscape): each review starts on a page with its facts and targets, every column fits the
   page width (small type, codes may wrap, no scrolling wrapper), headers repeat on every page, and rows
   are never split. */
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 8.5pt; line-height: 1.3; }
  nav { display: none; }
  h1 { font-size: 14pt; margin: 0 0 2mm; }
  h2 { font-size: 12pt; margin-top: 0; break-before: page; break-after: avoid; }
  section.review:first-of-type h2 { break-before: auto; }
  h3 { font-size: 10pt; margin: 3mm 0 1mm; break-after: avoid; }
  .table-wrap { overflow: visible; }
  table { font-size: 7.5pt; width: 100%; table-layout: auto; margin: 1mm 0 3mm; }
  th, td { padding: 1px 3px; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  td code, code { white-space: normal; overflow-wrap: anywhere; color: #1f2328; }
  .bar { min-width: 0; width: 20mm; }
  .badge { padding: 0 3px; font-size: 7pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Renders the page; several reviews (phase and final) follow each other under one title.
pub(crate) fn render(reviews: &[&Review], title: &str) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; the Result only exists because `fmt::Write` is general.
    let _ = write_page(&mut out, reviews, title);
    out
}

fn write_page(out: &mut String, reviews: &[&Review], title: &str) -> fmt::Result {
    let title = escape(title);
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, r#"<html lang="vi">"#)?;
    writeln!(out, "<head>")?;
    writeln!(out, r#"<meta charset="utf-8">"#)?;
    writeln!(out, r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)?;
    writeln!(out, "<title>{title}</title>")?;
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "</head>")?;
    writeln!(out, "<body>")?;
    writeln!(out, "<h1>{title}</h1>")?;
    if reviews.is_empty() {
        writeln!(out, r#"<p class="note">Không có kỳ đánh giá nào.</p>"#)?;
    }
    if reviews.len() > 1 {
        writeln!(out, "<nav><ul>")?;
        for review in reviews {
            writeln!(out, r##"<li><a href="#{}">{}</a></li>"##, section_id(review), review_heading(review))?;
        }
        writeln!(out, "</ul></nav>")?;
    }
    for review in reviews {
        write_review(out, review)?;
    }
    writeln!(out, "</body>")?;
    writeln!(out, "</html>")
}

/// A stable anchor per review; `known_at` is left out because reviews on one page differ by date or scope.
fn section_id(review: &Review) -> String {
    escape(&format!("review-{}-{}", review.scope, review.as_of))
}

/// Already escaped.
fn review_heading(review: &Review) -> String {
    escape(&format!("{} — ngày {}", scope_heading(review), review.as_of))
}

fn write_review(out: &mut String, review: &Review) -> fmt::Result {
    writeln!(out, r#"<section class="review" id="{}">"#, section_id(review))?;
    writeln!(out, "<h2>{}</h2>", review_heading(review))?;
    writeln!(out, r#"<dl class="facts">"#)?;
    let approved = approved_text(review).map(|text| ("Đã phê duyệt (approved review)", text));
    let facts = [
        Some(("Phạm vi (scope)", scope_heading(review))),
        Some(("Ngày đánh giá (as of)", review.as_of.to_string())),
        approved,
        Some(("Dữ liệu đến (known at)", known_at_text(review))),
        Some(("Mốc (milestone)", milestone_text(review.milestone))),
        Some(("Địa bàn (geography)", geography_counts(review))),
        Some(("Lập bởi (generated by)", generated_text(review))),
    ];
    for (term, value) in facts.into_iter().flatten() {
        writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(term), escape(&value))?;
    }
    writeln!(out, "</dl>")?;
    if let Some(text) = reform_text(review) {
        writeln!(out, r#"<p class="reform">{}</p>"#, escape(&text))?;
        if let Some(note) = reform_note(review) {
            writeln!(out, r#"<p class="note">{}</p>"#, escape(&note))?;
        }
    }

    writeln!(out, "<h3>Chỉ tiêu (targets)</h3>")?;
    if review.targets.is_empty() {
        writeln!(out, r#"<p class="note">{}</p>"#, escape(&no_targets_text(review)))?;
    } else {
        write_targets(out, &review.targets)?;
    }

    for title in titles_present(review) {
        writeln!(out, "<h3>{}</h3>", escape(&title_heading(title)))?;
        write_title_table(out, review, title)?;
        if any_placed_by_default(review, title) {
            writeln!(out, r#"<p class="note">{}</p>"#, escape(BY_DEFAULT_NOTE))?;
        }
    }
    if review.units.iter().all(|u| u.titles.is_empty()) {
        writeln!(out, r#"<p class="note">Chưa có đơn vị nào có số liệu danh hiệu tại ngày {}.</p>"#, review.as_of)?;
    }

    writeln!(out, "<h3>Kỹ năng số (digital_skill) và mẫu số (baselines)</h3>")?;
    write_skills_table(out, review)?;
    writeln!(out, "</section>")
}

/// Header cells; `numeric` marks the columns holding figures so they align right.
fn write_header(out: &mut String, cells: &[(String, bool)]) -> fmt::Result {
    write!(out, "<thead><tr>")?;
    for (text, numeric) in cells {
        if *numeric {
            write!(out, r#"<th class="num">{}</th>"#, escape(text))?;
        } else {
            write!(out, "<th>{}</th>", escape(text))?;
        }
    }
    writeln!(out, "</tr></thead>")
}

fn num_cell(text: &str) -> String {
    if text == MISSING {
        format!(r#"<td class="num missing">{MISSING}</td>"#)
    } else {
        format!(r#"<td class="num">{}</td>"#, escape(text))
    }
}

fn header(cells: &[(&str, bool)]) -> Vec<(String, bool)> {
    cells.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

fn write_targets(out: &mut String, targets: &[TargetReview]) -> fmt::Result {
    writeln!(out, r#"<div class="table-wrap"><table class="targets">"#)?;
    write_header(
        out,
        &header(&[
            ("Kế hoạch", false),
            ("Chỉ tiêu", false),
            ("Mốc", true),
            ("Mục tiêu %", true),
            ("Thực tế %", true),
            ("Thực tế so với mục tiêu", false),
            ("Chênh lệch", true),
            ("Tử số", true),
            ("Mẫu số", true),
            ("Trạng thái", false),
        ]),
    )?;
    writeln!(out, "<tbody>")?;
    for target in targets {
        write!(out, "<tr>")?;
        for (name, code) in
            [(plan_name_vi(&target.plan), &target.plan), (indicator_name_vi(&target.indicator), &target.indicator)]
        {
            write!(out, "<td>{}<br><code>{}</code></td>", escape(&name), escape(code))?;
        }
        write!(out, "{}", num_cell(&target.milestone.to_string()))?;
        write!(out, "{}", num_cell(&percent(target.target_percent)))?;
        write!(out, "{}", num_cell(&opt_percent(target.actual_percent)))?;
        write!(out, "<td>{}</td>", bar(target))?;
        write!(out, "{}", num_cell(&gap(target.gap_points)))?;
        write!(out, "{}", num_cell(&count(target.numerator)))?;
        write!(out, "{}", num_cell(&opt_count(target.denominator)))?;
        let status = target.status.as_str();
        write!(out, r#"<td><span class="badge {status}">{}</span></td>"#, escape(&status_text(target.status)))?;
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></div>")
}

/// CSS lengths need a dot decimal, whatever the display style, and a bar cannot run outside its track.
fn css_percent(value: f64) -> String {
    format!("{:.2}%", value.clamp(0.0, 100.0))
}

/// Actual as a filled bar, the target as a tick: shortfalls read at a glance, and the text is in `aria-label`.
fn bar(target: &TargetReview) -> String {
    let actual = target.actual_percent.map_or_else(|| MISSING.to_owned(), |a| format!("{} %", percent(a)));
    let label = format!("Thực tế {actual}, mục tiêu {} %", percent(target.target_percent));
    let fill = match target.actual_percent {
        Some(actual) if actual.is_finite() => {
            format!(r#"<span class="fill {}" style="width: {}"></span>"#, target.status.as_str(), css_percent(actual))
        }
        _ => String::new(),
    };
    format!(
        r#"<div class="bar" role="img" aria-label="{}" title="{}">{fill}<span class="goal" style="left: {}"></span></div>"#,
        escape(&label),
        escape(&label),
        css_percent(target.target_percent)
    )
}

fn write_unit_cells(out: &mut String, unit: &UnitReview) -> fmt::Result {
    write!(out, "<td><code>{}</code></td>", escape(&unit.code))?;
    write!(out, "<td>{}</td>", escape(&unit.name))?;
    write!(out, "<td>{}</td>", escape(unit.level.label_vi()))
}

fn row_open(review: &Review, unit: &UnitReview) -> &'static str {
    // The scope's own row holds the totals the targets are read against; setting it apart helps the eye.
    if unit.code == review.scope { r#"<tr class="scope">"# } else { "<tr>" }
}

fn write_title_table(out: &mut String, review: &Review, title: Title) -> fmt::Result {
    let baseline = title_baseline(title);
    let mut cells = header(&[
        ("Mã", false),
        ("Đơn vị", false),
        ("Cấp", false),
        ("Đăng ký", true),
        ("Kê khai", true),
        ("Minh chứng", true),
        ("Công nhận", true),
    ]);
    let by_default = any_placed_by_default(review, title);
    if by_default {
        cells.push((BY_DEFAULT_HEADING.to_owned(), true));
    }
    if let Some(metric) = baseline {
        cells.push((metric_heading(metric), true));
        cells.push(("% công nhận".to_owned(), true));
    }
    writeln!(out, r#"<div class="table-wrap"><table class="title {}">"#, title.as_str())?;
    write_header(out, &cells)?;
    writeln!(out, "<tbody>")?;
    let mut left_out = 0;
    for unit in &review.units {
        let counts = unit.titles.get(&title).copied().unwrap_or_default();
        // A unit with four zeros for this title says nothing a reader needs (126 communes of zeros under
        // Thành phố học tập, which only the city holds): the scope's row stays, the others are counted.
        // The few units of a review of what became of a unit are all listed.
        if counts.is_zero() && unit.code != review.scope && review.reform.is_none() {
            left_out += 1;
            continue;
        }
        write!(out, "{}", row_open(review, unit))?;
        write_unit_cells(out, unit)?;
        for value in [counts.registered, counts.declared, counts.evidenced, counts.recognised] {
            write!(out, "{}", num_cell(&count(value)))?;
        }
        if by_default {
            let placed = unit.placed_by_default.get(&title).map_or(0, |c| c.recognised);
            write!(out, "{}", num_cell(&count(placed)))?;
        }
        if let Some(metric) = baseline {
            let denominator = unit.baselines.get(&metric).copied();
            write!(out, "{}", num_cell(&opt_count(denominator)))?;
            write!(out, "{}", num_cell(&opt_percent(share(counts.recognised, denominator))))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></div>")?;
    if left_out > 0 {
        writeln!(
            out,
            r#"<p class="note">{} đơn vị khác chưa có số liệu danh hiệu này (0 ở cả bốn cột), không liệt kê.</p>"#,
            count(left_out)
        )?;
    }
    Ok(())
}

fn write_skills_table(out: &mut String, review: &Review) -> fmt::Result {
    let metrics = metrics_present(review);
    let mut cells =
        header(&[("Mã", false), ("Đơn vị", false), ("Cấp", false), ("Kỹ năng số", true), ("% người lớn", true)]);
    cells.extend(metrics.iter().map(|m| (metric_heading(*m), true)));
    writeln!(out, r#"<div class="table-wrap"><table class="skills">"#)?;
    write_header(out, &cells)?;
    writeln!(out, "<tbody>")?;
    for unit in &review.units {
        let adults = unit.baselines.get(&Metric::Adults).copied();
        write!(out, "{}", row_open(review, unit))?;
        write_unit_cells(out, unit)?;
        write!(out, "{}", num_cell(&count(unit.digital_skill)))?;
        write!(out, "{}", num_cell(&opt_percent(share(unit.digital_skill, adults))))?;
        for metric in &metrics {
            write!(out, "{}", num_cell(&opt_count(unit.baselines.get(metric).copied())))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></div>")
}

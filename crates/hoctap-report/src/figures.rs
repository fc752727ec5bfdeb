//! What every human-readable format shares: Vietnamese number style, labels, and the shares derived for display.
//!
//! Numbers follow Vietnamese usage (TCVN and every Hội Khuyến học report): `.` groups thousands and `,`
//! marks decimals, so `2.480.000` people and `52,35` %. Using one style in the terminal and in HTML keeps
//! a figure copied from either identical. Machine formats (JSON, CSV) never go through this module.

use hoctap_domain::Day;
use hoctap_domain::codes::{Level, Metric, SubjectGroup, Title};
use hoctap_domain::review::{Reform, RelatedUnit, Relation, Review, Status, UnitReview};

/// Shown wherever a figure does not exist; a missing share must never read as 0.
pub(crate) const MISSING: &str = "—";

/// `2480000` → `2.480.000`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// A count that may be missing (a denominator).
pub(crate) fn opt_count(n: Option<u64>) -> String {
    n.map_or_else(|| MISSING.to_owned(), count)
}

/// A percentage rounded to two decimals for display only: `52.3456` → `52,35`.
pub(crate) fn percent(p: f64) -> String {
    match round2(p) {
        None => MISSING.to_owned(),
        Some(text) => text.replacen('.', ",", 1),
    }
}

/// `p` rounded to two decimals as Excel's `ROUND(p, 2)` does, as text with a `.`: halves go away from
/// zero (17/32 = 53,125 % → `53.13`, where `format!("{:.2}")` would give `53.12`), decided on the
/// decimal digits people see (12 places), not on the binary value's last bits (1,005 → `1.01`).
/// `None` for a value that is not a number.
pub(crate) fn round2(p: f64) -> Option<String> {
    if !p.is_finite() {
        return None;
    }
    let digits = format!("{:.12}", p.abs());
    let (whole, fraction) = digits.split_once('.').expect("a fixed-point format has a point");
    // Hundredths as an integer, then one more if the rest is at least a half.
    let mut hundredths: u128 = format!("{whole}{}", &fraction[..2]).parse().expect("digits");
    if fraction.as_bytes()[2] >= b'5' {
        hundredths += 1;
    }
    // -0.001 rounds to 0.00, not "-0.00", which would suggest a shortfall that the status does not show.
    let sign = if p < 0.0 && hundredths > 0 { "-" } else { "" };
    Some(format!("{sign}{}.{:02}", hundredths / 100, hundredths % 100))
}

/// A percentage that may be missing.
pub(crate) fn opt_percent(p: Option<f64>) -> String {
    p.map_or_else(|| MISSING.to_owned(), percent)
}

/// A gap in percentage points with its sign, so a reader sees at a glance which side of the target it is.
pub(crate) fn gap(points: Option<f64>) -> String {
    match points {
        None => MISSING.to_owned(),
        Some(p) => {
            let text = percent(p);
            if p > 0.0 && text != "0,00" { format!("+{text}") } else { text }
        }
    }
}

/// `numerator ÷ denominator` in percent; none without a positive denominator (rule 7).
pub(crate) fn share(numerator: u64, denominator: Option<u64>) -> Option<f64> {
    match denominator {
        Some(d) if d > 0 => Some(numerator as f64 * 100.0 / d as f64),
        _ => None,
    }
}

/// The baseline a title's recognised count is naturally read against, as in the plans' indicators
/// (`learning_citizen/adults`, `learning_family/households`, ...). Titles held by administrative units
/// have none: their share is a count of units, which the targets table already states.
pub(crate) fn title_baseline(title: Title) -> Option<Metric> {
    match title {
        Title::LearningCitizen => Some(Metric::Adults),
        Title::LearningFamily => Some(Metric::Households),
        Title::LearningClan => Some(Metric::Clans),
        Title::LearningCommunity => Some(Metric::Communities),
        Title::LearningUnit => Some(Metric::Units),
        Title::LearningCommune | Title::LearningDistrict | Title::LearningCity => None,
    }
}

/// Vietnamese name of a denominator. It lives here rather than in `codes.rs` because only reports need it.
pub(crate) fn metric_label_vi(metric: Metric) -> &'static str {
    match metric {
        Metric::Adults => "Người lớn",
        Metric::Households => "Hộ gia đình",
        Metric::Clans => "Dòng họ",
        Metric::Communities => "Thôn, tổ dân phố",
        Metric::Units => "Cơ quan, đơn vị",
        Metric::UnitStaff => "Cán bộ, công chức, viên chức",
        Metric::AdultsInLearningModels => "Người lớn trong mô hình học tập",
    }
}

/// The Vietnamese name of an indicator code, as a reviewer reads it: `learning_citizen/adults` →
/// `Công dân học tập / Người lớn`, `learning_citizen:staff/unit_staff` → `Công dân học tập (cán bộ,
/// công chức, viên chức) / Cán bộ, công chức, viên chức`. A part it does not know stays as written.
pub(crate) fn indicator_name_vi(indicator: &str) -> String {
    let (left, metric) = indicator.split_once('/').unwrap_or((indicator, ""));
    let (title, group) = match left.split_once(':') {
        Some((title, group)) => (title, Some(group)),
        None => (left, None),
    };
    let mut name = match Title::parse(title) {
        Some(t) => t.label_vi().to_owned(),
        None if title == "digital_skill" => "Kỹ năng số".to_owned(),
        None => title.to_owned(),
    };
    if let Some(group) = group {
        let label: &str = match SubjectGroup::parse(group) {
            Some(g) => crate::dashboard::group_label_vi(g),
            None => group,
        };
        name = format!("{name} ({label})");
    }
    let metric: &str = match Metric::parse(metric) {
        Some(m) => metric_label_vi(m),
        None if metric == "districts" => Level::District.label_vi(),
        None if metric == "learning_citizen" => Title::LearningCitizen.label_vi(),
        None => metric,
    };
    if metric.is_empty() { name } else { format!("{name} / {metric}") }
}

/// The Vietnamese name of a plan id `issuer/number/year`: `UBND-01/290/2021` → `Kế hoạch
/// 290/KH-UBND (2021)`, `TTg/677/2022` → `Quyết định 677/QĐ-TTg (2022)`; another issuer's
/// `issuer number (year)`; an id of another shape as written.
pub(crate) fn plan_name_vi(plan: &str) -> String {
    let parts: Vec<&str> = plan.split('/').collect();
    let [issuer, number @ .., year] = parts.as_slice() else { return plan.to_owned() };
    if number.is_empty() {
        return plan.to_owned();
    }
    let number = number.join("/");
    if *issuer == "TTg" {
        format!("Quyết định {number}/QĐ-TTg ({year})")
    } else if issuer.starts_with("UBND") {
        format!("Kế hoạch {number}/KH-UBND ({year})")
    } else {
        format!("{issuer} {number} ({year})")
    }
}

/// `Công dân học tập (learning_citizen)`: the label a reviewer reads, with the code that the data uses.
pub(crate) fn title_heading(title: Title) -> String {
    format!("{} ({})", title.label_vi(), title.as_str())
}

/// `Người lớn (adults)`.
pub(crate) fn metric_heading(metric: Metric) -> String {
    format!("{} ({})", metric_label_vi(metric), metric.as_str())
}

/// `Đạt (met)`.
pub(crate) fn status_text(status: Status) -> String {
    format!("{} ({})", status.label_vi(), status.as_str())
}

/// The scope's own row, which the review puts first; found by code so a hand-built review still works.
pub(crate) fn scope_unit(review: &Review) -> Option<&UnitReview> {
    review.units.iter().find(|u| u.code == review.scope)
}

/// The scope's name: from its row, or, for a unit not in force on D, from the reform section.
pub(crate) fn scope_name(review: &Review) -> Option<&str> {
    scope_unit(review).map(|u| u.name.as_str()).or_else(|| review.reform.as_ref().map(|r| r.name.as_str()))
}

/// `Hà Nội (01)`, or the bare code when the review carries no name for its scope.
pub(crate) fn scope_heading(review: &Review) -> String {
    match scope_name(review) {
        Some(name) => format!("{name} ({})", review.scope),
        None => review.scope.clone(),
    }
}

/// `01/07/2025`: a date in a Vietnamese sentence.
pub(crate) fn date_vi(day: Day) -> String {
    let iso = day.to_string();
    match iso.splitn(3, '-').collect::<Vec<_>>()[..] {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso,
    }
}

/// How a related unit passed into or out of the asked one, for a reader: `mặc định, một phần`.
/// `None` for a whole unit that is the only way (nothing to say).
pub(crate) fn related_note(unit: &RelatedUnit) -> Option<&'static str> {
    match (unit.default, unit.divided) {
        (true, true) => Some("mặc định, một phần"),
        (false, true) => Some("một phần"),
        (true, false) | (false, false) => None,
    }
}

/// `Phường Ba Đình (00004; mặc định, một phần)`: a related unit named from its row in the review.
pub(crate) fn related_heading(review: &Review, unit: &RelatedUnit) -> String {
    let name = review.units.iter().find(|u| u.code == unit.code).map_or("", |u| u.name.as_str());
    let code = match related_note(unit) {
        Some(note) => format!("{}; {note}", unit.code),
        None => unit.code.clone(),
    };
    if name.is_empty() { code } else { format!("{name} ({code})") }
}

/// `Vietnamese (English)` of the relation, for labels.
pub(crate) fn relation_label(relation: Relation) -> &'static str {
    match relation {
        Relation::Successors => "Đơn vị kế thừa (successors)",
        Relation::Predecessors => "Đơn vị trước sắp xếp (predecessors)",
    }
}

/// The sentences that open a review of a unit not in force on D (counting-rules §3, "A unit across the reform"): what
/// became of it, or what it comes from, and that the figures below are those units'. `None` for every other review.
///
/// `Quận Ba Đình (001) không còn từ 01/07/2025. Các đơn vị kế thừa tại ngày 2025-12-31: Phường Ba Đình
/// (00004; mặc định, một phần), Phường Ngọc Hà (00008; một phần). Số liệu dưới đây là của các đơn vị
/// này, mỗi đơn vị tính toàn bộ.`
pub(crate) fn reform_text(review: &Review) -> Option<String> {
    let reform: &Reform = review.reform.as_ref()?;
    let asked = format!("{} ({})", reform.name, reform.code);
    let units = reform.units.iter().map(|u| related_heading(review, u)).collect::<Vec<_>>().join(", ");
    let which = if reform.units.len() > 1 { "Các đơn vị" } else { "Đơn vị" };
    let this = if reform.units.len() > 1 {
        "các đơn vị này, mỗi đơn vị tính toàn bộ"
    } else {
        "đơn vị này, tính toàn bộ"
    };
    let opening = match reform.relation {
        Relation::Successors => format!(
            "{asked} không còn từ {}. {which} kế thừa tại ngày {}: {units}.",
            date_vi(reform.date),
            review.as_of
        ),
        Relation::Predecessors => format!(
            "{asked} chỉ có từ {}. {which} hợp thành {} tại ngày {}: {units}.",
            date_vi(reform.date),
            reform.code,
            review.as_of
        ),
    };
    Some(format!("{opening} Số liệu dưới đây là của {this}."))
}

/// What `một phần` and `mặc định` mean, for those the reform section uses.
pub(crate) fn reform_note(review: &Review) -> Option<String> {
    let reform = review.reform.as_ref()?;
    let notes: Vec<&str> = reform.units.iter().filter_map(related_note).collect();
    let mut out = Vec::new();
    if notes.iter().any(|n| n.contains("một phần")) {
        out.push(PART_NOTE);
    }
    if notes.iter().any(|n| n.contains("mặc định")) {
        out.push(DEFAULT_NOTE);
    }
    (!out.is_empty()).then(|| out.join(" "))
}

pub(crate) const PART_NOTE: &str = "Một phần: đơn vị bị chia tách, chỉ một phần chuyển sang.";
pub(crate) const DEFAULT_NOTE: &str = "Mặc định: đối tượng của đơn vị bị chia tách chưa có sự kiện nào ghi xã, \
                                       phường mới được tính vào đơn vị kế thừa mặc định.";

/// Why a review of a unit not in force on D lists no targets.
pub(crate) fn no_targets_text(review: &Review) -> String {
    match &review.reform {
        Some(reform) => {
            format!("Không đối chiếu chỉ tiêu: {} không có hiệu lực tại ngày {}.", reform.code, review.as_of)
        }
        None => "Không có chỉ tiêu nào cho phạm vi và mốc này.".to_owned(),
    }
}

/// `2025 (sơ kết)`: names the two reviews the campaign holds (rule 10) so the reader knows which one this is.
pub(crate) fn milestone_text(milestone: Option<i32>) -> String {
    match milestone {
        None => format!("{MISSING} (phạm vi này chưa có chỉ tiêu)"),
        Some(2025) => "2025 (sơ kết giai đoạn 2023–2025)".to_owned(),
        Some(2030) => "2030 (tổng kết)".to_owned(),
        Some(year) => year.to_string(),
    }
}

/// `Ngày đánh giá` value's companion: the exact transaction time the figures are as known at (never
/// "now": a printed review must be reproducible with it), and how many events were recorded by then.
pub(crate) fn known_at_text(review: &Review) -> String {
    let at = review.known_at.as_deref().unwrap_or(MISSING);
    format!("{at} ({} sự kiện đã ghi nhận / events recorded)", count(review.events))
}

/// The decision that approved the review, `Quyết định số 15/QĐ-UBND (UBND-01), ngày 2026-01-20`;
/// `None` for a review not asked as an approved one.
pub(crate) fn approved_text(review: &Review) -> Option<String> {
    review.approved.as_ref().map(|d| format!("Quyết định số {} ({}), ngày {}", d.number, d.issuer, d.date))
}

/// `hoctap 0.1.0, lúc 2026-11-30T09:30:00.123456Z`: who computed the review and when.
pub(crate) fn generated_text(review: &Review) -> String {
    format!(
        "{}, lúc {}",
        review.software.as_deref().unwrap_or(MISSING),
        review.generated_at.as_deref().unwrap_or(MISSING)
    )
}

/// `Địa bàn theo đơn vị hành chính tại ngày 2025-12-31: 0 quận/huyện, 126 phường/xã`: rule 10 asks every
/// review to say which geography it used, and after 1 July 2025 "0 quận/huyện" is the point.
pub(crate) fn geography_text(review: &Review) -> String {
    format!("Địa bàn theo {}", geography_counts(review))
}

/// `đơn vị hành chính tại ngày 2025-12-31: 0 quận/huyện, 126 phường/xã`, for where "Địa bàn" is already a label.
pub(crate) fn geography_counts(review: &Review) -> String {
    format!(
        "đơn vị hành chính tại ngày {}: {} quận/huyện, {} phường/xã",
        review.as_of,
        count(review.geography.districts),
        count(review.geography.communes)
    )
}

/// Every title counted in any unit, in vocabulary order; a title missing from a unit counts zero there.
/// Whether some unit counts subjects of `title` placed only by a divided commune's default: the title's
/// table then shows how many (counting-rules §3).
pub(crate) fn any_placed_by_default(review: &Review, title: Title) -> bool {
    review.units.iter().any(|u| u.placed_by_default.contains_key(&title))
}

/// The heading of that column and the note under the table.
pub(crate) const BY_DEFAULT_HEADING: &str = "Công nhận theo mặc định";
pub(crate) const BY_DEFAULT_NOTE: &str = "Theo mặc định (placed by default): đối tượng ở xã, phường bị chia tách, được tính vào đơn vị kế thừa mặc định vì chưa có sự kiện nào của họ ghi xã, phường mới.";

pub(crate) fn titles_present(review: &Review) -> Vec<Title> {
    let mut titles: Vec<Title> = review.units.iter().flat_map(|u| u.titles.keys().copied()).collect();
    titles.sort();
    titles.dedup();
    titles
}

/// Every metric with a baseline in any unit, in vocabulary order.
pub(crate) fn metrics_present(review: &Review) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = review.units.iter().flat_map(|u| u.baselines.keys().copied()).collect();
    metrics.sort();
    metrics.dedup();
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_number_style() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1.000");
        assert_eq!(count(2_480_000), "2.480.000");
        assert_eq!(count(u64::MAX), "18.446.744.073.709.551.615");
        assert_eq!(percent(52.3456), "52,35");
        // Halves go up, as Excel's ROUND: 17 of 32 is 53,125 %.
        assert_eq!(percent(17.0 * 100.0 / 32.0), "53,13");
        assert_eq!(percent(1.005), "1,01");
        assert_eq!(percent(2.675), "2,68");
        assert_eq!(percent(-53.125), "-53,13");
        assert_eq!(percent(53.124999), "53,12");
        assert_eq!(percent(99.995), "100,00");
        assert_eq!(percent(1e-9), "0,00");
        assert_eq!(percent(123456789.0), "123456789,00");
        assert_eq!(percent(50.0), "50,00");
        assert_eq!(percent(-0.001), "0,00");
        assert_eq!(percent(f64::NAN), MISSING);
        assert_eq!(gap(Some(2.5)), "+2,50");
        assert_eq!(gap(Some(-20.0)), "-20,00");
        assert_eq!(gap(Some(0.001)), "0,00");
        assert_eq!(gap(None), MISSING);
        assert_eq!(opt_count(None), MISSING);
    }

    #[test]
    fn dates_in_sentences_read_day_month_year() {
        assert_eq!(date_vi(Day::parse("2025-07-01").unwrap()), "01/07/2025");
    }

    #[test]
    fn share_needs_a_positive_denominator() {
        assert_eq!(share(1, Some(4)), Some(25.0));
        assert_eq!(share(0, Some(0)), None);
        assert_eq!(share(3, None), None);
    }
}

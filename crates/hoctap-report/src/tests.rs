//! Tests of every format against one hand-built review: Hà Nội with two districts and one target of each status.

use super::*;
use hoctap_domain::codes::{Level, Metric, Title};
use hoctap_domain::review::{Geography, Status, TargetReview, TitleCounts, UnitReview};
use hoctap_domain::time::Day;
use serde_json::Value;
use std::collections::BTreeMap;

const HOSTILE_NAME: &str = "Hoàn Kiếm <script>alert(\"x\")</script>";

fn counts(registered: u64, declared: u64, evidenced: u64, recognised: u64) -> TitleCounts {
    TitleCounts { registered, declared, evidenced, recognised }
}

fn unit(code: &str, level: Level, name: &str, citizens: TitleCounts, skill: u64, adults: Option<u64>) -> UnitReview {
    let mut titles = BTreeMap::new();
    titles.insert(Title::LearningCitizen, citizens);
    let mut baselines = BTreeMap::new();
    if let Some(adults) = adults {
        baselines.insert(Metric::Adults, adults);
    }
    UnitReview {
        code: code.to_owned(),
        level,
        name: name.to_owned(),
        coordinates: None,
        titles,
        placed_by_default: BTreeMap::new(),
        digital_skill: skill,
        baselines,
    }
}

fn target(
    indicator: &str,
    target_percent: f64,
    numerator: u64,
    denominator: Option<u64>,
    status: Status,
) -> TargetReview {
    let actual_percent = match denominator {
        Some(d) if d > 0 && status != Status::UnitAbolished => Some(numerator as f64 * 100.0 / d as f64),
        _ => None,
    };
    TargetReview {
        plan: "UBND-01/290/2021".to_owned(),
        indicator: indicator.to_owned(),
        milestone: 2025,
        target_percent,
        numerator,
        denominator,
        actual_percent,
        gap_points: actual_percent.map(|a| a - target_percent),
        status,
    }
}

/// The scope and two districts; the numbers are chosen so that the met share rounds (52.3456 → 52,35).
fn sample() -> Review {
    let mut scope = unit(
        "01",
        Level::Province,
        "Hà Nội",
        counts(2_480_000, 2_310_000, 2_200_000, 2_093_824),
        1_650_000,
        Some(4_000_000),
    );
    scope.titles.insert(Title::LearningUnit, counts(40, 35, 33, 30));
    scope.baselines.insert(Metric::Units, 100);
    let ba_dinh = unit(
        "001",
        Level::District,
        "Ba Đình",
        counts(1_500_000, 1_400_000, 1_300_000, 1_200_000),
        900_000,
        Some(2_000_000),
    );
    // No baseline here: its share must show as missing, not 0.
    let hoan_kiem =
        unit("002", Level::District, HOSTILE_NAME, counts(980_000, 910_000, 900_000, 893_824), 750_000, None);
    let mut plan_52 = target("digital_skill/adults", 50.0, 1_650_000, Some(4_000_000), Status::Behind);
    plan_52.plan = "UBND-01/52/2024".to_owned();
    let mut plan_291 = target("learning_family/households", 70.0, 0, None, Status::NoDenominator);
    plan_291.plan = "UBND-01/291/2022".to_owned();
    let mut review = Review {
        scope: "01".to_owned(),
        as_of: Day::parse("2025-12-31").expect("a valid date"),
        approved: None,
        known_at: Some("2026-01-14T17:00:00Z".to_owned()),
        events: 1_234_567,
        software: None,
        generated_at: None,
        milestone: Some(2025),
        geography: Geography { provinces: 1, districts: 2, communes: 0 },
        reform: None,
        completeness: None,
        units: vec![scope, ba_dinh, hoan_kiem],
        targets: vec![
            target("learning_citizen/adults", 50.0, 2_093_824, Some(4_000_000), Status::Met),
            plan_52,
            plan_291,
            target("learning_district/districts", 40.0, 0, Some(0), Status::UnitAbolished),
        ],
    };
    stamp(&mut review, GENERATED_AT);
    review
}

/// 2026-11-30T09:30:00.5Z, the sample's generation time.
const GENERATED_AT: i64 = 1_796_031_000_500_000;

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn json_follows_the_contract() {
    let review = sample();
    let doc: Value = serde_json::from_str(&json(&review)).expect("valid JSON");

    for key in ["scope", "as_of", "units", "targets"] {
        assert!(doc.get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(doc["known_at"], "2026-01-14T17:00:00Z");
    assert_eq!(doc["events"], 1_234_567);
    assert_eq!(doc["software"], SOFTWARE);
    assert!(SOFTWARE.starts_with("hoctap ") && SOFTWARE.len() > "hoctap ".len());
    assert_eq!(doc["generated_at"], "2026-11-30T09:30:00.500Z");
    assert_eq!(doc["scope"], "01");
    assert_eq!(doc["as_of"], "2025-12-31");

    let units = doc["units"].as_array().expect("units is an array");
    assert_eq!(units.len(), 3);
    assert_eq!(units[0]["code"], "01", "the scope comes first");
    for key in ["code", "level", "name", "titles", "digital_skill", "baselines"] {
        assert!(units[0].get(key).is_some(), "unit lacks `{key}`");
    }
    assert_eq!(units[0]["level"], "province");
    assert_eq!(units[0]["name"], "Hà Nội");
    assert_eq!(units[0]["digital_skill"], 1_650_000);
    assert_eq!(units[0]["baselines"]["adults"], 4_000_000);
    assert_eq!(units[0]["baselines"]["units"], 100);
    assert_eq!(keys(&units[0]["titles"]), ["learning_citizen", "learning_unit"]);
    let citizen = &units[0]["titles"]["learning_citizen"];
    assert_eq!(keys(citizen), ["declared", "evidenced", "recognised", "registered"]);
    assert_eq!(citizen["registered"], 2_480_000);
    assert_eq!(citizen["recognised"], 2_093_824);
    assert_eq!(keys(&units[2]["baselines"]), Vec::<&str>::new());

    let targets = doc["targets"].as_array().expect("targets is an array");
    assert_eq!(targets.len(), 4);
    for t in targets {
        for key in
            ["plan", "indicator", "milestone", "target_percent", "numerator", "denominator", "actual_percent", "status"]
        {
            assert!(t.get(key).is_some(), "target lacks `{key}`");
        }
    }
    assert_eq!(targets[0]["plan"], "UBND-01/290/2021");
    assert_eq!(targets[0]["milestone"], 2025);
    assert_eq!(targets[0]["target_percent"], 50.0);
    assert_eq!(targets[0]["actual_percent"], 52.3456);
    assert_eq!(targets[0]["status"], "met");
    assert_eq!(targets[1]["status"], "behind");
    assert_eq!(targets[2]["status"], "no_denominator");
    assert!(targets[2]["actual_percent"].is_null(), "missing share is null, never 0");
    assert!(targets[2]["denominator"].is_null());
    assert_eq!(targets[3]["status"], "unit_abolished");
    assert!(targets[3]["actual_percent"].is_null());
    assert_eq!(targets[3]["denominator"], 0);

    let mut unstamped = sample();
    (unstamped.known_at, unstamped.software, unstamped.generated_at) = (None, None, None);
    let doc: Value = serde_json::from_str(&json(&unstamped)).expect("valid JSON");
    for key in ["known_at", "software", "generated_at"] {
        assert!(doc.get(key).is_none(), "`{key}` is absent when unknown, never empty");
    }
}

#[test]
fn only_the_generation_time_differs_between_two_answers() {
    let (first, mut second) = (sample(), sample());
    stamp(&mut second, GENERATED_AT + 1);
    let (a, b) = (json(&first), json(&second));
    assert_ne!(a, b);
    let differing: Vec<(&str, &str)> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
    assert_eq!(
        differing,
        [("  \"generated_at\": \"2026-11-30T09:30:00.500Z\",", "  \"generated_at\": \"2026-11-30T09:30:00.500001Z\",")]
    );
}

#[test]
fn table_reads_in_vietnamese() {
    let text = table(&sample(), Rows::All);
    for needle in [
        "Hà Nội (01)",
        "Ngày đánh giá (as of): 2025-12-31",
        "Dữ liệu đến (known at): 2026-01-14T17:00:00Z (1.234.567 sự kiện đã ghi nhận / events recorded)",
        "Lập bởi (generated by): hoctap ",
        ", lúc 2026-11-30T09:30:00.500Z",
        "Mốc (milestone): 2025",
        "Địa bàn theo đơn vị hành chính tại ngày 2025-12-31: 2 quận/huyện, 0 phường/xã",
        "Kế hoạch",
        "Chỉ tiêu",
        "Mục tiêu %",
        "Thực tế %",
        "Chênh lệch",
        "Tử số",
        "Mẫu số",
        "Trạng thái",
        "Đạt (met)",
        "Chưa đạt (behind)",
        "Thiếu mẫu số (no_denominator)",
        "Không còn đơn vị (unit_abolished)",
        "Công dân học tập (learning_citizen)",
        "Đơn vị học tập (learning_unit)",
        "Đăng ký",
        "Kê khai",
        "Minh chứng",
        "Công nhận",
        "% công nhận",
        "Người lớn (adults)",
        "Kỹ năng số",
        "Quận/huyện",
        "Tỉnh/thành phố",
        "52,35",
        "+2,35",
        "41,25",
        "-8,75",
        "50,00",
        "2.480.000",
        "4.000.000",
        "Kế hoạch 291/KH-UBND (2022)",
        "Huyện học tập / Quận/huyện",
    ] {
        assert!(text.contains(needle), "table lacks {needle:?}:\n{text}");
    }
    assert!(!text.contains("52.3456"), "percentages are rounded for display");

    // The no_denominator row shows "—" for denominator, actual and gap, never a 0 share.
    assert!(!text.contains("UBND-01/291/2022"), "plans are named, not coded");
    let row = text.lines().find(|l| l.contains("Gia đình học tập / Hộ gia đình")).expect("a row");
    assert_eq!(row.matches('—').count(), 3, "{row}");
    assert!(row.contains("70,00"), "{row}");
    let row = text.lines().find(|l| l.contains("Huyện học tập / Quận/huyện")).expect("a row");
    assert_eq!(row.matches('—').count(), 2, "{row}");
    // A unit without an adults baseline has no share either.
    let row = text.lines().find(|l| l.contains("Hoàn Kiếm") && l.contains("893.824")).expect("a row");
    assert!(row.contains('—'), "{row}");

    assert!(!text.contains("hiện tại"), "a printed review never says \"now\"");
}

#[test]
fn table_borders_stay_straight_with_diacritics() {
    // Every line of a boxed table is as wide as its top border: comfy-table measured "Hà Nội" as six
    // columns, not as its UTF-8 byte length. Precomposed Vietnamese letters are one column each.
    let text = table(&sample(), Rows::All);
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('┌') {
            let width = line.chars().count();
            for body in lines[i..].iter().take_while(|l| !l.starts_with('└')) {
                assert_eq!(body.chars().count(), width, "ragged line {body:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "targets, two titles, digital skills");
}

#[test]
fn csv_is_one_long_table() {
    let review = sample();
    let text = csv(&review);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    assert_eq!(header, rows::HEADER);
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("parses");
    let column = |name: &str| header.iter().position(|h| h == name).expect("a column");
    let get = |r: &csv::StringRecord, name: &str| r.get(column(name)).expect("a cell").to_owned();

    // Scope: 2 titles × 4 measures + digital skill + 2 baselines; each district: 4 + 1 + its baselines.
    let unit_rows = (8 + 1 + 2) + (4 + 1 + 1) + (4 + 1);
    assert_eq!(records.len(), unit_rows + 4);
    assert!(records.iter().all(|r| r.len() == 25));
    assert_eq!(records.iter().filter(|r| get(r, "section") == "target").count(), 4);

    let first = &records[0];
    assert_eq!(get(first, "section"), "unit");
    assert_eq!(get(first, "scope"), "01");
    assert_eq!(get(first, "as_of"), "2025-12-31");
    for r in &records {
        assert_eq!(get(r, "known_at"), "2026-01-14T17:00:00Z");
        assert_eq!(get(r, "events"), "1234567");
        assert_eq!(get(r, "software"), SOFTWARE);
        assert_eq!(get(r, "generated_at"), "2026-11-30T09:30:00.500Z");
    }
    assert_eq!(get(first, "unit_code"), "01");
    assert_eq!(get(first, "unit_level"), "province");
    assert_eq!(get(first, "unit_name"), "Hà Nội");
    assert_eq!(get(first, "title"), "learning_citizen");
    assert_eq!(get(first, "measure"), "registered");
    assert_eq!(get(first, "value"), "2480000");
    assert_eq!(get(first, "plan"), "");
    assert!(records.iter().any(|r| get(r, "measure") == "baseline:adults" && get(r, "value") == "4000000"));
    assert!(records.iter().any(|r| get(r, "measure") == "digital_skill" && get(r, "value") == "750000"));
    assert!(records.iter().any(|r| get(r, "unit_name") == HOSTILE_NAME), "names survive quoting");

    let targets: Vec<&csv::StringRecord> = records.iter().filter(|r| get(r, "section") == "target").collect();
    assert_eq!(get(targets[0], "plan"), "UBND-01/290/2021");
    assert_eq!(get(targets[0], "actual_percent"), "52.3456", "unrounded");
    assert_eq!(get(targets[0], "target_percent"), "50");
    assert_eq!(get(targets[0], "status"), "met");
    assert_eq!(get(targets[0], "unit_code"), "");
    assert_eq!(get(targets[2], "status"), "no_denominator");
    assert_eq!(get(targets[2], "actual_percent"), "", "missing is empty, never 0");
    assert_eq!(get(targets[2], "gap_points"), "");
    assert_eq!(get(targets[2], "denominator"), "");
    assert_eq!(get(targets[3], "actual_percent"), "");
    assert_eq!(get(targets[3], "denominator"), "0");

    let final_review = Review { as_of: Day::parse("2030-12-31").expect("a date"), ..sample() };
    let both = csv_all(&[&review, &final_review]);
    let count = csv::Reader::from_reader(both.as_bytes()).records().count();
    assert_eq!(count, 2 * records.len(), "one header for both reviews");
}

#[test]
fn html_is_self_contained_and_escapes_data() {
    let phase = sample();
    let mut final_review = sample();
    final_review.as_of = Day::parse("2030-12-31").expect("a date");
    final_review.milestone = Some(2030);
    let page = html(&[&phase, &final_review], "Báo cáo <Hà Nội> & cả nước");

    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<html lang="vi">"#));
    assert!(page.contains(r#"<meta charset="utf-8">"#));
    assert!(page.contains("<title>Báo cáo &lt;Hà Nội&gt; &amp; cả nước</title>"));
    assert!(!page.contains("<script"), "a unit name must not become markup");
    assert!(page.contains("Hoàn Kiếm &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    for needle in ["src=", "href=\"http", "@import", "url("] {
        assert!(!page.contains(needle), "external asset via {needle}");
    }
    for plan in ["UBND-01/290/2021", "UBND-01/52/2024", "UBND-01/291/2022"] {
        assert!(page.contains(plan), "lacks {plan}");
    }
    for status in ["met", "behind", "no_denominator", "unit_abolished"] {
        assert!(page.contains(&format!(r#"class="badge {status}""#)), "lacks the {status} badge");
    }
    assert!(page.contains("review-01-2025-12-31") && page.contains("review-01-2030-12-31"));
    assert!(page.contains("2030 (tổng kết)"));
    assert!(page.contains("Công dân học tập (learning_citizen)"));
    assert!(page.contains(r#"style="width: 52.35%""#), "bar for the met target");
    assert!(page.contains("52,35"));
    assert!(page.contains("2026-01-14T17:00:00Z (1.234.567 sự kiện đã ghi nhận / events recorded)"));
    assert!(page.contains(&format!("{SOFTWARE}, lúc 2026-11-30T09:30:00.500Z")));
    assert_eq!(page.matches("<section").count(), 2);

    let single = html(&[&phase], "Sơ kết");
    assert_eq!(single.matches("<section").count(), 1);
    assert!(!single.contains("<nav>"), "no table of contents for one review");
    assert!(html(&[], "Trống").contains("Không có kỳ đánh giá nào."));
}

#[test]
fn placed_by_default_shows_in_every_format_only_where_there_is_some() {
    let plain = sample();
    assert!(!json(&plain).contains("placed_by_default"), "absent when no unit has any");
    assert!(!table(&plain, Rows::All).contains("theo mặc định") && !html(&[&plain], "t").contains("theo mặc định"));
    assert!(!csv(&plain).contains("placed_by_default"));

    let mut review = sample();
    review.units[1].placed_by_default.insert(Title::LearningCitizen, counts(7, 0, 0, 5));
    review.units[0].placed_by_default.insert(Title::LearningCitizen, counts(7, 0, 0, 5));
    let doc: Value = serde_json::from_str(&json(&review)).unwrap();
    assert_eq!(doc["units"][1]["placed_by_default"]["learning_citizen"]["recognised"], 5);
    assert_eq!(doc["units"][1]["placed_by_default"]["learning_citizen"]["registered"], 7);
    assert!(doc["units"][2].get("placed_by_default").is_none());

    let text = table(&review, Rows::All);
    assert!(text.contains("Công nhận theo mặc định") && text.contains("Theo mặc định (placed by default)"), "{text}");
    let page = html(&[&review], "t");
    assert!(page.contains("Công nhận theo mặc định") && page.contains(r#"<p class="note">Theo mặc định"#));

    let rows = csv(&review);
    let unit = &review.units[1].code;
    let wanted = format!(",{unit},");
    let by_default: Vec<&str> =
        rows.lines().filter(|l| l.contains("placed_by_default:") && l.contains(&wanted)).collect();
    assert_eq!(by_default.len(), 4, "one row per measure:\n{rows}");
    assert!(by_default.iter().any(|l| l.contains(",learning_citizen,placed_by_default:recognised,5,")), "{rows}");
}

/// District 001 reviewed after 1 July 2025: what became of it, two wards (one its default).
fn reform_sample() -> Review {
    use hoctap_domain::review::{Reform, RelatedUnit, Relation};
    let ba_dinh = unit("00004", Level::Commune, "Phường Ba Đình", counts(900, 800, 700, 600), 300, Some(1_000));
    let ngoc_ha = unit("00008", Level::Commune, "Phường Ngọc Hà", counts(0, 0, 0, 0), 0, None);
    let mut review = Review {
        scope: "001".to_owned(),
        milestone: None,
        geography: Geography { provinces: 0, districts: 0, communes: 2 },
        reform: Some(Reform {
            code: "001".to_owned(),
            level: Level::District,
            name: "Quận Ba Đình".to_owned(),
            relation: Relation::Successors,
            date: Day::parse("2025-07-01").expect("a date"),
            units: vec![
                RelatedUnit { code: "00004".to_owned(), default: true, divided: true },
                RelatedUnit { code: "00008".to_owned(), default: false, divided: true },
            ],
        }),
        units: vec![ba_dinh, ngoc_ha],
        targets: Vec::new(),
        ..sample()
    };
    stamp(&mut review, GENERATED_AT);
    review
}

#[test]
fn a_unit_not_in_force_says_what_became_of_it_in_every_format() {
    let review = reform_sample();
    let sentence = "Quận Ba Đình (001) không còn từ 01/07/2025. Các đơn vị kế thừa tại ngày 2025-12-31: \
                    Phường Ba Đình (00004; mặc định, một phần), Phường Ngọc Hà (00008; một phần). \
                    Số liệu dưới đây là của các đơn vị này, mỗi đơn vị tính toàn bộ.";

    let doc: Value = serde_json::from_str(&json(&review)).unwrap();
    assert_eq!(doc["reform"]["code"], "001");
    assert_eq!(doc["reform"]["relation"], "successors");
    assert_eq!(doc["reform"]["date"], "2025-07-01");
    assert_eq!(doc["reform"]["units"][0], serde_json::json!({"code": "00004", "default": true, "divided": true}));
    assert_eq!(doc["units"][0]["code"], "00004");
    assert!(!json(&sample()).contains("\"reform\""), "absent from an ordinary review");

    let text = table(&review, Rows::All);
    assert!(text.contains("Đánh giá xây dựng xã hội học tập: Quận Ba Đình (001)"), "{text}");
    assert!(text.contains(sentence), "{text}");
    assert!(text.contains("Một phần: đơn vị bị chia tách") && text.contains("Mặc định: đối tượng"), "{text}");
    assert!(text.contains("Không đối chiếu chỉ tiêu: 001 không có hiệu lực tại ngày 2025-12-31."), "{text}");

    let page = html(&[&review], &page_title(&review));
    assert!(page.contains("<title>Quận Ba Đình — đánh giá ngày 2025-12-31</title>"), "{page}");
    assert!(page.contains(&format!(r#"<p class="reform">{sentence}</p>"#)), "{page}");
    // Both successors are listed, the one with nothing counted too.
    let citizens = page.split(r#"<table class="title learning_citizen">"#).nth(1).unwrap();
    let citizens = &citizens[..citizens.find("</table>").unwrap()];
    assert_eq!(citizens.matches("<tr").count(), 3, "header and both wards: {citizens}");

    let rows = csv(&review);
    let reform: Vec<&str> = rows.lines().filter(|l| l.starts_with("reform,")).collect();
    assert_eq!(reform.len(), 3, "{rows}");
    assert!(reform[0].contains(",001,district,Quận Ba Đình,,dissolved_on,2025-07-01,"), "{rows}");
    assert!(
        reform[1].contains(",00004,commune,Phường Ba Đình,,successor,,") && reform[1].contains(",default+divided,")
    );
    assert!(reform[2].contains(",00008,commune,Phường Ngọc Hà,,successor,,") && reform[2].contains(",divided,"));
    assert!(
        rows.lines().any(|l| l.starts_with("unit,001,") && l.contains(",00004,") && l.contains(",registered,900,"))
    );
    assert!(!csv(&sample()).contains("\nreform,"));
}

#[test]
fn a_new_unit_before_the_reform_says_what_it_comes_from() {
    use hoctap_domain::review::Relation;
    let mut review = reform_sample();
    review.scope = "00004".to_owned();
    review.as_of = Day::parse("2025-06-30").unwrap();
    let reform = review.reform.as_mut().unwrap();
    (reform.code, reform.level, reform.name, reform.relation) =
        ("00004".into(), Level::Commune, "Phường Ba Đình".into(), Relation::Predecessors);
    reform.units[0].code = "00001".into();
    reform.units.truncate(1);
    reform.units[0].divided = false;
    review.units.truncate(1);
    review.units[0].code = "00001".into();
    review.units[0].name = "Phường Phúc Xá".into();
    let text = table(&review, Rows::All);
    assert!(
        text.contains("Phường Ba Đình (00004) chỉ có từ 01/07/2025. Đơn vị hợp thành 00004 tại ngày 2025-06-30: Phường Phúc Xá (00001). Số liệu dưới đây là của đơn vị này, tính toàn bộ."),
        "{text}"
    );
    assert!(!text.contains("Một phần:"), "nothing divided, nothing to explain: {text}");
    assert!(csv(&review).contains(",00004,commune,Phường Ba Đình,,established_on,2025-07-01,"));
}

#[test]
fn csv_with_bom_starts_with_the_mark_and_is_otherwise_the_csv() {
    let review = sample();
    let with = csv_with_bom(&review);
    assert_eq!(with.as_bytes()[..3], [0xEF, 0xBB, 0xBF]);
    assert_eq!(&with[3..], csv(&review));
}

#[test]
fn html_title_tables_leave_out_units_with_nothing_for_the_title() {
    // Only the city holds `learning_unit` in the sample: its table keeps the scope's row and says how many
    // units were left out, instead of listing districts of zeros.
    let page = html(&[&sample()], "Sơ kết");
    let table = page.split(r#"<table class="title learning_unit">"#).nth(1).expect("the learning_unit table");
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr").count(), 2, "header and the city: {table}");
    assert!(page.contains("2 đơn vị khác chưa có số liệu danh hiệu này"), "{page}");
    let citizens = page.split(r#"<table class="title learning_citizen">"#).nth(1).unwrap();
    let citizens = &citizens[..citizens.find("</table>").unwrap()];
    assert_eq!(citizens.matches("<tr").count(), 4, "every unit has citizens: {citizens}");
    assert!(page.contains("@page { size: A4 landscape;"), "a print stylesheet");
}

mod workbook {
    use super::*;
    use crate::sheet::{ASKED_SHEET, SKILLS_SHEET, TARGET_HEADERS, TARGETS_SHEET, title_sheet};
    use calamine::{Data, Reader, Xlsx};

    fn open(review: &Review) -> Xlsx<std::io::Cursor<Vec<u8>>> {
        let bytes = xlsx(review).expect("a workbook");
        Xlsx::new(std::io::Cursor::new(bytes)).expect("calamine opens it")
    }

    fn number(cell: &Data) -> Option<f64> {
        match cell {
            Data::Float(f) => Some(*f),
            Data::Int(i) => Some(*i as f64),
            Data::Empty => None,
            other => panic!("a number or an empty cell, not {other:?}"),
        }
    }

    fn text(cell: &Data) -> String {
        match cell {
            Data::String(s) => s.clone(),
            other => panic!("text, not {other:?}"),
        }
    }

    #[test]
    fn sheets_hold_the_reviews_figures_as_numbers() {
        let review = sample();
        let mut book = open(&review);
        assert_eq!(
            book.sheet_names(),
            [
                TARGETS_SHEET,
                title_sheet(Title::LearningCitizen),
                title_sheet(Title::LearningUnit),
                SKILLS_SHEET,
                ASKED_SHEET
            ]
        );

        let targets = book.worksheet_range(TARGETS_SHEET).expect("the targets sheet");
        let rows: Vec<&[Data]> = targets.rows().collect();
        assert_eq!(rows[0].iter().map(text).collect::<Vec<_>>(), TARGET_HEADERS);
        assert_eq!(rows.len(), review.targets.len() + 1);
        for (row, t) in rows[1..].iter().zip(&review.targets) {
            assert_eq!(text(&row[0]), crate::figures::plan_name_vi(&t.plan));
            assert_eq!(text(&row[1]), crate::figures::indicator_name_vi(&t.indicator));
            assert_eq!((text(&row[10]), text(&row[11])), (t.plan.clone(), t.indicator.clone()), "the codes last");
            assert_eq!(number(&row[2]), Some(f64::from(t.milestone)));
            assert_eq!(number(&row[3]), Some(t.target_percent / 100.0), "a fraction, formatted as a percentage");
            assert_eq!(number(&row[4]), t.actual_percent.map(|a| a / 100.0), "empty when missing, never 0");
            assert_eq!(number(&row[5]), t.gap_points);
            assert_eq!(number(&row[6]), Some(t.numerator as f64));
            assert_eq!(number(&row[7]), t.denominator.map(|d| d as f64));
            assert_eq!(text(&row[8]), t.status.label_vi());
            assert_eq!(text(&row[9]), t.status.as_str());
        }

        let citizens = book.worksheet_range(title_sheet(Title::LearningCitizen)).unwrap();
        let rows: Vec<&[Data]> = citizens.rows().collect();
        assert_eq!(text(&rows[0][3]), "Đăng ký");
        assert_eq!(rows.len(), review.units.len() + 1, "a row per unit, zeros included");
        for (row, unit) in rows[1..].iter().zip(&review.units) {
            assert_eq!((text(&row[0]), text(&row[1])), (unit.code.clone(), unit.name.clone()));
            let c = unit.titles.get(&Title::LearningCitizen).copied().unwrap_or_default();
            let got: Vec<Option<f64>> = row[3..7].iter().map(number).collect();
            let want = [c.registered, c.declared, c.evidenced, c.recognised].map(|v| Some(v as f64));
            assert_eq!(got, want);
            assert_eq!(number(&row[7]), unit.baselines.get(&Metric::Adults).map(|v| *v as f64));
        }
        assert_eq!(number(&rows[3][8]), None, "Hoàn Kiếm has no adults baseline: no share");

        let asked = book.worksheet_range(ASKED_SHEET).unwrap();
        let value = |key: &str| asked.rows().find(|r| text(&r[2]) == key).map(|r| r[1].clone()).expect(key);
        assert_eq!(text(&value("known_at")), "2026-01-14T17:00:00Z");
        assert_eq!(number(&value("events")), Some(1_234_567.0));
        assert_eq!(text(&value("as_of")), "2025-12-31");
        assert_eq!(text(&value("software")), SOFTWARE);
        assert_eq!(text(&value("generated_at")), "2026-11-30T09:30:00.500Z");
    }

    #[test]
    fn a_unit_not_in_force_opens_with_its_successors() {
        use crate::sheet::{REFORM_HEADERS, REFORM_SHEET};
        let review = reform_sample();
        let mut book = open(&review);
        assert_eq!(book.sheet_names()[0], REFORM_SHEET);
        let sheet = book.worksheet_range(REFORM_SHEET).unwrap();
        let rows: Vec<&[Data]> = sheet.rows().collect();
        assert_eq!(rows[0].iter().map(text).collect::<Vec<_>>(), REFORM_HEADERS);
        assert_eq!(
            rows[1][..6].iter().map(text).collect::<Vec<_>>(),
            ["00004", "Phường Ba Đình", "Phường/xã", "Đơn vị kế thừa (successors)", "mặc định, một phần", "successors"]
        );
        assert_eq!(text(&rows[2][0]), "00008");
        assert!(text(&rows[4][0]).starts_with("Quận Ba Đình (001) không còn từ 01/07/2025."));
        let asked = book.worksheet_range(ASKED_SHEET).unwrap();
        let reform = asked.rows().find(|r| text(&r[2]) == "reform").expect("the reform row");
        assert!(text(&reform[1]).contains("Phường Ngọc Hà (00008; một phần)"));
        assert!(!open(&sample()).sheet_names().contains(&REFORM_SHEET.to_owned()));
    }

    #[test]
    fn a_review_without_targets_or_titles_still_makes_a_workbook() {
        let mut review = sample();
        review.targets.clear();
        for unit in &mut review.units {
            unit.titles.clear();
        }
        let mut book = open(&review);
        assert_eq!(book.sheet_names(), [TARGETS_SHEET, SKILLS_SHEET, ASKED_SHEET]);
        assert_eq!(book.worksheet_range(TARGETS_SHEET).unwrap().rows().count(), 1, "the header alone");
    }
}

/// An approved review states its decision in every format; any other review says nothing of approval.
#[test]
fn an_approved_review_states_its_decision_in_every_format() {
    let plain = sample();
    let mut approved = sample();
    approved.approved = Some(hoctap_domain::event::Decision {
        number: "15/QĐ-UBND".to_owned(),
        issuer: "UBND-01".to_owned(),
        date: Day::parse("2026-01-20").expect("a date"),
    });
    let doc: Value = serde_json::from_str(&json(&approved)).expect("JSON");
    assert_eq!(doc["approved"], serde_json::json!({"number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-20"}));
    let plain_doc: Value = serde_json::from_str(&json(&plain)).expect("JSON");
    assert!(plain_doc.get("approved").is_none());

    let line = "Đã phê duyệt (approved review): Quyết định số 15/QĐ-UBND (UBND-01), ngày 2026-01-20";
    assert!(table(&approved, Rows::All).contains(line), "{}", table(&approved, Rows::All));
    assert!(!table(&plain, Rows::All).contains("Đã phê duyệt"));
    let page = html(&[&approved], "t");
    assert!(page.contains("Đã phê duyệt (approved review)") && page.contains("15/QĐ-UBND"), "{page}");
    assert!(!html(&[&plain], "t").contains("Đã phê duyệt"));

    let text = csv(&approved);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("parses");
    assert!(records.iter().all(|r| (&r[22], &r[23], &r[24]) == ("15/QĐ-UBND", "UBND-01", "2026-01-20")));
    let text = csv(&plain);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("parses");
    assert!(records.iter().all(|r| (&r[22], &r[23], &r[24]) == ("", "", "")));
}

/// The terminal summary: the scope's row and the units furthest behind per title; `Rows::All` every row.
#[test]
fn the_terminal_summary_keeps_the_scope_and_the_units_furthest_behind() {
    let mut review = sample();
    // Ten communes, recognised 10 … 100 of 100 adults each, in shuffled order; one without a baseline.
    for (i, recognised) in [70u64, 20, 100, 50, 10, 90, 30, 60, 80, 40].into_iter().enumerate() {
        let code = format!("0000{i}");
        review.units.push(unit(
            &code,
            Level::Commune,
            &format!("Xã {i}"),
            counts(100, 100, 100, recognised),
            5,
            Some(100),
        ));
    }
    review.units.push(unit("00099", Level::Commune, "Xã thiếu mẫu số", counts(1, 1, 1, 0), 0, None));
    let summary = table(&review, Rows::Summary);
    let all = table(&review, Rows::All);
    // The five lowest shares (10 %, 20 %, 30 %, 40 %, 50 %: communes 4, 1, 6, 9, 3), the scope first.
    for kept in ["Hà Nội", "Xã 4", "Xã 1", "Xã 6", "Xã 9", "Xã 3"] {
        assert!(summary.contains(kept), "{kept} in the summary:\n{summary}");
    }
    for left in ["Xã 0 ", "Xã 2", "Xã 5", "Xã 7", "Xã 8", "Xã thiếu mẫu số", "Ba Đình"] {
        assert!(!summary.contains(left), "{left} is not in the summary:\n{summary}");
        assert!(all.contains(left.trim_end()), "{left} is in every row");
    }
    let lowest = summary.find("Xã 4").expect("listed");
    assert!(lowest < summary.find("Xã 3").expect("listed"), "lowest share first");
    assert!(summary.contains("--units all"), "the summary says how to see every row");
    assert!(!all.contains("--units all"));
    // The header and the targets are the same in both.
    let targets = |text: &str| text[..text.find("Công dân học tập").expect("a title")].to_owned();
    assert_eq!(targets(&summary), targets(&all));
    // A review with few units is printed whole either way.
    assert_eq!(table(&sample(), Rows::Summary), table(&sample(), Rows::All));
}

#[test]
fn plans_and_indicators_are_named_as_a_reviewer_reads_them() {
    use crate::figures::{indicator_name_vi, plan_name_vi};
    assert_eq!(indicator_name_vi("learning_citizen/adults"), "Công dân học tập / Người lớn");
    assert_eq!(
        indicator_name_vi("learning_citizen:staff/unit_staff"),
        "Công dân học tập (cán bộ, công chức, viên chức) / Cán bộ, công chức, viên chức"
    );
    assert_eq!(indicator_name_vi("digital_skill/learning_citizen"), "Kỹ năng số / Công dân học tập");
    assert_eq!(indicator_name_vi("learning_district/districts"), "Huyện học tập / Quận/huyện");
    // What it does not know stays as written.
    assert_eq!(indicator_name_vi("new_title:x/y"), "new_title (x) / y");
    assert_eq!(plan_name_vi("UBND-01/290/2021"), "Kế hoạch 290/KH-UBND (2021)");
    assert_eq!(plan_name_vi("TTg/677/2022"), "Quyết định 677/QĐ-TTg (2022)");
    assert_eq!(plan_name_vi("BGDĐT/12/a/2023"), "BGDĐT 12/a (2023)");
    assert_eq!(plan_name_vi("UBND-01/2021"), "UBND-01/2021");
}

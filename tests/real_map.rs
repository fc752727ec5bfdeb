//! Scenarios on the real map: Hải Dương (30) merged into Hải Phòng (31) on 1 July 2025, and a ward
//! of Hải Dương city divided between two new wards. The map is the official geography as
//! `hoctap geography --province 31` writes it; the people are written by hand, and every figure
//! asserted here was counted on paper from them, following docs/counting-rules.md.
//!
//! The facts of the map the scenario rests on (asserted from the data first, so that a changed
//! dataset fails here and not as a wrong figure):
//! - 10528 Phường Trần Phú (Thành phố Hải Dương, 288, province 30) was **divided** between 10532
//!   Phường Lê Thanh Nghị, the default, and 10537 Phường Tân Hưng;
//! - 10507 Phường Cẩm Thượng (288) kept its code, as Phường Thành Đông of Hải Phòng;
//! - 11299 Phường Hùng Vương (Quận Hồng Bàng, 303, province 31) passed whole into 11311 Phường Hồng
//!   Bàng (the code of the old Phường Minh Khai);
//! - Hải Dương had 12 districts and 207 communes; Hải Phòng has 114 communes from 1 July 2025.
//!
//! The people (learning citizens):
//! - c1: registered 10 Feb 2025 in 10528 (cycle 2025), declared 10 May, recognised 20 Nov;
//! - c2: registered 11 Feb 2025 in 10528; on 1 Sep 2025 its source names its ward, 10537;
//! - c3: registered 1 Mar 2025 in 10507, recognised 25 Nov;
//! - c4: registered 15 Jan 2025 in 11299 (Hải Phòng), recognised 1 Dec;
//! - c5: registered 1 Mar 2024 in 10528 for cycle 2024, recognised 20 Nov 2024 (valid through 2025).
//!
//! Adults (baselines): 10528: 10, 10507: 10, 11299: 30 from 2021; from the reform 10532: 10,
//! 10537: 5, 10507: 15, 11311: 50. Targets `learning_citizen/adults` for 2025: Hải Dương 40 %
//! (plan UBND-30/100/2022), Hải Phòng 50 % (UBND-31/200/2024).

use hoctap_domain::codes::Title;
use hoctap_domain::review::{Status, TitleCounts};
use hoctap_domain::{Admission, Batch, Engine, Event, Query, Review};
use hoctap_geography::{Official, Scope};
use hoctap_tests::{Ran, day, event, grant, hoctap, ingest, reg, run};
use serde_json::{Value, json};
use std::collections::HashMap;

fn official() -> &'static Official {
    static OFFICIAL: std::sync::OnceLock<Official> = std::sync::OnceLock::new();
    OFFICIAL.get_or_init(|| Official::load().unwrap())
}

#[test]
fn the_map_says_what_the_scenario_rests_on() {
    let o = official();
    let old = |code: &str| o.old_communes.iter().find(|c| c.code == code).unwrap();
    let new = |code: &str| o.new_communes.iter().find(|c| c.code == code).unwrap();
    let successors = |code: &str| old(code).successors.iter().map(|s| (s.code.as_str(), s.default)).collect::<Vec<_>>();
    assert_eq!((old("10528").name.as_str(), old("10528").district.as_str()), ("Phường Trần Phú", "288"));
    assert_eq!(successors("10528"), [("10532", true), ("10537", false)]);
    assert_eq!((new("10532").name.as_str(), new("10537").name.as_str()), ("Phường Lê Thanh Nghị", "Phường Tân Hưng"));
    assert_eq!((old("10507").name.as_str(), new("10507").name.as_str()), ("Phường Cẩm Thượng", "Phường Thành Đông"));
    assert_eq!(successors("11299"), [("11311", true)]);
    assert_eq!(new("11311").name, "Phường Hồng Bàng");
    assert_eq!(o.new_province_of("30"), Some("31"));
    let districts_30: Vec<_> = o.old_districts.iter().filter(|d| d.province == "30").map(|d| d.code.as_str()).collect();
    assert_eq!(districts_30.len(), 12);
    assert_eq!(o.old_communes.iter().filter(|c| districts_30.contains(&c.district.as_str())).count(), 207);
    assert_eq!(o.new_communes.iter().filter(|c| c.province == "31").count(), 114);
}

fn adults(n: u128, time: &str, unit: &str, value: u64) -> Event {
    let data = json!({"unit": unit, "metric": "adults", "value": value});
    event(n, "baseline.recorded", time, unit, data)
}

fn target(n: u128, time: &str, plan: (&str, &str, i32), scope: &str, percent: f64) -> Event {
    let (issuer, number, year) = plan;
    let data = json!({"plan": {"issuer": issuer, "number": number, "year": year}, "scope": scope,
        "indicator": "learning_citizen/adults", "milestone": 2025, "percent": percent});
    event(n, "target.set", time, scope, data)
}

/// The official map of Hải Phòng with Hải Dương, and the people, baselines and targets above.
fn world() -> Vec<Event> {
    let mut events = official().events(&Scope::Province("31".into()), day("2021-01-01")).unwrap();
    let from = "2021-01-01T08:00:00+07:00";
    let reform = "2025-07-01T08:00:00+07:00";
    events.extend([
        adults(1, from, "10528", 10),
        adults(2, from, "10507", 10),
        adults(3, from, "11299", 30),
        adults(4, reform, "10532", 10),
        adults(5, reform, "10537", 5),
        adults(6, reform, "10507", 15),
        adults(7, reform, "11311", 50),
        target(8, "2022-06-01T08:00:00+07:00", ("UBND-30", "100", 2022), "30", 40.0),
        target(9, "2024-03-01T08:00:00+07:00", ("UBND-31", "200", 2024), "31", 50.0),
    ]);
    let declared = json!({"title": "learning_citizen", "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023",
        "scores": [{"criterion": "TC1", "score": 90}], "total": 90});
    events.extend([
        reg(20, "2025-02-10T09:00:00+07:00", "cit-c1", "10528", 2025, "resident"),
        event(21, "declaration.submitted", "2025-05-10T09:00:00+07:00", "cit-c1", declared),
        grant(22, "2025-11-20T09:00:00+07:00", "cit-c1", "learning_citizen", 2025, "2025-01-01", "2026-12-31"),
        reg(30, "2025-02-11T09:00:00+07:00", "cit-c2", "10528", 2025, "worker"),
        event(31, "subject.relocated", "2025-09-01T09:00:00+07:00", "cit-c2", json!({"commune": "10537"})),
        reg(40, "2025-03-01T09:00:00+07:00", "cit-c3", "10507", 2025, "staff"),
        grant(41, "2025-11-25T09:00:00+07:00", "cit-c3", "learning_citizen", 2025, "2025-01-01", "2026-12-31"),
        reg(50, "2025-01-15T09:00:00+07:00", "cit-c4", "11299", 2025, "resident"),
        grant(51, "2025-12-01T09:00:00+07:00", "cit-c4", "learning_citizen", 2025, "2025-01-01", "2026-12-31"),
        reg(60, "2024-03-01T09:00:00+07:00", "cit-c5", "10528", 2024, "student"),
        grant(61, "2024-11-20T09:00:00+07:00", "cit-c5", "learning_citizen", 2024, "2024-01-01", "2025-12-31"),
    ]);
    events
}

/// The world admitted as one batch (as `hoctap ingest` admits one file) and folded.
fn engine() -> Engine {
    let events = world();
    let mut engine = Engine::new();
    let mut batch = Batch::default();
    batch.add_units(&engine, &events);
    for e in &events {
        match engine.admit(&mut batch, e) {
            Ok(Admission::New) => engine.apply(e),
            other => panic!("{} refused: {other:?}", e.id),
        }
    }
    engine
}

fn review(engine: &Engine, scope: &str, as_of: &str) -> Review {
    engine.review(&Query { scope: scope.into(), as_of: day(as_of), known_at: None, milestone: None }).unwrap()
}

fn counts(registered: u64, declared: u64, evidenced: u64, recognised: u64) -> TitleCounts {
    TitleCounts { registered, declared, evidenced, recognised }
}

/// A unit's learning-citizen counts, and those of them placed by default.
fn lc(r: &Review, code: &str) -> (TitleCounts, TitleCounts) {
    let unit = r.units.iter().find(|u| u.code == code).unwrap_or_else(|| panic!("{code} in the review of {}", r.scope));
    let of = |m: &std::collections::BTreeMap<Title, TitleCounts>| {
        m.get(&Title::LearningCitizen).copied().unwrap_or_default()
    };
    (of(&unit.titles), of(&unit.placed_by_default))
}

const NONE: TitleCounts = TitleCounts { registered: 0, declared: 0, evidenced: 0, recognised: 0 };

#[test]
fn before_the_merger_hai_duong_is_reviewed_with_its_districts() {
    let engine = engine();
    let r = review(&engine, "30", "2025-06-30");
    assert_eq!((r.geography.provinces, r.geography.districts, r.geography.communes), (1, 12, 207));
    assert_eq!(r.units[0].name, "Tỉnh Hải Dương");
    assert_eq!(r.units.len(), 1 + 12, "the province, then its districts");
    // Registered for 2025: c1, c2, c3 (c5 only for 2024). Declared: c1. Recognised: c5, whose 2024
    // recognition is valid through 2025, and c1 and c3, whose November decisions are valid from
    // 1 January 2025 (validity is valid time, rule 6; as known now they are known). Nobody is placed
    // by default before the reform.
    assert_eq!(lc(&r, "30"), (counts(3, 1, 0, 3), NONE));
    assert_eq!(lc(&r, "288"), (counts(3, 1, 0, 3), NONE));
    // 3 recognised of 10 + 10 adults.
    let t = &r.targets[0];
    assert_eq!(
        (t.plan.as_str(), t.numerator, t.denominator, t.actual_percent),
        ("UBND-30/100/2022", 3, Some(20), Some(15.0))
    );
    assert_eq!(t.status, Status::Behind);

    let r = review(&engine, "31", "2025-06-30");
    assert_eq!(r.units[0].name, "Thành phố Hải Phòng");
    assert_eq!(lc(&r, "31"), (counts(1, 0, 0, 1), NONE), "c4 only: Hải Dương is not part of it yet");
    let t = &r.targets[0];
    assert_eq!((t.numerator, t.denominator, t.status), (1, Some(30), Status::Behind));
}

#[test]
fn after_the_merger_hai_phong_counts_both_and_the_divided_ward_rests_on_its_default() {
    let engine = engine();
    let r = review(&engine, "31", "2025-12-31");
    assert_eq!((r.geography.provinces, r.geography.districts, r.geography.communes), (1, 0, 114));
    assert_eq!(r.units.len(), 1 + 114, "the city, then its communes");
    // Registered for 2025: c1–c4; declared c1; recognised c1, c3, c4 and c5 (2024, valid through 2025).
    // c1 and c5 last named 10528, divided: they are placed by default in 10532.
    assert_eq!(lc(&r, "31"), (counts(4, 1, 0, 4), counts(1, 1, 0, 2)));
    assert_eq!(lc(&r, "10532"), (counts(1, 1, 0, 2), counts(1, 1, 0, 2)));
    // c2's source named its ward: counted there, and not by default.
    assert_eq!(lc(&r, "10537"), (counts(1, 0, 0, 0), NONE));
    // 10507 kept its code: c3 is simply there, under its new name.
    assert_eq!(lc(&r, "10507"), (counts(1, 0, 0, 1), NONE));
    assert_eq!(r.units.iter().find(|u| u.code == "10507").unwrap().name, "Phường Thành Đông");
    // 11299 passed whole into 11311: no default to rest on.
    assert_eq!(lc(&r, "11311"), (counts(1, 0, 0, 1), NONE));
    // Only Hải Phòng's targets: 4 recognised of 10 + 5 + 15 + 50 adults in the communes in force.
    assert_eq!(r.targets.len(), 1);
    let t = &r.targets[0];
    assert_eq!(
        (t.plan.as_str(), t.numerator, t.denominator, t.actual_percent),
        ("UBND-31/200/2024", 4, Some(80), Some(5.0))
    );
    assert_eq!((t.gap_points, t.status), (Some(-45.0), Status::Behind));

    // Before its ward was named, c2 too rested on the default (with c1 and c5, both recognised).
    let r = review(&engine, "31", "2025-08-31");
    assert_eq!(lc(&r, "10532"), (counts(2, 1, 0, 2), counts(2, 1, 0, 2)));
    assert_eq!(lc(&r, "10537"), (NONE, NONE));
}

#[test]
fn the_merged_province_and_the_divided_ward_say_what_became_of_them() {
    let engine = engine();
    let gone = review(&engine, "30", "2025-12-31");
    let reform = gone.reform.as_ref().expect("what became of Hải Dương");
    assert_eq!(
        (reform.relation.as_str(), reform.date, reform.name.as_str()),
        ("successors", day("2025-07-01"), "Tỉnh Hải Dương")
    );
    assert_eq!(
        reform.units.iter().map(|u| (u.code.as_str(), u.default, u.divided)).collect::<Vec<_>>(),
        [("31", true, false)]
    );
    assert_eq!(lc(&gone, "31"), (counts(4, 1, 0, 4), counts(1, 1, 0, 2)), "Hải Phòng's own figures");

    let divided = review(&engine, "10528", "2025-12-31");
    let reform = divided.reform.as_ref().expect("what became of Phường Trần Phú");
    let mut units: Vec<_> = reform.units.iter().map(|u| (u.code.as_str(), u.default, u.divided)).collect();
    units.sort();
    assert_eq!(units, [("10532", true, true), ("10537", false, true)]);
    assert_eq!(lc(&divided, "10537"), (counts(1, 0, 0, 0), NONE));
}

// The same merger through the CLI, on a generated city: `hoctap generate --province 31`.

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn review_of(data: &std::path::Path, scope: &str, as_of: &str) -> Value {
    let ran = run(hoctap()
        .arg("--data-dir")
        .arg(data)
        .args(["review", "--scope", scope, "--as-of", as_of, "--format", "json"]));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    serde_json::from_str(&ran.stdout).unwrap()
}

fn generate(dir: &std::path::Path, province: &str) -> (Ran, std::path::PathBuf) {
    let city = dir.join(format!("city-{province}.ndjson"));
    let ran = run(hoctap()
        .args(["generate", "--citizens", "300", "--seed", "3", "--province", province, "--out"])
        .arg(&city));
    (ran, city)
}

#[test]
fn a_generated_hai_phong_spans_the_merger() {
    let dir = temp();
    let (ran, city) = generate(dir.path(), "31");
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let data = dir.path().join("data");
    let ingested = ingest(&data, &[&city]);
    assert_eq!(ingested.code, Some(0), "every generated event is accepted: {ingested:?}");

    let before = review_of(&data, "30", "2025-06-30");
    assert_eq!(before["geography"], json!({"provinces": 1, "districts": 12, "communes": 207}));
    let lc = |r: &Value, i: usize| r["units"][i]["titles"]["learning_citizen"]["registered"].as_u64().unwrap_or(0);
    assert!(lc(&before, 0) > 0, "people live in Hải Dương before the merger");
    let hai_phong_before = review_of(&data, "31", "2025-06-30");
    let o = official();
    let districts_31: Vec<_> = o.old_districts.iter().filter(|d| d.province == "31").map(|d| d.code.as_str()).collect();
    let communes_31 = o.old_communes.iter().filter(|c| districts_31.contains(&c.district.as_str())).count();
    assert_eq!(hai_phong_before["geography"]["communes"], communes_31, "only the old Hải Phòng");

    let after = review_of(&data, "31", "2025-12-31");
    assert_eq!(after["geography"], json!({"provinces": 1, "districts": 0, "communes": 114}));
    let names: HashMap<&str, &str> = after["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["code"].as_str().unwrap(), u["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names.get("10532"), Some(&"Phường Lê Thanh Nghị"));
    // The merged province's people did not vanish: the city after the merger counts about both.
    let (hd, hp, both) = (lc(&before, 0), lc(&hai_phong_before, 0), lc(&after, 0));
    assert!(both > hp && both > hd, "{hd} + {hp} before, {both} after");
    // Targets: the national ones, adopted by the province in force.
    assert!(after["targets"].as_array().unwrap().iter().all(|t| t["plan"] == "TTg/677/2022"), "{}", after["targets"]);

    let gone = review_of(&data, "30", "2025-12-31");
    assert_eq!(gone["reform"]["units"], json!([{"code": "31", "default": true, "divided": false}]));
}

#[test]
fn generate_refuses_a_province_merged_into_another_and_names_it() {
    let dir = temp();
    let (ran, _) = generate(dir.path(), "30");
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("--province 31") && ran.stderr.contains("Hải Dương"), "{}", ran.stderr);
    let ran = run(hoctap().args(["generate", "--province", "HN"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("--province"), "{}", ran.stderr);
}

#[test]
fn the_default_city_is_ha_noi_on_its_real_wards() {
    let dir = temp();
    let city = dir.path().join("city.ndjson");
    let ran = run(hoctap().args(["generate", "--citizens", "300", "--seed", "4", "--out"]).arg(&city));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let data = dir.path().join("data");
    assert_eq!(ingest(&data, &[&city]).code, Some(0));
    let r = review_of(&data, "01", "2025-12-31");
    assert_eq!(r["geography"], json!({"provinces": 1, "districts": 0, "communes": 126}));
    assert_eq!(r["units"][0]["name"], "Thành phố Hà Nội");
    let names: Vec<&str> = r["units"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"Phường Ba Đình") && names.contains(&"Phường Hoàn Kiếm"), "{names:?}");
    // Some of the city's figures rest on the default successor of a divided commune.
    let by_default = &r["units"][0]["placed_by_default"]["learning_citizen"];
    assert!(by_default["recognised"].as_u64().unwrap_or(0) > 0, "{}", r["units"][0]);
    let before = review_of(&data, "01", "2025-06-30");
    assert_eq!(before["geography"], json!({"provinces": 1, "districts": 30, "communes": 526}));
}

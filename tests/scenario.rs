//! A small world worked out by hand: every figure asserted here was counted on paper from the events
//! of `support/world.rs` ([`scenario_world`]), following the counting rules in docs/counting-rules.md.
//!
//! Hà Nội (01) has two districts until 30 June 2025: 001 (communes 00001, 00002) and 002 (00003,
//! 00004). On 1 July 2025 both districts are abolished, 00001 and 00002 move under the city, and
//! 00003 + 00004 merge into the new commune 00005.

use hoctap_domain::review::{Status, TitleCounts};
use hoctap_domain::{Admission, Batch, Engine, Query, Review, Rule};
use hoctap_tests::{day, id, instant, reg, scenario_world};

fn engine() -> Engine {
    let events = scenario_world();
    let mut engine = Engine::new();
    let mut batch = Batch::default();
    batch.add_units(&engine, &events);
    for e in &events {
        match engine.admit(&mut batch, e) {
            Ok(Admission::New) => engine.apply(e),
            Ok(Admission::Duplicate) => assert_eq!(e.id.to_string(), id(80), "only event 80 is sent twice"),
            Err(r) => panic!("{r}"),
        }
    }
    engine
}

fn review(engine: &Engine, as_of: &str, known_at: Option<&str>) -> Review {
    let query = Query { scope: "01".into(), as_of: day(as_of), known_at: known_at.map(instant), milestone: None };
    engine.review(&query).expect("review")
}

fn lc(r: &Review, code: &str) -> TitleCounts {
    let unit = r.units.iter().find(|u| u.code == code).unwrap_or_else(|| panic!("unit {code} in review"));
    unit.titles.get(&hoctap_domain::codes::Title::LearningCitizen).copied().unwrap_or_default()
}

fn counts(registered: u64, declared: u64, evidenced: u64, recognised: u64) -> TitleCounts {
    TitleCounts { registered, declared, evidenced, recognised }
}

fn codes(r: &Review) -> Vec<&str> {
    r.units.iter().map(|u| u.code.as_str()).collect()
}

#[test]
fn phase_review_as_known_now() {
    let r = review(&engine(), "2025-12-31", None);
    // After the reform the city has no districts: its children are its communes in force.
    assert_eq!(codes(&r), ["01", "00001", "00002", "00005"]);
    assert_eq!((r.geography.provinces, r.geography.districts, r.geography.communes), (1, 0, 3));
    assert_eq!(r.units[1].name, "Phường Ba Đình", "renamed in 2023");
    // Registered: c1, c2 (re-registered), c3, c5, c6 (its retraction was retracted); not c4 (cycle
    // 2024 only), not c7 (withdrawn at the same instant). Declared and evidenced: c1 only (c5's
    // declaration was retracted). Recognised: c1 (late grant, valid from 1 January) and c4 (cycle
    // 2024 grant valid through 2025); not c3 (revoked with effect from 1 October).
    assert_eq!(lc(&r, "01"), counts(5, 1, 1, 2));
    assert_eq!(lc(&r, "00001"), counts(2, 1, 1, 1));
    assert_eq!(lc(&r, "00002"), counts(1, 0, 0, 0));
    // c3 (named 00003) and c5 (00004) follow their dissolved communes to 00005; c4 moved to 00004.
    assert_eq!(lc(&r, "00005"), counts(2, 0, 0, 1));
    // District 001 was abolished: its title counts nowhere.
    assert!(!r.units[0].titles.contains_key(&hoctap_domain::codes::Title::LearningDistrict));
    assert_eq!(r.units[0].digital_skill, 1);
    // The city has no baseline of its own: 10 + 10 + 12 from its communes in force.
    assert_eq!(r.units[0].baselines[&hoctap_domain::codes::Metric::Adults], 32);

    assert_eq!(r.milestone, Some(2025));
    let t: Vec<_> = r.targets.iter().map(|t| (t.plan.as_str(), t.indicator.as_str())).collect();
    assert_eq!(
        t,
        [
            ("UBND-01/290/2021", "learning_citizen/adults"),
            ("UBND-01/290/2021", "learning_district/districts"),
            ("TTg/677/2022", "digital_skill/learning_citizen"),
            ("TTg/677/2022", "learning_family/households"),
        ]
    );
    let adults = &r.targets[0];
    assert_eq!(adults.target_percent, 55.0, "the 2024 revision wins");
    assert_eq!((adults.numerator, adults.denominator), (2, Some(32)));
    assert_eq!(adults.actual_percent, Some(6.25));
    assert_eq!(adults.gap_points, Some(-48.75));
    assert_eq!(adults.status, Status::Behind);
    let districts = &r.targets[1];
    assert_eq!((districts.numerator, districts.denominator, districts.actual_percent), (0, Some(0), None));
    assert_eq!(districts.status, Status::UnitAbolished);
    let skill = &r.targets[2];
    // Recognised learning citizens c1 and c4; only c1 holds a digital skill.
    assert_eq!((skill.numerator, skill.denominator, skill.actual_percent), (1, Some(2), Some(50.0)));
    let households = &r.targets[3];
    assert_eq!(
        (households.denominator, households.actual_percent, households.status),
        (None, None, Status::NoDenominator)
    );
}

#[test]
fn late_events_and_retractions_change_exactly_their_answers() {
    let engine = engine();
    // Before 20 February 2026 neither c1's grant nor c3's revocation was known: c3 counted, c1 not.
    let r = review(&engine, "2025-12-31", Some("2026-02-01T00:00:00Z"));
    assert_eq!(lc(&r, "01"), counts(5, 1, 1, 2));
    assert_eq!(lc(&r, "00001"), counts(2, 1, 1, 0));
    assert_eq!(lc(&r, "00005"), counts(2, 0, 0, 2));
    assert_eq!(r.known_at.as_deref(), Some("2026-02-01T00:00:00Z"));
    // c4 recognised, without a digital skill: 0 % is an actual figure here, not a missing one.
    assert_eq!(r.targets[2].actual_percent, Some(0.0));
    // Between the retraction of c6's registration (1 March) and its own retraction (1 April).
    let r = review(&engine, "2025-12-31", Some("2026-03-15T00:00:00Z"));
    assert_eq!(lc(&r, "01"), counts(4, 1, 1, 2));
    assert_eq!(lc(&r, "00002"), counts(0, 0, 0, 0));
    // Before anything was recorded there is no city at all.
    let q = Query {
        scope: "01".into(),
        as_of: day("2025-12-31"),
        known_at: Some(instant("2026-01-01T00:00:00Z")),
        milestone: None,
    };
    assert!(engine.review(&q).is_err());
}

#[test]
fn before_the_reform_districts_are_counted() {
    let engine = engine();
    let r = review(&engine, "2025-06-30", None);
    assert_eq!(codes(&r), ["01", "001", "002"]);
    assert_eq!((r.geography.districts, r.geography.communes), (2, 4));
    // c1, c3 (revocation takes effect only in October) and c4 are recognised on 30 June.
    assert_eq!(lc(&r, "01"), counts(5, 1, 1, 3));
    assert_eq!(lc(&r, "001"), counts(3, 1, 1, 1));
    assert_eq!(lc(&r, "002"), counts(2, 0, 0, 2));
    let district_title = &r.units[1].titles[&hoctap_domain::codes::Title::LearningDistrict];
    assert_eq!(district_title.recognised, 1);
    assert_eq!(r.units[1].baselines[&hoctap_domain::codes::Metric::Adults], 20);
    assert_eq!(r.units[0].baselines[&hoctap_domain::codes::Metric::Adults], 30);
    let districts = &r.targets[1];
    assert_eq!((districts.numerator, districts.denominator, districts.actual_percent), (1, Some(2), Some(50.0)));
    assert_eq!(districts.status, Status::Met);
    assert_eq!(r.targets[0].actual_percent, Some(10.0));
}

#[test]
fn withdrawal_before_re_registration_and_relocation() {
    let r = review(&engine(), "2025-04-01", None);
    // c2 withdrew on 1 March and registers again only on 1 June; c4 moved to 00004 (district 002).
    assert_eq!(lc(&r, "01"), counts(4, 1, 0, 3));
    assert_eq!(lc(&r, "001"), counts(2, 1, 0, 1));
    assert_eq!(lc(&r, "002"), counts(2, 0, 0, 2));
}

#[test]
fn another_milestone_can_be_named() {
    let engine = engine();
    let q = Query { scope: "01".into(), as_of: day("2025-12-31"), known_at: None, milestone: Some(2030) };
    let r = engine.review(&q).unwrap();
    assert_eq!(r.targets.len(), 1);
    assert_eq!((r.targets[0].target_percent, r.targets[0].actual_percent), (70.0, Some(6.25)));
    // District 001 is not in force after the reform: its review says what became of it. It was
    // dissolved into the city, so its communes are listed (both kept their codes), each with the
    // figures of its own row in the city's review, and no targets.
    let q = Query { scope: "001".into(), as_of: day("2025-12-31"), known_at: None, milestone: None };
    let gone = engine.review(&q).unwrap();
    let reform = gone.reform.as_ref().expect("what became of 001");
    assert_eq!(
        (reform.relation.as_str(), reform.date, reform.name.as_str()),
        ("successors", day("2025-07-01"), "Quận Ba Đình")
    );
    assert_eq!(
        reform.units.iter().map(|u| (u.code.as_str(), u.default, u.divided)).collect::<Vec<_>>(),
        [("00001", false, false), ("00002", false, false)]
    );
    let city = engine.review(&Query { scope: "01".into(), milestone: None, ..q }).unwrap();
    let rows =
        |codes: &[&str]| city.units.iter().filter(|u| codes.contains(&u.code.as_str())).cloned().collect::<Vec<_>>();
    assert_eq!(gone.units, rows(&["00001", "00002"]), "the communes' rows, figures and all");
    assert!(!lc(&gone, "00001").is_zero(), "00001 has learning citizens on that day");
    assert!(gone.targets.is_empty() && gone.milestone.is_none());
}

#[test]
fn the_same_id_with_other_content_is_refused() {
    let engine = engine();
    let mut batch = Batch::default();
    let changed = reg(80, "2025-01-10T09:00:00+07:00", "cit-c5", "00001", 2025, "student");
    let refusal = engine.admit(&mut batch, &changed).unwrap_err();
    assert_eq!((refusal.rule, refusal.field.as_str()), (Rule::DuplicateId, "id"));
    let same = reg(80, "2025-01-10T09:00:00+07:00", "cit-c5", "00004", 2025, "student");
    assert_eq!(engine.admit(&mut batch, &same), Ok(Admission::Duplicate));
}

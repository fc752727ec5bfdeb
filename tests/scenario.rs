//! A small world worked out by hand: every figure asserted here was counted on paper from the events
//! below, following the counting rules in docs/counting-rules.md.
//!
//! Hà Nội (01) has two districts until 30 June 2025: 001 (communes 00001, 00002) and 002 (00003,
//! 00004). On 1 July 2025 both districts are abolished, 00001 and 00002 move under the city, and
//! 00003 + 00004 merge into the new commune 00005.

use hoctap_domain::review::{Status, TitleCounts};
use hoctap_domain::{Admission, Batch, Engine, Event, Query, Review, Rule};
use hoctap_tests::{day, event, id, instant, recorded};
use serde_json::json;

const EARLY: &str = "2026-01-05T00:00:00Z";
const REFORM: &str = "2025-07-01T00:00:00+07:00";
const START: &str = "2021-01-01T00:00:00+07:00";

fn unit(n: u128, code: &str, level: &str, name: &str, parent: Option<&str>) -> Event {
    let mut data = json!({"code": code, "level": level, "name": name});
    if let Some(p) = parent {
        data["parent"] = json!(p);
    }
    event(n, "admin_unit.established", START, code, data)
}

fn reg(n: u128, time: &str, subject: &str, commune: &str, cycle: i32, group: &str) -> Event {
    let data = json!({"subject_kind": "citizen", "commune": commune, "title": "learning_citizen", "cycle_year": cycle, "subject_group": group});
    event(n, "registration.submitted", time, subject, data)
}

fn grant(n: u128, time: &str, subject: &str, title: &str, cycle: i32, from: &str, until: &str) -> Event {
    let decision = json!({"number": format!("{n}/QD-UBND"), "issuer": "UBND-01", "date": &time[..10]});
    let data = json!({"title": title, "cycle_year": cycle, "decision": decision, "valid_from": from, "valid_until": until});
    event(n, "recognition.granted", time, subject, data)
}

fn target(n: u128, time: &str, plan: (&str, &str, i32), indicator: &str, milestone: i32, percent: f64) -> Event {
    let data = json!({"plan": {"issuer": plan.0, "number": plan.1, "year": plan.2}, "scope": "01", "indicator": indicator, "milestone": milestone, "percent": percent});
    event(n, "target.set", time, "01", data)
}

fn baseline(n: u128, time: &str, code: &str, value: u64) -> Event {
    event(n, "baseline.recorded", time, code, json!({"unit": code, "metric": "adults", "value": value}))
}

fn retraction(n: u128, time: &str, subject: &str, of: u128) -> Event {
    event(n, "event.retracted", time, subject, json!({"event_id": id(of), "reason": "nhập nhầm"}))
}

/// Every event of the world, as recorded by the tracker, in the order they arrived.
pub fn world() -> Vec<Event> {
    let lc = "learning_citizen";
    let early = vec![
        unit(1, "01", "province", "Hà Nội", None),
        unit(2, "001", "district", "Quận Ba Đình", Some("01")),
        unit(3, "002", "district", "Huyện Sóc Sơn", Some("01")),
        unit(4, "00001", "commune", "Phường Phúc Xá", Some("001")),
        unit(5, "00002", "commune", "Phường Trúc Bạch", Some("001")),
        unit(6, "00003", "commune", "Xã Bắc Sơn", Some("002")),
        unit(7, "00004", "commune", "Xã Nam Sơn", Some("002")),
        event(8, "admin_unit.renamed", "2023-05-01T00:00:00+07:00", "00001", json!({"code": "00001", "name": "Phường Ba Đình"})),
        event(9, "admin_unit.established", REFORM, "00005", json!({"code": "00005", "level": "commune", "name": "Xã Sóc Sơn", "parent": "01"})),
        event(10, "admin_unit.reparented", REFORM, "00001", json!({"code": "00001", "parent": "01"})),
        event(11, "admin_unit.reparented", REFORM, "00002", json!({"code": "00002", "parent": "01"})),
        event(12, "admin_unit.dissolved", REFORM, "00003", json!({"code": "00003", "successor": "00005"})),
        event(13, "admin_unit.dissolved", REFORM, "00004", json!({"code": "00004", "successor": "00005"})),
        event(14, "admin_unit.dissolved", REFORM, "001", json!({"code": "001", "successor": "01"})),
        event(15, "admin_unit.dissolved", REFORM, "002", json!({"code": "002", "successor": "01"})),
        baseline(20, START, "00001", 10),
        baseline(21, START, "00002", 10),
        baseline(22, START, "00003", 5),
        baseline(23, START, "00004", 5),
        baseline(24, REFORM, "00005", 12),
        target(30, "2021-12-15T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_citizen/adults", 2025, 50.0),
        target(31, "2021-12-15T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_district/districts", 2025, 40.0),
        target(32, "2022-06-01T00:00:00+07:00", ("TTg", "677", 2022), "learning_family/households", 2025, 70.0),
        target(33, "2022-06-01T00:00:00+07:00", ("TTg", "677", 2022), "digital_skill/learning_citizen", 2025, 70.0),
        target(34, "2021-12-15T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_citizen/adults", 2030, 70.0),
        // The plan is revised: the latest target.set for the same key wins from its time on.
        target(35, "2024-01-01T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_citizen/adults", 2025, 55.0),
        // c1: a learning citizen of 00001 whose recognition is decided late (February 2026).
        reg(40, "2025-01-10T09:00:00+07:00", "cit-c1", "00001", 2025, "staff"),
        event(41, "declaration.submitted", "2025-04-01T09:00:00+07:00", "cit-c1",
            json!({"title": lc, "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023", "scores": [{"criterion": "C1", "score": 90}], "total": 90})),
        event(42, "evidence.uploaded", "2025-05-01T09:00:00+07:00", "cit-c1",
            json!({"title": lc, "cycle_year": 2025, "criterion": "C1", "sha256": "ab".repeat(32), "uri": "https://minhchung.example/c1.pdf", "media_type": "application/pdf", "bytes": 1024})),
        event(44, "skill.certified", "2025-08-01T09:00:00+07:00", "cit-c1", json!({"commune": "00001", "level": "basic"})),
        // c2: withdraws, then registers again.
        reg(50, "2025-01-10T09:00:00+07:00", "cit-c2", "00001", 2025, "resident"),
        event(51, "registration.withdrawn", "2025-03-01T09:00:00+07:00", "cit-c2", json!({"title": lc, "cycle_year": 2025})),
        reg(52, "2025-06-01T09:00:00+07:00", "cit-c2", "00001", 2025, "resident"),
        // c3: recognised in November, revoked in January with effect from 1 October.
        reg(60, "2025-01-10T09:00:00+07:00", "cit-c3", "00003", 2025, "worker"),
        grant(61, "2025-11-20T09:00:00+07:00", "cit-c3", lc, 2025, "2025-01-01", "2026-12-31"),
        // c4: recognised for cycle 2024 (valid through 2025), moves from 00002 to 00004 in March 2025.
        reg(70, "2024-02-01T09:00:00+07:00", "cit-c4", "00002", 2024, "resident"),
        grant(71, "2024-12-10T09:00:00+07:00", "cit-c4", lc, 2024, "2024-01-01", "2025-12-31"),
        event(72, "subject.relocated", "2025-03-01T09:00:00+07:00", "cit-c4", json!({"commune": "00004"})),
        // c5: registered (sent twice), its declaration entered in error.
        reg(80, "2025-01-10T09:00:00+07:00", "cit-c5", "00004", 2025, "student"),
        reg(80, "2025-01-10T09:00:00+07:00", "cit-c5", "00004", 2025, "student"),
        event(81, "declaration.submitted", "2025-04-01T09:00:00+07:00", "cit-c5",
            json!({"title": lc, "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023", "scores": [], "total": 85})),
        // c6: registered; that registration is retracted, then the retraction is retracted.
        reg(90, "2025-02-01T09:00:00+07:00", "cit-c6", "00002", 2025, "resident"),
        // c7: registers and withdraws at the same instant: the withdrawal wins, whatever the ids.
        event(110, "registration.withdrawn", "2025-02-02T10:00:00+07:00", "cit-c7", json!({"title": lc, "cycle_year": 2025})),
        reg(111, "2025-02-02T10:00:00+07:00", "cit-c7", "00001", 2025, "resident"),
        // District 001 holds the learning-district title as itself until it is abolished.
        event(100, "registration.submitted", "2024-03-01T09:00:00+07:00", "001",
            json!({"subject_kind": "district", "commune": "001", "title": "learning_district", "cycle_year": 2024})),
        grant(101, "2024-12-01T09:00:00+07:00", "001", "learning_district", 2024, "2024-06-01", "2027-06-01"),
    ];
    let mut all: Vec<Event> = early.into_iter().map(|e| recorded(e, EARLY)).collect();
    all.push(recorded(retraction(82, "2025-04-05T09:00:00+07:00", "cit-c5", 81), "2026-01-10T00:00:00Z"));
    // Known only from 20 February 2026: c1's grant (a decision of February 2026 for cycle 2025) and
    // c3's revocation.
    all.push(recorded(grant(43, "2026-02-10T09:00:00+07:00", "cit-c1", lc, 2025, "2025-01-01", "2026-12-31"), "2026-02-20T00:00:00Z"));
    let revoke = json!({"title": lc, "cycle_year": 2025, "decision": {"number": "7/QD-UBND", "issuer": "UBND-01", "date": "2026-01-15"}, "effective": "2025-10-01"});
    all.push(recorded(event(62, "recognition.revoked", "2026-01-15T09:00:00+07:00", "cit-c3", revoke), "2026-02-20T00:00:00Z"));
    all.push(recorded(retraction(91, "2026-02-25T09:00:00+07:00", "cit-c6", 90), "2026-03-01T00:00:00Z"));
    all.push(recorded(retraction(92, "2026-03-25T09:00:00+07:00", "cit-c6", 91), "2026-04-01T00:00:00Z"));
    all
}

fn engine() -> Engine {
    let events = world();
    let mut engine = Engine::new();
    let mut batch = Batch::new(&events);
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
    assert_eq!((households.denominator, households.actual_percent, households.status), (None, None, Status::NoDenominator));
}

#[test]
fn late_events_and_retractions_change_exactly_their_answers() {
    let engine = engine();
    // Before 20 February 2026 neither c1's grant nor c3's revocation was known: c3 counted, c1 not.
    let r = review(&engine, "2025-12-31", Some("2026-02-01T00:00:00Z"));
    assert_eq!(lc(&r, "01"), counts(5, 1, 1, 2));
    assert_eq!(lc(&r, "00001"), counts(2, 1, 1, 0));
    assert_eq!(lc(&r, "00005"), counts(2, 0, 0, 2));
    assert_eq!(r.known_at.as_deref(), Some("2026-02-01T00:00:00.000000Z"));
    // c4 recognised, without a digital skill: 0 % is an actual figure here, not a missing one.
    assert_eq!(r.targets[2].actual_percent, Some(0.0));
    // Between the retraction of c6's registration (1 March) and its own retraction (1 April).
    let r = review(&engine, "2025-12-31", Some("2026-03-15T00:00:00Z"));
    assert_eq!(lc(&r, "01"), counts(4, 1, 1, 2));
    assert_eq!(lc(&r, "00002"), counts(0, 0, 0, 0));
    // Before anything was recorded there is no city at all.
    let q = Query { scope: "01".into(), as_of: day("2025-12-31"), known_at: Some(instant("2026-01-01T00:00:00Z")), milestone: None };
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
    let q = Query { scope: "001".into(), as_of: day("2025-12-31"), known_at: None, milestone: None };
    assert!(engine.review(&q).is_err(), "district 001 is not in force after the reform");
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

//! Edge cases of the counting rules, each in a world of a few events worked out by hand.

use hoctap_domain::review::Status;
use hoctap_domain::{Engine, Event, Query, Review};
use hoctap_tests::{baseline, grant, reg, retraction, target, unit};
use hoctap_tests::{day, event, instant, recorded};
use serde_json::json;

const K: &str = "2026-01-05T00:00:00Z";

fn city() -> Vec<Event> {
    vec![
        unit(1, "01", "province", "Hà Nội", None),
        unit(2, "001", "district", "Quận A", Some("01")),
        unit(3, "00001", "commune", "Phường B", Some("001")),
    ]
}

fn fold(events: &[Event]) -> Engine {
    let mut engine = Engine::new();
    for e in events {
        let e = if e.recordedtime.is_some() { e.clone() } else { recorded(e.clone(), K) };
        engine.apply(&e);
    }
    engine
}

fn review(engine: &Engine, as_of: &str, known_at: Option<&str>) -> Review {
    engine
        .review(&Query { scope: "01".into(), as_of: day(as_of), known_at: known_at.map(instant), milestone: None })
        .unwrap()
}

fn recognised_citizens(r: &Review) -> u64 {
    r.units[0].titles.get(&hoctap_domain::codes::Title::LearningCitizen).map_or(0, |c| c.recognised)
}

#[test]
fn an_exact_hit_meets_the_target() {
    // 29 of 100 adults against a 29 % target: 29 × 100 / 100 is 28.999999999999996 in floating point
    // when divided first; the status must still be `met`.
    let mut events = city();
    events.push(baseline(10, "2021-01-01T00:00:00+07:00", "00001", 100));
    events.push(target(11, "2021-06-01T00:00:00+07:00", ("UBND-01", "1", 2021), "learning_citizen/adults", 2025, 29.0));
    for i in 0..29u128 {
        let subject = format!("cit-{i}");
        events.push(reg(100 + i, "2025-01-10T09:00:00+07:00", &subject, "00001", 2025, "resident"));
        events.push(grant(
            200 + i,
            "2025-11-10T09:00:00+07:00",
            &subject,
            "learning_citizen",
            2025,
            "2025-01-01",
            "2026-12-31",
        ));
    }
    let r = review(&fold(&events), "2025-12-31", None);
    assert_eq!((r.targets[0].numerator, r.targets[0].denominator), (29, Some(100)));
    assert_eq!(r.targets[0].status, Status::Met);
    // One fewer is behind.
    events.retain(|e| e.id.to_string() != hoctap_tests::id(228));
    let r = review(&fold(&events), "2025-12-31", None);
    assert_eq!(r.targets[0].status, Status::Behind);
}

#[test]
fn retractions_chain_and_cycles_settle_by_the_set_of_events() {
    let mut events = city();
    events.push(reg(20, "2025-01-10T09:00:00+07:00", "cit-a", "00001", 2025, "resident"));
    events.push(grant(21, "2025-11-10T09:00:00+07:00", "cit-a", "learning_citizen", 2025, "2025-01-01", "2026-12-31"));
    let counted =
        |extra: Vec<Event>| recognised_citizens(&review(&fold(&[events.clone(), extra].concat()), "2025-12-31", None));
    let r1 = retraction(30, "2025-12-01T09:00:00+07:00", "cit-a", 21);
    let r2 = retraction(31, "2025-12-02T09:00:00+07:00", "cit-a", 30);
    let r3 = retraction(32, "2025-12-03T09:00:00+07:00", "cit-a", 31);
    assert_eq!(counted(vec![]), 1);
    assert_eq!(counted(vec![r1.clone()]), 0, "R1 retracts the grant");
    assert_eq!(counted(vec![r1.clone(), r2.clone()]), 1, "R2 retracts R1: the grant is back");
    assert_eq!(counted(vec![r1.clone(), r2.clone(), r3.clone()]), 0, "R3 retracts R2: R1 stands again");
    // Two retractions naming each other (ids chosen in advance): each edge back into the path being
    // evaluated is cut, so the answer is still a function of the set of events.
    let c1 = retraction(40, "2025-12-02T09:00:00+07:00", "cit-a", 41);
    let c2 = retraction(41, "2025-12-03T09:00:00+07:00", "cit-a", 40);
    assert_eq!(counted(vec![c1.clone(), c2.clone()]), 1, "a cycle naming nothing else changes nothing");
    let all = [events.clone(), vec![r1, r2, r3, c1, c2]].concat();
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(review(&fold(&all), "2025-12-31", None), review(&fold(&reversed), "2025-12-31", None));
}

#[test]
fn a_unit_count_indicator_counts_units_not_subjects() {
    let mut events = city();
    events.push(unit(4, "002", "district", "Huyện C", Some("01")));
    events.push(target(
        11,
        "2021-06-01T00:00:00+07:00",
        ("UBND-01", "1", 2021),
        "learning_district/districts",
        2025,
        40.0,
    ));
    // District 001 holds the title as itself, without any registration event.
    events.push(grant(20, "2025-03-01T09:00:00+07:00", "001", "learning_district", 2025, "2025-01-01", "2027-12-31"));
    // A citizen recognised for the district title by mistake is not a district.
    events.push(reg(30, "2025-01-10T09:00:00+07:00", "cit-a", "00001", 2025, "resident"));
    events.push(grant(31, "2025-03-01T09:00:00+07:00", "cit-a", "learning_district", 2025, "2025-01-01", "2027-12-31"));
    let r = review(&fold(&events), "2025-06-30", None);
    let t = &r.targets[0];
    assert_eq!((t.numerator, t.denominator, t.actual_percent, t.status), (1, Some(2), Some(50.0), Status::Met));
    let district = r.units.iter().find(|u| u.code == "001").unwrap();
    assert_eq!(
        district.titles[&hoctap_domain::codes::Title::LearningDistrict].recognised,
        2,
        "both subjects are located in 001"
    );
}

#[test]
fn a_unit_is_its_own_subject_only_as_known() {
    // The unit 00002 is established only by an event recorded later: before that, its title events
    // belong to no known unit and count nowhere; after, it counts in itself.
    let mut events = city();
    events.push(grant(20, "2025-03-01T09:00:00+07:00", "00002", "learning_commune", 2025, "2025-01-01", "2027-12-31"));
    let late_unit = event(
        5,
        "admin_unit.established",
        "2021-01-01T00:00:00+07:00",
        "00002",
        json!({"code": "00002", "level": "commune", "name": "Xã D", "parent": "001"}),
    );
    events.push(recorded(late_unit, "2026-03-01T00:00:00Z"));
    let engine = fold(&events);
    let title = hoctap_domain::codes::Title::LearningCommune;
    let before = review(&engine, "2025-06-30", Some("2026-02-01T00:00:00Z"));
    assert!(!before.units[0].titles.contains_key(&title));
    let after = review(&engine, "2025-06-30", None);
    assert_eq!(after.units[0].titles[&title].recognised, 1);
}

/// Completeness names the communes that reported nothing in the cycle of D, those without a
/// denominator the targets divide by, and the targets without a denominator; a commune's recognition
/// of an earlier cycle does not count as reporting in this one.
#[test]
fn completeness_names_silent_communes_missing_denominators_and_targets_without_one() {
    let mut events = city();
    events.push(unit(4, "00002", "commune", "Xã C", Some("001")));
    events.push(unit(5, "00003", "commune", "Xã D", Some("001")));
    // Adults recorded for B and D (D's is 0, which divides nothing); households for no commune.
    events.push(baseline(10, "2021-01-01T00:00:00+07:00", "00001", 100));
    events.push(baseline(11, "2021-01-01T00:00:00+07:00", "00003", 0));
    events.push(target(12, "2021-06-01T00:00:00+07:00", ("UBND-01", "1", 2021), "learning_citizen/adults", 2025, 50.0));
    events.push(target(
        13,
        "2021-06-01T00:00:00+07:00",
        ("UBND-01", "2", 2021),
        "learning_family/households",
        2025,
        70.0,
    ));
    // B registers in 2025; C's citizen was recognised in 2024 only (valid through 2025).
    events.push(reg(20, "2025-02-01T09:00:00+07:00", "cit-b", "00001", 2025, "resident"));
    events.push(reg(21, "2024-02-01T09:00:00+07:00", "cit-c", "00002", 2024, "resident"));
    events.push(grant(22, "2024-11-01T09:00:00+07:00", "cit-c", "learning_citizen", 2024, "2024-01-01", "2025-12-31"));
    let engine = fold(&events);

    let r = review(&engine, "2025-12-31", None);
    let c = r.completeness.as_ref().expect("a review of a scope in force states its completeness");
    assert_eq!((c.cycle_year, c.communes), (2025, 3));
    let codes = |units: Vec<&str>| units.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(codes(c.silent.iter().map(|u| u.code.as_str()).collect()), ["00002", "00003"]);
    assert_eq!(c.silent[0].name, "Xã C");
    let missing: Vec<(&str, Vec<&str>)> =
        c.without_baseline.iter().map(|u| (u.code.as_str(), u.metrics.iter().map(|m| m.as_str()).collect())).collect();
    assert_eq!(
        missing,
        [
            ("00001", vec!["households"]),
            ("00002", vec!["adults", "households"]),
            ("00003", vec!["adults", "households"])
        ]
    );
    let without: Vec<&str> = c.targets_without_denominator.iter().map(|t| t.indicator.as_str()).collect();
    assert_eq!(without, ["learning_family/households"]);

    // In 2024 C reported and B did not; the review of a district scope covers its communes alike.
    let r = review(&engine, "2024-12-31", None);
    let c = r.completeness.unwrap();
    assert_eq!(codes(c.silent.iter().map(|u| u.code.as_str()).collect()), ["00001", "00003"]);
    let district = engine
        .review(&Query { scope: "001".into(), as_of: day("2025-12-31"), known_at: None, milestone: None })
        .unwrap();
    assert_eq!(district.completeness.unwrap().communes, 3);
}

/// What a reader of one province may read (`Engine::provinces_of`): a unit belongs to every province
/// its parents ever reached, a retracted reparenting takes nothing with it, an unknown code belongs
/// nowhere.
#[test]
fn a_unit_belongs_to_every_province_its_parents_ever_reached() {
    let t = "2025-07-01T00:00:00+07:00";
    let events = vec![
        unit(1, "01", "province", "Hà Nội", None),
        unit(2, "79", "province", "Hồ Chí Minh", None),
        unit(3, "001", "district", "Ba Đình", Some("01")),
        unit(4, "00001", "commune", "Phúc Xá", Some("001")),
        unit(5, "00002", "commune", "Trúc Bạch", Some("001")),
        unit(6, "00003", "commune", "Vĩnh Phúc", Some("001")),
        event(7, "admin_unit.reparented", t, "00002", json!({"code": "00002", "parent": "79"})),
        event(8, "admin_unit.reparented", t, "00003", json!({"code": "00003", "parent": "79"})),
        event(9, "event.retracted", t, "00003", json!({"event_id": hoctap_tests::id(8), "reason": "nhập nhầm"})),
    ];
    let mut engine = Engine::new();
    for e in events.iter().map(|e| recorded(e.clone(), "2026-01-05T00:00:00Z")) {
        engine.apply(&e);
    }
    assert_eq!(engine.provinces_of("01"), ["01"]);
    assert_eq!(engine.provinces_of("001"), ["01"]);
    assert_eq!(engine.provinces_of("00001"), ["01"]);
    assert_eq!(engine.provinces_of("00002"), ["01", "79"]);
    assert_eq!(engine.provinces_of("00003"), ["01"]);
    assert!(engine.provinces_of("26734").is_empty());
}

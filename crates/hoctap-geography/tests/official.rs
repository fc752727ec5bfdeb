//! The official geography against the dataset's own counts, and as events the tracker accepts and
//! reviews: Hà Nội's 30 districts and 526 communes on 30 June 2025, none and 126 on 1 July.

use hoctap_domain::event::EventData;
use hoctap_domain::{Admission, Batch, Day, Engine, Event, Query, QueryError};
use hoctap_geography::{GeographyError, Official, PROVENANCE, Scope, reform_day};
use std::collections::{BTreeMap, HashMap, HashSet};

fn day(text: &str) -> Day {
    Day::parse(text).unwrap()
}

fn start() -> Day {
    day("2021-01-01")
}

/// Admits `events` as one batch (as `hoctap ingest` does with one file) and folds them.
fn engine_of(events: &[Event]) -> Engine {
    let mut engine = Engine::new();
    let mut batch = Batch::default();
    batch.add_units(&engine, events);
    for e in events {
        match engine.admit(&mut batch, e) {
            Ok(Admission::New) => engine.apply(e),
            other => panic!("{} {:?} refused: {other:?}", e.id, e.data),
        }
    }
    engine
}

fn review(engine: &Engine, scope: &str, as_of: &str) -> Result<hoctap_domain::Review, QueryError> {
    engine.review(&Query { scope: scope.into(), as_of: day(as_of), known_at: None, milestone: None })
}

#[test]
fn the_data_has_the_datasets_counts() {
    let o = Official::load().unwrap();
    assert_eq!(o.old_provinces.len(), 63);
    assert_eq!(o.old_districts.len(), 696);
    assert_eq!(o.old_communes.len(), 10_035);
    // The dataset's 10 040 old rows: the communes and the 5 island districts that had none.
    let islands: Vec<_> = o.old_districts.iter().filter(|d| !d.successors.is_empty()).collect();
    assert_eq!(islands.len(), 5);
    assert_eq!(o.old_communes.len() + islands.len(), 10_040);
    assert_eq!(o.new_provinces.len(), 34);
    assert_eq!(o.new_communes.len(), 3_321);
    let divided = o.old_communes.iter().filter(|c| c.is_divided()).count()
        + islands.iter().filter(|d| d.successors.len() > 1).count();
    assert_eq!(divided, 471);

    let districts_01: HashSet<&str> =
        o.old_districts.iter().filter(|d| d.province == "01").map(|d| d.code.as_str()).collect();
    assert_eq!(districts_01.len(), 30);
    let communes_01: Vec<_> = o.old_communes.iter().filter(|c| districts_01.contains(c.district.as_str())).collect();
    assert_eq!(communes_01.len(), 526);
    assert_eq!(communes_01.iter().filter(|c| c.is_divided()).count(), 199);
    assert_eq!(o.new_communes.iter().filter(|c| c.province == "01").count(), 126);

    // The counts the derivation script recorded agree with what the crate reads.
    let provenance: serde_json::Value = serde_json::from_str(PROVENANCE).unwrap();
    let counts = &provenance["counts"];
    assert_eq!(counts["old_communes"], 10_035);
    assert_eq!(counts["new_communes"], 3_321);
    assert_eq!(counts["divided_old_units"], 471);
    assert_eq!(provenance["source"]["licence"], "MIT");
    assert_eq!(o.source.package, "vietnamadminunits");
}

#[test]
fn names_are_official_with_their_types_and_units_keep_coordinates() {
    let o = Official::load().unwrap();
    let old = |code: &str| o.old_communes.iter().find(|c| c.code == code).unwrap();
    assert_eq!(old("00001").name, "Phường Phúc Xá");
    assert_eq!(o.old_districts.iter().find(|d| d.code == "001").unwrap().name, "Quận Ba Đình");
    assert_eq!(o.old_provinces.iter().find(|p| p.code == "01").unwrap().name, "Thành phố Hà Nội");
    let new = o.new_communes.iter().find(|c| c.code == "00004").unwrap();
    assert_eq!(new.name, "Phường Ba Đình");
    let c = new.coords.unwrap();
    assert!((21.0..21.1).contains(&c.lat) && (105.8..105.9).contains(&c.lon), "{c:?}");

    let types = |names: &mut dyn Iterator<Item = &str>, allowed: &[&str]| {
        for name in names {
            assert!(allowed.iter().any(|t| name.starts_with(&format!("{t} "))), "{name}");
        }
    };
    types(&mut o.old_provinces.iter().map(|p| p.name.as_str()), &["Thành phố", "Tỉnh"]);
    types(&mut o.old_districts.iter().map(|d| d.name.as_str()), &["Quận", "Huyện", "Thị xã", "Thành phố"]);
    types(&mut o.old_communes.iter().map(|c| c.name.as_str()), &["Phường", "Xã", "Thị trấn"]);
    types(&mut o.new_communes.iter().map(|c| c.name.as_str()), &["Phường", "Xã", "Đặc khu"]);
    // Every commune has coordinates; only the five island districts' rows may lack some.
    assert!(o.old_communes.iter().all(|c| c.coords.is_some()));
    assert!(o.new_communes.iter().all(|c| c.coords.is_some()));
}

#[test]
fn hanoi_has_30_districts_and_526_communes_until_the_reform_then_126_units() {
    let o = Official::load().unwrap();
    let events = o.events(&Scope::Province("01".into()), start()).unwrap();
    let engine = engine_of(&events);

    let before = review(&engine, "01", "2025-06-30").unwrap();
    assert_eq!((before.geography.districts, before.geography.communes), (30, 526));
    assert_eq!(before.units.len(), 1 + 30, "the city, then its districts");
    assert_eq!(before.units[0].name, "Thành phố Hà Nội");

    let after = review(&engine, "01", "2025-07-01").unwrap();
    assert_eq!((after.geography.districts, after.geography.communes), (0, 126));
    assert_eq!(after.units.len(), 1 + 126, "the city, then its communes");
    let names: HashMap<&str, &str> = after.units.iter().map(|u| (u.code.as_str(), u.name.as_str())).collect();
    assert_eq!(names["00004"], "Phường Ba Đình", "00004 kept its code and took the new name");
    let official: BTreeMap<&str, &str> =
        o.new_communes.iter().filter(|c| c.province == "01").map(|c| (c.code.as_str(), c.name.as_str())).collect();
    assert_eq!(names.into_iter().filter(|(c, _)| *c != "01").collect::<BTreeMap<_, _>>(), official);

    // A district is gone after the reform; it could be reviewed the day before. After, its review says
    // what became of it: it passed into the city, so the new communes its communes passed into (or
    // the ones that kept their code), none of them a default.
    assert!(review(&engine, "001", "2025-06-30").unwrap().reform.is_none());
    let gone = review(&engine, "001", "2025-07-01").unwrap();
    let reform = gone.reform.as_ref().expect("what became of Quận Ba Đình");
    assert_eq!((reform.name.as_str(), reform.relation.as_str()), ("Quận Ba Đình", "successors"));
    let new_codes: HashSet<&str> = o.new_communes.iter().map(|c| c.code.as_str()).collect();
    let want: BTreeMap<&str, ()> = o
        .old_communes
        .iter()
        .filter(|c| c.district == "001")
        .flat_map(|c| match new_codes.contains(c.code.as_str()) {
            true => vec![c.code.as_str()],
            false => c.successors.iter().map(|s| s.code.as_str()).collect(),
        })
        .map(|code| (code, ()))
        .collect();
    let got: BTreeMap<&str, ()> = reform.units.iter().map(|u| (u.code.as_str(), ())).collect();
    assert_eq!(got, want);
    assert!(got.contains_key("00004") && reform.units.iter().all(|u| !u.default));
    assert_eq!(
        gone.units.iter().map(|u| u.code.as_str()).collect::<Vec<_>>(),
        reform.units.iter().map(|u| u.code.as_str()).collect::<Vec<_>>()
    );
}

#[test]
fn the_whole_country_has_63_provinces_then_34_and_3321_communes() {
    let o = Official::load().unwrap();
    let events = o.events(&Scope::All, start()).unwrap();
    let engine = engine_of(&events);

    let (mut districts, mut communes) = (0, 0);
    for p in &o.old_provinces {
        let r = review(&engine, &p.code, "2025-06-30").unwrap();
        districts += r.geography.districts;
        communes += r.geography.communes;
    }
    assert_eq!((districts, communes), (696, 10_035));

    let mut communes = 0;
    for p in &o.new_provinces {
        let r = review(&engine, &p.code, "2025-07-01").unwrap();
        assert_eq!(r.geography.districts, 0, "{}", p.code);
        assert_eq!(r.units[0].name, p.name);
        let want = o.new_communes.iter().filter(|c| c.province == p.code).count() as u64;
        assert_eq!(r.geography.communes, want, "{}", p.code);
        communes += r.geography.communes;
    }
    assert_eq!(communes, 3_321);
    // The 29 provinces merged into others are not in force after the reform.
    let merged: Vec<_> = o.old_provinces.iter().filter(|p| p.merged_into != p.code).collect();
    assert_eq!(merged.len(), 63 - 34);
    for p in merged {
        // Not in force: its review names the province it joined, with that province's figures.
        let r = review(&engine, &p.code, "2025-07-01").unwrap();
        let units: Vec<(&str, bool)> =
            r.reform.as_ref().unwrap().units.iter().map(|u| (u.code.as_str(), u.default)).collect();
        assert_eq!(units, [(p.merged_into.as_str(), true)], "{}", p.code);
        assert_eq!(r.units[0].code, p.merged_into);
    }
    assert!(matches!(review(&engine, "99", "2025-07-01"), Err(QueryError::UnknownScope(_))));
    // Five new communes have a code of their own (every other kept an old one's): before the reform,
    // their review names the old communes they were made of.
    let made: Vec<_> = o.new_communes.iter().filter(|c| !o.old_communes.iter().any(|old| old.code == c.code)).collect();
    assert_eq!(made.len(), 5);
    for made in made {
        let before = review(&engine, &made.code, "2025-06-30").unwrap();
        // Old communes, and the island districts that had none (their successors are listed too).
        let named = |successors: &[hoctap_geography::Successor]| successors.iter().any(|s| s.code == made.code);
        let want: BTreeMap<&str, ()> = (o.old_communes.iter().filter(|c| named(&c.successors)).map(|c| &c.code))
            .chain(o.old_districts.iter().filter(|d| named(&d.successors)).map(|d| &d.code))
            .map(|code| (code.as_str(), ()))
            .collect();
        let reform = before.reform.as_ref().expect("what the new commune was made of");
        assert_eq!(reform.relation.as_str(), "predecessors");
        let got: BTreeMap<&str, ()> = reform.units.iter().map(|u| (u.code.as_str(), ())).collect();
        assert_eq!(got, want, "{}", made.code);
    }
    // Hải Dương (30) joined Hải Phòng (31).
    assert_eq!(o.new_province_of("30"), Some("31"));
}

#[test]
fn a_province_brings_the_provinces_merged_into_it() {
    let o = Official::load().unwrap();
    let events = o.events(&Scope::Province("79".into()), start()).unwrap();
    let established: HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AdminUnitEstablished(d) if d.parent.is_none() => Some(d.code.as_str()),
            _ => None,
        })
        .collect();
    // Hồ Chí Minh City took in Bình Dương (74) and Bà Rịa–Vũng Tàu (77).
    assert_eq!(established, HashSet::from(["74", "77", "79"]));
    let engine = engine_of(&events);
    let after = review(&engine, "79", "2025-07-01").unwrap();
    assert_eq!(after.geography.communes, o.new_communes.iter().filter(|c| c.province == "79").count() as u64);
    assert!(after.units.iter().any(|u| u.name == "Đặc khu Côn Đảo"), "the island district became a special zone");
}

#[test]
fn a_subject_of_a_dissolved_commune_is_counted_in_its_successor() {
    let o = Official::load().unwrap();
    let mut events = o.events(&Scope::Province("01".into()), start()).unwrap();
    let phuc_xa = o.old_communes.iter().find(|c| c.code == "00001").unwrap();
    assert!(!phuc_xa.is_divided());
    let successor = phuc_xa.default_successor().to_owned();
    let registration = r#"{"specversion":"1.0","id":"6a0e2f8c-1b1d-4c3e-9f51-0d7d3a6b2c11","source":"test","type":"vn.hoctap.registration.submitted.v1","time":"2024-03-01T09:00:00+07:00","subject":"cit-1","data":{"subject_kind":"citizen","commune":"00001","title":"learning_citizen","cycle_year":2025}}"#;
    events.push(Event::from_json(registration.as_bytes()).unwrap());
    let engine = engine_of(&events);
    let counted = |as_of: &str| -> Vec<String> {
        review(&engine, "01", as_of)
            .unwrap()
            .units
            .iter()
            .skip(1)
            .filter(|u| !u.titles.is_empty())
            .map(|u| u.code.clone())
            .collect()
    };
    assert_eq!(counted("2025-06-30"), ["001"], "in its district before the reform");
    assert_eq!(counted("2025-12-31"), [successor], "in the ward Phúc Xá passed into after it");
}

#[test]
fn writing_twice_gives_the_same_events_so_ingesting_again_changes_nothing() {
    let o = Official::load().unwrap();
    let a = o.events(&Scope::Province("01".into()), start()).unwrap();
    let b = o.events(&Scope::Province("01".into()), start()).unwrap();
    assert_eq!(a, b);
    let ids: HashSet<_> = a.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), a.len(), "ids are unique");
    let engine = engine_of(&a);
    let mut batch = Batch::default();
    for e in &b {
        assert_eq!(engine.admit(&mut batch, e), Ok(Admission::Duplicate));
    }
    // Another establishment date is another set of events, not a conflict.
    let c = o.events(&Scope::Province("01".into()), day("2020-01-01")).unwrap();
    assert!(c.iter().filter(|e| e.day() < reform_day()).all(|e| !ids.contains(&e.id)));
}

#[test]
fn requests_the_data_cannot_answer_are_refused_with_what_to_ask_instead() {
    let o = Official::load().unwrap();
    let err = o.events(&Scope::Province("30".into()), start()).unwrap_err();
    assert!(matches!(err, GeographyError::Request(_)));
    let text = err.to_string();
    assert!(text.contains("Hải Dương") && text.contains("--province 31"), "{text}");
    let err = o.events(&Scope::Province("99".into()), start()).unwrap_err().to_string();
    assert!(err.contains("no province has the code 99"), "{err}");
    let err = o.events(&Scope::Province("01".into()), reform_day()).unwrap_err().to_string();
    assert!(err.contains("before the reform of 2025-07-01"), "{err}");
    assert!("1".parse::<Scope>().is_err() && "ALL".parse::<Scope>().is_err() && "001".parse::<Scope>().is_err());
    assert_eq!("all".parse::<Scope>(), Ok(Scope::All));
    assert_eq!("01".parse::<Scope>(), Ok(Scope::Province("01".into())));
}

/// The issue's "done means": a subject registered in a divided commune in 2024 is counted in the
/// default successor on 2025-12-31 and marked placed by default; after a relocation names its new ward
/// it is counted there and no longer marked.
#[test]
fn a_subject_of_a_divided_commune_is_placed_by_default_until_a_relocation_names_its_ward() {
    let o = Official::load().unwrap();
    let districts_01: HashSet<&str> =
        o.old_districts.iter().filter(|d| d.province == "01").map(|d| d.code.as_str()).collect();
    let kept: HashSet<&str> = o.new_communes.iter().map(|c| c.code.as_str()).collect();
    // A divided Hà Nội commune whose code no new unit kept: it is dissolved into its successors.
    let divided = o
        .old_communes
        .iter()
        .find(|c| districts_01.contains(c.district.as_str()) && c.is_divided() && !kept.contains(c.code.as_str()))
        .expect("Hà Nội has divided communes");
    let default = divided.default_successor().to_owned();
    let other = divided.successors.iter().find(|s| !s.default).unwrap().code.clone();

    let mut events = o.events(&Scope::Province("01".into()), start()).unwrap();
    let dissolution = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AdminUnitDissolved(d) if d.code == divided.code => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(dissolution.successors.len(), divided.successors.len(), "every successor is named");
    assert_eq!(dissolution.default_successor(), Some(default.as_str()));

    let line = |id: &str, ty: &str, time: &str, data: &str| {
        let json = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"test","type":"vn.hoctap.{ty}.v1","time":"{time}","subject":"cit-1","data":{data}}}"#
        );
        Event::from_json(json.as_bytes()).unwrap()
    };
    let commune = &divided.code;
    events.push(line(
        "6a0e2f8c-1b1d-4c3e-9f51-0d7d3a6b2c11",
        "registration.submitted",
        "2024-03-01T09:00:00+07:00",
        &format!(r#"{{"subject_kind":"citizen","commune":"{commune}","title":"learning_citizen","cycle_year":2024}}"#),
    ));
    events.push(line(
        "6a0e2f8c-1b1d-4c3e-9f51-0d7d3a6b2c12",
        "recognition.granted",
        "2024-11-20T09:00:00+07:00",
        r#"{"title":"learning_citizen","cycle_year":2024,"decision":{"number":"1/QD-UBND","issuer":"UBND-01","date":"2024-11-20"},"valid_from":"2024-01-01","valid_until":"2025-12-31"}"#,
    ));
    let engine = engine_of(&events);
    let unit = |review: &hoctap_domain::Review, code: &str| {
        review.units.iter().find(|u| u.code == code).cloned().unwrap_or_else(|| panic!("{code} in the review"))
    };
    let lc = hoctap_domain::codes::Title::LearningCitizen;

    let r = review(&engine, "01", "2025-12-31").unwrap();
    let d = unit(&r, &default);
    assert_eq!(d.titles[&lc].recognised, 1, "counted in the default successor");
    assert_eq!(d.placed_by_default[&lc].recognised, 1, "and marked placed by default");
    assert!(unit(&r, &other).titles.is_empty());
    assert_eq!(r.units[0].placed_by_default[&lc].recognised, 1, "the city's figure rests on it too");
    // Before the reform the commune was whole: nothing is placed by default.
    let before = review(&engine, "01", "2025-06-30").unwrap();
    assert!(before.units.iter().all(|u| u.placed_by_default.is_empty()));

    // The source learns the citizen lives on the other side of the new border.
    events.push(line(
        "6a0e2f8c-1b1d-4c3e-9f51-0d7d3a6b2c13",
        "subject.relocated",
        "2025-09-01T09:00:00+07:00",
        &format!(r#"{{"commune":"{other}"}}"#),
    ));
    let engine = engine_of(&events);
    let r = review(&engine, "01", "2025-12-31").unwrap();
    assert_eq!(unit(&r, &other).titles[&lc].recognised, 1, "counted in the ward its relocation names");
    assert!(r.units.iter().all(|u| u.placed_by_default.is_empty()), "and no longer placed by default");
    assert!(unit(&r, &default).titles.is_empty());
    // Before the relocation's date it was still placed by default.
    let r = review(&engine, "01", "2025-08-31").unwrap();
    assert_eq!(unit(&r, &default).placed_by_default[&lc].recognised, 1);
}

#[test]
fn reviews_carry_the_units_coordinates() {
    let o = Official::load().unwrap();
    let engine = engine_of(&o.events(&Scope::Province("79".into()), start()).unwrap());
    let near = |got: Option<hoctap_domain::review::UnitCoordinates>, want: Option<hoctap_geography::Coords>| {
        let (got, want) = (got.expect("coordinates in the review"), want.expect("coordinates in the data"));
        assert!((got.lat - want.lat).abs() < 1e-9 && (got.lon - want.lon).abs() < 1e-9, "{got:?} {want:?}");
    };
    let before = review(&engine, "79", "2025-06-30").unwrap();
    let district = &before.units[1];
    near(district.coordinates, o.old_districts.iter().find(|d| d.code == district.code).unwrap().coords);
    let after = review(&engine, "79", "2025-07-01").unwrap();
    // A commune established by the reform has the new unit's centre; one that kept its code, its own.
    let con_dao = after.units.iter().find(|u| u.name == "Đặc khu Côn Đảo").unwrap();
    near(con_dao.coordinates, o.new_communes.iter().find(|c| c.code == con_dao.code).unwrap().coords);
    assert!(after.units.iter().all(|u| u.coordinates.is_some()), "every unit of the official map has a centre");
    let json = serde_json::to_value(&after).unwrap();
    assert!(json["units"][1]["coordinates"]["lat"].is_f64());
}

//! A subject's contributions (its counts as stretches of valid time, what a read model stores) add up,
//! on every date and as known at every time, to exactly the counts of the engine's review.

use hoctap_domain::codes::Title;
use hoctap_domain::review::Review;
use hoctap_domain::{Day, Engine, Event, Measure, PlaceCounts, Query};
use std::collections::{HashMap, HashSet};

fn city(seed: u64) -> (Engine, i64) {
    let mut events: Vec<Event> = Vec::new();
    let mut seen = HashSet::new();
    hoctap_gen::generate(&hoctap_gen::Config::new(300, seed), |e| {
        if seen.insert(e.id) {
            events.push(e.clone());
        }
    });
    let start = hoctap_tests::instant("2026-01-01T00:00:00Z");
    let mut engine = Engine::new();
    for (i, e) in events.iter_mut().enumerate() {
        e.recordedtime = Some(start + i as i64);
        engine.apply(e);
    }
    (engine, start + events.len() as i64 / 2)
}

/// Counts per unit code and measure, rebuilt from every subject's contributions.
fn counts_from_contributions(engine: &Engine, day: Day, known_at: Option<i64>) -> HashMap<(String, Measure), u64> {
    let locator = engine.locator(day, known_at);
    let mut counts = HashMap::new();
    for subject in engine.subjects() {
        for c in engine.contributions(subject, locator.is_unit(subject), known_at) {
            if c.from <= day && day < c.until {
                for code in locator.chain(&c.place) {
                    *counts.entry((code.to_owned(), c.measure)).or_default() += 1;
                }
            }
        }
    }
    counts
}

/// Counts per place and measure on `day`, as a read model would sum its stored stretches.
fn counts_by_place(engine: &Engine, day: Day, known_at: Option<i64>) -> PlaceCounts {
    let locator = engine.locator(day, known_at);
    let mut counts = PlaceCounts::new();
    for subject in engine.subjects() {
        for c in engine.contributions(subject, locator.is_unit(subject), known_at) {
            if c.from <= day && day < c.until {
                *counts.entry((c.place, c.measure)).or_default() += 1;
            }
        }
    }
    counts
}

fn check(review: &Review, counts: &HashMap<(String, Measure), u64>) {
    for unit in &review.units {
        let get = |m: Measure| counts.get(&(unit.code.clone(), m)).copied().unwrap_or(0);
        for title in Title::ALL {
            let c = unit.titles.get(title).copied().unwrap_or_default();
            let from_contributions = (
                get(Measure::Registered(*title)),
                get(Measure::Declared(*title)),
                get(Measure::Evidenced(*title)),
                get(Measure::Recognised(*title)),
            );
            assert_eq!(
                (c.registered, c.declared, c.evidenced, c.recognised),
                from_contributions,
                "{} {title} on {}",
                unit.code,
                review.as_of
            );
        }
        assert_eq!(unit.digital_skill, get(Measure::DigitalSkill), "{} digital skill on {}", unit.code, review.as_of);
    }
    let city = |m: Measure| counts.get(&(review.scope.clone(), m)).copied().unwrap_or(0);
    for t in &review.targets {
        match t.indicator.as_str() {
            "digital_skill/learning_citizen" => assert_eq!(t.numerator, city(Measure::RecognisedWithSkill)),
            "learning_citizen:staff/unit_staff" => {
                assert_eq!(t.numerator, city(Measure::RecognisedInGroup(hoctap_domain::codes::SubjectGroup::Staff)))
            }
            _ => {}
        }
    }
}

#[test]
fn contributions_add_up_to_the_review_on_every_date() {
    for seed in [1, 2] {
        let (engine, middle) = city(seed);
        for date in [
            "2021-06-30",
            "2023-12-31",
            "2025-06-30",
            "2025-07-01",
            "2025-12-31",
            "2026-01-01",
            "2028-03-15",
            "2030-12-31",
        ] {
            let day = Day::parse(date).unwrap();
            for known_at in [None, Some(middle)] {
                let Ok(review) =
                    engine.review(&Query { scope: "01".into(), as_of: day, known_at, milestone: Some(2030) })
                else {
                    continue; // the city is not known yet at that time
                };
                check(&review, &counts_from_contributions(&engine, day, known_at));
                // A read model stores counts per place; the review built from them is the same review.
                let query = Query { scope: "01".into(), as_of: day, known_at, milestone: Some(2030) };
                let by_place = counts_by_place(&engine, day, known_at);
                assert_eq!(engine.review_from_counts(&query, &by_place).unwrap(), review, "{date} {known_at:?}");
            }
        }
    }
}

#[test]
fn a_late_grant_changes_only_its_stretches() {
    use hoctap_tests::{grant, recorded, reg, unit};
    let mut engine = Engine::new();
    for e in [unit(1, "01", "province", "Hà Nội", None), unit(2, "00001", "commune", "Phường A", Some("01"))] {
        engine.apply(&recorded(e, "2026-01-01T00:00:00Z"));
    }
    engine.apply(&recorded(
        reg(10, "2025-01-10T09:00:00+07:00", "cit-a", "00001", 2025, "staff"),
        "2026-01-01T00:00:00Z",
    ));
    let before = engine.contributions("cit-a", false, None);
    let registered = |c: &[hoctap_domain::Contribution]| {
        c.iter().filter(|c| c.measure == Measure::Registered(Title::LearningCitizen)).count()
    };
    // Registered from its day to the end of the cycle.
    assert_eq!(registered(&before), 1);
    assert_eq!(before[0].from, Day::parse("2025-01-10").unwrap());
    assert_eq!(before[0].until, Day::parse("2026-01-01").unwrap());
    engine.apply(&recorded(
        grant(11, "2026-02-10T09:00:00+07:00", "cit-a", "learning_citizen", 2025, "2025-01-01", "2026-12-31"),
        "2026-02-20T00:00:00Z",
    ));
    let after = engine.contributions("cit-a", false, None);
    let recognised: Vec<_> =
        after.iter().filter(|c| c.measure == Measure::Recognised(Title::LearningCitizen)).collect();
    assert_eq!(recognised.len(), 1);
    assert_eq!(
        (recognised[0].from, recognised[0].until),
        (Day::parse("2025-01-01").unwrap(), Day::parse("2027-01-01").unwrap())
    );
    // The staff group follows the recognition; as known before the grant, nothing of it exists.
    assert!(after.iter().any(|c| c.measure == Measure::RecognisedInGroup(hoctap_domain::codes::SubjectGroup::Staff)));
    assert_eq!(engine.contributions("cit-a", false, Some(hoctap_tests::instant("2026-02-01T00:00:00Z"))), before);
}

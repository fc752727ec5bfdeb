//! A subject's contributions (its counts as stretches of valid time, what a read model stores) add up,
//! on every date and as known at every time, to exactly the counts of the engine's review.

use hoctap_domain::codes::Title;
use hoctap_domain::review::Review;
use hoctap_domain::{Day, Deltas, Engine, Event, Ledger, Measure, PlaceCounts, Query};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A generated city with each distinct event stamped in arrival order.
fn city_events(seed: u64) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut seen = HashSet::new();
    hoctap_gen::generate(&hoctap_gen::Config::new(300, seed), |e| {
        if seen.insert(e.id) {
            events.push(e.clone());
        }
    });
    let start = hoctap_tests::instant("2026-01-01T00:00:00Z");
    for (i, e) in events.iter_mut().enumerate() {
        e.recordedtime = Some(start + i as i64);
    }
    events
}

fn city(seed: u64) -> (Engine, i64) {
    let events = city_events(seed);
    let mut engine = Engine::new();
    for e in &events {
        engine.apply(e);
    }
    (engine, events[events.len() / 2].recordedtime.unwrap())
}

/// Counts per unit code and measure, rebuilt from every subject's contributions.
fn counts_from_contributions(engine: &Engine, day: Day, known_at: Option<i64>) -> HashMap<(String, Measure), u64> {
    let locator = engine.locator(day, known_at);
    let mut counts = HashMap::new();
    for subject in engine.subjects() {
        for c in engine.contributions(subject, known_at) {
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
    let mut counts = PlaceCounts::new();
    for subject in engine.subjects() {
        for c in engine.contributions(subject, known_at) {
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
                let recorded = engine.recorded(known_at);
                assert_eq!(
                    engine.review_from_counts(&query, &by_place, recorded).unwrap(),
                    review,
                    "{date} {known_at:?}"
                );
            }
        }
    }
}

/// What a read model stores for a world with a divided commune gives back the embedded review, its
/// "placed by default" figures included (the projector's reviews go through `review_from_counts`).
#[test]
fn a_divided_commune_reviews_the_same_from_counts_per_place() {
    let mut engine = Engine::new();
    for e in &hoctap_tests::divided_world() {
        engine.apply(e);
    }
    let mut placed_by_default = 0;
    for date in ["2025-06-30", "2025-07-01", "2025-09-30", "2025-12-31", "2030-12-31"] {
        let day = Day::parse(date).unwrap();
        for known_at in [None, Some(hoctap_tests::instant("2026-02-01T00:00:00Z"))] {
            let query = Query { scope: "01".into(), as_of: day, known_at, milestone: None };
            let review = engine.review(&query).unwrap();
            check(&review, &counts_from_contributions(&engine, day, known_at));
            let by_place = counts_by_place(&engine, day, known_at);
            let recorded = engine.recorded(known_at);
            assert_eq!(engine.review_from_counts(&query, &by_place, recorded).unwrap(), review, "{date} {known_at:?}");
            placed_by_default += review.units.iter().filter(|u| !u.placed_by_default.is_empty()).count();
        }
    }
    assert!(placed_by_default > 0, "the world places someone by default");

    // Across the reform: a district after it, a divided commune after it, a new commune before it.
    let mut reform = 0;
    for scope in ["001", "002", "00004", "00005"] {
        for date in ["2025-06-30", "2025-07-01", "2025-12-31"] {
            let day = Day::parse(date).unwrap();
            for known_at in [None, Some(hoctap_tests::instant("2026-02-01T00:00:00Z"))] {
                let query = Query { scope: scope.into(), as_of: day, known_at, milestone: None };
                let by_place = counts_by_place(&engine, day, known_at);
                let from_counts = engine.review_from_counts(&query, &by_place, engine.recorded(known_at));
                let review = engine.review(&query);
                assert_eq!(from_counts, review, "{scope} {date} {known_at:?}");
                reform += usize::from(review.is_ok_and(|r| r.reform.is_some()));
            }
        }
    }
    assert_eq!(reform, 2 * (3 * 2 + 1), "001, 002 and 00004 after the reform, 00005 before it");
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
    let before = engine.contributions("cit-a", None);
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
    let after = engine.contributions("cit-a", None);
    let recognised: Vec<_> =
        after.iter().filter(|c| c.measure == Measure::Recognised(Title::LearningCitizen)).collect();
    assert_eq!(recognised.len(), 1);
    assert_eq!(
        (recognised[0].from, recognised[0].until),
        (Day::parse("2025-01-01").unwrap(), Day::parse("2027-01-01").unwrap())
    );
    // The staff group follows the recognition; as known before the grant, nothing of it exists.
    assert!(after.iter().any(|c| c.measure == Measure::RecognisedInGroup(hoctap_domain::codes::SubjectGroup::Staff)));
    assert_eq!(engine.contributions("cit-a", Some(hoctap_tests::instant("2026-02-01T00:00:00Z"))), before);
}

/// The projector's ledger, fed a city in batches with every subject's history stored and loaded again
/// between batches (as the projector does through PostgreSQL), writes deltas that add up to the
/// subjects' contributions on every date, as known now and as known at earlier times; and the same
/// set of events gives the same stored histories whatever the batches.
#[test]
fn the_ledger_in_batches_adds_up_to_the_contributions() {
    let events = city_events(3);
    let mut engine = Engine::new();
    for e in &events {
        engine.apply(e);
    }
    let subject_events: Vec<&Event> = events.iter().filter(|e| !e.event_type().is_reference()).collect();
    let fold = |batch_size: usize| {
        let mut stored: HashMap<String, Vec<u8>> = HashMap::new();
        let mut deltas = Deltas::default();
        for chunk in subject_events.chunks(batch_size) {
            let mut ledger = Ledger::new();
            let subjects: BTreeSet<&str> = chunk.iter().map(|e| e.subject.as_str()).collect();
            for s in &subjects {
                if let Some(history) = stored.get(*s) {
                    ledger.load(s, history).unwrap();
                }
            }
            let fresh: Vec<&Event> = chunk.iter().copied().filter(|e| !ledger.knows(&e.id)).collect();
            let d = ledger.fold(&fresh);
            for (k, n) in d.by_day {
                *deltas.by_day.entry(k).or_default() += n;
            }
            for (k, n) in d.by_recorded {
                *deltas.by_recorded.entry(k).or_default() += n;
            }
            for s in subjects {
                stored.insert(s.to_owned(), ledger.history(s));
            }
        }
        (stored, deltas)
    };
    let (stored, deltas) = fold(97);
    let (stored_one_by_one, _) = fold(1);
    assert_eq!(stored, stored_one_by_one, "the stored histories depend on the batches");
    // Large batches fold their subjects on every core: the same histories and the same net changes.
    let (stored_large, deltas_large) = fold(4000);
    assert_eq!(stored_large, stored, "the stored histories depend on the batches");
    let net = |d: &Deltas| summed(d.by_recorded.iter().map(|((p, m, ..), n)| ((p.clone(), *m), *n)));
    assert_eq!(net(&deltas_large), net(&deltas));
    let times: Vec<i64> = events.iter().filter_map(|e| e.recordedtime).collect();
    let known_times = [None, Some(times[times.len() / 3]), Some(times[times.len() * 2 / 3])];
    let mut compared = 0;
    for date in ["2021-06-30", "2024-02-29", "2025-07-01", "2025-12-31", "2029-01-01"] {
        let day = Day::parse(date).unwrap();
        for known_at in known_times {
            let sums = summed(
                deltas
                    .by_recorded
                    .iter()
                    .filter(|((.., d, recorded), _)| *d <= day && known_at.is_none_or(|k| *recorded <= k))
                    .map(|((place, measure, ..), n)| ((place.clone(), *measure), *n)),
            );
            let want = counts_by_place(&engine, day, known_at);
            assert_eq!(sums, want, "{date} as known at {known_at:?}");
            compared += want.len();
            if known_at.is_none() {
                let now = summed(
                    deltas.by_day.iter().filter(|((.., d), _)| *d <= day).map(|((p, m, _), n)| ((p.clone(), *m), *n)),
                );
                assert_eq!(now, want, "{date} as known now, from the day deltas");
            }
        }
    }
    assert!(compared > 1000, "only {compared} counts compared");
}

/// Deltas summed per (place, measure), zero sums left out; a negative sum fails.
fn summed(deltas: impl Iterator<Item = ((hoctap_domain::Place, Measure), i64)>) -> PlaceCounts {
    let mut sums: HashMap<(hoctap_domain::Place, Measure), i64> = HashMap::new();
    for (key, n) in deltas {
        *sums.entry(key).or_default() += n;
    }
    sums.into_iter().filter(|(_, n)| *n != 0).map(|(k, n)| (k, u64::try_from(n).expect("a count ≥ 0"))).collect()
}

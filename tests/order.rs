//! Arrival order does not matter (counting rules 1–3): folding the same set of events in any order, with
//! exact copies sent again anywhere, gives the same review for every valid date and transaction time,
//! also when the fold stops at a checkpoint and goes on from it; and a late event changes the answers
//! for its past dates exactly from when it is known.

use hoctap_domain::codes::Title;
use hoctap_domain::review::TitleCounts;
use hoctap_domain::{Engine, Event, Query, QueryError, Review};
use hoctap_tests::{day, divided_world, instant, recorded, reg, scenario_world};
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Valid dates of the hand-checked world: before and after the reform, the phase and the final review.
const WORLD_AS_OF: [&str; 5] = ["2025-04-01", "2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"];
/// Transaction times of the hand-checked world: now, before the February 2026 decisions, and between
/// the retraction of c6's registration and the retraction of that retraction.
const WORLD_KNOWN_AT: [Option<&str>; 3] = [None, Some("2026-02-01T00:00:00Z"), Some("2026-03-15T00:00:00Z")];

fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Engine {
    let mut engine = Engine::new();
    for e in events {
        engine.apply(e);
    }
    engine
}

fn query(as_of: &str, known_at: Option<i64>) -> Query {
    Query { scope: "01".into(), as_of: day(as_of), known_at, milestone: None }
}

fn world_queries() -> Vec<Query> {
    WORLD_AS_OF.iter().flat_map(|d| WORLD_KNOWN_AT.iter().map(move |k| query(d, k.map(instant)))).collect()
}

fn reviews(engine: &Engine, queries: &[Query]) -> Vec<Result<Review, QueryError>> {
    queries.iter().map(|q| engine.review(q)).collect()
}

/// The world's reviews, folded in the order the events arrived.
fn world_reference() -> &'static [Result<Review, QueryError>] {
    static REFERENCE: OnceLock<Vec<Result<Review, QueryError>>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let reference = reviews(&fold(&scenario_world()), &world_queries());
        // Every question has an answer: comparing two errors would prove nothing.
        for (q, r) in world_queries().iter().zip(&reference) {
            assert!(r.is_ok(), "the hand-checked world answers {q:?}: {r:?}");
        }
        reference
    })
}

/// `events` plus exact copies of some of them, in an order proptest picks.
fn shuffled_with_copies(events: Vec<Event>, max_copies: usize) -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(any::<Index>(), 0..=max_copies).prop_flat_map(move |copies| {
        let mut all = events.clone();
        all.extend(copies.iter().map(|i| i.get(&events).clone()));
        Just(all).prop_shuffle()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Property A: the hand-checked world, shuffled, with duplicates.
    #[test]
    fn the_hand_checked_world_gives_the_same_reviews_in_any_order(events in shuffled_with_copies(scenario_world(), 12)) {
        let engine = fold(&events);
        for ((q, got), want) in world_queries().iter().zip(reviews(&engine, &world_queries())).zip(world_reference()) {
            prop_assert_eq!(&got, want, "as_of {} known_at {:?}", q.as_of, q.known_at);
        }
    }
}

/// The divided world's reviews, folded in the order the events arrived; some subjects are placed by
/// default on some dates, so the property below compares that figure too.
fn divided_reference() -> &'static [Result<Review, QueryError>] {
    static REFERENCE: OnceLock<Vec<Result<Review, QueryError>>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let reference = reviews(&fold(&divided_world()), &world_queries());
        assert!(reference.iter().all(Result::is_ok), "the divided world answers every question");
        let by_default = reference.iter().flatten().filter(|r| r.units.iter().any(|u| !u.placed_by_default.is_empty()));
        assert!(by_default.count() > 0, "some review places a subject by default");
        reference
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Property A': a commune divided between two new units (its subjects placed by default until a
    /// relocation names their ward), shuffled, with duplicates.
    #[test]
    fn a_divided_commune_gives_the_same_reviews_in_any_order(events in shuffled_with_copies(divided_world(), 12)) {
        let engine = fold(&events);
        for ((q, got), want) in world_queries().iter().zip(reviews(&engine, &world_queries())).zip(divided_reference()) {
            prop_assert_eq!(&got, want, "as_of {} known_at {:?}", q.as_of, q.known_at);
        }
    }
}

/// A generated city as a log holds it, with the questions asked of it and their answers in log order.
struct City {
    /// Every event in generation order, stamped like a log stamps them; the generator's repeated sends
    /// are kept as exact copies (the same `recordedtime` as the copy the log stored).
    events: Vec<Event>,
    queries: Vec<Query>,
    reference: Vec<Result<Review, QueryError>>,
}

const CITY_SEEDS: [u64; 3] = [1, 2, 3];
/// Every year's end, and the eve and day of the reform.
const CITY_AS_OF: [&str; 12] = [
    "2021-12-31",
    "2022-12-31",
    "2023-12-31",
    "2024-12-31",
    "2025-06-30",
    "2025-07-01",
    "2025-12-31",
    "2026-12-31",
    "2027-12-31",
    "2028-12-31",
    "2029-12-31",
    "2030-12-31",
];
/// The dates also asked as known at the start of 2026.
const CITY_AS_OF_MIDDLE: [&str; 4] = ["2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"];

fn city(seed: u64) -> &'static City {
    static CITIES: [OnceLock<City>; CITY_SEEDS.len()] = [const { OnceLock::new() }; CITY_SEEDS.len()];
    let slot = CITY_SEEDS.iter().position(|s| *s == seed).expect("one of CITY_SEEDS");
    CITIES[slot].get_or_init(|| build_city(seed))
}

fn build_city(seed: u64) -> City {
    let mut generated = Vec::new();
    hoctap_gen::generate(&hoctap_gen::Config::new(300, seed), |e| generated.push(e.clone()));
    // Stamp as a log would: strictly increasing microseconds in arrival order, once per id (a repeated
    // send is not stored again, so a replay that meets it again meets the same stamp).
    let mut next = instant("2021-01-01T00:00:00Z");
    let mut stamps: HashMap<uuid::Uuid, i64> = HashMap::new();
    let events: Vec<Event> = generated
        .into_iter()
        .map(|mut e| {
            let stamp = *stamps.entry(e.id).or_insert_with(|| {
                next += 1;
                next
            });
            e.recordedtime = Some(stamp);
            e
        })
        .collect();
    assert!(stamps.len() < events.len(), "a messy feed repeats some events");
    // "As known at the start of 2026": just before the first event that happened in 2026 was recorded.
    let first_2026 = events.iter().find(|e| e.day() >= day("2026-01-01")).expect("events of 2026");
    let middle = first_2026.recordedtime.expect("stamped") - 1;
    let mut queries: Vec<Query> = CITY_AS_OF.iter().map(|d| query(d, None)).collect();
    queries.extend(CITY_AS_OF_MIDDLE.iter().map(|d| query(d, Some(middle))));
    let reference = reviews(&fold(&events), &queries);
    for (q, r) in queries.iter().zip(&reference) {
        assert!(r.is_ok(), "seed {seed}: the city answers {q:?}: {r:?}");
    }
    // The middle transaction time must matter, or the property would not test rule 1 at all.
    let phase = |k: Option<i64>| queries.iter().position(|q| q.as_of == day("2025-12-31") && q.known_at == k).unwrap();
    assert_ne!(
        reference[phase(None)],
        reference[phase(Some(middle))],
        "seed {seed}: the phase review changes after 2025"
    );
    City { events, queries, reference }
}

/// A permutation chosen by `seed` (Fisher–Yates on a SplitMix64 stream): proptest picks the seed, so
/// the 30,000-event order is reproducible from the one number a failure prints.
fn permute<T>(items: &mut [T], mut seed: u64) {
    let mut next = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn assert_city_reviews(city: &City, events: &[Event], what: &str) -> Result<(), TestCaseError> {
    let engine = fold(events);
    for ((q, got), want) in city.queries.iter().zip(reviews(&engine, &city.queries)).zip(&city.reference) {
        prop_assert!(&got == want, "{what}: the review as of {} known at {:?} differs", q.as_of, q.known_at);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Property B: a generated city (late events, retractions, repeated sends), shuffled, with more copies.
    #[test]
    fn a_generated_city_gives_the_same_reviews_in_any_order(
        seed in prop::sample::select(CITY_SEEDS.to_vec()),
        order in any::<u64>(),
        copies in prop::collection::vec(any::<Index>(), 0..64),
    ) {
        let city = city(seed);
        let mut events = city.events.clone();
        events.extend(copies.iter().map(|i| i.get(&city.events).clone()));
        permute(&mut events, order);
        assert_city_reviews(city, &events, &format!("seed {seed}, order {order}"))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Property C: a checkpoint taken anywhere in any order, loaded, then folded on with the rest, is the
    /// same state as folding everything (the embedded mode's checkpoint changes no answer).
    #[test]
    fn a_checkpoint_anywhere_in_any_order_changes_no_review(
        seed in prop::sample::select(CITY_SEEDS.to_vec()),
        order in any::<u64>(),
        split in any::<Index>(),
    ) {
        let city = city(seed);
        let mut events = city.events.clone();
        permute(&mut events, order);
        let at = split.index(events.len() + 1);
        let bytes = fold(&events[..at]).to_checkpoint();
        let mut resumed = Engine::from_checkpoint(&bytes).expect("its own checkpoint loads");
        events[at..].iter().for_each(|e| resumed.apply(e));
        for ((q, got), want) in city.queries.iter().zip(reviews(&resumed, &city.queries)).zip(&city.reference) {
            prop_assert!(&got == want, "seed {seed}, order {order}, checkpoint after {at}: as of {} known at {:?}", q.as_of, q.known_at);
        }
        prop_assert_eq!(resumed.to_checkpoint(), fold(&events).to_checkpoint());
    }
}

#[test]
fn a_generated_city_gives_the_same_reviews_backwards_and_in_valid_time_order() {
    let city = city(1);
    let mut backwards = city.events.clone();
    backwards.reverse();
    assert_city_reviews(city, &backwards, "reversed arrival order").unwrap();
    // Sorted by valid time: retractions before what they name, late decisions in their place.
    let mut by_time = city.events.clone();
    by_time.sort_by_key(|e| std::cmp::Reverse(e.instant));
    assert_city_reviews(city, &by_time, "latest valid time first").unwrap();
    by_time.reverse();
    assert_city_reviews(city, &by_time, "valid time order").unwrap();
}

fn learning_citizens(review: &Review, code: &str) -> TitleCounts {
    let unit = review.units.iter().find(|u| u.code == code).unwrap_or_else(|| panic!("unit {code} in the review"));
    unit.titles.get(&Title::LearningCitizen).copied().unwrap_or_default()
}

#[test]
fn a_late_event_changes_its_past_dates_only_once_known() {
    // c8 registered in March 2025 in 00002; the source sends it only in January 2027.
    const RECORDED: &str = "2027-01-10T00:00:00Z";
    let late = recorded(reg(120, "2025-03-01T09:00:00+07:00", "cit-c8", "00002", 2025, "worker"), RECORDED);
    let without = fold(&scenario_world());
    let mut world = scenario_world();
    world.push(late.clone());
    let appended = fold(&world);
    // It makes no difference whether the late event is folded last or first.
    let mut first = vec![late];
    first.extend(scenario_world());
    let prepended = fold(&first);

    let review = |engine: &Engine, as_of: &str, known_at: Option<&str>| {
        engine.review(&query(as_of, known_at.map(instant))).expect("the world answers")
    };
    for engine in [&appended, &prepended] {
        // Before it was recorded, every answer is the one without it.
        for as_of in ["2025-02-28", "2025-03-01", "2025-12-31"] {
            let before = Some("2027-01-09T23:59:59Z");
            assert_eq!(review(engine, as_of, before), review(&without, as_of, before), "as of {as_of}, not yet known");
        }
        // Once known, it counts on its own past date and after, in its commune and in the city.
        // Before the reform 00002 lies in district 001, which the review lists; after it, 00002 itself.
        let cases = [
            ("2025-03-01", Some(RECORDED), "001"),
            ("2025-12-31", Some(RECORDED), "00002"),
            ("2025-12-31", None, "00002"),
        ];
        for (as_of, known_at, unit) in cases {
            let (with, old) = (review(engine, as_of, known_at), review(&without, as_of, known_at));
            for code in ["01", unit] {
                let (got, had) = (learning_citizens(&with, code), learning_citizens(&old, code));
                assert_eq!(got.registered, had.registered + 1, "{code} as of {as_of} known at {known_at:?}");
                assert_eq!(
                    (got.declared, got.evidenced, got.recognised),
                    (had.declared, had.evidenced, had.recognised)
                );
            }
        }
        // Dates before its valid time, and other cycles, are untouched even now: only what the review
        // states of the log (its newest record, the number of events) tells the late event is there.
        for as_of in ["2025-02-28", "2024-12-31", "2026-06-30"] {
            let (with, old) = (review(engine, as_of, None), review(&without, as_of, None));
            assert_eq!(with.events, old.events + 1, "as of {as_of}");
            assert_eq!(Review { known_at: None, events: 0, ..with }, Review { known_at: None, events: 0, ..old });
        }
    }
}

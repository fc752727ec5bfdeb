//! The events every stream starts with: the official map and its 2025 reform, the baselines and the
//! plans' targets. They come first whatever their `time`, so that a streaming ingest knows every unit
//! before a subject names it.

use crate::city::Counts;
use crate::city::World;
use crate::clock::{self, Local};
use crate::geo;
use crate::spec::mix;
use fastrand::Rng;
use hoctap_domain::codes::Metric;
use hoctap_domain::event::{BaselineRecorded, Event, EventData, Num, Plan, TargetSet};

/// The city's People's Committee publishes the map, the statistics and the plans.
pub(crate) const GOVERNMENT_SOURCE: &str = "ubnd.hanoi.gov.vn";

/// Baselines per subject generated in a commune. Adults are 1.2 × the citizens on the portal (not
/// every adult takes part). Recognitions are valid for two years and participation grows, so about
/// 62 % of the citizens hold a recognition at the phase review and 81 % at the final one: 1.2 puts
/// `learning_citizen/adults` near 50 % at 2025-12-31 (the 2025 target) and behind 70 % in 2030 — a
/// city with something to review. (At 1.6–1.9 every citizen target would be far behind.)
const ADULTS: f64 = 1.2;
/// Adults living in learning families, clans and communities: most, not all, of the adults.
const ADULTS_IN_LEARNING_MODELS: f64 = 0.85;
const HOUSEHOLDS: f64 = 1.3;
const CLANS: f64 = 1.2;
const COMMUNITIES: f64 = 1.15;
const UNITS: f64 = 1.25;
const UNIT_STAFF: f64 = 1.1;
/// Adults are counted again at the start of 2024 (the population grew).
const ADULTS_GROWTH_2024: f64 = 1.02;

/// The Prime Minister, issuer of the national plans every province adopts.
const NATIONAL: &str = "TTg";

/// The rows of domain.md's "Targets that the seeds give" for Hà Nội: plan, date, indicator,
/// (milestone, percent)s.
type TargetRow = (&'static str, &'static str, i32, (i32, u32, u32), &'static str, &'static [(i32, f64)]);
const TARGETS: &[TargetRow] = &[
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_citizen/adults", &[(2025, 50.0), (2030, 70.0)]),
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_unit/units", &[(2025, 50.0), (2030, 70.0)]),
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_district/districts", &[(2025, 40.0), (2030, 60.0)]),
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_city/provinces", &[(2030, 100.0)]),
    (NATIONAL, "677", 2022, (2022, 6, 3), "learning_citizen/adults_in_learning_models", &[(2025, 40.0), (2030, 60.0)]),
    (NATIONAL, "677", 2022, (2022, 6, 3), "learning_citizen:staff/unit_staff", &[(2025, 60.0), (2030, 80.0)]),
    (NATIONAL, "677", 2022, (2022, 6, 3), "digital_skill/learning_citizen", &[(2025, 70.0), (2030, 90.0)]),
    ("UBND-01", "291", 2022, (2022, 12, 26), "learning_family/households", &[(2025, 70.0), (2030, 80.0)]),
    ("UBND-01", "291", 2022, (2022, 12, 26), "learning_clan/clans", &[(2025, 65.0), (2030, 75.0)]),
    ("UBND-01", "291", 2022, (2022, 12, 26), "learning_community/communities", &[(2025, 65.0), (2030, 75.0)]),
    ("UBND-01", "291", 2022, (2022, 12, 26), "learning_unit/units", &[(2025, 80.0), (2030, 90.0)]),
    (
        "UBND-01",
        "290",
        2023,
        (2023, 12, 5),
        "learning_citizen/adults_in_learning_models",
        &[(2025, 40.0), (2030, 60.0)],
    ),
    ("UBND-01", "290", 2023, (2023, 12, 5), "learning_citizen:staff/unit_staff", &[(2030, 80.0)]),
    ("UBND-01", "290", 2023, (2023, 12, 5), "digital_skill/learning_citizen", &[(2025, 70.0), (2030, 90.0)]),
    ("UBND-01", "52", 2024, (2024, 2, 7), "learning_citizen/adults", &[(2025, 50.0), (2030, 70.0)]),
    ("UBND-01", "52", 2024, (2024, 2, 7), "digital_skill/adults", &[(2025, 50.0), (2030, 70.0)]),
    // A revision: the latest `target.set` for (plan, scope, indicator, milestone) wins.
    ("UBND-01", "52", 2024, (2025, 3, 1), "digital_skill/adults", &[(2030, 75.0)]),
];

/// Writes the head of the stream; returns how many events it wrote.
pub(crate) fn emit(world: &World, seed: u64, sink: &mut impl FnMut(Event)) -> u64 {
    let mut written = 0u64;
    // The official map, exactly as `hoctap geography` writes it (its own ids and source): ingesting
    // that output beside a generated city changes nothing.
    for event in &world.geo.events {
        sink(event.clone());
        written += 1;
    }
    let mut ids = Rng::with_seed(mix(seed ^ 0x6865_6164));
    let mut put = |t: Local, subject: &str, data: EventData| {
        let id = uuid::Builder::from_random_bytes(ids.u128(..).to_le_bytes()).into_uuid();
        let event =
            Event::new(id, GOVERNMENT_SOURCE, &clock::rfc3339(t), subject, data).expect("generated times are RFC 3339");
        sink(event);
        written += 1;
    };
    baselines(world, seed, &mut put);
    for &province in &world.geo.provinces {
        let scope = world.geo.code(province);
        // Hà Nội carries its own plans and the national ones; every other province the national
        // plan it adopts (a provincial plan without numbers cannot be a target: docs/counting-rules.md §11).
        let rows = TARGETS.iter().filter(|row| scope == "01" || row.0 == NATIONAL);
        for &(issuer, number, year, (y, m, d), indicator, milestones) in rows {
            let t = clock::midnight(y, m, d) + 8 * clock::HOUR;
            for &(milestone, percent) in milestones {
                let plan = Plan { issuer: issuer.to_owned(), number: number.to_owned(), year };
                put(
                    t,
                    scope,
                    EventData::TargetSet(TargetSet {
                        plan,
                        scope: scope.to_owned(),
                        indicator: indicator.to_owned(),
                        milestone,
                        percent: Num(percent),
                    }),
                );
            }
        }
    }
    written
}

fn baselines(world: &World, seed: u64, put: &mut impl FnMut(Local, &str, EventData)) {
    let geo = &world.geo;
    let mut rng = Rng::with_seed(mix(seed ^ 0x6261_7365_6c69_6e65));
    let mut record = |t: Local, unit: u16, metric: Metric, value: u64| {
        let code = geo.code(unit);
        put(t, code, EventData::BaselineRecorded(BaselineRecorded { unit: code.to_owned(), metric, value }));
    };
    // Statistics never match the registers exactly: ±3 % noise. Rounding is stochastic so that a
    // small city's thousands of communes with one or two subjects add up to the factor, not more;
    // every factor × 0.97 stays ≥ 1, so a commune never has fewer than the subjects generated there.
    let mut scaled =
        |count: u64, factor: f64| (count as f64 * factor * (0.97 + 0.06 * rng.f64()) + rng.f64()).floor() as u64;
    let mut per_commune =
        |t: Local, commune: u16, n: Counts, growth: f64, record: &mut dyn FnMut(Local, u16, Metric, u64)| {
            let adults = (scaled(n.residents, ADULTS) as f64 * growth).ceil() as u64;
            for (metric, value) in [
                (Metric::Adults, adults),
                (Metric::Households, scaled(n.families, HOUSEHOLDS)),
                (Metric::Clans, scaled(n.clans, CLANS)),
                (Metric::Communities, scaled(n.communities, COMMUNITIES)),
                (Metric::Units, scaled(n.units, UNITS)),
                (Metric::UnitStaff, scaled(n.staff, UNIT_STAFF)),
                (Metric::AdultsInLearningModels, (adults as f64 * ADULTS_IN_LEARNING_MODELS).round() as u64),
            ] {
                // One commune never reports its agencies' staff: the city's figure is then the sum over
                // the communes that do (rule 7).
                if metric == Metric::UnitStaff && Some(commune) == geo.without_unit_staff {
                    continue;
                }
                record(t, commune, metric, value);
            }
        };

    // The old communes from the start, from the subjects generated there.
    let start = clock::year_start(2021);
    let mut adults_2021 = vec![0u64; geo.units.len()];
    for &commune in &geo.old_communes {
        per_commune(start, commune, world.pop.counts[commune as usize], 1.0, &mut |t, unit, metric, value| {
            if metric == Metric::Adults {
                adults_2021[unit as usize] = value;
            }
            record(t, unit, metric, value);
        });
    }
    let recount = clock::year_start(2024);
    for &commune in &geo.old_communes {
        let value = (adults_2021[commune as usize] as f64 * ADULTS_GROWTH_2024).ceil() as u64;
        record(recount, commune, Metric::Adults, value);
    }
    // From the reform on, every commune in force is counted again within its new borders: the
    // people who live there (a divided commune's people in the part they live in).
    let reform = geo::reform();
    for &commune in &geo.communes_after {
        per_commune(reform, commune, world.pop.counts_after[commune as usize], ADULTS_GROWTH_2024, &mut record);
    }
}

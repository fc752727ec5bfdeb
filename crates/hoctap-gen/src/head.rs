//! The events every stream starts with: the map and its 2025 reform, the baselines and the plans'
//! targets. They come first whatever their `time`, so that a streaming ingest knows every unit
//! before a subject names it.

use crate::city::World;
use crate::clock::{self, Local};
use crate::geo::{self, CITY};
use crate::spec::mix;
use fastrand::Rng;
use hoctap_domain::codes::{Level, Metric};
use hoctap_domain::event::{
    AdminUnitDissolved, AdminUnitEstablished, AdminUnitRenamed, AdminUnitReparented, BaselineRecorded, Event,
    EventData, Num, Plan, TargetSet,
};

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

/// The rows of domain.md's "Targets that the seeds give" for Hà Nội: plan, date, indicator,
/// (milestone, percent)s.
type TargetRow = (&'static str, &'static str, i32, (i32, u32, u32), &'static str, &'static [(i32, f64)]);
const TARGETS: &[TargetRow] = &[
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_citizen/adults", &[(2025, 50.0), (2030, 70.0)]),
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_unit/units", &[(2025, 50.0), (2030, 70.0)]),
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_district/districts", &[(2025, 40.0), (2030, 60.0)]),
    ("UBND-01", "290", 2021, (2021, 12, 20), "learning_city/provinces", &[(2030, 100.0)]),
    ("TTg", "677", 2022, (2022, 6, 3), "learning_citizen/adults_in_learning_models", &[(2025, 40.0), (2030, 60.0)]),
    ("TTg", "677", 2022, (2022, 6, 3), "learning_citizen:staff/unit_staff", &[(2025, 60.0), (2030, 80.0)]),
    ("TTg", "677", 2022, (2022, 6, 3), "digital_skill/learning_citizen", &[(2025, 70.0), (2030, 90.0)]),
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
    let mut ids = Rng::with_seed(mix(seed ^ 0x6865_6164));
    let mut written = 0u64;
    let mut put = |t: Local, subject: &str, data: EventData| {
        let id = uuid::Builder::from_random_bytes(ids.u128(..).to_le_bytes()).into_uuid();
        let event =
            Event::new(id, GOVERNMENT_SOURCE, &clock::rfc3339(t), subject, data).expect("generated times are RFC 3339");
        sink(event);
        written += 1;
    };
    geography(world, &mut put);
    baselines(world, seed, &mut put);
    for &(issuer, number, year, (y, m, d), indicator, milestones) in TARGETS {
        let t = clock::midnight(y, m, d) + 8 * clock::HOUR;
        for &(milestone, percent) in milestones {
            let plan = Plan { issuer: issuer.to_owned(), number: number.to_owned(), year };
            put(
                t,
                "01",
                EventData::TargetSet(TargetSet {
                    plan,
                    scope: "01".to_owned(),
                    indicator: indicator.to_owned(),
                    milestone,
                    percent: Num(percent),
                }),
            );
        }
    }
    written
}

fn geography(world: &World, put: &mut impl FnMut(Local, &str, EventData)) {
    let geo = &world.geo;
    let start = clock::year_start(2021);
    let reform = geo::reform();
    let established = |index: usize| {
        let unit = &geo.units[index];
        let parent = (unit.level != Level::Province).then(|| geo.code(unit.parent).to_owned());
        EventData::AdminUnitEstablished(AdminUnitEstablished {
            code: unit.code.clone(),
            level: unit.level,
            name: unit.name.clone(),
            parent,
            coordinates: None,
        })
    };
    let before_reform = geo.new_communes.start as usize;
    for (index, unit) in geo.units.iter().enumerate().take(before_reform) {
        put(start, &unit.code, established(index));
    }
    for rename in &geo.renames {
        let code = geo.code(rename.unit);
        put(
            rename.time,
            code,
            EventData::AdminUnitRenamed(AdminUnitRenamed { code: code.to_owned(), name: rename.name.clone() }),
        );
    }
    // The reform, in an order a streaming reader can follow: the new communes exist before the old
    // ones name them as successors, and communes leave their districts before the districts go.
    for index in geo.new_communes.clone() {
        put(reform, geo.code(index), established(index as usize));
    }
    for &kept in &geo.kept {
        let code = geo.code(kept);
        put(
            reform,
            code,
            EventData::AdminUnitReparented(AdminUnitReparented {
                code: code.to_owned(),
                parent: geo.code(CITY).to_owned(),
            }),
        );
    }
    let dissolved =
        |level: Level| geo.units.iter().filter(move |u| u.level == level).filter_map(|u| Some((u, u.successor?)));
    for (unit, successor) in dissolved(Level::Commune).chain(dissolved(Level::District)) {
        put(
            reform,
            &unit.code,
            EventData::AdminUnitDissolved(AdminUnitDissolved::into_one(&unit.code, geo.code(successor))),
        );
    }
}

fn baselines(world: &World, seed: u64, put: &mut impl FnMut(Local, &str, EventData)) {
    let geo = &world.geo;
    let mut rng = Rng::with_seed(mix(seed ^ 0x6261_7365_6c69_6e65));
    // Latest recorded value per unit and metric, to sum the old communes into the new ones.
    let mut latest = vec![[None::<u64>; hoctap_domain::codes::METRICS]; geo.units.len()];
    let mut record = |t: Local, unit: u16, metric: Metric, value: u64, latest: &mut Vec<[Option<u64>; 7]>| {
        latest[unit as usize][metric.index()] = Some(value);
        let code = geo.code(unit);
        put(t, code, EventData::BaselineRecorded(BaselineRecorded { unit: code.to_owned(), metric, value }));
    };
    // Statistics never match the registers exactly: ±3 % noise. Rounding is stochastic so that a
    // small city's thousands of communes with one or two subjects add up to the factor, not more;
    // every factor × 0.97 stays ≥ 1, so a commune never has fewer than the subjects generated there.
    let mut scaled =
        |count: u64, factor: f64| (count as f64 * factor * (0.97 + 0.06 * rng.f64()) + rng.f64()).floor() as u64;

    let start = clock::year_start(2021);
    for commune in geo.old_communes.clone() {
        let n = world.pop.counts[commune as usize];
        let adults = scaled(n.residents, ADULTS);
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
            if metric == Metric::UnitStaff && commune == geo.without_unit_staff {
                continue;
            }
            record(start, commune, metric, value, &mut latest);
        }
    }
    let recount = clock::year_start(2024);
    for commune in geo.old_communes.clone() {
        let before = latest[commune as usize][Metric::Adults.index()].unwrap_or(0);
        record(recount, commune, Metric::Adults, (before as f64 * ADULTS_GROWTH_2024).ceil() as u64, &mut latest);
    }
    // A new commune's statistics are its predecessors' added up.
    let reform = geo::reform();
    for new in geo.new_communes.clone() {
        for metric in Metric::ALL.iter().copied() {
            let sum = geo
                .old_communes
                .clone()
                .filter(|&old| geo.units[old as usize].successor == Some(new))
                .filter_map(|old| latest[old as usize][metric.index()])
                .sum();
            record(reform, new, metric, sum, &mut latest);
        }
    }
}

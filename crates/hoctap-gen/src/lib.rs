//! A deterministic synthetic city on the real map — Hà Nội by default, any province, or the whole
//! country — for the demo, the tests and the benchmarks.
//!
//! [`generate`] produces the events a tracker would receive from 2021 to 2030 (and the late ones
//! of early 2031): the official map with its reform of 1 July 2025, exactly as `hoctap geography`
//! writes it (crate `hoctap-geography`: real codes and names, districts abolished, provinces merged,
//! communes merged or divided), the baselines, the plans' targets, and ten yearly cycles of
//! citizens, families, clans, communities, units and the administrative units themselves — with the
//! mess of real feeds (duplicates, retractions, late and out-of-order events). Only the people are
//! invented. The same [`Config`] always gives the same events, byte for byte.
//!
//! # Arrival order
//! 1. The head: every `admin_unit.*` event (the reform included, in `hoctap geography`'s order and
//!    with its ids), every `baseline.recorded`, every `target.set`, whatever their `time`, so that a
//!    streaming reader knows each unit before it is named.
//! 2. Then one stream per calendar year 2021, 2022, …: the subject events whose arrival falls in that
//!    year, sorted by arrival. An event arrives up to two days after its `time`, so the order is only
//!    roughly the order of `time`. Decisions of February Y+1 for cycle Y, and events a source sends
//!    months late (backfills), come in a later year's stream.
//!
//! # Sizes
//! About 39–40 events per citizen (their families, clans, communities and units included) plus a
//! fixed ≈ 17,000 for Hà Nội's map, baselines, targets and administrative units' own cycles:
//! 2,000 citizens give ≈ 96,000 events, 20,000 ≈ 0.80 M, 250,000 ≈ 9.85 M. The whole country adds
//! ≈ 0.3 M of fixed events (its 10,800 units and their cycles) whatever the number of citizens. Memory holds one year
//! of compact specs (32 bytes per event) and a few bytes per subject, never the whole stream
//! (≈ 80 MB resident at 250,000 citizens). In release builds on the 2-core build machine,
//! [`write_ndjson`] into a `BufWriter` over `/dev/null` runs at 2–2.8 M events a second (a file on
//! disk is then the bottleneck); [`generate`], which builds every `Event`, at about 1 M.
//!
//! # Model, per cycle year Y
//! - Subjects: `citizens` citizens (45 % residents, 30 % workers, 13 % staff, 12 % students),
//!   citizens/3 families, /60 clans, /54 communities (≈ 8 per commune at 250,000), /80 units, each in
//!   an old commune chosen by weight (wards 1.4, townships 1.0, rural communes 0.8, times a constant
//!   random 0.5–1.5; the dataset has no population); the administrative units (Hà Nội: the city, 30
//!   districts, 526 communes) are themselves subjects of `learning_commune` (dissolved communes until
//!   2025, communes that kept their code throughout, communes established by the reform from 2026),
//!   `learning_district` (until 2025) and `learning_city` (every province in force, recognised from
//!   the 2028 cycle on).
//! - Participation grows: staff and 55 % of the other citizens take part from 2021, the rest join
//!   between 2022 and 2028. A taking-part citizen registers (January–March) with a probability
//!   rising from 66 % to 80 % over the decade (scaled by a personal propensity; staff more); families
//!   and clans 78 % → 91 %, communities 74 % → 88 %, units 72 % → 90 %, communes 85 %.
//! - 2 % withdraw and 40 % of those register again; 90 % declare (April–September) with 3–5 scores,
//!   ~85 % of totals reach 80; 1–2 evidence documents follow; 95 % of those with a total ≥ 80 are
//!   recognised in November–December, or one in ten in February of Y+1 (still for cycle Y); 0.5 %
//!   of recognitions are revoked later with an `effective` date before the revocation.
//! - Citizens move (2 % a year) and get digital skills (≈ 67 % hold one by 2030).
//! - Where people live after 1 July 2025: in the successor of their old commune; in a divided
//!   commune, half of them in the part that went to the default successor and the rest spread
//!   evenly over the other parts (an assumption: the dataset says which successor is the default,
//!   not how people were split). Events after the reform name the commune a subject lives in. A
//!   subject with no such event keeps its old commune, which the tracker resolves to the default
//!   successor: in a divided commune it is then "placed by default", rightly or not. Between the
//!   reform and the end of 2025 the source names the ward of 35 % of those who live outside the
//!   default's part (a `subject.relocated`); the others are placed by default until their next
//!   registration, so the phase review rests partly on the defaults and the final one hardly.
//! - Baselines are recorded per commune only (districts and the city are sums), from the subjects
//!   generated there: adults 1.2 × citizens (see `head` for why not more), households 1.3 × families,
//!   clans 1.2, communities 1.15, units 1.25, unit staff 1.1 × staff citizens (one commune that kept
//!   its code never reports it), adults in learning models 0.85 × adults; adults are counted again
//!   in 2024 (+2 %); on 1 July 2025 every commune in force is counted again within its new borders,
//!   from the subjects living there.
//! - Targets: Hà Nội (`01`) carries its own plans and the national ones (domain.md); every other
//!   province in force the national plan 677/QĐ-TTg it adopts.
//! - Folded by the domain engine, the 20,000-citizen city of the demo (Hà Nội, seed 1) just meets
//!   `learning_citizen/adults` at the 2025 phase review as known now (51.1 % for 50 %) but not as
//!   known at the sơ kết meeting on 2026-01-15 (49.4 %: late recognitions arrive after it); it meets
//!   the clan, community and 677 targets, is behind on households, units (against 80 %) and digital
//!   skills, and at the final review is behind most 2030 targets (66.0 % for 70 %; staff 80.04 % for
//!   80 %, just met) while the city itself is recognised as a learning city.
//! - Messy feeds ([`Config::messy`]): 0.3 % of subject events are sent twice, 0.3 % arrive months
//!   late, 0.1 % are retracted (6 % of those retractions arrive before the event they name, 5 % are
//!   retracted in turn).

mod city;
mod clock;
mod content;
mod geo;
mod head;
mod spec;

use hoctap_domain::event::{Event, EventType};
pub use hoctap_geography::{GeographyError, Scope};
use std::collections::BTreeMap;

/// What to generate. Two equal configs give byte-identical output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of citizens; every other population scales with it (see the crate docs). With
    /// [`Scope::All`] they are spread over the whole country.
    pub citizens: u64,
    /// Where they live: a province as it stands from 1 July 2025 (`01` Hà Nội, the default; `31`
    /// Hải Phòng with Hải Dương, merged into it), or the whole country. A province the official
    /// geography does not have makes the generating functions panic: check it first with
    /// [`Config::check`].
    pub province: Scope,
    /// Seed of every random choice but the map, which is the same for every seed.
    pub seed: u64,
    /// Whether to add duplicates, retractions and months-late events. Off gives a clean feed, for
    /// tests whose expected figures are easier to state without them.
    pub messy: bool,
}

impl Config {
    /// A messy city of `citizens` citizens.
    pub fn new(citizens: u64, seed: u64) -> Config {
        Config { citizens, seed, messy: true, province: Scope::Province(HANOI.to_owned()) }
    }

    /// The same city in another province, or the whole country.
    pub fn in_province(self, province: Scope) -> Config {
        Config { province, ..self }
    }

    /// Whether the province can be generated: an error naming what to ask instead (a province merged
    /// into another, an unknown code) otherwise.
    pub fn check(&self) -> Result<(), GeographyError> {
        hoctap_geography::Official::load()?.events(&self.province, geo::established()).map(drop)
    }
}

/// Hà Nội's code, the default province.
pub const HANOI: &str = "01";

impl Default for Config {
    /// The demo's city: 20,000 citizens, about 0.8 M events.
    fn default() -> Config {
        Config::new(20_000, 1)
    }
}

/// What a generation produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events passed to the sink, duplicates included.
    pub events: u64,
    /// Subjects: citizens, families, clans, communities, units and the administrative units.
    pub subjects: u64,
    /// Events sent a second time (exact copies of an earlier event).
    pub duplicates: u64,
    /// `event.retracted` events (retractions of retractions included).
    pub retractions: u64,
    /// Events written in a later year's stream than the year of their `time`.
    pub late: u64,
    /// Events per type.
    pub by_type: BTreeMap<EventType, u64>,
}

/// Every event in arrival order, stamped as a log would stamp them: `recordedtime` = `first` for the
/// first event and `step` microseconds more for each next one (strictly increasing).
pub fn generate_stamped(config: &Config, first: i64, step: i64) -> Vec<Event> {
    let mut events = Vec::new();
    generate(config, |e| {
        let mut e = e.clone();
        e.recordedtime = Some(first + events.len() as i64 * step);
        events.push(e);
    });
    events
}

/// Every event in arrival order, stamped by the generator's own arrival clock, as a tracker would
/// hold them at the end of the campaign: `recordedtime` is when the event arrives (its `time` plus
/// the source's delay, months more for a late send), the head's at the start of the day before the
/// first cycle, and one microsecond after the previous event's when that is later (strictly
/// increasing).
pub fn generate_arrived(config: &Config) -> Vec<Event> {
    // Local seconds as UTC microseconds.
    let utc = |t: clock::Local| (t - 7 * clock::HOUR) * 1_000_000;
    let head = utc(clock::year_start(2021) - clock::DAY);
    let mut events: Vec<Event> = Vec::new();
    let mut last = i64::MIN;
    drive(config, &mut |item| {
        let (mut event, arrived) = match item {
            Item::Head(event) => (event.clone(), head),
            Item::Subject(world, spec) => (world.content(spec).to_event(), utc(spec::abs(spec.arrival))),
        };
        last = arrived.max(last.saturating_add(1));
        event.recordedtime = Some(last);
        events.push(event);
    });
    events
}

/// Calls `sink` with every event in arrival order (see the crate docs). Deterministic for `config`.
pub fn generate(config: &Config, mut sink: impl FnMut(&Event)) -> Stats {
    drive(config, &mut |item| match item {
        Item::Head(event) => sink(event),
        Item::Subject(world, spec) => sink(&world.content(spec).to_event()),
    })
}

/// Writes the events as NDJSON, one [`Event::to_json`] per line, in arrival order; a duplicate is a
/// second identical line. Wrap `out` in a `BufWriter`: this writes one line at a time.
pub fn write_ndjson(config: &Config, mut out: impl std::io::Write) -> std::io::Result<Stats> {
    // Lines are gathered into chunks of about 64 KiB: one `write_all` per chunk, not per line.
    const CHUNK: usize = 64 * 1024;
    let mut failed = None;
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    let mut flush = |chunk: &mut Vec<u8>, failed: &mut Option<std::io::Error>| {
        if failed.is_none()
            && let Err(e) = out.write_all(chunk)
        {
            *failed = Some(e);
        }
        chunk.clear();
    };
    let stats = drive(config, &mut |item| {
        match item {
            Item::Head(event) => chunk.extend_from_slice(event.to_json().as_bytes()),
            // Subject events skip `Event` altogether (see `content`): same bytes, a fraction of the time.
            Item::Subject(world, spec) => world.content(spec).encode(&mut chunk),
        }
        chunk.push(b'\n');
        if chunk.len() >= CHUNK {
            flush(&mut chunk, &mut failed);
        }
    });
    flush(&mut chunk, &mut failed);
    match failed {
        Some(e) => Err(e),
        None => out.flush().map(|()| stats),
    }
}

/// One event of the stream as the loop hands it out: built already, or still a spec.
enum Item<'a> {
    Head(&'a Event),
    Subject(&'a city::World, &'a spec::Spec),
}

/// The generation loop shared by both entry points: the head, then one year's stream after another.
fn drive(config: &Config, each: &mut dyn FnMut(Item<'_>)) -> Stats {
    let mut world = city::World::new(config.citizens, config.seed, &config.province).unwrap_or_else(|e| {
        panic!("cannot generate province {:?} (check the config with Config::check): {e}", config.province)
    });
    let mut per_type = [0u64; 32];
    let mut stats = Stats { subjects: world.subjects(), ..Stats::default() };

    head::emit(&world, config.seed, &mut |event| {
        per_type[event.event_type() as usize] += 1;
        each(Item::Head(&event));
    });

    // Specs planned for a later year's stream: February decisions, late sends, delayed duplicates.
    let mut later = Vec::new();
    let mut now = Vec::new();
    let mut scratch = Vec::new();
    let mut year = 2021;
    while year <= 2030 || !later.is_empty() {
        let start = spec::rel(clock::year_start(year));
        let end = spec::rel(clock::year_start(year + 1));
        now.clear();
        later.retain(|s: &spec::Spec| {
            let arrived = s.arrival < end;
            if arrived {
                now.push(*s);
            }
            !arrived
        });
        if year <= 2030 {
            let mut out = city::Out { start, end, now: &mut now, later: &mut later, messy: config.messy };
            world.simulate(year, &mut out);
        }
        // Equal arrivals keep their planning order, which is itself deterministic.
        spec::sort_by_arrival(&mut now, &mut scratch, start);
        for s in &now {
            per_type[s.kind.event_type() as usize] += 1;
            stats.duplicates += u64::from(s.duplicate);
            stats.late += u64::from(s.time < start);
            each(Item::Subject(&world, s));
        }
        year += 1;
    }

    for &ty in EventType::ALL {
        let n = per_type[ty as usize];
        if n > 0 {
            stats.by_type.insert(ty, n);
        }
        stats.events += n;
    }
    stats.retractions = stats.by_type.get(&EventType::EventRetracted).copied().unwrap_or(0);
    stats
}

//! The people and organisations of the synthetic city and their yearly cycles, planned as specs.
//!
//! Every subject-year draws from its own RNG, seeded by (seed, subject, year): what happens to one
//! citizen in 2027 does not depend on how many families were simulated before, so the model can be
//! changed in one place without reshuffling everything else.

use crate::clock::{self, DAY, HOUR, Local};
use crate::content::{MINISTRY, REASON_RESTORE, SubjectId, floor_of};
use crate::geo::{self, Geography};
use crate::spec::{Kind, Scores, Spec, mix, rel, retraction_seed};
use fastrand::Rng;
use hoctap_domain::codes::{Level, SubjectGroup, SubjectKind};

/// How often the messy parts of real feeds happen, per subject event.
const DUPLICATE: f64 = 0.003;
const RETRACTION: f64 = 0.001;
/// Share of events a source sends months late (old `time`, arrives in a later year's stream).
const BACKFILL: f64 = 0.003;
/// Share of retractions that arrive before the event they name.
const RETRACTION_FIRST: f64 = 0.06;
/// Share of retractions that are themselves retracted.
const RETRACTION_RETRACTED: f64 = 0.05;
/// Share of the subjects of a divided commune, living outside its default successor, whose source
/// names their new ward (a `subject.relocated`) between the reform and the end of 2025. The others
/// are placed by default until an event of theirs names a commune (their next registration).
const WARD_NAMED: f64 = 0.35;

/// Subject kinds in the order their index ranges follow each other.
const KINDS: [SubjectKind; 6] = [
    SubjectKind::Citizen,
    SubjectKind::Family,
    SubjectKind::Clan,
    SubjectKind::Community,
    SubjectKind::Unit,
    // Administrative units: one range, the kind depends on the unit's level.
    SubjectKind::Commune,
];

/// Initial counts per commune, for the baselines.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counts {
    pub residents: u64,
    pub staff: u64,
    pub families: u64,
    pub clans: u64,
    pub communities: u64,
    pub units: u64,
}

/// Who lives where, and the little state each subject carries from year to year.
pub(crate) struct Population {
    /// Start of each range of [`KINDS`]; the last range (administrative units) runs to the end.
    starts: [u32; 6],
    total: u32,
    /// Per citizen: fixed group, propensity to take part (0–1) and the first cycle year taken part in.
    group: Vec<SubjectGroup>,
    propensity: Vec<f32>,
    joins: Vec<u16>,
    /// Per citizen: digital skill held (0 none, 1 basic, 2 proficient).
    skill: Vec<u8>,
    /// Per non-administrative subject: the commune it last named (possibly dissolved since).
    commune: Vec<u16>,
    /// Per subject: which part of a divided commune it lives in (see `Geography::lives_in`).
    keys: u64,
    /// XOR key of the pseudonyms, from the seed.
    key: u32,
    pub counts: Vec<Counts>,
    /// The same, by where the subjects live from the reform on.
    pub counts_after: Vec<Counts>,
}

/// The whole simulated world.
pub(crate) struct World {
    pub geo: Geography,
    pub pop: Population,
    seed: u64,
}

/// Where the specs of one simulated year go: into this year's stream, or later ones.
pub(crate) struct Out<'a> {
    pub start: u32,
    pub end: u32,
    pub now: &'a mut Vec<Spec>,
    pub later: &'a mut Vec<Spec>,
    pub messy: bool,
}

impl Out<'_> {
    fn put(&mut self, spec: Spec) {
        if spec.arrival < self.end {
            self.now.push(spec);
        } else {
            self.later.push(spec);
        }
    }

    /// Plans one event at valid time `t` and, when the feed is messy, its duplicate, late copy or
    /// retraction. Returns the event's seed.
    fn event(&mut self, rng: &mut Rng, kind: Kind, who: Who, t: Local, aux: u16, extra: u8) -> u64 {
        let Who { subject, year } = who;
        let time = rel(t);
        // Sources batch their uploads: an event arrives up to two days after it happened, which is
        // what makes the stream only roughly ordered by time.
        let mut spec = Spec {
            arrival: time + rng.u32(0..2 * DAY as u32),
            seed: rng.u64(..),
            time,
            subject,
            year: year as u16,
            aux,
            kind,
            extra,
            duplicate: false,
        };
        if !self.messy {
            self.put(spec);
            return spec.seed;
        }
        if rng.f64() < BACKFILL {
            spec.arrival = time + rng.u32(60 * DAY as u32..400 * DAY as u32);
        }
        self.put(spec);
        if rng.f64() < DUPLICATE {
            let copy = Spec { arrival: spec.arrival + rng.u32(HOUR as u32..20 * DAY as u32), duplicate: true, ..spec };
            self.put(copy);
        }
        if rng.f64() < RETRACTION {
            let r_time = time + rng.u32(HOUR as u32..30 * DAY as u32);
            let arrival = if rng.f64() < RETRACTION_FIRST {
                spec.arrival.saturating_sub(rng.u32(HOUR as u32..72 * HOUR as u32)).max(self.start)
            } else {
                r_time + rng.u32(0..2 * DAY as u32)
            };
            let reason = rng.u8(0..REASON_RESTORE);
            let retraction = Spec { arrival, time: r_time, kind: Kind::Retract, extra: reason, aux: 0, ..spec };
            self.put(retraction);
            if rng.f64() < RETRACTION_RETRACTED {
                let rr_time = r_time + rng.u32(DAY as u32..30 * DAY as u32);
                self.put(Spec {
                    arrival: rr_time.max(arrival) + rng.u32(0..2 * DAY as u32),
                    seed: retraction_seed(spec.seed),
                    time: rr_time,
                    extra: REASON_RESTORE,
                    ..retraction
                });
            }
        }
        spec.seed
    }
}

/// Whose year is being planned.
#[derive(Clone, Copy)]
pub(crate) struct Who {
    subject: u32,
    year: i32,
}

/// The rules of one title's yearly cycle for one subject.
struct Cycle {
    kind: SubjectKind,
    p_register: f64,
    /// Whether the cycle goes on to declarations (not for units about to be dissolved).
    declare: bool,
    p_declare: f64,
    /// Whether a recognition can be granted this cycle.
    grant: bool,
    p_grant: f64,
    /// Whether revocations happen (not to administrative units: they are not revoked in this city).
    revocable: bool,
}

/// An office hour on a day between `from` and `to` (midnights, inclusive).
fn office_time(rng: &mut Rng, from: Local, to: Local) -> Local {
    let days = ((to - from) / DAY).max(0);
    from + rng.i64(0..=days) * DAY + 7 * HOUR + 30 * 60 + rng.i64(0..10 * HOUR)
}

impl World {
    pub(crate) fn new(
        citizens: u64,
        seed: u64,
        province: &hoctap_geography::Scope,
    ) -> Result<World, hoctap_geography::GeographyError> {
        let geo = Geography::official(province)?;
        let pop = Population::new(&geo, citizens, seed);
        Ok(World { geo, pop, seed })
    }

    /// Number of subjects, administrative units included.
    pub(crate) fn subjects(&self) -> u64 {
        u64::from(self.pop.total)
    }

    fn rng_for(&self, subject: u32, year: i32) -> Rng {
        Rng::with_seed(mix(self.seed ^ mix((u64::from(subject) << 16) ^ year as u64)))
    }

    /// Plans every subject's events of cycle `year` (and the citizens' moves and skills that year).
    pub(crate) fn simulate(&mut self, year: i32, out: &mut Out<'_>) {
        let geo = &self.geo;
        let [citizens, families, clans, communities, units, admin] = self.pop.starts;
        let trend = f64::from(year - 2021);
        for subject in citizens..families {
            let mut rng = self.rng_for(subject, year);
            self.pop.citizen_year(geo, &mut rng, out, subject, year);
        }
        for (range, kind, p) in [
            (families..clans, SubjectKind::Family, 0.78 + 0.015 * trend),
            (clans..communities, SubjectKind::Clan, 0.78 + 0.015 * trend),
            (communities..units, SubjectKind::Community, 0.74 + 0.015 * trend),
            (units..admin, SubjectKind::Unit, 0.72 + 0.02 * trend),
        ] {
            let cycle = Cycle {
                kind,
                p_register: p,
                declare: true,
                p_declare: 0.92,
                grant: true,
                p_grant: 0.95,
                revocable: true,
            };
            for subject in range {
                let mut rng = self.rng_for(subject, year);
                let home = self.pop.commune[subject as usize];
                let key = self.pop.key_of(subject);
                let at = |t| geo.lives_in(home, t, key);
                // A unit (agency, school, enterprise) is recognised by its province, the others by
                // their commune.
                let issuer_at = |t| if kind == SubjectKind::Unit { geo.province_at(at(t), t) } else { at(t) };
                let who = Who { subject, year };
                cycle.run(&mut rng, out, who, &at, &issuer_at);
                if year == 2025 {
                    name_the_ward(geo, &mut rng, out, who, home, key);
                }
            }
        }
        for (unit_index, unit) in geo.units.iter().enumerate() {
            let u = unit_index as u16;
            let subject = admin + unit_index as u32;
            // Units about to be dissolved register in 2025 but are gone before any decision.
            let (active, complete) = if unit.new {
                (year >= 2026, true)
            } else if unit.dissolved() {
                (year <= 2025, year <= 2024)
            } else {
                (true, true)
            };
            if !active {
                continue;
            }
            let cycle = match unit.level {
                Level::Province => Cycle {
                    kind: SubjectKind::Province,
                    p_register: 1.0,
                    declare: complete,
                    p_declare: 1.0,
                    // Every province is recognised as a learning city from the 2028 cycle on.
                    grant: year >= 2028,
                    p_grant: 1.0,
                    revocable: false,
                },
                level => Cycle {
                    kind: if level == Level::District { SubjectKind::District } else { SubjectKind::Commune },
                    p_register: if level == Level::District { 0.9 } else { 0.85 },
                    declare: complete,
                    p_declare: 0.95,
                    grant: complete,
                    p_grant: 0.8,
                    revocable: false,
                },
            };
            let issuer_at = |t: Local| geo.issuer_of(u, t).unwrap_or(MINISTRY);
            let mut rng = self.rng_for(subject, year);
            cycle.run(&mut rng, out, Who { subject, year }, &|_| u, &issuer_at);
        }
    }
}

impl Cycle {
    /// Registration, perhaps a withdrawal, declaration, evidence, recognition, perhaps a revocation.
    fn run(
        &self,
        rng: &mut Rng,
        out: &mut Out<'_>,
        who: Who,
        commune_at: &dyn Fn(Local) -> u16,
        issuer_at: &dyn Fn(Local) -> u16,
    ) {
        if rng.f64() >= self.p_register {
            return;
        }
        let year = who.year;
        let m = clock::midnight;
        let registered = office_time(rng, m(year, 1, 2), m(year, 3, 31));
        out.event(rng, Kind::Register, who, registered, commune_at(registered), 0);
        let mut active = registered;
        if rng.f64() < 0.02 {
            let withdrawn = active + rng.i64(2 * DAY..20 * DAY);
            out.event(rng, Kind::Withdraw, who, withdrawn, 0, 0);
            // Four in ten think better of it and register again a little later.
            if rng.f64() >= 0.4 {
                return;
            }
            let again = withdrawn + rng.i64(2 * DAY..20 * DAY);
            out.event(rng, Kind::Register, who, again, commune_at(again), 0);
            active = again;
        }
        if !self.declare || rng.f64() >= self.p_declare {
            return;
        }
        let day_after = active - active.rem_euclid(DAY) + DAY;
        let declared = office_time(rng, m(year, 4, 1).max(day_after), m(year, 9, 30));
        let seed = out.event(rng, Kind::Declare, who, declared, 0, 0);
        // The same draw the written declaration will show (see `content`).
        let scores = Scores::of(seed, floor_of(self.kind));
        for i in 0..rng.i64(1..=2) {
            let uploaded = declared + rng.i64(0..20 * DAY) + i;
            let criterion = rng.usize(1..=scores.count) as u16;
            out.event(rng, Kind::Evidence, who, uploaded, criterion, 0);
        }
        if !self.grant || scores.total < 80 || rng.f64() >= self.p_grant {
            return;
        }
        // One decision in ten comes in February of the next year, still for this cycle.
        let granted = if rng.f64() < 0.10 {
            office_time(rng, m(year + 1, 2, 1), m(year + 1, 2, 28))
        } else {
            office_time(rng, m(year, 11, 1), m(year, 12, 31))
        };
        let issuer = issuer_at(granted);
        let level = match self.kind {
            SubjectKind::Family | SubjectKind::Unit => [0, 1, 1, 2][rng.usize(0..4)],
            _ => 0,
        };
        out.event(rng, Kind::Grant, who, granted, issuer, level);
        if self.revocable && rng.f64() < 0.005 {
            let revoked = granted + rng.i64(20 * DAY..300 * DAY);
            // The revocation reaches back: the recognition ended when the fault happened.
            let back = rng.u8(1..=((revoked - granted) / DAY).min(60) as u8);
            out.event(rng, Kind::Revoke, who, revoked, issuer, back);
        }
    }
}

impl Population {
    fn new(geo: &Geography, citizens: u64, seed: u64) -> Population {
        let citizens = u32::try_from(citizens).expect("at most 4 billion citizens");
        let share = |per: u32| if citizens == 0 { 0 } else { (citizens / per).max(1) };
        let families = citizens / 3;
        let sizes = [citizens, families, share(60), share(54), share(80)];
        let mut starts = [0u32; 6];
        for i in 1..6 {
            starts[i] = starts[i - 1] + sizes[i - 1];
        }
        let total = starts[5] + geo.units.len() as u32;
        let mut rng = Rng::with_seed(mix(seed ^ 0x706f_7075_6c61_7465));
        let keys = mix(seed ^ 0x7761_7264);
        let key_of = |subject: usize| mix(keys ^ subject as u64);
        let mut counts = vec![Counts::default(); geo.units.len()];
        let mut counts_after = vec![Counts::default(); geo.units.len()];
        let start = clock::year_start(2021);
        let reform = geo::reform();
        let mut group = Vec::with_capacity(citizens as usize);
        let mut propensity = Vec::with_capacity(citizens as usize);
        let mut joins = Vec::with_capacity(citizens as usize);
        let mut commune = Vec::with_capacity(starts[5] as usize);
        for i in 0..citizens as usize {
            let c = geo.pick_commune(&mut rng, start);
            // Hà Nội's adults by how the portal groups them: mostly residents, then workers.
            let g = match rng.u32(0..100) {
                0..45 => SubjectGroup::Resident,
                45..75 => SubjectGroup::Worker,
                75..88 => SubjectGroup::Staff,
                _ => SubjectGroup::Student,
            };
            let after = geo.lives_in(c, reform, key_of(i));
            for (n, at) in [(&mut counts, c), (&mut counts_after, after)] {
                n[at as usize].residents += 1;
                if g == SubjectGroup::Staff {
                    n[at as usize].staff += 1;
                }
            }
            commune.push(c);
            group.push(g);
            propensity.push(rng.f32());
            // The campaign grows: staff take part from the start (their agencies ask them to), 55 %
            // of the others too, the rest join over 2022–2028. This is what makes the recognised
            // share rise from the phase review to the final one.
            let join = if g == SubjectGroup::Staff || rng.f64() < 0.55 { 2021 } else { rng.u16(2022..=2028) };
            joins.push(join);
        }
        for (k, &size) in sizes.iter().enumerate().skip(1) {
            for _ in 0..size {
                let c = geo.pick_commune(&mut rng, start);
                let after = geo.lives_in(c, reform, key_of(commune.len()));
                for (n, at) in [(&mut counts, c), (&mut counts_after, after)] {
                    let n = &mut n[at as usize];
                    match k {
                        1 => n.families += 1,
                        2 => n.clans += 1,
                        3 => n.communities += 1,
                        _ => n.units += 1,
                    }
                }
                commune.push(c);
            }
        }
        Population {
            starts,
            total,
            group,
            propensity,
            joins,
            skill: vec![0; citizens as usize],
            commune,
            keys,
            key: mix(seed) as u32,
            counts,
            counts_after,
        }
    }

    /// The key that decides which part of a divided commune the subject lives in.
    pub(crate) fn key_of(&self, subject: u32) -> u64 {
        mix(self.keys ^ u64::from(subject))
    }

    /// The subject's kind and its id on the wire: a pseudonym, or an administrative unit's code.
    pub(crate) fn describe<'g>(&self, geo: &'g Geography, subject: u32) -> (SubjectKind, SubjectId<'g>) {
        let range = self.starts.partition_point(|&s| s <= subject) - 1;
        let local = subject - self.starts[range];
        if range == 5 {
            let unit = &geo.units[local as usize];
            let kind = match unit.level {
                Level::Province => SubjectKind::Province,
                Level::District => SubjectKind::District,
                Level::Commune => SubjectKind::Commune,
            };
            return (kind, SubjectId::Code(&unit.code));
        }
        let prefix = ["cit", "fam", "cln", "com", "unt"][range];
        // Multiplying by an odd constant and XOR-ing a key is a bijection on u32: unique, unguessable
        // ids of eight hex digits, which can never hold a 12-digit citizen-ID number.
        let pseudonym = local.wrapping_mul(0x9E37_79B1) ^ self.key;
        (KINDS[range], SubjectId::Pseudonym(prefix, pseudonym))
    }

    pub(crate) fn group_of(&self, subject: u32) -> Option<SubjectGroup> {
        self.group.get(subject as usize).copied()
    }

    /// One citizen's year: perhaps a move, the Công dân học tập cycle, perhaps a digital skill.
    fn citizen_year(&mut self, geo: &Geography, rng: &mut Rng, out: &mut Out<'_>, subject: u32, year: i32) {
        let who = Who { subject, year };
        let i = subject as usize;
        let home = self.commune[i];
        let q = f64::from(self.propensity[i]);
        let group = self.group[i];
        let (start, end) = (clock::year_start(year), clock::year_start(year + 1));

        // The move is decided first so that every event of the year names the commune of its day.
        let key = self.key_of(subject);
        let moved = (rng.f64() < 0.02).then(|| {
            let t = office_time(rng, start, end - DAY);
            let mut to = geo.pick_commune(rng, t);
            if to == geo.lives_in(home, t, key) {
                to = geo.pick_commune(rng, t);
            }
            (t, to)
        });
        if let Some((t, to)) = moved {
            out.event(rng, Kind::Relocate, who, t, to, 0);
        }
        // Every event names the commune the citizen lives in on its day.
        let commune_at = |t: Local| {
            let raw = match moved {
                Some((moved_at, to)) if t >= moved_at => to,
                _ => home,
            };
            geo.lives_in(raw, t, key)
        };

        let trend = f64::from(year - 2021);
        let boost = match group {
            // Staff of agencies are asked to take part; students have exams.
            SubjectGroup::Staff => 0.15,
            SubjectGroup::Student => -0.05,
            _ => 0.0,
        };
        let cycle = Cycle {
            kind: SubjectKind::Citizen,
            p_register: ((0.66 + 0.015 * trend) * (0.7 + 0.6 * q) + boost).min(0.97),
            declare: true,
            p_declare: 0.9,
            grant: true,
            p_grant: 0.95,
            revocable: true,
        };
        if year >= i32::from(self.joins[i]) {
            cycle.run(rng, out, who, &commune_at, &commune_at);
        }

        let skill = self.skill[i];
        let p_skill = match skill {
            0 => (0.055 + 0.012 * trend) * (0.6 + 0.8 * q),
            1 => 0.08,
            _ => 0.0,
        };
        if rng.f64() < p_skill {
            let t = office_time(rng, start, end - DAY);
            out.event(rng, Kind::Skill, who, t, commune_at(t), skill + 1);
            self.skill[i] = skill + 1;
        }
        if year == 2025 && moved.is_none() {
            name_the_ward(geo, rng, out, who, home, key);
        }
        if let Some((_, to)) = moved {
            self.commune[i] = to;
        }
    }
}

/// After the reform, the source of some subjects of a divided commune who live outside its default
/// successor names their new ward. Until an event of theirs names a commune, the others are counted
/// in the default successor, "placed by default".
fn name_the_ward(geo: &Geography, rng: &mut Rng, out: &mut Out<'_>, who: Who, home: u16, key: u64) {
    let reform = geo::reform();
    if !geo.is_divided(home) {
        return;
    }
    let ward = geo.lives_in(home, reform, key);
    if ward == geo.in_force(home, reform) || rng.f64() >= WARD_NAMED {
        return;
    }
    let t = office_time(rng, reform, clock::midnight(2025, 12, 20));
    out.event(rng, Kind::Relocate, who, t, ward, 0);
}

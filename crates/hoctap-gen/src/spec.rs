//! A planned event in 32 bytes: what, who, when, and the seed its content is drawn from.
//!
//! A year of a large city is a million events; holding them as `Event`s (strings, JSON-ready data)
//! would take half a gigabyte. Holding them as specs lets one year be sorted into arrival order, and
//! because an event's content is a pure function of its spec, a duplicate is just a copied spec and a
//! retraction can name an event's id before that event has been written.

use crate::clock::{self, Local};
use fastrand::Rng;
use hoctap_domain::event::EventType;
use uuid::Uuid;

/// What a spec becomes. Administrative, baseline and target events are not specs: they are written
/// before the subjects' years (see `head`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Register,
    Withdraw,
    Declare,
    Evidence,
    Grant,
    Revoke,
    Skill,
    Relocate,
    Retract,
}

impl Kind {
    pub(crate) fn event_type(self) -> EventType {
        match self {
            Kind::Register => EventType::RegistrationSubmitted,
            Kind::Withdraw => EventType::RegistrationWithdrawn,
            Kind::Declare => EventType::DeclarationSubmitted,
            Kind::Evidence => EventType::EvidenceUploaded,
            Kind::Grant => EventType::RecognitionGranted,
            Kind::Revoke => EventType::RecognitionRevoked,
            Kind::Skill => EventType::SkillCertified,
            Kind::Relocate => EventType::SubjectRelocated,
            Kind::Retract => EventType::EventRetracted,
        }
    }
}

/// One planned subject event. The derived order (arrival first) is the order of the stream; the
/// seed breaks ties, so any sort gives the same result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Spec {
    /// Position in the arrival order, as seconds since [`BASE`]: valid time plus a delay.
    pub arrival: u32,
    /// The event's id and content are drawn from this (for a retraction: the retracted event's seed).
    pub seed: u64,
    /// Valid time, seconds since [`BASE`].
    pub time: u32,
    /// Index into the population (see `city::Population`).
    pub subject: u32,
    /// Cycle year, for the events that carry one.
    pub year: u16,
    /// Per kind: a unit index (commune, issuer), or an evidence's criterion number.
    pub aux: u16,
    pub kind: Kind,
    /// Per kind: recognition level, days a revocation reaches back, skill level, retraction reason.
    pub extra: u8,
    /// A second copy of an event already planned; never part of the content.
    pub duplicate: bool,
}

/// The origin of the compact times: every generated subject event lies between 2021 and 2032.
pub(crate) fn base() -> Local {
    clock::year_start(2020)
}

pub(crate) fn rel(t: Local) -> u32 {
    u32::try_from(t - base()).expect("generated times lie after 2020")
}

pub(crate) fn abs(t: u32) -> Local {
    base() + Local::from(t)
}

/// SplitMix64's finaliser: turns related integers into unrelated seeds.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The id of the event planned with `seed` (a version-4 UUID drawn from it).
pub(crate) fn event_id(seed: u64) -> Uuid {
    uuid::Builder::from_random_bytes(Rng::with_seed(seed).u128(..).to_le_bytes()).into_uuid()
}

/// The seed a retraction of the event planned with `seed` draws its own id from.
pub(crate) fn retraction_seed(seed: u64) -> u64 {
    mix(seed ^ 0x7265_7472_6163_7420)
}

/// A declaration's scores and total, drawn from its seed: the simulation needs the total to decide on
/// recognition, the writer needs the scores, and both must agree.
pub(crate) struct Scores {
    pub count: usize,
    pub scores: [u8; 5],
    pub total: u8,
}

impl Scores {
    pub(crate) fn of(seed: u64, floor: u8) -> Scores {
        let mut rng = Rng::with_seed(mix(seed ^ 0x7363_6f72_6573));
        let count = rng.usize(3..=5);
        let mut scores = [0u8; 5];
        let mut sum = 0u32;
        for score in scores.iter_mut().take(count) {
            // Most people score high: 100 − 60·u⁴ has mean 88, and about 85 % of totals reach 80.
            let u = rng.f64();
            let s = 100 - (60.0 * u * u * u * u) as u8;
            *score = s.max(floor);
            sum += u32::from(*score);
        }
        // The mean, rounded half up, in integers.
        let total = ((2 * sum + count as u32) / (2 * count as u32)) as u8;
        Scores { count, scores, total }
    }
}

/// Sorts one year's specs by arrival, equal arrivals keeping their order: a least-significant-digit
/// radix sort over three 11-bit digits of the offset from `start` (a year is < 2²⁵ seconds). A
/// comparison sort of a million 32-byte specs took a tenth of the generation time.
pub(crate) fn sort_by_arrival(specs: &mut Vec<Spec>, scratch: &mut Vec<Spec>, start: u32) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let Some(&filler) = specs.first() else { return };
    for pass in 0..3 {
        let digit = |s: &Spec| ((s.arrival - start) >> (pass * BITS)) as usize & (BUCKETS - 1);
        let mut next = vec![0usize; BUCKETS];
        for s in specs.iter() {
            next[digit(s)] += 1;
        }
        let mut sum = 0;
        for slot in next.iter_mut() {
            let n = *slot;
            *slot = sum;
            sum += n;
        }
        scratch.clear();
        scratch.resize(specs.len(), filler);
        for s in specs.iter() {
            let d = digit(s);
            scratch[next[d]] = *s;
            next[d] += 1;
        }
        std::mem::swap(specs, scratch);
    }
}

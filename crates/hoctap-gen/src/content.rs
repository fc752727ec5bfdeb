//! What a spec says, worked out once and then spelt two ways: as an `Event` for [`crate::generate`],
//! and straight as canonical JSON bytes for [`crate::write_ndjson`].
//!
//! The second spelling exists for speed. Going through `Event` and `Event::to_json` costs about
//! 2 µs an event on the 2-core build machine (a dozen allocations, chrono's date formatting, serde's
//! escaping), which alone would cap a 10-million-event benchmark at half a million events a second.
//! The bytes must stay exactly `Event::to_json()`: a test compares the two spellings for every event
//! of a generated city, so a change to the domain's encoding fails here rather than drifting.

use crate::city::World;
use crate::clock::{self, DAY, HOUR, Local};
use crate::spec::{Kind, Scores, Spec, abs, event_id, mix, retraction_seed};
use fastrand::Rng;
use hoctap_domain::codes::{DigitalLevel, SubjectGroup, SubjectKind, Title};
use hoctap_domain::event::{
    self as ev, CURRENT_VERSION, DeclarationSubmitted, Event, EventData, EventRetracted, EvidenceUploaded, Num,
    RecognitionGranted, RecognitionRevoked, RegistrationSubmitted, RegistrationWithdrawn, SkillCertified,
    SubjectRelocated, TYPE_PREFIX,
};
use hoctap_domain::time::Day;
use uuid::Uuid;

/// Sources: the national portal publishes citizens' events, the city's Hội Khuyến học the others.
pub(crate) const CITIZEN_SOURCE: &str = "congdanhoctap.vn";
pub(crate) const OFFICE_SOURCE: &str = "khuyenhoc.hanoi.gov.vn";

/// Issuer index meaning the ministry (it recognises the city itself); any other value is a unit.
pub(crate) const MINISTRY: u16 = u16::MAX;

const REASONS: [&str; 5] = ["nhập nhầm", "trùng hồ sơ", "nhập sai đối tượng", "nhập sai năm", "thu hồi nhầm"];
/// The reason a retraction of a retraction gives (the last of [`REASONS`]).
pub(crate) const REASON_RESTORE: u8 = 4;

const CRITERIA: [&str; 5] = ["TC1", "TC2", "TC3", "TC4", "TC5"];
const MEDIA_TYPE: &str = "application/pdf";
const EVIDENCE_HOST: &str = "https://minhchung.hanoi.gov.vn/";

/// A subject id: a pseudonym (`cit-1a2b3c4d`) or an administrative unit's code.
#[derive(Clone, Copy)]
pub(crate) enum SubjectId<'g> {
    Pseudonym(&'static str, u32),
    Code(&'g str),
}

impl SubjectId<'_> {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            SubjectId::Code(code) => out.extend_from_slice(code.as_bytes()),
            SubjectId::Pseudonym(prefix, n) => {
                out.extend_from_slice(prefix.as_bytes());
                out.push(b'-');
                for shift in (0..8).rev() {
                    out.push(b"0123456789abcdef"[((n >> (shift * 4)) & 15) as usize]);
                }
            }
        }
    }

    fn to_text(self) -> String {
        let mut out = Vec::with_capacity(12);
        self.write(&mut out);
        String::from_utf8(out).expect("codes and pseudonyms are UTF-8")
    }
}

/// Who decided.
#[derive(Clone, Copy)]
enum Issuer<'g> {
    Unit(&'g str),
    Ministry,
}

struct Decision<'g> {
    number: u32,
    issuer: Issuer<'g>,
    date: Day,
}

impl Decision<'_> {
    fn suffix(&self) -> &'static str {
        match self.issuer {
            Issuer::Unit(_) => "/QD-UBND",
            Issuer::Ministry => "/QD-BGDDT",
        }
    }

    fn to_domain(&self) -> ev::Decision {
        ev::Decision {
            number: format!("{}{}", self.number, self.suffix()),
            issuer: match self.issuer {
                Issuer::Unit(code) => format!("UBND-{code}"),
                Issuer::Ministry => "BGDDT".to_owned(),
            },
            date: self.date,
        }
    }
}

/// The `data` of a subject event, with borrowed strings.
enum Body<'g> {
    Register { kind: SubjectKind, commune: &'g str, group: Option<SubjectGroup> },
    Withdraw,
    Declare { criteria_set: &'static str, scores: Scores },
    Evidence { criterion: &'static str, sha256: [u8; 32], bytes: u64 },
    Grant { level: Option<u8>, decision: Decision<'g>, valid_from: Day, valid_until: Day },
    Revoke { decision: Decision<'g>, effective: Day },
    Skill { commune: &'g str, level: DigitalLevel },
    Relocate { commune: &'g str },
    Retract { target: Uuid, reason: &'static str },
}

/// Everything an event of a spec says.
pub(crate) struct Content<'g> {
    id: Uuid,
    source: &'static str,
    time: Local,
    subject: SubjectId<'g>,
    title: Title,
    year: i32,
    body: Body<'g>,
}

pub(crate) fn title_of(kind: SubjectKind) -> Title {
    match kind {
        SubjectKind::Citizen => Title::LearningCitizen,
        SubjectKind::Family => Title::LearningFamily,
        SubjectKind::Clan => Title::LearningClan,
        SubjectKind::Community => Title::LearningCommunity,
        SubjectKind::Unit => Title::LearningUnit,
        SubjectKind::Commune => Title::LearningCommune,
        SubjectKind::District => Title::LearningDistrict,
        SubjectKind::Province => Title::LearningCity,
    }
}

/// The lowest score a subject of this kind gives itself (the city only applies when it is sure).
pub(crate) fn floor_of(kind: SubjectKind) -> u8 {
    if kind == SubjectKind::Province { 85 } else { 0 }
}

/// The criteria set a declaration is assessed against (the portal changed sets in 2023).
fn criteria_set(title: Title, year: i32) -> &'static str {
    match (title, year >= 2023) {
        (Title::LearningCitizen, true) => "CDHT-324/QD-KHVN-2023",
        (Title::LearningCitizen, false) => "CDHT-1361/QD-KHVN-2020",
        (Title::LearningFamily, _) => "GDHT-324/QD-KHVN-2023",
        (Title::LearningClan, _) => "DHHT-324/QD-KHVN-2023",
        (Title::LearningCommunity, _) => "CDCS-TT25/2023-BGDDT",
        (Title::LearningUnit, _) => "DVHT-TT25/2023-BGDDT",
        (Title::LearningCommune, _) => "XHT-TT25/2023-BGDDT",
        (Title::LearningDistrict, _) => "HHT-TT25/2023-BGDDT",
        (Title::LearningCity, _) => "TPHT-TT25/2023-BGDDT",
    }
}

/// Validity of a recognition: Công dân học tập and most titles through 31 December of the next year;
/// community titles 36 months (TT 25/2023).
fn validity(title: Title, year: i32) -> (Day, Day) {
    let years = if title == Title::LearningCommunity { 2 } else { 1 };
    (clock::date(year, 1, 1), clock::date(year + years, 12, 31))
}

impl World {
    /// What the event of a spec says. Pure: the same spec always gives the same content.
    pub(crate) fn content(&self, s: &Spec) -> Content<'_> {
        let (kind, subject) = self.pop.describe(&self.geo, s.subject);
        let title = title_of(kind);
        let year = i32::from(s.year);
        let time = abs(s.time);
        let mut rng = Rng::with_seed(mix(s.seed ^ 0x0063_6f6e_7465_6e74));
        let code = |unit: u16| self.geo.code(unit);
        let decision = |rng: &mut Rng, unit: u16| Decision {
            number: rng.u32(1..=3000),
            issuer: if unit == MINISTRY { Issuer::Ministry } else { Issuer::Unit(code(unit)) },
            date: clock::day_of(time),
        };
        let body = match s.kind {
            Kind::Register => Body::Register { kind, commune: code(s.aux), group: self.pop.group_of(s.subject) },
            Kind::Withdraw => Body::Withdraw,
            Kind::Declare => {
                Body::Declare { criteria_set: criteria_set(title, year), scores: Scores::of(s.seed, floor_of(kind)) }
            }
            Kind::Evidence => {
                let mut sha256 = [0u8; 32];
                sha256[..16].copy_from_slice(&rng.u128(..).to_le_bytes());
                sha256[16..].copy_from_slice(&rng.u128(..).to_le_bytes());
                Body::Evidence {
                    criterion: CRITERIA[usize::from(s.aux.clamp(1, 5)) - 1],
                    sha256,
                    bytes: rng.u64(40_000..4_000_000),
                }
            }
            Kind::Grant => {
                let (valid_from, valid_until) = validity(title, year);
                Body::Grant {
                    level: (s.extra > 0).then_some(s.extra),
                    decision: decision(&mut rng, s.aux),
                    valid_from,
                    valid_until,
                }
            }
            Kind::Revoke => {
                let decision = decision(&mut rng, s.aux);
                let effective = Day(decision.date.0 - i32::from(s.extra));
                Body::Revoke { decision, effective }
            }
            Kind::Skill => Body::Skill {
                commune: code(s.aux),
                level: if s.extra >= 2 { DigitalLevel::Proficient } else { DigitalLevel::Basic },
            },
            Kind::Relocate => Body::Relocate { commune: code(s.aux) },
            Kind::Retract => Body::Retract { target: event_id(s.seed), reason: REASONS[usize::from(s.extra)] },
        };
        let id = match s.kind {
            Kind::Retract => event_id(retraction_seed(s.seed)),
            _ => event_id(s.seed),
        };
        let source = if kind == SubjectKind::Citizen { CITIZEN_SOURCE } else { OFFICE_SOURCE };
        Content { id, source, time, subject, title, year, body }
    }
}

impl Content<'_> {
    /// The event, as [`crate::generate`] hands it out.
    pub(crate) fn to_event(&self) -> Event {
        let (title, cycle_year) = (self.title, self.year);
        let data = match &self.body {
            Body::Register { kind, commune, group } => EventData::RegistrationSubmitted(RegistrationSubmitted {
                subject_kind: *kind,
                commune: (*commune).to_owned(),
                title,
                cycle_year,
                subject_group: *group,
            }),
            Body::Withdraw => EventData::RegistrationWithdrawn(RegistrationWithdrawn { title, cycle_year }),
            Body::Declare { criteria_set, scores } => EventData::DeclarationSubmitted(DeclarationSubmitted {
                title,
                cycle_year,
                criteria_set: (*criteria_set).to_owned(),
                scores: (0..scores.count)
                    .map(|i| ev::Score { criterion: CRITERIA[i].to_owned(), score: Num(f64::from(scores.scores[i])) })
                    .collect(),
                total: Num(f64::from(scores.total)),
            }),
            Body::Evidence { criterion, sha256, bytes } => {
                let mut hex = Vec::with_capacity(64);
                push_hex(&mut hex, sha256);
                let sha256 = String::from_utf8(hex).expect("hex is ASCII");
                EventData::EvidenceUploaded(EvidenceUploaded {
                    title,
                    cycle_year,
                    criterion: (*criterion).to_owned(),
                    uri: format!("{EVIDENCE_HOST}{sha256}.pdf"),
                    sha256,
                    media_type: MEDIA_TYPE.to_owned(),
                    bytes: *bytes,
                })
            }
            Body::Grant { level, decision, valid_from, valid_until } => {
                EventData::RecognitionGranted(RecognitionGranted {
                    title,
                    cycle_year,
                    level: *level,
                    decision: decision.to_domain(),
                    valid_from: *valid_from,
                    valid_until: *valid_until,
                })
            }
            Body::Revoke { decision, effective } => EventData::RecognitionRevoked(RecognitionRevoked {
                title,
                cycle_year,
                decision: decision.to_domain(),
                effective: *effective,
            }),
            Body::Skill { commune, level } => {
                EventData::SkillCertified(SkillCertified { commune: (*commune).to_owned(), level: *level })
            }
            Body::Relocate { commune } => {
                EventData::SubjectRelocated(SubjectRelocated { commune: (*commune).to_owned() })
            }
            Body::Retract { target, reason } => {
                EventData::EventRetracted(EventRetracted { event_id: *target, reason: (*reason).to_owned() })
            }
        };
        Event::new(self.id, self.source, &clock::rfc3339(self.time), &self.subject.to_text(), data)
            .expect("generated times are RFC 3339")
    }

    /// Appends exactly `self.to_event().to_json()`, without building the event.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let stem = match self.body {
            Body::Register { .. } => "registration.submitted",
            Body::Withdraw => "registration.withdrawn",
            Body::Declare { .. } => "declaration.submitted",
            Body::Evidence { .. } => "evidence.uploaded",
            Body::Grant { .. } => "recognition.granted",
            Body::Revoke { .. } => "recognition.revoked",
            Body::Skill { .. } => "skill.certified",
            Body::Relocate { .. } => "subject.relocated",
            Body::Retract { .. } => "event.retracted",
        };
        out.extend_from_slice(b"{\"specversion\":\"1.0\",\"id\":\"");
        push_uuid(out, self.id);
        out.extend_from_slice(b"\",\"source\":");
        push_str(out, self.source);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(TYPE_PREFIX.as_bytes());
        out.extend_from_slice(stem.as_bytes());
        out.extend_from_slice(b".v");
        push_u64(out, u64::from(CURRENT_VERSION));
        out.extend_from_slice(b"\",\"time\":\"");
        push_time(out, self.time);
        out.extend_from_slice(b"\",\"subject\":\"");
        self.subject.write(out);
        out.extend_from_slice(b"\",\"data\":{");
        // Field order and optional fields follow the serde derives of the domain's data structs.
        let title_and_year = |out: &mut Vec<u8>| {
            out.extend_from_slice(b"\"title\":");
            push_str(out, self.title.as_str());
            out.extend_from_slice(b",\"cycle_year\":");
            push_i64(out, i64::from(self.year));
        };
        match &self.body {
            Body::Register { kind, commune, group } => {
                out.extend_from_slice(b"\"subject_kind\":");
                push_str(out, kind.as_str());
                out.extend_from_slice(b",\"commune\":");
                push_str(out, commune);
                out.push(b',');
                title_and_year(out);
                if let Some(group) = group {
                    out.extend_from_slice(b",\"subject_group\":");
                    push_str(out, group.as_str());
                }
            }
            Body::Withdraw => title_and_year(out),
            Body::Declare { criteria_set, scores } => {
                title_and_year(out);
                out.extend_from_slice(b",\"criteria_set\":");
                push_str(out, criteria_set);
                out.extend_from_slice(b",\"scores\":[");
                for (i, (criterion, score)) in CRITERIA.iter().zip(scores.scores).take(scores.count).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"criterion\":");
                    push_str(out, criterion);
                    out.extend_from_slice(b",\"score\":");
                    push_whole(out, score);
                    out.push(b'}');
                }
                out.extend_from_slice(b"],\"total\":");
                push_whole(out, scores.total);
            }
            Body::Evidence { criterion, sha256, bytes } => {
                title_and_year(out);
                out.extend_from_slice(b",\"criterion\":");
                push_str(out, criterion);
                out.extend_from_slice(b",\"sha256\":\"");
                push_hex(out, sha256);
                out.extend_from_slice(b"\",\"uri\":\"");
                out.extend_from_slice(EVIDENCE_HOST.as_bytes());
                push_hex(out, sha256);
                out.extend_from_slice(b".pdf\",\"media_type\":");
                push_str(out, MEDIA_TYPE);
                out.extend_from_slice(b",\"bytes\":");
                push_u64(out, *bytes);
            }
            Body::Grant { level, decision, valid_from, valid_until } => {
                title_and_year(out);
                if let Some(level) = level {
                    out.extend_from_slice(b",\"level\":");
                    push_u64(out, u64::from(*level));
                }
                push_decision(out, decision);
                out.extend_from_slice(b",\"valid_from\":");
                push_day(out, *valid_from);
                out.extend_from_slice(b",\"valid_until\":");
                push_day(out, *valid_until);
            }
            Body::Revoke { decision, effective } => {
                title_and_year(out);
                push_decision(out, decision);
                out.extend_from_slice(b",\"effective\":");
                push_day(out, *effective);
            }
            Body::Skill { commune, level } => {
                out.extend_from_slice(b"\"commune\":");
                push_str(out, commune);
                out.extend_from_slice(b",\"level\":");
                push_str(out, level.as_str());
            }
            Body::Relocate { commune } => {
                out.extend_from_slice(b"\"commune\":");
                push_str(out, commune);
            }
            Body::Retract { target, reason } => {
                out.extend_from_slice(b"\"event_id\":\"");
                push_uuid(out, *target);
                out.extend_from_slice(b"\",\"reason\":");
                push_str(out, reason);
            }
        }
        out.extend_from_slice(b"}}");
    }
}

fn push_decision(out: &mut Vec<u8>, decision: &Decision<'_>) {
    out.extend_from_slice(b",\"decision\":{\"number\":\"");
    push_u64(out, u64::from(decision.number));
    out.extend_from_slice(decision.suffix().as_bytes());
    out.extend_from_slice(b"\",\"issuer\":");
    match decision.issuer {
        Issuer::Unit(code) => {
            out.extend_from_slice(b"\"UBND-");
            out.extend_from_slice(code.as_bytes());
            out.push(b'"');
        }
        Issuer::Ministry => out.extend_from_slice(b"\"BGDDT\""),
    }
    out.extend_from_slice(b",\"date\":");
    push_day(out, decision.date);
    out.push(b'}');
}

/// A JSON string, escaped as serde_json does: `"`, `\` and control characters, nothing else.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    out.push(b'"');
    // Every string this crate writes is plain; the escaping loop is there for correctness only.
    if !s.bytes().any(needs_escape) {
        out.extend_from_slice(s.as_bytes());
    } else {
        for &b in s.as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..0x20 => {
                    out.extend_from_slice(b"\\u00");
                    push_hex(out, &[b]);
                }
                _ => out.push(b),
            }
        }
    }
    out.push(b'"');
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// A whole score held as `Num`, which the domain writes as an integer (`88`, not `88.0`).
fn push_whole(out: &mut Vec<u8>, n: u8) {
    push_u64(out, u64::from(n));
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
        out.push(b"0123456789abcdef"[usize::from(b & 15)]);
    }
}

fn push_uuid(out: &mut Vec<u8>, id: Uuid) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
}

fn push_2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// `"YYYY-MM-DD"`, quotes included.
fn push_day(out: &mut Vec<u8>, day: Day) {
    out.push(b'"');
    push_date(out, i64::from(day.0));
    out.push(b'"');
}

/// First day of the table of spelt-out dates; every generated date after it lies within 16 years.
const TABLE_FROM: i64 = 18_262; // 2020-01-01
const TABLE_DAYS: usize = 16 * 366;

/// `YYYY-MM-DD` of the days the generator uses, spelt once: three date conversions per recognition
/// and one per event otherwise add up at ten million events.
fn date_table() -> &'static [[u8; 10]] {
    static TABLE: std::sync::OnceLock<Vec<[u8; 10]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..TABLE_DAYS as i64)
            .map(|i| {
                let (y, m, d) = clock::civil_from_days(TABLE_FROM + i);
                let mut text = [0u8; 10];
                text.copy_from_slice(format!("{y:04}-{m:02}-{d:02}").as_bytes());
                text
            })
            .collect()
    })
}

fn push_date(out: &mut Vec<u8>, days: i64) {
    match usize::try_from(days - TABLE_FROM).ok().and_then(|i| date_table().get(i)) {
        Some(text) => out.extend_from_slice(text),
        None => {
            let (y, m, d) = clock::civil_from_days(days);
            out.extend_from_slice(format!("{y:04}-{m:02}-{d:02}").as_bytes());
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS+07:00`, as [`clock::rfc3339`].
fn push_time(out: &mut Vec<u8>, t: Local) {
    push_date(out, t.div_euclid(DAY));
    let secs = t.rem_euclid(DAY) as u32;
    out.push(b'T');
    push_2(out, secs / HOUR as u32);
    out.push(b':');
    push_2(out, secs % HOUR as u32 / 60);
    out.push(b':');
    push_2(out, secs % 60);
    out.extend_from_slice(b"+07:00");
}

//! The events: CloudEvents 1.0 structured envelope, typed `data` per event type, decoding, canonical
//! encoding, upcasting of older versions and the content fingerprint used to tell duplicates apart.

use crate::codes::{DigitalLevel, Level, Metric, SubjectGroup, SubjectKind, Title};
use crate::refusal::{Refusal, Rule};
use crate::time::{self, Day};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use uuid::Uuid;

/// Prefix of every event `type`.
pub const TYPE_PREFIX: &str = "vn.hoctap.";
/// The version of every event type this tracker writes and folds, but those listed in
/// [`EventType::current_version`] (the version of the subject events the generator writes fast).
pub const CURRENT_VERSION: u32 = 1;

macro_rules! event_types {
    ($($variant:ident = $stem:literal => $data:ident),+ $(,)?) => {
        /// The kind of an event (its `type` without prefix and version).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),+ }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// The stem, e.g. `registration.submitted`.
            pub fn stem(self) -> &'static str {
                match self { $(EventType::$variant => $stem),+ }
            }

            pub fn from_stem(stem: &str) -> Option<EventType> {
                match stem { $($stem => Some(EventType::$variant),)+ _ => None }
            }
        }

        /// The `data` of an event, typed by its `type`.
        #[derive(Clone, Debug, PartialEq, Hash, Serialize)]
        #[serde(untagged)]
        pub enum EventData { $($variant($data)),+ }

        impl EventData {
            pub fn event_type(&self) -> EventType {
                match self { $(EventData::$variant(_) => EventType::$variant),+ }
            }

            fn from_json(ty: EventType, json: &str) -> Result<EventData, (String, String)> {
                match ty { $(EventType::$variant => parse_data::<$data>(json).map(EventData::$variant)),+ }
            }
        }

        /// Decodes `data` straight into the type named by the envelope (the single-pass fast path).
        struct DataSeed(EventType);

        impl<'de> serde::de::DeserializeSeed<'de> for DataSeed {
            type Value = EventData;

            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<EventData, D::Error> {
                match self.0 { $(EventType::$variant => $data::deserialize(d).map(EventData::$variant)),+ }
            }
        }
    };
}

event_types! {
    RegistrationSubmitted = "registration.submitted" => RegistrationSubmitted,
    RegistrationWithdrawn = "registration.withdrawn" => RegistrationWithdrawn,
    DeclarationSubmitted = "declaration.submitted" => DeclarationSubmitted,
    EvidenceUploaded = "evidence.uploaded" => EvidenceUploaded,
    RecognitionGranted = "recognition.granted" => RecognitionGranted,
    RecognitionRevoked = "recognition.revoked" => RecognitionRevoked,
    SkillCertified = "skill.certified" => SkillCertified,
    SubjectRelocated = "subject.relocated" => SubjectRelocated,
    BaselineRecorded = "baseline.recorded" => BaselineRecorded,
    TargetSet = "target.set" => TargetSet,
    AdminUnitEstablished = "admin_unit.established" => AdminUnitEstablished,
    AdminUnitReparented = "admin_unit.reparented" => AdminUnitReparented,
    AdminUnitRenamed = "admin_unit.renamed" => AdminUnitRenamed,
    AdminUnitDissolved = "admin_unit.dissolved" => AdminUnitDissolved,
    EventRetracted = "event.retracted" => EventRetracted,
    ReviewApproved = "review.approved" => ReviewApproved,
}

impl EventData {
    /// The administrative codes the data names, with their fields (an establishment's own code included).
    pub fn named_units(&self) -> Vec<(&'static str, &str)> {
        match self {
            EventData::RegistrationSubmitted(d) => vec![("data.commune", &d.commune)],
            EventData::SkillCertified(d) => vec![("data.commune", &d.commune)],
            EventData::SubjectRelocated(d) => vec![("data.commune", &d.commune)],
            EventData::BaselineRecorded(d) => vec![("data.unit", &d.unit)],
            EventData::TargetSet(d) => vec![("data.scope", &d.scope)],
            EventData::ReviewApproved(d) => vec![("data.scope", &d.scope)],
            EventData::AdminUnitEstablished(d) => std::iter::once(("data.code", d.code.as_str()))
                .chain(d.parent.iter().map(|p| ("data.parent", p.as_str())))
                .collect(),
            EventData::AdminUnitReparented(d) => vec![("data.code", &d.code), ("data.parent", &d.parent)],
            EventData::AdminUnitRenamed(d) => vec![("data.code", &d.code)],
            EventData::AdminUnitDissolved(d) => std::iter::once(("data.code", d.code.as_str()))
                .chain(d.successors.iter().map(|s| ("data.successors", s.code.as_str())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl EventType {
    /// Reference data: the geography (`admin_unit.*`), baselines, targets and approved reviews — what
    /// places and weighs counts or states what was decided about them, as opposed to events about subjects.
    pub fn is_reference(self) -> bool {
        matches!(
            self,
            EventType::AdminUnitEstablished
                | EventType::AdminUnitReparented
                | EventType::AdminUnitRenamed
                | EventType::AdminUnitDissolved
                | EventType::BaselineRecorded
                | EventType::TargetSet
                | EventType::ReviewApproved
        )
    }

    /// The version this tracker writes and folds: every event read is upcast to it.
    pub fn current_version(self) -> u32 {
        match self {
            // v2 names every successor of a divided unit (2026-11-30).
            EventType::AdminUnitDissolved => 2,
            // v2 may carry the unit's coordinates (2026-11-30).
            EventType::AdminUnitEstablished => 2,
            _ => CURRENT_VERSION,
        }
    }

    /// The full CloudEvents `type` of the current version, e.g. `vn.hoctap.registration.submitted.v1`.
    pub fn type_name(self) -> String {
        format!("{TYPE_PREFIX}{}.v{}", self.stem(), self.current_version())
    }
}

/// A JSON number that can be hashed and compared (scores, totals, percentages).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Deserialize)]
#[serde(transparent)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A whole number is written as an integer, as sources send it (`90`, not `90.0`).
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl Hash for Num {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // 0.0 and -0.0 are equal JSON values; hash them alike.
        let v = if self.0 == 0.0 { 0.0f64 } else { self.0 };
        v.to_bits().hash(state);
    }
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSubmitted {
    pub subject_kind: SubjectKind,
    pub commune: String,
    pub title: Title,
    pub cycle_year: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_group: Option<SubjectGroup>,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationWithdrawn {
    pub title: Title,
    pub cycle_year: i32,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Score {
    pub criterion: String,
    pub score: Num,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclarationSubmitted {
    pub title: Title,
    pub cycle_year: i32,
    pub criteria_set: String,
    pub scores: Vec<Score>,
    pub total: Num,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceUploaded {
    pub title: Title,
    pub cycle_year: i32,
    pub criterion: String,
    pub sha256: String,
    pub uri: String,
    pub media_type: String,
    pub bytes: u64,
}

/// A numbered decision of an authority.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub number: String,
    pub issuer: String,
    pub date: Day,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionGranted {
    pub title: Title,
    pub cycle_year: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    pub decision: Decision,
    pub valid_from: Day,
    pub valid_until: Day,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionRevoked {
    pub title: Title,
    pub cycle_year: i32,
    pub decision: Decision,
    pub effective: Day,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillCertified {
    pub commune: String,
    pub level: DigitalLevel,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRelocated {
    pub commune: String,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineRecorded {
    pub unit: String,
    pub metric: Metric,
    pub value: u64,
}

/// A plan, identified by (issuer, number, year): plan numbers restart every year.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub issuer: String,
    pub number: String,
    pub year: i32,
}

impl Plan {
    /// `issuer/number/year`, e.g. `UBND-01/290/2021`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.issuer, self.number, self.year)
    }
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSet {
    pub plan: Plan,
    pub scope: String,
    pub indicator: String,
    pub milestone: i32,
    pub percent: Num,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUnitEstablished {
    pub code: String,
    pub level: Level,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The unit's centre, for maps (version 2; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
}

/// A point in WGS 84 degrees: latitude −90…90, longitude −180…180.
#[derive(Clone, Copy, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordinates {
    pub lat: Num,
    pub lon: Num,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUnitReparented {
    pub code: String,
    pub parent: String,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUnitRenamed {
    pub code: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUnitDissolved {
    pub code: String,
    /// The units that take over (version 2): several when the unit was divided between them, exactly
    /// one of them the default, where its subjects are counted until an event of theirs names a commune.
    pub successors: Vec<Successor>,
}

/// One unit a dissolved unit passes into.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Successor {
    pub code: String,
    pub default: bool,
}

impl AdminUnitDissolved {
    /// A dissolution into one unit (what version 1 said).
    pub fn into_one(code: &str, successor: &str) -> AdminUnitDissolved {
        AdminUnitDissolved {
            code: code.to_owned(),
            successors: vec![Successor { code: successor.to_owned(), default: true }],
        }
    }

    /// The default successor; `None` only for an event validation refuses (no default).
    pub fn default_successor(&self) -> Option<&str> {
        self.successors.iter().find(|s| s.default).map(|s| s.code.as_str())
    }

    /// Divided between several units: its subjects are placed by default until they say where they are.
    pub fn is_divided(&self) -> bool {
        self.successors.len() > 1
    }
}

/// A review adopted by a numbered decision: the question it answered, with the instant it froze
/// (`known_at`), so that asking it again gives the approved figures whatever was recorded since.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewApproved {
    /// The unit reviewed (the event's subject).
    pub scope: String,
    /// The valid date D of the review.
    pub as_of: Day,
    /// The milestone whose targets the review compared; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestone: Option<i32>,
    /// The transaction time K the review was as known at: an RFC 3339 instant with an offset, as
    /// written (a date is refused: it would not say which instant was approved).
    pub known_at: String,
    /// The decision that approved it.
    pub decision: Decision,
}

impl ReviewApproved {
    /// `known_at` as UTC microseconds; `None` only for an event validation refuses.
    pub fn known_at_instant(&self) -> Option<i64> {
        time::parse_instant(&self.known_at)
    }

    /// Whether `other` approves the same review by the same decision (the event's time and id aside;
    /// `known_at` compared as an instant, however it is written).
    pub fn same_approval(&self, other: &ReviewApproved) -> bool {
        self.scope == other.scope
            && self.as_of == other.as_of
            && self.milestone == other.milestone
            && self.known_at_instant() == other.known_at_instant()
            && self.decision == other.decision
    }
}

#[derive(Clone, Debug, PartialEq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRetracted {
    pub event_id: Uuid,
    pub reason: String,
}

/// What decides whether two copies of one id are the same event, in a form that may be stored:
/// [`Event::content_digest`]. 16 bytes (two different contents share one with odds 2⁻¹²⁸).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentDigest(pub [u8; 16]);

/// One event, decoded. `recordedtime` is present once the tracker accepted it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub source: String,
    /// `time` as written by the source (kept so the canonical form compares equal to the original).
    pub time: String,
    /// `time` as UTC microseconds.
    pub instant: i64,
    pub subject: String,
    pub datacontenttype: Option<String>,
    /// Transaction time, UTC microseconds; `None` until the tracker stamps it.
    pub recordedtime: Option<i64>,
    pub data: EventData,
}

impl Event {
    /// Builds an event as a source would publish it (no `recordedtime`).
    /// `time` must be RFC 3339 with an offset; `None` when it is not.
    pub fn new(id: Uuid, source: &str, time: &str, subject: &str, data: EventData) -> Option<Event> {
        Some(Event {
            id,
            source: source.to_owned(),
            instant: time::parse_instant(time)?,
            time: time.to_owned(),
            subject: subject.to_owned(),
            datacontenttype: None,
            recordedtime: None,
            data,
        })
    }

    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }

    /// The Vietnam calendar day of `time`: the day the event happened in the world.
    pub fn day(&self) -> Day {
        Day::of_instant(self.instant)
    }

    /// A hash of the content that decides whether two copies of one `id` are the same event:
    /// every core attribute and the data, `recordedtime` aside.
    pub fn fingerprint(&self) -> u64 {
        // A fast fixed-seed hasher: the value only has to agree within one process (it is never stored).
        use std::hash::BuildHasher;
        let mut h = foldhash::quality::FixedState::with_seed(0x686f_6374_6170).build_hasher();
        self.id.hash(&mut h);
        self.source.hash(&mut h);
        self.time.hash(&mut h);
        self.subject.hash(&mut h);
        self.datacontenttype.hash(&mut h);
        self.data.hash(&mut h);
        h.finish()
    }

    /// A stable digest of the same content as [`Event::fingerprint`] (`recordedtime` aside): the first
    /// 16 bytes of the SHA-256 of the canonical JSON without `recordedtime`. Unlike the fingerprint it
    /// may be stored (the gateway keeps it in PostgreSQL to refuse a conflicting copy after a restart).
    pub fn content_digest(&self) -> ContentDigest {
        use sha2::Digest as _;
        let json = if self.recordedtime.is_some() {
            Event { recordedtime: None, ..self.clone() }.to_json()
        } else {
            self.to_json()
        };
        let hash = sha2::Sha256::digest(json.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash[..16]);
        ContentDigest(bytes)
    }

    /// The canonical JSON form (one line, no trailing newline), as written to the log and to Kafka.
    pub fn to_json(&self) -> String {
        let recorded = self.recordedtime.map(time::format_instant);
        let out = WireOut {
            specversion: "1.0",
            id: self.id,
            source: &self.source,
            ty: self.event_type().type_name(),
            time: &self.time,
            subject: &self.subject,
            datacontenttype: self.datacontenttype.as_deref(),
            recordedtime: recorded.as_deref(),
            data: &self.data,
        };
        serde_json::to_string(&out).expect("events always serialise")
    }

    /// Decodes one CloudEvent (structured mode). A source's event must not carry `recordedtime`;
    /// use [`Event::from_json_recorded`] for events read back from the log.
    pub fn from_json(json: &[u8]) -> Result<Event, Refusal> {
        // First, on the text as sent: a number in any attribute, key or escape is refused before any
        // other refusal could repeat it (a refusal's detail may quote the input). The refusal names the
        // event only by a UUID id.
        if let Some(field) = crate::validate::find_citizen_id_in_json(json) {
            let id = sniff_id(json).filter(|id| Uuid::parse_str(id).is_ok());
            return Err(Refusal::new(id, field, Rule::CitizenId, crate::validate::CITIZEN_ID_DETAIL));
        }
        let event = decode(json)?;
        if let Some(field) = crate::validate::find_control_character(json) {
            return Err(Refusal::new(
                Some(event.id.to_string()),
                field,
                Rule::ControlCharacter,
                "holds a control character; text may hold tab, newline and carriage return, no other control character",
            ));
        }
        if event.recordedtime.is_some() {
            return Err(Refusal::new(
                Some(event.id.to_string()),
                "recordedtime",
                Rule::RecordedTime,
                "recordedtime is stamped by the tracker when it accepts an event; a source must not set it",
            ));
        }
        Ok(event)
    }

    /// Decodes an event that the tracker accepted before (it carries `recordedtime`).
    pub fn from_json_recorded(json: &[u8]) -> Result<Event, Refusal> {
        let event = decode(json)?;
        if event.recordedtime.is_none() {
            return Err(Refusal::new(
                Some(event.id.to_string()),
                "recordedtime",
                Rule::Schema,
                "a logged event must carry recordedtime",
            ));
        }
        Ok(event)
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    specversion: &'static str,
    id: Uuid,
    source: &'a str,
    #[serde(rename = "type")]
    ty: String,
    time: &'a str,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    datacontenttype: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recordedtime: Option<&'a str>,
    data: &'a EventData,
}

/// The envelope as read, every attribute optional so that a missing one is named in the refusal.
/// Unknown attributes (CloudEvents extensions) are accepted and not kept.
#[derive(Default)]
struct WireIn<'a> {
    specversion: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    source: Option<String>,
    ty: Option<Cow<'a, str>>,
    time: Option<String>,
    subject: Option<String>,
    datacontenttype: Option<String>,
    recordedtime: Option<Cow<'a, str>>,
    data: Option<Data<'a>>,
}

enum Data<'a> {
    /// Decoded in the same pass as the envelope (the common case: `type` comes before `data`).
    Typed(EventData),
    /// Kept as text, to be decoded (or upcast) once the envelope is known.
    Raw(&'a RawValue),
}

/// Reads the envelope in one pass. With `typed`, a current-version `data` that follows `type` is
/// decoded directly into its Rust type; without, `data` is always kept raw so that a failure can be
/// reported with the path of the field.
struct WireSeed {
    typed: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for WireSeed {
    type Value = WireIn<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<WireIn<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for WireSeed {
    type Value = WireIn<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a CloudEvent as a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<WireIn<'de>, A::Error> {
        let mut w = WireIn::default();
        while let Some(CowStr(key)) = map.next_key()? {
            match &*key {
                "specversion" => w.specversion = map.next_value::<Option<CowStr<'de>>>()?.map(|c| c.0),
                "id" => w.id = map.next_value::<Option<CowStr<'de>>>()?.map(|c| c.0),
                "source" => w.source = map.next_value()?,
                "type" => w.ty = map.next_value::<Option<CowStr<'de>>>()?.map(|c| c.0),
                "time" => w.time = map.next_value()?,
                "subject" => w.subject = map.next_value()?,
                "datacontenttype" => w.datacontenttype = map.next_value()?,
                "recordedtime" => w.recordedtime = map.next_value::<Option<CowStr<'de>>>()?.map(|c| c.0),
                "data" => {
                    let current =
                        w.ty.as_deref().and_then(|t| parse_type(t).ok()).filter(|(t, v)| *v == t.current_version());
                    w.data = match current {
                        Some((event_type, _)) if self.typed => {
                            Some(Data::Typed(map.next_value_seed(DataSeed(event_type))?))
                        }
                        _ => map.next_value::<Option<&'de RawValue>>()?.map(Data::Raw),
                    };
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(w)
    }
}

/// A string borrowed from the input when it has no escapes, owned otherwise.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CowStr<'de>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn read_wire(json: &[u8], typed: bool) -> serde_json::Result<WireIn<'_>> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(json);
    let wire = WireSeed { typed }.deserialize(&mut de)?;
    de.end()?;
    Ok(wire)
}

fn parse_data<T: DeserializeOwned>(json: &str) -> Result<T, (String, String)> {
    match serde_json::from_str::<T>(json) {
        Ok(v) => Ok(v),
        // Only on failure: decode again tracking the path, so the refusal names the field.
        Err(plain) => {
            let mut de = serde_json::Deserializer::from_str(json);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => {
                    let path = e.path().to_string();
                    let mut field = if path == "." { "data".to_owned() } else { format!("data.{path}") };
                    let detail = e.into_inner().to_string();
                    // serde reports a missing field at its parent: name the field itself.
                    if let Some(name) = detail.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
                        field = format!("{field}.{name}");
                    }
                    Err((field, detail))
                }
                Ok(_) => Err(("data".to_owned(), plain.to_string())),
            }
        }
    }
}

fn decode(json: &[u8]) -> Result<Event, Refusal> {
    // One pass when the input is well formed; on any error, read again keeping `data` raw so the
    // refusal names the field.
    let wire = match read_wire(json, true) {
        Ok(wire) => wire,
        Err(_) => read_wire(json, false).map_err(|e| {
            let id = sniff_id(json);
            // A JSON object whose attribute has the wrong type: name that attribute. Other JSON
            // (an array, a number) is wrong as a whole.
            let field = if e.is_data() { mistyped_attribute(json).unwrap_or("(envelope)") } else { "(line)" };
            Refusal::new(id, field, if e.is_data() { Rule::Schema } else { Rule::Json }, e.to_string())
        })?,
    };
    let id_text = wire.id.as_deref();
    let refuse =
        |field: &str, rule: Rule, detail: String| Refusal::new(id_text.map(str::to_owned), field, rule, detail);
    let missing = |field: &str| refuse(field, Rule::Schema, format!("required attribute `{field}` is missing"));

    let id_text_v = id_text.ok_or_else(|| missing("id"))?;
    let id =
        Uuid::parse_str(id_text_v).map_err(|_| refuse("id", Rule::Schema, format!("`{id_text_v}` is not a UUID")))?;
    match wire.specversion.as_deref() {
        Some("1.0") => {}
        Some(other) => {
            return Err(refuse("specversion", Rule::Schema, format!("specversion must be \"1.0\", not {other:?}")));
        }
        None => return Err(missing("specversion")),
    }
    let source = wire.source.filter(|s| !s.is_empty()).ok_or_else(|| missing("source"))?;
    let subject = wire.subject.filter(|s| !s.is_empty()).ok_or_else(|| missing("subject"))?;
    let time = wire.time.ok_or_else(|| missing("time"))?;
    let instant = time::parse_instant(&time)
        .ok_or_else(|| refuse("time", Rule::Schema, format!("`{time}` is not an RFC 3339 timestamp with an offset")))?;
    let ty = wire.ty.ok_or_else(|| missing("type"))?;
    let (event_type, version) = parse_type(&ty).map_err(|detail| refuse("type", Rule::UnknownType, detail))?;
    if let Some(ct) = &wire.datacontenttype
        && ct != "application/json"
    {
        return Err(refuse(
            "datacontenttype",
            Rule::Schema,
            format!("datacontenttype must be application/json, not {ct:?}"),
        ));
    }
    let recordedtime =
        match wire.recordedtime.as_deref() {
            None => None,
            Some(text) => Some(time::parse_instant(text).ok_or_else(|| {
                refuse("recordedtime", Rule::Schema, format!("`{text}` is not an RFC 3339 timestamp"))
            })?),
        };
    let data = match wire.data.ok_or_else(|| missing("data"))? {
        Data::Typed(data) => Ok(data),
        Data::Raw(raw) if version == event_type.current_version() => EventData::from_json(event_type, raw.get()),
        Data::Raw(raw) => upcast::to_current(event_type, version, raw.get())
            .map_err(|detail| {
                // An upcaster names the field of the old version it could not read.
                let field = detail.strip_prefix("missing field `").or_else(|| detail.strip_prefix("field `"));
                let field =
                    field.and_then(|rest| rest.split('`').next()).map_or("data".to_owned(), |f| format!("data.{f}"));
                (field, detail)
            })
            .and_then(|json| EventData::from_json(event_type, &json)),
    }
    .map_err(|(field, detail)| refuse(&field, Rule::Schema, detail))?;
    Ok(Event { id, source, time, instant, subject, datacontenttype: wire.datacontenttype, recordedtime, data })
}

/// Splits `vn.hoctap.<stem>.v<N>`; refuses unknown stems and versions newer than this tracker reads.
pub fn parse_type(ty: &str) -> Result<(EventType, u32), String> {
    let rest = ty.strip_prefix(TYPE_PREFIX).ok_or_else(|| format!("`{ty}` does not start with `{TYPE_PREFIX}`"))?;
    let (stem, version) = rest.rsplit_once(".v").ok_or_else(|| format!("`{ty}` has no version suffix `.v<N>`"))?;
    let event_type = EventType::from_stem(stem).ok_or_else(|| format!("`{stem}` is not a known event type"))?;
    let version: u32 = version.parse().map_err(|_| format!("`{ty}` has no numeric version"))?;
    let current = event_type.current_version();
    if version == 0 || version > current || !upcast::readable(event_type, version) {
        return Err(format!("version {version} of `{stem}` is not known (this tracker reads up to v{current})"));
    }
    Ok((event_type, version))
}

/// The envelope attribute of a JSON object that is neither a string nor null (every attribute the
/// envelope reads but `data` is text), for the refusal of an envelope that does not decode.
/// Every occurrence counts: an attribute given twice may be mistyped in its first copy only.
fn mistyped_attribute(json: &[u8]) -> Option<&'static str> {
    const TEXT: &[&str] =
        &["id", "specversion", "source", "type", "time", "subject", "datacontenttype", "recordedtime"];
    struct Scan;
    impl<'de> serde::de::Visitor<'de> for Scan {
        type Value = Option<&'static str>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match TEXT.iter().find(|a| **a == key) {
                    Some(a) => {
                        let value: serde_json::Value = map.next_value()?;
                        if found.is_none() && !value.is_string() && !value.is_null() {
                            found = Some(*a);
                        }
                    }
                    None => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::Deserializer::deserialize_map(&mut de, Scan).ok().flatten()
}

/// Best effort: the `id` of a line that is not a valid envelope, so that its refusal still names it.
/// An `id` given twice is read as the decoder reads it: the last one (a derived struct would refuse the
/// duplicate and name no id; found by `tests/fuzz.rs`).
fn sniff_id(json: &[u8]) -> Option<String> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).ok()?;
    match object.remove("id")? {
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Upcasting: the one place where an older version of an event becomes the current one.
///
/// Each step turns version N of one event type into version N + 1, working on the JSON `data`.
/// Decoding runs the steps in order, then decodes the result as the current type. When a type gets a
/// new version, its step goes here and [`EventType::current_version`] moves, so that the log, which
/// keeps events as written, stays readable. The first: `admin_unit.dissolved` v1 → v2.
pub mod upcast {
    use super::EventType;
    use serde_json::Value;

    /// One step from `from` to `from + 1`.
    pub struct Step {
        pub event_type: EventType,
        pub from: u32,
        pub apply: fn(Value) -> Result<Value, String>,
    }

    /// Every step, in order.
    pub const STEPS: &[Step] = &[
        Step { event_type: EventType::AdminUnitDissolved, from: 1, apply: dissolved_v1 },
        Step { event_type: EventType::AdminUnitEstablished, from: 1, apply: established_v1 },
    ];

    /// `admin_unit.established` v2 only adds the optional `coordinates`: a v1 event is a v2 without them.
    /// A v1 event that carries them is refused, naming the field (v1 never had it).
    fn established_v1(value: Value) -> Result<Value, String> {
        if value.get("coordinates").is_some() {
            return Err("field `coordinates` is version 2: send it as vn.hoctap.admin_unit.established.v2".to_owned());
        }
        Ok(value)
    }

    /// Whether `version` of `event_type` can be brought to the current version.
    pub fn readable(event_type: EventType, version: u32) -> bool {
        (version..event_type.current_version()).all(|v| STEPS.iter().any(|s| s.event_type == event_type && s.from == v))
    }

    /// Brings `data` of `version` to the current version.
    pub fn to_current(event_type: EventType, version: u32, data: &str) -> Result<String, String> {
        apply_steps(STEPS, event_type, version, event_type.current_version(), data)
    }

    /// `admin_unit.dissolved` v1 `{code, successor}` is v2 with that one unit as the default successor.
    /// Anything else in v1 is left for the v2 decoding to refuse, naming the field.
    fn dissolved_v1(mut value: Value) -> Result<Value, String> {
        let Some(data) = value.as_object_mut() else { return Ok(value) };
        match data.remove("successor") {
            Some(Value::String(successor)) => {
                data.insert("successors".to_owned(), serde_json::json!([{ "code": successor, "default": true }]));
                Ok(value)
            }
            Some(other) => Err(format!("field `successor`: expected a unit code, found {other}")),
            None if data.contains_key("successors") => {
                Err("field `successors` is version 2: send it as vn.hoctap.admin_unit.dissolved.v2".to_owned())
            }
            None => Err("missing field `successor`".to_owned()),
        }
    }

    /// Runs `steps` from `from` to `to` (separate from [`to_current`] so tests can exercise the chain).
    pub fn apply_steps(
        steps: &[Step],
        event_type: EventType,
        from: u32,
        to: u32,
        data: &str,
    ) -> Result<String, String> {
        let mut value: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        for v in from..to {
            let step = steps
                .iter()
                .find(|s| s.event_type == event_type && s.from == v)
                .ok_or_else(|| format!("no upcaster from v{v} of {}", event_type.stem()))?;
            value = (step.apply)(value)?;
        }
        Ok(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = r#"{"specversion":"1.0","id":"6f1c1a52-3d8e-4f0e-9a43-0b8e9f7f2d11","source":"congdanhoctap.vn","type":"vn.hoctap.registration.submitted.v1","time":"2025-03-01T09:00:00+07:00","subject":"cit-8f2a","data":{"subject_kind":"citizen","commune":"00001","title":"learning_citizen","cycle_year":2025,"subject_group":"resident"}}"#;

    #[test]
    fn round_trips_through_the_canonical_form() {
        let e = Event::from_json(REG.as_bytes()).unwrap();
        assert_eq!(e.event_type(), EventType::RegistrationSubmitted);
        assert_eq!(e.day(), Day::parse("2025-03-01").unwrap());
        assert_eq!(e.to_json(), REG);
        let mut r = e.clone();
        r.recordedtime = Some(1_700_000_000_000_000);
        let back = Event::from_json_recorded(r.to_json().as_bytes()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.fingerprint(), e.fingerprint(), "recordedtime is not content");
    }

    /// Found by `tests/fuzz.rs`: an envelope attribute of another type was refused as `(envelope)`.
    #[test]
    fn an_attribute_of_the_wrong_type_is_named() {
        for (attribute, value) in [("subject", "5"), ("time", "true"), ("specversion", "{}"), ("type", "[]")] {
            let bad = REG.replace(&format!(r#""{attribute}":"#), &format!(r#""{attribute}":{value},"was":"#));
            let r = Event::from_json(bad.as_bytes()).unwrap_err();
            assert_eq!((r.field.as_str(), r.rule), (attribute, Rule::Schema), "{r}");
            assert_eq!(r.event_id.as_deref(), Some("6f1c1a52-3d8e-4f0e-9a43-0b8e9f7f2d11"));
        }
        let r = Event::from_json(b"[1, 2]").unwrap_err();
        assert_eq!((r.field.as_str(), r.rule), ("(envelope)", Rule::Schema)); // An attribute given twice, mistyped in its first copy.
        let twice = REG.replace(r#""subject":"#, r#""subject":{"a":1},"subject":"#);
        assert_eq!(Event::from_json(twice.as_bytes()).unwrap_err().field, "subject");
        // An id given twice: the last, as the decoder reads it.
        let twice = REG.replace(r#""source":"#, r#""id":"1c283915-c64a-482f-8e51-0dbf3019abb4","source":[],"was":"#);
        let r = Event::from_json(twice.as_bytes()).unwrap_err();
        assert_eq!((r.field.as_str(), r.event_id.as_deref()), ("source", Some("1c283915-c64a-482f-8e51-0dbf3019abb4")));
        // A line that is only a citizen-ID number.
        let r = Event::from_json(br#""001203004567""#).unwrap_err();
        assert_eq!((r.field.as_str(), r.rule), ("(event)", Rule::CitizenId));
    }

    #[test]
    fn refusals_name_the_field() {
        let bad = REG.replace(r#""cycle_year":2025"#, r#""cycle_year":"2025""#);
        let r = Event::from_json(bad.as_bytes()).unwrap_err();
        assert_eq!(r.field, "data.cycle_year");
        assert_eq!(r.rule, Rule::Schema);
        assert_eq!(r.event_id.as_deref(), Some("6f1c1a52-3d8e-4f0e-9a43-0b8e9f7f2d11"));
        let bad = REG.replace(r#""title":"learning_citizen","#, "");
        assert!(Event::from_json(bad.as_bytes()).unwrap_err().detail.contains("title"));
        let bad = REG.replace(".v1", ".v2");
        assert_eq!(Event::from_json(bad.as_bytes()).unwrap_err().rule, Rule::UnknownType);
        let bad = REG.replace("registration.submitted", "registration.approved");
        assert_eq!(Event::from_json(bad.as_bytes()).unwrap_err().field, "type");
        let bad = REG.replace(r#""subject":"cit-8f2a","#, "");
        assert_eq!(Event::from_json(bad.as_bytes()).unwrap_err().field, "subject");
    }

    #[test]
    fn upcast_chain_runs_in_order() {
        fn rename_total(mut v: serde_json::Value) -> Result<serde_json::Value, String> {
            let t = v.as_object_mut().unwrap().remove("sum").ok_or("no sum")?;
            v["total"] = t;
            Ok(v)
        }
        fn add_scores(mut v: serde_json::Value) -> Result<serde_json::Value, String> {
            v["scores"] = serde_json::json!([]);
            Ok(v)
        }
        let steps = [
            upcast::Step { event_type: EventType::DeclarationSubmitted, from: 1, apply: add_scores },
            upcast::Step { event_type: EventType::DeclarationSubmitted, from: 0, apply: rename_total },
        ];
        let v0 = r#"{"title":"learning_citizen","cycle_year":2025,"criteria_set":"CDHT","sum":90}"#;
        let json = upcast::apply_steps(&steps, EventType::DeclarationSubmitted, 0, 2, v0).unwrap();
        let d: DeclarationSubmitted = serde_json::from_str(&json).unwrap();
        assert_eq!(d.total, Num(90.0));
        assert!(d.scores.is_empty());
        assert!(upcast::apply_steps(&steps, EventType::EvidenceUploaded, 0, 1, v0).is_err());
    }
}

//! Why an event was refused: the event id, the field and the rule it broke.

use serde::Serialize;
use std::fmt;

/// The rule of "bad input" an event broke. Each refusal goes to the dead-letter place with one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The line is not a JSON object.
    Json,
    /// The CloudEvents envelope or the `data` does not match the event's schema (missing field, wrong type).
    Schema,
    /// The `type` names no known event, or a version this tracker does not read.
    UnknownType,
    /// A number lies outside its range (scores 0–100, level 1–2, percent 0–100).
    Range,
    /// `cycle_year` lies outside 2021–2030.
    CycleYear,
    /// `valid_until` is earlier than `valid_from`.
    ValidityOrder,
    /// A code names no administrative unit established by an accepted event or by the same batch.
    UnknownUnit,
    /// An administrative code has the wrong shape for its level.
    CodeFormat,
    /// A raw 12-digit citizen-ID number (CCCD) appears in the subject or the data.
    CitizenId,
    /// The same `id` was accepted before with other content.
    DuplicateId,
    /// The `subject` disagrees with the code the data names.
    SubjectMismatch,
    /// A source set `recordedtime`, which only the tracker stamps.
    RecordedTime,
    /// A target names an indicator the counting rules do not define.
    Indicator,
    /// A key or string holds a control character other than tab, newline and carriage return.
    ControlCharacter,
    /// A review approval names a decision number that already approves another review.
    ApprovalConflict,
    /// A review approval's `known_at` is not before the moment the tracker records it, so later
    /// events could still change the approved figures.
    KnownAtFuture,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Json => "json",
            Rule::Schema => "schema",
            Rule::UnknownType => "unknown_type",
            Rule::Range => "range",
            Rule::CycleYear => "cycle_year",
            Rule::ValidityOrder => "validity_order",
            Rule::UnknownUnit => "unknown_unit",
            Rule::CodeFormat => "code_format",
            Rule::CitizenId => "citizen_id",
            Rule::DuplicateId => "duplicate_id",
            Rule::SubjectMismatch => "subject_mismatch",
            Rule::RecordedTime => "recordedtime",
            Rule::Indicator => "indicator",
            Rule::ControlCharacter => "control_character",
            Rule::ApprovalConflict => "approval_conflict",
            Rule::KnownAtFuture => "known_at_future",
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // One spelling everywhere: the one printed is the one stored.
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event. Shown to the source as one line and stored beside the event in the dead-letter place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("event {}: field `{field}`: rule {rule}: {detail}", event_id.as_deref().unwrap_or("(no id)"))]
pub struct Refusal {
    /// The event's `id` when it could be read.
    pub event_id: Option<String>,
    /// Where the problem is, as a path: `subject`, `data.scores[2].score`.
    pub field: String,
    pub rule: Rule,
    /// What was wrong, for a person.
    pub detail: String,
}

impl Refusal {
    pub fn new(event_id: Option<String>, field: impl Into<String>, rule: Rule, detail: impl Into<String>) -> Refusal {
        Refusal { event_id, field: field.into(), rule, detail: detail.into() }
    }
}

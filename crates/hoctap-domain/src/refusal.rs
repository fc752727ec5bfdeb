//! Why an event was refused: the event id, the field and the rule it broke.

use serde::Serialize;
use std::fmt;
use std::fmt::Write as _;

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
/// Shown, it stays one line whatever the source sent: control characters in the id, the field or the
/// detail (a newline in an `id`) are written escaped (`\n`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error(
    "event {}: field `{}`: rule {rule}: {}",
    OneLine(event_id.as_deref().unwrap_or("(no id)")),
    OneLine(field),
    OneLine(detail)
)]
pub struct Refusal {
    /// The event's `id` when it could be read.
    pub event_id: Option<String>,
    /// Where the problem is, as a path: `subject`, `data.scores[2].score`.
    pub field: String,
    pub rule: Rule,
    /// What was wrong, for a person.
    pub detail: String,
}

/// Text as written, but for control characters, which are escaped (`\n`, `\u{1b}`).
struct OneLine<'a>(&'a str);

impl std::fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            if c.is_control() { write!(f, "{}", c.escape_debug())? } else { f.write_char(c)? }
        }
        Ok(())
    }
}

impl Refusal {
    pub fn new(event_id: Option<String>, field: impl Into<String>, rule: Rule, detail: impl Into<String>) -> Refusal {
        Refusal { event_id, field: field.into(), rule, detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_shown_on_one_line_whatever_the_source_sent() {
        let r = Refusal::new(Some("0']\nrefused (line 1): forged".into()), "data.\u{1b}x", Rule::Schema, "bad\r\n");
        let shown = r.to_string();
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert_eq!(shown, r"event 0']\nrefused (line 1): forged: field `data.\u{1b}x`: rule schema: bad\r\n");
        // Vietnamese and other printable text is kept as written.
        assert!(Refusal::new(None, "data.tên", Rule::Schema, "Hà Nội").to_string().ends_with("Hà Nội"));
    }
}

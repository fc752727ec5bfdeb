//! The dead-letter record: a refused event as it was sent, with the reason it was refused.

use hoctap_domain::Refusal;
use serde::{Deserialize, Serialize};

/// Why an event was refused: the domain's [`Refusal`], or a refusal of the gateway itself (an event of
/// another province: rule `province`). `rule` is the rule's spelling (`schema`, `unknown_unit`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub event_id: Option<String>,
    pub field: String,
    pub rule: String,
    pub detail: String,
}

impl From<&Refusal> for Reason {
    fn from(r: &Refusal) -> Reason {
        Reason {
            event_id: r.event_id.clone(),
            field: r.field.clone(),
            rule: r.rule.as_str().to_owned(),
            detail: r.detail.clone(),
        }
    }
}

impl From<Refusal> for Reason {
    fn from(r: Refusal) -> Reason {
        Reason::from(&r)
    }
}

/// The value of a dead-letter record: `{"reason": {...}, "event": "<the event as sent>", "source": ...}`.
/// `event` is the text the source sent, as a string (it may not even be JSON), with every raw
/// citizen-ID number masked by [`DeadLetter::new`], since this topic is kept like the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub reason: Reason,
    pub event: String,
    /// The source system that sent it, when known (the gateway's token name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl DeadLetter {
    /// The refused input as it may be kept: every raw citizen-ID number in it masked (in any key or
    /// string, escaped or not; ids, being UUIDs, are kept), so that this topic never holds one.
    pub fn new(raw: &[u8], reason: impl Into<Reason>) -> DeadLetter {
        DeadLetter {
            reason: reason.into(),
            event: hoctap_domain::validate::mask_citizen_ids_in_json(raw),
            source: None,
        }
    }

    pub fn with_source(mut self, source: &str) -> DeadLetter {
        self.source = Some(source.to_owned());
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("dead letters always serialise")
    }

    pub fn from_json(json: &[u8]) -> serde_json::Result<DeadLetter> {
        serde_json::from_slice(json)
    }
}

//! Warnings: events that are valid and accepted, yet will not count as they stand. The source is told
//! (in the gateway's answer, in `hoctap ingest`'s summary) so that it can correct them; the tracker
//! still keeps them, since a later event may make them count (a registration placing the subject, the
//! event a retraction names).

use serde::Serialize;
use std::fmt;

/// Why an accepted event will not count as it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// Its date lies more than a year after the campaign's last year (decisions on the last cycle come
    /// in the year after it): no review of the campaign reaches it.
    AfterCampaign,
    /// A recognition (or declaration, evidence, revocation, withdrawal) for a subject that no
    /// accepted event places in a commune: it is counted nowhere until one does.
    NotPlaced,
    /// A retraction naming an id that no accepted event has, nor the same batch: it retracts
    /// nothing until that event arrives.
    RetractsUnknown,
}

impl WarningKind {
    pub const ALL: [WarningKind; 3] =
        [WarningKind::AfterCampaign, WarningKind::NotPlaced, WarningKind::RetractsUnknown];

    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::AfterCampaign => "after_campaign",
            WarningKind::NotPlaced => "not_placed",
            WarningKind::RetractsUnknown => "retracts_unknown",
        }
    }
}

impl Serialize for WarningKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One warning about an accepted event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub event_id: String,
    /// The field to look at: `time`, `subject`, `data.event_id`.
    pub field: &'static str,
    pub warning: WarningKind,
    pub detail: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}: field `{}`: {}: {}", self.event_id, self.field, self.warning, self.detail)
    }
}

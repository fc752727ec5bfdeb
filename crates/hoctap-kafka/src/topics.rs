//! The topics, in one place, and which one each event goes to.
//!
//! - `hoctap.events.v1`: subject events, keyed by `subject`, so that each subject's events stay in one
//!   partition in the order they were accepted. Partitions: [`DEFAULT_EVENT_PARTITIONS`], configurable.
//! - `hoctap.reference.v1`: the reference data (administrative units, baselines, targets) that every
//!   projector instance needs whole, whatever partitions of the events topic it was assigned. One
//!   partition; readers `assign` it from the beginning instead of joining a consumer group, so no
//!   rebalance can hand it to another instance.
//! - `hoctap.dead-letter.v1`: each refused event with its reason ([`crate::DeadLetter`]).
//!
//! The `.v1` suffix is the version of the message format, not of the events (each event names its own
//! version in `type`): a change that old consumers could not read gets a new topic.

use hoctap_domain::{Event, EventData, EventType};
use uuid::Uuid;

/// The events topic: subject events, keyed by subject.
pub const EVENTS: &str = "hoctap.events.v1";
/// The reference topic: geography, baselines, targets (and retractions of them). One partition.
pub const REFERENCE: &str = "hoctap.reference.v1";
/// The dead-letter topic: refused events with their reasons.
pub const DEAD_LETTER: &str = "hoctap.dead-letter.v1";
/// Partitions of the events topic unless configured otherwise.
pub const DEFAULT_EVENT_PARTITIONS: i32 = 6;
/// Partitions of the reference topic: one, so that reading it whole is one `assign`.
pub const REFERENCE_PARTITIONS: i32 = 1;
/// Partitions of the dead-letter topic: low volume, read by people and tools.
pub const DEAD_LETTER_PARTITIONS: i32 = 1;

/// The header that carries the content type (CloudEvents Kafka protocol binding, structured mode).
pub const CONTENT_TYPE: &str = "content-type";
/// The content type of every record this crate writes: a CloudEvent in structured mode, JSON.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// The names of the three topics. [`Topics::default`] gives the names above; other names exist for
/// deployments that share a cluster (a prefix per environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub events: String,
    pub reference: String,
    pub dead_letter: String,
}

impl Default for Topics {
    fn default() -> Topics {
        Topics { events: EVENTS.to_owned(), reference: REFERENCE.to_owned(), dead_letter: DEAD_LETTER.to_owned() }
    }
}

impl Topics {
    /// The default names behind a prefix, e.g. `staging.hoctap.events.v1`.
    pub fn prefixed(prefix: &str) -> Topics {
        let d = Topics::default();
        Topics {
            events: format!("{prefix}{}", d.events),
            reference: format!("{prefix}{}", d.reference),
            dead_letter: format!("{prefix}{}", d.dead_letter),
        }
    }

    /// The topic an event routed to `route` is written to.
    pub fn name(&self, route: Route) -> &str {
        match route {
            Route::Events => &self.events,
            Route::Reference => &self.reference,
        }
    }
}

/// Which topic an accepted event goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Events,
    Reference,
}

impl Route {
    /// Reference data: the geography (`admin_unit.*`), baselines, targets and approved reviews.
    pub fn is_reference_type(ty: EventType) -> bool {
        ty.is_reference()
    }

    /// The topic of `event`. A retraction follows the event it names: to the reference topic when
    /// `is_reference_id` says that event went there, else to the events topic. A retraction that
    /// arrives before the reference event it names therefore lands in the events topic; a projector
    /// that reads both topics still applies it (the fold does not depend on where an event came from),
    /// only a reader of the reference topic alone misses it.
    pub fn of(event: &Event, is_reference_id: impl Fn(&Uuid) -> bool) -> Route {
        match &event.data {
            EventData::EventRetracted(d) if is_reference_id(&d.event_id) => Route::Reference,
            data if Route::is_reference_type(data.event_type()) => Route::Reference,
            _ => Route::Events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_route() {
        let reference: Vec<&str> =
            EventType::ALL.iter().filter(|t| Route::is_reference_type(**t)).map(|t| t.stem()).collect();
        assert_eq!(
            reference,
            [
                "baseline.recorded",
                "target.set",
                "admin_unit.established",
                "admin_unit.reparented",
                "admin_unit.renamed",
                "admin_unit.dissolved",
                "review.approved"
            ]
        );
    }

    #[test]
    fn prefixed_names() {
        assert_eq!(Topics::prefixed("t1.").events, "t1.hoctap.events.v1");
        assert_eq!(Topics::default().name(Route::Reference), REFERENCE);
    }
}

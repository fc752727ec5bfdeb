//! PostgreSQL read models of hoctap and the projector's transactional core, without Kafka.
//!
//! - [`migrate`] creates or upgrades one read-model generation: every table lives in one schema
//!   ([`Schema`], e.g. `hoctap_g1`) so that a rebuild can fill the next one while this one serves.
//! - [`Projection`] folds consumed events into that schema: per batch, one transaction holds the
//!   events, the changes of the subjects' contributions (as deltas per place, measure and day) and the
//!   next offset of every partition ([`offsets`] is where a consumer seeks on assignment).
//! - [`place_counts`] and [`review`] answer for any valid date, as known now or at an earlier time,
//!   without replaying anything: the counts come from the delta tables, the placing and the targets
//!   from the domain crate's [`hoctap_domain::Engine::review_from_counts`]. [`diff`] compares two
//!   knowledge times and lists the events in between from the histories of the subjects recorded
//!   since the first (`recorded_subjects`: the subjects each batch wrote, by its newest recorded time).
//!
//! - [`GatewayState`] is the gateway's memory of the events topic (ids, digests, placements, folded
//!   offsets, the writer lease), in the schema `<deployment>_gateway`.
//!
//! Design: `docs/design/2026-11-23-read-model-contributions.md`. The tables are documented in
//! `migrations/`. This crate is the only one that knows SQL.

mod codec;
mod counts;
mod dashboard;
mod delta_log;
mod deployment;
mod diff;
mod error;
mod gateway;
mod keys;
mod migrate;
mod projection;
mod query;
mod series;
mod stats;

pub use codec::{measure_from_text, measure_to_text, place_from_text, place_to_text};
pub use dashboard::{FiguresStamp, Refreshed, copy_dashboard, current_figures, dashboard_dates, refresh_dashboard};
pub use delta_log::{compact_log, log_changes};
pub use deployment::{Deployment, differences, drop_generation, events_applied};
pub use diff::diff;
pub use error::StoreError;
pub use gateway::{Folded, GatewayState, Holder, Known, Lease, Remembered};
pub use migrate::{GATEWAY_MIGRATIONS, MIGRATIONS, Migration, migrate};
pub use projection::{Applied, Consumed, DEFAULT_CACHE_BYTES, Position, Projection, offsets};
pub use query::{ReadCache, approvals, place_counts, recorded, reference, review, review_approved, units};
pub use series::series;
pub use stats::{analyze, recorded_span, size_bytes};

use std::fmt;

/// The PostgreSQL schema that holds one read-model generation. Validated once, so that it can be
/// spliced into SQL text (identifiers cannot be bind parameters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schema(String);

impl Schema {
    /// A lowercase identifier: letters `a`–`z`, digits and `_`, not starting with a digit, at most 63
    /// bytes (PostgreSQL's limit), e.g. `hoctap_g1`.
    pub fn new(name: &str) -> Result<Schema, StoreError> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && name.len() <= 63 && !name.starts_with("pg_") {
            Ok(Schema(name.to_owned()))
        } else {
            Err(StoreError::InvalidSchema(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema as a quoted SQL identifier (quoted so that a name such as `user` is never a keyword).
    pub(crate) fn ident(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Schema;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["hoctap_g1", "_x", "a"] {
            assert!(Schema::new(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "Hoctap", "a-b", "a\"b", "a b", "pg_temp", &"x".repeat(64)] {
            assert!(Schema::new(bad).is_err(), "{bad}");
        }
    }
}

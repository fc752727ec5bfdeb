//! The pure core of hoctap: the events, their validation, the bitemporal fold and the counting rules.
//!
//! Nothing here does I/O. The embedded replay, the PostgreSQL projector and the tests all fold events
//! with [`Engine::apply`] and ask questions with [`Engine::review`].

pub mod codes;
pub mod diff;
pub mod engine;
pub mod event;
pub mod geo;
pub mod indicator;
pub mod refusal;
pub mod review;
pub mod time;
pub mod validate;
pub mod warning;

pub use diff::ReviewDiff;
pub use engine::{
    Admission, Approval, ApprovalError, Batch, CHECKPOINT_VERSION, CheckpointError, Contribution, Deltas, Digest,
    Engine, HistoryError, Ledger, Locator, Measure, MemoryStats, Place, PlaceCounts, Query, QueryError, Recorded,
};
pub use event::{ContentDigest, Event, EventData, EventType};
pub use refusal::{Refusal, Rule};
pub use review::Review;
pub use time::Day;
pub use warning::{Warning, WarningKind};
